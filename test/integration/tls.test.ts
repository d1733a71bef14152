// TLS on the client and peer links (etcd's --cert-file/--peer-cert-file flags, mTLS,
// --peer-cert-allowed-cn, --auto-tls), and the peer sender check: a Raft message from a
// sender that is not a member is dropped, never stepped (with or without TLS).

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { type MembersResponse, RaftPeerClient, type SnapshotAck, type StreamAck } from '../../src/gen/raftkv/peer.js';
import { MessageType, newMessage } from '../../src/raft/index.js';
import { messageToPb } from '../../src/transport/codec.js';
import { type TestCerts, hasOpenssl, makeTestCerts } from '../support/certs.js';
import { TestClient } from '../support/client.js';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';

const run = promisify(execFile);
const BIN = resolve('dist/src/cli/raftkv.js');

const etcdctlAvailable = spawnSync('etcdctl', ['version']).status === 0;
const opensslAvailable = hasOpenssl();
if (process.env.CI && (!etcdctlAvailable || !opensslAvailable)) throw new Error('etcdctl and openssl are required in CI');

const FORGED = 0xdeadbeefn;

/** A gRPC call to a member's peer service, as a peer (or an impostor) would make it. */
function peerClient(c: ProcCluster, i: number, creds = grpc.credentials.createInsecure()): InstanceType<typeof RaftPeerClient> {
  return new RaftPeerClient(`127.0.0.1:${c.members[i]!.peerPort}`, creds);
}

function members(client: InstanceType<typeof RaftPeerClient>): Promise<MembersResponse> {
  return new Promise((res, rej) => client.members({}, new grpc.Metadata(), { deadline: Date.now() + 3000 }, (e, r) => (e ? rej(e) : res(r!))));
}

const peerMetadata = (clusterId: bigint, from: bigint): grpc.Metadata => {
  const md = new grpc.Metadata();
  md.set('raftkv-cluster-id', clusterId.toString(16));
  md.set('raftkv-from', from.toString(16));
  return md;
};

async function terms(c: ProcCluster): Promise<number[]> {
  return Promise.all(c.members.map(async (_, i) => Number((await c.client(i).status()).header!.raftTerm)));
}

describe('peer sender check (plaintext)', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('a forged MsgHeartbeat with a high term from a non-member is dropped; the term does not move', async () => {
    const leader = await c.waitForLeader();
    const st = await c.client(leader).status();
    const leaderId = st.header!.memberId;
    const term = Number(st.header!.raftTerm);
    const pc = peerClient(c, leader);
    // The attacker asks for the cluster id first (Members answers any peer that passes TLS).
    const info = await members(pc);
    assert.equal(info.members.length, 3);
    const forge = (mdFrom: bigint, msgFrom: bigint): Promise<void> =>
      new Promise((res) => {
        const s = pc.stream(peerMetadata(info.clusterId, mdFrom), (_e: grpc.ServiceError | null, _a?: StreamAck) => res());
        s.on('error', () => {});
        const hb = newMessage(MessageType.MsgHeartbeat, { to: leaderId, from: msgFrom, term: term + 100, commit: 0 });
        s.write({ messages: [messageToPb(hb)] });
        setTimeout(() => s.end(), 300);
      });
    // From an id that is not a member; and from a member's id on a stream opened as someone else.
    await forge(FORGED, FORGED);
    await forge(FORGED, info.members.find((m) => m.id !== leaderId)!.id);
    // Malformed ids in the metadata are refused, and the member goes on.
    await new Promise<void>((res) => {
      const md = new grpc.Metadata();
      md.set('raftkv-cluster-id', 'not-hex');
      md.set('raftkv-from', 'zz');
      const s = pc.stream(md, (e: grpc.ServiceError | null) => {
        assert.equal(e?.code, grpc.status.FAILED_PRECONDITION);
        res();
      });
      s.on('error', () => {});
    });
    // A forged MsgSnap from a non-member: refused, never stepped.
    const ack = await new Promise<SnapshotAck | undefined>((res) => {
      const call = pc.installSnapshot(peerMetadata(info.clusterId, FORGED), (e: grpc.ServiceError | null, a?: SnapshotAck) => res(e ? undefined : a));
      call.on('error', () => {});
      const snap = newMessage(MessageType.MsgSnap, {
        to: leaderId,
        from: FORGED,
        term: term + 200,
        snapshot: { data: new Uint8Array(0), metadata: { index: 1_000_000, term: term + 200, confState: { voters: [FORGED], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false } } },
      });
      const data = Buffer.from('x');
      call.write({ message: messageToPb(snap), offset: 0n, data, last: true, crc32: crc32(data), totalSize: 1n });
      call.end();
    });
    assert.equal(ack?.ok ?? false, false);
    await sleep(1500);
    pc.close();
    const now = await terms(c);
    assert.ok(now.every((t) => t === term), `terms moved: ${term} -> ${now.join(',')}\n${c.logs()}`);
    assert.equal(await c.waitForLeader(), leader);
    const log = c.members[leader]!.log.join('');
    assert.match(log, /dropped a message \(type MsgHeartbeat, term \d+\) from deadbeef, which is not a member/);
    assert.match(log, /claims to be from/);
    // Nor counted: a forged sender adds no metric series (they are keyed by the sender, for good).
    const metrics = await (await fetch(`http://127.0.0.1:${c.members[leader]!.clientPort}/metrics`)).text();
    assert.match(metrics, /etcd_network_peer_received_bytes_total\{From="[0-9a-f]+"\}/);
    assert.doesNotMatch(metrics, /From="deadbeef"/);
    // The cluster goes on.
    await c.client(leader).put('after-forgery', 'ok');
    assert.equal(await c.client((leader + 1) % 3).get('after-forgery'), 'ok');
  });
});

