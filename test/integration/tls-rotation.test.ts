// Certificates rotated without a restart, CRL files and allowed hostnames (etcd's TLSInfo:
// cert and key read at every handshake, --client-crl-file / --peer-crl-file checked after it,
// --client-cert-allowed-hostname / --peer-cert-allowed-hostname verified against the SANs).

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:tls';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { RaftPeerClient } from '../../src/gen/raftkv/peer.js';
import { validForHost } from '../../src/util/cert-checks.js';
import { normalizeSerial, revokedSerials } from '../../src/util/crl.js';
import { type CertPair, type TestCerts, TestCA, hasOpenssl, makeTestCerts } from '../support/certs.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const run = promisify(execFile);
const etcdctlAvailable = spawnSync('etcdctl', ['version']).status === 0;
const opensslAvailable = hasOpenssl();
if (process.env.CI && (!etcdctlAvailable || !opensslAvailable)) throw new Error('etcdctl and openssl are required in CI');
const skip = etcdctlAvailable && opensslAvailable ? false : 'etcdctl or openssl not installed';

/** The serial (normalized) of the certificate a TLS server at `port` presents to a new connection. */
function servedSerial(port: number, certs: TestCerts, client: CertPair): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca: readFileSync(certs.ca.cert), cert: readFileSync(client.cert), key: readFileSync(client.key), ALPNProtocols: ['h2'], servername: 'localhost' }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(normalizeSerial(serial));
    });
    s.once('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  });
}

const pem = (f: string): Buffer => readFileSync(f);

describe('a CRL file is read as etcd reads it (x509.ParseCRL: serials only)', { skip: opensslAvailable ? false : 'openssl not installed' }, () => {
  it('lists the revoked serials of a PEM or DER CRL, none of an empty one, and refuses what is not a CRL', () => {
    const certs = makeTestCerts();
    try {
      const a = certs.ca.issue('a', 'a');
      const b = certs.ca.issue('b', 'b');
      const crl = certs.ca.crl('ab.crl', [a, b]);
      assert.deepEqual([...revokedSerials(pem(crl))].sort(), [TestCA.serialOf(a.cert), TestCA.serialOf(b.cert)].map(normalizeSerial).sort());
      const der = join(certs.dir, 'ab.der');
      spawnSync('openssl', ['crl', '-in', crl, '-outform', 'DER', '-out', der]);
      assert.deepEqual(revokedSerials(pem(der)), revokedSerials(pem(crl)));
      assert.equal(revokedSerials(pem(certs.ca.crl('none.crl', []))).size, 0);
      assert.throws(() => revokedSerials(pem(certs.ca.cert)), /malformed crl/);
      assert.throws(() => revokedSerials(Buffer.from('not a crl')), /malformed crl/);
    } finally {
      certs.cleanup();
    }
  });
});

describe("an allowed hostname is matched as Go's x509 VerifyHostname matches it", { skip: opensslAvailable ? false : 'openssl not installed' }, () => {
  it('trailing dots, one-label wildcards, case and IP SANs; never the CommonName', () => {
    const certs = makeTestCerts();
    try {
      const der = (c: CertPair) => new X509Certificate(pem(c.cert)).raw;
      const named = der(certs.ca.issue('named', 'cn.example', ['DNS:Allowed.Example', 'IP:10.1.2.3']));
      const wild = der(certs.ca.issue('wild', 'wild', ['DNS:*.example']));
      assert.deepEqual(
        ['allowed.example', 'allowed.example.', 'ALLOWED.example', 'other.example', 'cn.example', '10.1.2.3', '[10.1.2.3]', '10.1.2.4'].map((h) => validForHost(named, h)),
        [true, true, true, false, false, true, true, false],
      );
      assert.deepEqual(['foo.example', 'a.foo.example', 'example'].map((h) => validForHost(wild, h)), [true, false, false]);
    } finally {
      certs.cleanup();
    }
  });
});

