// --client-cert-auth with auth on: a request without a token is made as the user named by the
// CommonName of the client's verified certificate (etcd's AuthInfoFromTLS); a token, when
// given, takes precedence.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type CertPair, type TestCerts, hasOpenssl, makeTestCerts } from '../support/certs.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster } from '../support/proc-cluster.js';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

const skip = !etcdctlAvailable ? 'etcdctl not installed' : !hasOpenssl() ? 'openssl not installed' : false;

describe('auth with --client-cert-auth: the certificate CN is the user', { skip }, () => {
  let c: ProcCluster;
  let certs: TestCerts;
  let rootCert: CertPair;
  let aliceCert: CertPair;
  const ctl = async (cert: CertPair, args: string[], user?: string): Promise<string> => {
    const tls = [`--cacert=${certs.ca.cert}`, `--cert=${cert.cert}`, `--key=${cert.key}`];
    const u = user ? [`--user=${user}`] : [];
    const eps = c.endpoints().map((e) => `https://${e}`).join(',');
    return (await run('etcdctl', [`--endpoints=${eps}`, '--command-timeout=15s', ...tls, ...u, ...args], { env: etcdctlEnv })).stdout;
  };
  const fails = async (cert: CertPair, args: string[], user?: string): Promise<string> => {
    try {
      const out = await ctl(cert, args, user);
      return assert.fail(`succeeded: ${out}`);
    } catch (e) {
      const stderr = (e as { stderr?: string }).stderr;
      if (stderr === undefined) throw e;
      return stderr;
    }
  };

  before(async () => {
    certs = makeTestCerts();
    rootCert = certs.ca.issue('root-client', 'root', []);
    aliceCert = certs.ca.issue('alice-client', 'alice', []);
    const pem = (f: string) => readFileSync(f);
    c = await ProcCluster.start({
      size: 1,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
      extraArgs: [
        '--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--client-cert-auth',
        '--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca.cert,
        '--bcrypt-cost', '4',
      ],
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('set up, enable auth; then each certificate acts as its CN', async () => {
    await ctl(rootCert, ['user', 'add', 'root:rootpw']);
    await ctl(rootCert, ['role', 'add', 'reader']);
    await ctl(rootCert, ['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']);
    await ctl(rootCert, ['user', 'add', 'alice:alicepw']);
    await ctl(rootCert, ['user', 'grant-role', 'alice', 'reader']);
    await ctl(rootCert, ['put', 'app/x', '1']);
    assert.match(await ctl(rootCert, ['auth', 'enable']), /Authentication Enabled/);

    assert.equal((await ctl(rootCert, ['put', 'other', 'by-cert'])).trim(), 'OK');
    assert.match(await ctl(rootCert, ['user', 'list']), /alice/);
    assert.equal(await ctl(aliceCert, ['get', 'app/x', '--print-value-only']), '1\n');
    assert.match(await fails(aliceCert, ['put', 'app/x', '2']), /etcdserver: permission denied/);
    assert.match(await fails(aliceCert, ['get', 'other']), /etcdserver: permission denied/);
    // CN "client" names no user.
    assert.match(await fails(certs.client, ['get', 'app/x']), /etcdserver: permission denied/);
    // A token takes precedence over the certificate.
    assert.equal((await ctl(aliceCert, ['put', 'app/x', '3'], 'root:rootpw')).trim(), 'OK');
  });
});