describe('flags', () => {
  const flagRun = (args: string[]) => spawnSync(process.execPath, [BIN, '--name', 'x', '--data-dir', '/nonexistent/never', ...args], { encoding: 'utf8' });
  it('an https URL needs a key/cert pair (or auto TLS), as etcd', () => {
    // Exit code 1, as etcd's (a check after its flags are parsed).
    let r = flagRun(['--listen-client-urls', 'https://127.0.0.1:1', '--advertise-client-urls', 'https://127.0.0.1:1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /TLS key\/cert \(--cert-file, --key-file\) must be provided for client url https:\/\/127\.0\.0\.1:1 with HTTPS scheme/);
    r = flagRun(['--listen-peer-urls', 'https://127.0.0.1:2', '--initial-advertise-peer-urls', 'https://127.0.0.1:2']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /TLS key\/cert \(--peer-cert-file, --peer-key-file\) must be provided for peer url https:\/\/127\.0\.0\.1:2 with HTTPS scheme/);
    r = flagRun(['--cert-file', 'a.pem']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /KeyFile and CertFile must both be present/);
    r = flagRun(['--client-cert-auth', 'maybe']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /invalid boolean value "maybe" for flag --client-cert-auth/);
  });
});

describe('a 3-member cluster with client and peer mTLS', { skip: etcdctlAvailable && opensslAvailable ? false : 'etcdctl or openssl not installed' }, () => {
  let c: ProcCluster;
  let certs: TestCerts;
  let creds: grpc.ChannelCredentials;
  const env = { ...process.env, ETCDCTL_API: '3' };
  const endpoints = (): string => c.members.map((m) => `https://127.0.0.1:${m.clientPort}`).join(',');
  const ctl = async (args: string[], tls: string[] = [`--cacert=${certs.ca.cert}`, `--cert=${certs.client.cert}`, `--key=${certs.client.key}`], eps = endpoints()): Promise<string> =>
    (await run('etcdctl', [`--endpoints=${eps}`, '--command-timeout=10s', '--dial-timeout=3s', ...tls, ...args], { env })).stdout;
  const ctlFails = async (args: string[], tls: string[], eps?: string): Promise<string> => {
    try {
      await ctl(['--command-timeout=3s', ...args], tls, eps);
    } catch (e) {
      return String((e as { stderr?: string }).stderr ?? e);
    }
    assert.fail(`etcdctl ${args.join(' ')} with ${tls.join(' ')} succeeded`);
  };

  before(async () => {
    certs = makeTestCerts();
    const pem = (f: string) => readFileSync(f);
    creds = grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert));
    c = await ProcCluster.start({
      size: 3,
      scheme: 'https',
      clientCredentials: creds,
      snapshotCount: 60,
      extraArgs: [
        '--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--client-cert-auth',
        '--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key, '--peer-trusted-ca-file', certs.ca.cert,
        '--peer-client-cert-auth', '--peer-cert-allowed-cn', 'member', '--snapshot-catchup-entries', '10',
        '--experimental-corrupt-check-time', '1s',
      ],
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('etcdctl with --cacert/--cert/--key: put, get, member list, endpoint status', async () => {
    assert.equal((await ctl(['put', 'foo', 'bar'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'foo']), 'foo\nbar\n');
    const list = await ctl(['member', 'list']);
    assert.equal(list.trim().split('\n').length, 3);
    assert.match(list, /started, m1, https:\/\/127\.0\.0\.1:\d+, https:\/\/127\.0\.0\.1:\d+, false/);
    const status = JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { leader: string } }>;
    assert.equal(status.length, 3);
    assert.equal(new Set(status.map((s) => String(s.Status.leader))).size, 1);
    const health = JSON.parse(await ctl(['endpoint', 'health', '-w', 'json'])) as Array<{ health: boolean }>;
    assert.deepEqual(health.map((h) => h.health), [true, true, true]);
  });

  it("the leader's corruption check asks its peers for HashKV over TLS", async () => {
    const leader = await c.waitForLeader();
    await eventually(async () => {
      assert.match(c.members[leader]!.log.join(''), /finished peer corruption check: number-of-peers-checked=2/);
    }, 15_000, 250);
    assert.doesNotMatch(c.logs(), /failed hash kv request/);
  });

  it('requests only the leader answers are forwarded to it over TLS', async () => {
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const ep = `https://127.0.0.1:${c.members[follower]!.clientPort}`;
    const id = /lease ([0-9a-f]+) granted/.exec(await ctl(['lease', 'grant', '60'], undefined, ep))![1]!;
    assert.match(await ctl(['lease', 'timetolive', id], undefined, ep), new RegExp(`lease ${id} granted with TTL\\(60s\\)`));
  });

  it('a certificate from another CA is refused on the client port', async () => {
    const err = await ctlFails(['get', 'foo'], [`--cacert=${certs.ca.cert}`, `--cert=${certs.otherServer.cert}`, `--key=${certs.otherServer.key}`]);
    assert.match(err, /deadline exceeded|certificate|handshake|Unavailable|unavailable/i);
    // And a server certificate from another CA is refused by the client.
    const err2 = await ctlFails(['get', 'foo'], [`--cacert=${certs.otherCa.cert}`, `--cert=${certs.client.cert}`, `--key=${certs.client.key}`]);
    assert.match(err2, /deadline exceeded|certificate|authority|Unavailable|unavailable/i);
  });

  it('a client without a certificate is refused under --client-cert-auth', async () => {
    const err = await ctlFails(['get', 'foo'], [`--cacert=${certs.ca.cert}`]);
    assert.match(err, /deadline exceeded|certificate|handshake|Unavailable|unavailable/i);
    const noCert = new TestClient(`127.0.0.1:${c.members[0]!.clientPort}`, 3000, grpc.credentials.createSsl(readFileSync(certs.ca.cert)));
    await assert.rejects(noCert.status(), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED);
    noCert.close();
  });

  it('a plaintext client on a TLS port is refused, and the member goes on serving', async () => {
    const plain = new TestClient(`127.0.0.1:${c.members[0]!.clientPort}`, 3000);
    await assert.rejects(plain.status(), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED);
    plain.close();
    // Raw garbage on the TLS port too.
    await new Promise<void>((res) => {
      const s = connect(c.members[0]!.clientPort, '127.0.0.1', () => s.end('GET / HTTP/1.1\r\n\r\n\x00\x01\x02garbage'));
      s.on('close', () => res());
      s.on('error', () => res());
    });
    assert.ok(c.isUp(0));
    await c.client(0).put('still', 'serving');
    assert.equal(await c.client(0).get('still'), 'serving');
  });

  it('the peer port refuses plaintext, another CA, and a certificate with another CN', async () => {
    const pem = (f: string) => readFileSync(f);
    const ok = peerClient(c, 0, grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.server.key), pem(certs.server.cert)));
    assert.equal((await members(ok)).members.length, 3);
    ok.close();
    const cases: Array<[string, grpc.ChannelCredentials, number[]]> = [
      ['plaintext', grpc.credentials.createInsecure(), [grpc.status.UNAVAILABLE]],
      ['another CA', grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.otherServer.key), pem(certs.otherServer.cert)), [grpc.status.UNAVAILABLE]],
      ['no client certificate', grpc.credentials.createSsl(pem(certs.ca.cert)), [grpc.status.UNAVAILABLE]],
      // etcd refuses it in the handshake; raftkv closes the connection right after it.
      ['CN "client", not the allowed "member"', grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)), [grpc.status.UNAVAILABLE]],
    ];
    for (const [what, cr, codes] of cases) {
      const pc = peerClient(c, 0, cr);
      await assert.rejects(members(pc), (e: grpc.ServiceError) => codes.includes(e.code), what);
      pc.close();
    }
    await eventually(async () => assert.match(c.members[0]!.log.join(''), /"msg":"rejected connection".*"error":"client certificate authentication failed"/));
    assert.ok(c.isUp(0));
  });

  it('a member added later joins over TLS and catches up by a snapshot over the secure link', async () => {
    for (let k = 0; k < 150; k++) await c.client(0).put(`k${k}`, `v${k}`);
    const i = await c.addMember();
    await eventually(() => c.client(0).memberAdd([c.peerUrl(i)]), 20_000);
    c.startMember(i);
    await eventually(async () => {
      assert.equal(await c.client(i).get('k149', true), 'v149');
    }, 30_000, 200);
    assert.match(c.logs() + c.members.map((m) => m.log.join('')).join(''), /transport: snapshot \[index \d+\] to [0-9a-f]+ sent/);
    assert.equal((await ctl(['member', 'list'])).trim().split('\n').length, 4);
  });
});