describe('certificate files rotated under a running 3-member mTLS cluster', { skip }, () => {
  let c: ProcCluster;
  let certs: TestCerts;
  /** The files the members were started with, rewritten by the test. */
  let live: CertPair;
  const env = { ...process.env, ETCDCTL_API: '3' };
  const ctl = async (args: string[]): Promise<string> =>
    (await run('etcdctl', [`--endpoints=${c.members.map((m) => `https://127.0.0.1:${m.clientPort}`).join(',')}`, '--command-timeout=10s', `--cacert=${certs.ca.cert}`, `--cert=${certs.client.cert}`, `--key=${certs.client.key}`, ...args], { env })).stdout;

  before(async () => {
    certs = makeTestCerts();
    live = { cert: join(certs.dir, 'live.crt'), key: join(certs.dir, 'live.key') };
    copyFileSync(certs.server.cert, live.cert);
    copyFileSync(certs.server.key, live.key);
    c = await ProcCluster.start({
      size: 3,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
      extraArgs: [
        '--cert-file', live.cert, '--key-file', live.key, '--trusted-ca-file', certs.ca.cert, '--client-cert-auth',
        '--peer-cert-file', live.cert, '--peer-key-file', live.key, '--peer-trusted-ca-file', certs.ca.cert, '--peer-client-cert-auth',
      ],
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('new connections on the client and peer ports get the new certificate; a key that does not match keeps the old one', async () => {
    const old = normalizeSerial(TestCA.serialOf(certs.server.cert));
    assert.equal(await servedSerial(c.members[0]!.clientPort, certs, certs.client), old);
    assert.equal(await servedSerial(c.members[0]!.peerPort, certs, certs.server), old);

    // Half a rotation: a new certificate beside the old key. Unusable: the old pair stays.
    const next = certs.ca.issue('next', 'member');
    copyFileSync(next.cert, live.cert);
    await eventually(async () => assert.match(c.members[0]!.log.join(''), /failed to reload certificate files/), 15_000);
    assert.equal(await servedSerial(c.members[0]!.clientPort, certs, certs.client), old);
    assert.equal((await ctl(['put', 'during', 'rotation'])).trim(), 'OK');

    // The rest of it: now the pair matches, and is served without a restart.
    copyFileSync(next.key, live.key);
    const fresh = normalizeSerial(TestCA.serialOf(next.cert));
    for (const m of c.members) {
      await eventually(async () => assert.equal(await servedSerial(m.clientPort, certs, certs.client), fresh), 15_000);
      await eventually(async () => assert.equal(await servedSerial(m.peerPort, certs, certs.server), fresh), 15_000);
    }
    // The members still talk to each other (the new certificate as client and server) and to clients.
    assert.equal((await ctl(['put', 'after', 'rotation'])).trim(), 'OK');
    assert.equal((await ctl(['get', 'after', '--consistency=l'])).trim(), 'after\nrotation');
    assert.equal((await ctl(['endpoint', 'status', '--cluster'])).trim().split('\n').length, 3);
  });
});

describe("without --cipher-suites, TLS 1.2 offers Go's default suites (as etcd serves them)", { skip }, () => {
  it('a client offering only a CBC suite with SHA-256/384 is refused; ECDHE with AES-GCM or CBC-SHA is served', async () => {
    const certs = makeTestCerts();
    let c: ProcCluster | undefined;
    try {
      c = await ProcCluster.start({
        size: 1,
        scheme: 'https',
        clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
        extraArgs: ['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--peer-auto-tls'],
      });
      const port = c.members[0]!.clientPort;
      const hello = (ciphers: string) =>
        new Promise<string>((resolve, reject) => {
          const s = connect({ host: '127.0.0.1', port, ca: pem(certs.ca.cert), cert: pem(certs.client.cert), key: pem(certs.client.key), servername: 'localhost', maxVersion: 'TLSv1.2', ciphers }, () => {
            resolve(s.getCipher().standardName);
            s.destroy();
          });
          s.once('error', reject);
        });
      assert.equal(await hello('ECDHE-ECDSA-AES128-GCM-SHA256'), 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
      assert.equal(await hello('ECDHE-ECDSA-AES128-SHA'), 'TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA');
      await assert.rejects(hello('ECDHE-ECDSA-AES128-SHA256'));
      await assert.rejects(hello('ECDHE-ECDSA-AES256-SHA384'));
    } finally {
      await c?.destroy();
      certs.cleanup();
    }
  });
});

describe('CRL files, allowed hostnames, SANs of peers and cipher suites', { skip }, () => {
  let c: ProcCluster;
  let certs: TestCerts;
  let revokedClient: CertPair;
  let revokedPeer: CertPair;
  let farPeer: CertPair;
  let goodClient: CertPair;
  let elsewhereClient: CertPair;
  let peerCrl: string;
  let clientCrl: string;
  let metricsPort: number;
  const env = { ...process.env, ETCDCTL_API: '3' };
  const ctlAs = async (who: CertPair, args: string[]): Promise<string> =>
    (await run('etcdctl', [`--endpoints=https://127.0.0.1:${c.members[0]!.clientPort}`, '--command-timeout=3s', '--dial-timeout=2s', `--cacert=${certs.ca.cert}`, `--cert=${who.cert}`, `--key=${who.key}`, ...args], { env })).stdout;
  const refused = async (who: CertPair): Promise<void> => {
    await assert.rejects(ctlAs(who, ['get', 'k']));
  };

  before(async () => {
    certs = makeTestCerts();
    revokedClient = certs.ca.issue('revoked-client', 'client', ['DNS:client.example']);
    goodClient = certs.ca.issue('good-client', 'client', ['DNS:client.example']);
    elsewhereClient = certs.ca.issue('elsewhere-client', 'client', ['DNS:other.example']);
    revokedPeer = certs.ca.issue('revoked-peer', 'member');
    farPeer = certs.ca.issue('far-peer', 'member', ['IP:10.9.9.9']);
    clientCrl = certs.ca.crl('client.crl', [revokedClient]);
    peerCrl = certs.ca.crl('peer.crl', [revokedPeer]);
    [metricsPort] = await freePorts(1);
    c = await ProcCluster.start({
      size: 1,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(goodClient.key), pem(goodClient.cert)),
      extraArgs: [
        '--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--client-cert-auth',
        '--client-crl-file', clientCrl, '--client-cert-allowed-hostname', 'client.example',
        '--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca.cert,
        '--peer-client-cert-auth', '--peer-crl-file', peerCrl,
        '--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256',
        '--listen-metrics-urls', `https://127.0.0.1:${metricsPort}`,
      ],
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('the client port refuses a revoked certificate and one not valid for the allowed hostname, and serves the others', async () => {
    assert.equal((await ctlAs(goodClient, ['put', 'k', 'v'])).trim(), 'OK');
    await refused(revokedClient);
    await refused(elsewhereClient);
    const log = c.members[0]!.log.join('');
    assert.match(log, new RegExp(`"msg":"rejected connection",.*"remote-addr":"127\\.0\\.0\\.1:\\d+","server-name":"","ip-addresses":\\[\\],"dns-names":\\["client\\.example"\\],"error":"transport: certificate serial ${normalizeSerial(TestCA.serialOf(revokedClient.cert))} revoked"`));
    assert.match(log, /"msg":"rejected connection".*"error":"client certificate authentication failed"/);
  });

  it('an https metrics URL is served with the client TLS (etcd: ClientTLSInfo), not in plaintext', async () => {
    const curl = (args: string[]) => run('curl', ['-sS', '--max-time', '5', ...args, `https://127.0.0.1:${metricsPort}/metrics`]);
    // Valid for the allowed hostname, and naming the address it comes from (etcd's checkSAN on metrics listeners).
    const scraper = certs.ca.issue('scraper', 'prometheus', ['DNS:client.example', 'IP:127.0.0.1']);
    const r = await curl(['--cacert', certs.ca.cert, '--cert', scraper.cert, '--key', scraper.key]);
    assert.match(r.stdout, /^etcd_server_has_leader 1$/m);
    const tls = ['--cacert', certs.ca.cert, '--cert', scraper.cert, '--key', scraper.key];
    const missing = await run('curl', ['-sS', '--max-time', '5', '-w', ' %{http_code}', ...tls, `https://127.0.0.1:${metricsPort}/nope`]);
    assert.equal(missing.stdout, '404 page not found\n 404'); // Go's NotFound, as etcd's metrics mux
    await assert.rejects(curl(['--cacert', certs.ca.cert])); // no client certificate: the CA requires one
    await assert.rejects(run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${metricsPort}/metrics`]));
  });

  it('a CRL rewritten without the serial lets that certificate in again; an unreadable one refuses every certificate', async () => {
    copyFileSync(certs.ca.crl('none.crl', []), clientCrl);
    await eventually(async () => assert.equal((await ctlAs(revokedClient, ['get', 'k', '--print-value-only'])).trim(), 'v'), 15_000);
    writeFileSync(clientCrl, 'garbage');
    await eventually(() => refused(goodClient), 15_000);
    copyFileSync(certs.ca.crl('none.crl', []), clientCrl);
    await eventually(async () => assert.equal((await ctlAs(goodClient, ['get', 'k', '--print-value-only'])).trim(), 'v'), 15_000);
  });

  it('the peer port closes a connection made with a revoked certificate, or one whose SANs do not name where it comes from (checkSAN)', async () => {
    const call = (who: CertPair) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const p = new RaftPeerClient(`127.0.0.1:${c.members[0]!.peerPort}`, grpc.credentials.createSsl(pem(certs.ca.cert), pem(who.key), pem(who.cert)), { 'grpc.ssl_target_name_override': 'localhost' });
        p.members({}, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e) => {
          p.close();
          resolve(e);
        });
      });
    assert.equal(await call(certs.server), null);
    assert.equal((await call(revokedPeer))?.code, grpc.status.UNAVAILABLE);
    assert.equal((await call(farPeer))?.code, grpc.status.UNAVAILABLE);
    await eventually(async () => {
      const log = c.members[0]!.log.join('');
      assert.match(log, new RegExp(`"msg":"rejected connection".*"error":"transport: certificate serial ${normalizeSerial(TestCA.serialOf(revokedPeer.cert))} revoked"`));
      assert.match(log, /"msg":"rejected connection".*"ip-addresses":\["10\.9\.9\.9"\].*"error":"x509: certificate is valid for 10\.9\.9\.9, not 127\.0\.0\.1"/);
    });
  });

  it('--cipher-suites: a TLS 1.2 client must offer a listed suite; TLS 1.3 stays on, as in Go', async () => {
    const hello = (o: { ciphers?: string; maxVersion?: 'TLSv1.2' | 'TLSv1.3' }) =>
      new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port: c.members[0]!.clientPort, ca: pem(certs.ca.cert), cert: pem(goodClient.cert), key: pem(goodClient.key), servername: 'localhost', ALPNProtocols: ['h2'], ...o }, () => {
          resolve(`${s.getProtocol()} ${s.getCipher().standardName}`);
          s.destroy();
        });
        s.once('error', reject);
      });
    assert.equal(await hello({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' }), 'TLSv1.2 TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256');
    await assert.rejects(hello({ maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384' }));
    assert.match(await hello({}), /^TLSv1\.3 /);
  });
});

describe('--peer-cert-allowed-cn both ways (etcd checks the certificate of the peer it dials too)', { skip }, () => {
  let c: ProcCluster;
  let certs: TestCerts;

  before(async () => {
    certs = makeTestCerts();
    const intruder = certs.ca.issue('intruder', 'intruder');
    c = await ProcCluster.start({
      size: 3,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
      extraArgs: ['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--peer-trusted-ca-file', certs.ca.cert, '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'member'],
      memberArgs: (i) => {
        const peer = i === 2 ? intruder : certs.server;
        return ['--peer-cert-file', peer.cert, '--peer-key-file', peer.key];
      },
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('the member with CN "intruder" is refused when it connects and never dialed: it never hears of the leader', async () => {
    const leader = await c.waitForLeader();
    assert.notEqual(leader, 2);
    // While the two good members commit, the refused one learns nothing from them.
    for (let k = 0; k < 30; k++) await c.client(leader).put(`k${k}`, 'v');
    assert.equal((await c.client(2).status()).leader, 0n);
    await eventually(async () => assert.match(c.members[leader]!.log.join(''), /"msg":"rejected connection".*"error":"client certificate authentication failed"/));
    assert.equal((await c.client((leader + 1) % 3 === 2 ? (leader + 2) % 3 : (leader + 1) % 3).range('k29', { serializable: true })).kvs.length, 1);
  });
});