describe('a trusted CA file without --client-cert-auth', { skip: opensslAvailable ? false : 'openssl not installed' }, () => {
  // etcd's TLSInfo.ServerConfig requires and verifies a client certificate whenever a trusted CA
  // file is given, with or without --client-cert-auth (which adds the CN as the user). raftkv
  // asked for no certificate at all here.
  let c: ProcCluster;
  let certs: TestCerts;
  before(async () => {
    certs = makeTestCerts();
    const pem = (f: string) => readFileSync(f);
    c = await ProcCluster.start({
      size: 1,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
      extraArgs: ['--cert-file', certs.server.cert, '--key-file', certs.server.key, '--trusted-ca-file', certs.ca.cert, '--peer-cert-file', certs.server.cert, '--peer-key-file', certs.server.key],
    });
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('refuses a client without a certificate, serves one with a certificate of the CA', async () => {
    const noCert = new TestClient(c.endpoint(0), 3000, grpc.credentials.createSsl(readFileSync(certs.ca.cert)));
    await assert.rejects(noCert.status(), (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED);
    noCert.close();
    await assert.rejects(run('curl', ['-sf', '--max-time', '5', '--cacert', certs.ca.cert, `https://${c.endpoint(0)}/version`]));
    const { stdout } = await run('curl', ['-sf', '--max-time', '5', '--cacert', certs.ca.cert, '--cert', certs.client.cert, '--key', certs.client.key, `https://${c.endpoint(0)}/version`]);
    assert.match(stdout, /"etcdserver"/);
    assert.ok((await c.client(0).status()).header);
  });
});

describe('auto TLS (--auto-tls, --peer-auto-tls)', { skip: etcdctlAvailable ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({
      size: 3,
      scheme: 'https',
      clientCredentials: grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false, checkServerIdentity: () => undefined }),
      extraArgs: ['--auto-tls', '--peer-auto-tls'],
    });
  });
  after(async () => {
    await c?.destroy();
  });

  it('members make self-signed certificates at start; etcdctl talks TLS with --insecure-transport=false --insecure-skip-tls-verify', async () => {
    const eps = c.members.map((m) => `https://127.0.0.1:${m.clientPort}`).join(',');
    const ctl = async (args: string[]) =>
      (await run('etcdctl', [`--endpoints=${eps}`, '--insecure-transport=false', '--insecure-skip-tls-verify', '--command-timeout=10s', ...args], { env: { ...process.env, ETCDCTL_API: '3' } })).stdout;
    assert.equal((await ctl(['put', 'a', 'b'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'a', '--print-value-only']), 'b\n');
    const pemText = readFileSync(`${c.members[0]!.dataDir}/fixtures/client/cert.pem`, 'utf8');
    assert.match(pemText, /BEGIN CERTIFICATE/);
    readFileSync(`${c.members[0]!.dataDir}/fixtures/peer/key.pem`);
    const plain = new TestClient(`127.0.0.1:${c.members[1]!.clientPort}`, 3000);
    await assert.rejects(plain.status());
    plain.close();
  });
});
