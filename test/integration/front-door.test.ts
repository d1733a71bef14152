// The client port as etcd's: gRPC and HTTP/1.1 on one listener (plaintext and TLS), any
// `:authority` accepted (etcdctl's `--cluster` commands, etcd's Go client 3.5.0's
// `#initially=[...]`), /version, /health, /livez, /readyz, /metrics, and a client stack that is
// not grpc-js (Python's etcd3, on grpcio).

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { connect as h2connect, constants as h2 } from 'node:http2';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { KVClient, type RangeResponse } from '../../src/gen/etcd/rpc.js';
import { RangeRequest } from '../../src/gen/etcd/rpc.js';
import { type TestCerts, etcdctlTlsArgs, hasOpenssl, makeTestCerts, memberTlsArgs } from '../support/certs.js';
import { etcdctlAvailable, etcdctlEnv } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const pythonEtcd3 = spawnSync(PYTHON, ['-c', 'import etcd3']).status === 0;
const curlAvailable = spawnSync('curl', ['--version']).status === 0;
if (process.env.CI && (!pythonEtcd3 || !curlAvailable || !etcdctlAvailable)) {
  throw new Error('python3-etcd3, curl and etcdctl are required in CI (.ci/run installs them)');
}

/** What `curl` gets: status, headers (lower-case names) and body. */
async function curl(url: string, args: string[] = []): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const { stdout } = await run('curl', ['-s', '-i', '--max-time', '10', ...args, url]);
  const [head, ...rest] = stdout.split('\r\n\r\n');
  const lines = head!.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

/** A Range over grpc-js with a chosen `:authority`. */
function rangeWithAuthority(endpoint: string, authority: string, key: string, creds = grpc.credentials.createInsecure()): Promise<RangeResponse> {
  const client = new KVClient(endpoint, creds, { 'grpc.default_authority': authority });
  return new Promise<RangeResponse>((res, rej) =>
    client.range({ ...RangeRequest.fromPartial({ key: Buffer.from(key) }) }, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (e, r) => (e ? rej(e) : res(r!))),
  ).finally(() => client.close());
}

/**
 * A gRPC Range as raw HTTP/2 from Node's own client (a second HTTP/2 stack next to grpc-js),
 * with `:authority` as given: the gRPC status and the response bytes.
 */
function rawGrpcRange(port: number, authority: string, key: string): Promise<{ grpcStatus: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(`http://127.0.0.1:${port}`);
    session.on('error', reject);
    const msg = Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from(key) })).finish());
    const frame = Buffer.alloc(5 + msg.length);
    frame.writeUInt32BE(msg.length, 1);
    msg.copy(frame, 5);
    const req = session.request({
      [h2.HTTP2_HEADER_METHOD]: 'POST',
      [h2.HTTP2_HEADER_PATH]: '/etcdserverpb.KV/Range',
      [h2.HTTP2_HEADER_AUTHORITY]: authority,
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    req.on('response', (h) => (grpcStatus = h['grpc-status'] as string | undefined));
    req.on('trailers', (t) => (grpcStatus = t['grpc-status'] as string | undefined));
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', (e) => {
      session.close();
      reject(e);
    });
    req.on('end', () => {
      session.close();
      resolve({ grpcStatus, body: Buffer.concat(chunks) });
    });
    req.end(frame);
  });
}

describe('client port: gRPC and HTTP/1.1 side by side (plaintext)', { skip: !etcdctlAvailable || !curlAvailable }, () => {
  let c: ProcCluster;
  let url0: string;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
    url0 = `http://${c.endpoint(0)}`;
    await c.client(0).put('door', 'open');
  });
  after(async () => c?.destroy());

  it("etcdctl's --cluster commands work (they send `http://host:port` as :authority)", async () => {
    const env = etcdctlEnv;
    const status = await run('etcdctl', ['--endpoints', c.endpoint(0), 'endpoint', 'status', '--cluster', '-w', 'json'], { env });
    const rows = JSON.parse(status.stdout) as Array<{ Endpoint: string; Status: { header: { member_id: number } } }>;
    assert.equal(rows.length, 3);
    const hash = await run('etcdctl', ['--endpoints', c.endpoint(0), 'endpoint', 'hashkv', '--cluster', '-w', 'json'], { env });
    const hashes = (JSON.parse(hash.stdout) as Array<{ HashKV: { hash: number } }>).map((r) => r.HashKV.hash);
    assert.equal(hashes.length, 3);
    assert.equal(new Set(hashes).size, 1, 'every member has the same HashKV');
    const defrag = await run('etcdctl', ['--endpoints', c.endpoint(0), 'defrag', '--cluster'], { env });
    assert.equal(defrag.stdout.match(/Finished defragmenting/g)?.length, 3, defrag.stdout);
  });

  it('accepts any :authority form on HTTP/2 (grpc-js and Node http2 clients)', async () => {
    const forms = [c.endpoint(0), `http://${c.endpoint(0)}`, `#initially=[http://${c.endpoint(0)}]`, `#initially=[http://${c.endpoint(0)};http://${c.endpoint(1)}]`, 'a b/c?d'];
    for (const authority of forms) {
      const r = await rangeWithAuthority(c.endpoint(0), authority, 'door');
      assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'open', `grpc-js with :authority ${authority}`);
      const raw = await rawGrpcRange(c.members[0]!.clientPort, authority, 'door');
      assert.equal(raw.grpcStatus, '0', `node:http2 with :authority ${authority}`);
      assert.ok(raw.body.includes(Buffer.from('open')), `node:http2 with :authority ${authority}`);
    }
  });

  it('serves /version, /health, /livez, /readyz and /metrics as etcd, with its CORS headers', async () => {
    const v = await curl(`${url0}/version`);
    assert.equal(v.status, 200);
    assert.deepEqual(JSON.parse(v.body), { etcdserver: '3.4.0', etcdcluster: '3.4.0' });
    assert.equal(v.headers['access-control-allow-origin'], '*');
    // No idle timeout announced (or applied): Go's server keeps idle connections open.
    assert.equal(v.headers['keep-alive'], undefined);
    for (const path of ['/health', '/health?serializable=true']) {
      const h = await curl(`${url0}${path}`);
      assert.equal(h.status, 200, path);
      assert.deepEqual(JSON.parse(h.body), { health: 'true' }, path);
    }
    // etcd's allowMethod: 405 naming the method in Allow, written by Go's http.Error.
    for (const path of ['/health', '/version', '/debug/vars']) {
      const r = await curl(`${url0}${path}`, ['-X', 'POST']);
      assert.deepEqual([r.status, r.headers.allow, r.headers['x-content-type-options'], r.body], [405, 'GET', 'nosniff', 'Method Not Allowed\n'], path);
    }
    const logLevel = await curl(`${url0}/config/local/log`);
    assert.deepEqual([logLevel.status, logLevel.headers.allow], [405, 'PUT']);
    // etcd 3.4's PUT /config/local/log sets the level (capnslog's names), logged before it is set:
    // at ERROR, the next change's line is not written; the one after it is.
    const setLevel = (body: string) => curl(`${url0}/config/local/log`, ['-X', 'PUT', '--data-binary', body]);
    const logged = (level: string) => c.members[0]!.log.join('').includes(`globalLogLevel set to \\"${level}\\"`);
    assert.deepEqual(
      [(await setLevel('{"Level":"x"}')).body, (await setLevel('[1]')).body, (await setLevel('null')).body],
      ['{"message":"Invalid log level x"}', '{"message":"Invalid json body"}', '{"message":"Invalid log level "}'],
    );
    assert.equal((await setLevel('{"Level":"error"}')).status, 204);
    await eventually(async () => assert.ok(logged('ERROR')));
    assert.equal((await setLevel('{"level":"DEBUG"}')).status, 204);
    assert.equal((await setLevel('{"Level":"I"}')).status, 204);
    await eventually(async () => assert.ok(logged('INFO')));
    assert.equal(logged('DEBUG'), false);
    // Go's ServeMux: unclean paths and a subtree's bare root are redirected.
    // Decoded first, escaped as Go escapes a path (no `/\\host` for a browser to follow).
    const moves = [['//version', '/version'], ['/v3/kv/../kv/range', '/v3/kv/range'], ['/v3', '/v3/'], ['/a/./b/', '/a/b/'], ['/%2e%2e/version', '/version'], ['/./\\evil.com', '/%5Cevil.com']];
    for (const [path, to] of moves) {
      const r = await curl(`${url0}${path}`, ['--path-as-is']);
      assert.deepEqual([r.status, r.headers.location], [301, to], path);
    }
    // etcd answers OPTIONS before its mux; /v3beta/ is rewritten before it, so the bare /v3beta is not a subtree.
    assert.equal((await curl(`${url0}//version`, ['--path-as-is', '-X', 'OPTIONS'])).status, 200);
    assert.equal((await curl(`${url0}/v3beta`)).status, 404);
    const live = await curl(`${url0}/livez`);
    assert.deepEqual([live.status, live.body], [200, 'ok\n']);
    const ready = await curl(`${url0}/readyz?verbose`);
    assert.equal(ready.status, 200);
    assert.match(ready.body, /\[\+\]linearizable_read ok\n/);
    const m = await curl(`${url0}/metrics`);
    assert.equal(m.status, 200);
    assert.match(m.body, /^etcd_server_has_leader 1$/m);
    const missing = await curl(`${url0}/no/such/path`);
    assert.deepEqual([missing.status, missing.body], [404, '404 page not found\n']);
  });

  it('HTTP/1.1 keep-alive and gRPC calls interleave on the same port', async () => {
    const agent = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? curl(`${url0}/version`).then((r) => r.status) : rangeWithAuthority(c.endpoint(0), c.endpoint(0), 'door').then((r) => (r.kvs.length === 1 ? 200 : 0)))));
    assert.deepEqual(agent, Array(20).fill(200));
  });

  it('a rewritten connection stays correct over many requests (HPACK table eviction)', async () => {
    // Every call carries a different grpc-timeout, so the client's HPACK table fills and evicts.
    const client = new KVClient(c.endpoint(0), grpc.credentials.createInsecure(), { 'grpc.default_authority': `#initially=[http://${c.endpoint(0)}]` });
    for (let i = 0; i < 200; i++) {
      const r = await new Promise<RangeResponse>((res, rej) =>
        client.range(RangeRequest.fromPartial({ key: Buffer.from('door') }), new grpc.Metadata({}), { deadline: Date.now() + 5000 + i }, (e, x) => (e ? rej(e) : res(x!))),
      );
      assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'open', `call ${i}`);
    }
    client.close();
  });

  it('hostile bytes get an error or a closed connection, never a crash', async () => {
    const port = c.members[0]!.clientPort;
    // A request target Node's parser accepts but URL parsing does not.
    const raw = (bytes: Buffer | string) =>
      new Promise<string>((resolve) => {
        const sock = connect(port, '127.0.0.1');
        let got = '';
        sock.on('data', (d) => (got += d.toString('latin1')));
        sock.on('close', () => resolve(got));
        sock.on('error', () => resolve(got));
        sock.write(bytes);
        setTimeout(() => sock.end(), 500);
      });
    assert.match(await raw('GET http://a:99999/ HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 400/);
    // A path to Go (not a host), sent to its clean form.
    assert.match(await raw('GET //[ HTTP/1.1\r\nHost: x\r\n\r\n'), /^HTTP\/1\.1 301 .*\r\nLocation: \/%5B\r\n/s);
    // HTTP/2: a DATA frame declaring 16 MiB - 1 after the preface, and a CONTINUATION flood.
    const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
    const frameHead = (len: number, type: number, flags: number, stream: number) => {
      const h = Buffer.alloc(9);
      h.writeUIntBE(len, 0, 3);
      h[3] = type;
      h[4] = flags;
      h.writeUInt32BE(stream, 5);
      return h;
    };
    await raw(Buffer.concat([preface, frameHead(0, 4, 0, 0), frameHead(16 * 1024 * 1024 - 1, 0, 0, 1), Buffer.alloc(4096)]));
    const flood = [preface, frameHead(0, 4, 0, 0), frameHead(1, 1, 0, 1), Buffer.from([0x82])];
    for (let i = 0; i < 40; i++) flood.push(frameHead(16_384, 9, 0, 1), Buffer.alloc(16_384, 0x82));
    await raw(Buffer.concat(flood));
    // The member still serves.
    const r = await rangeWithAuthority(c.endpoint(0), c.endpoint(0), 'door');
    assert.equal(r.kvs.length, 1);
    assert.ok(c.isUp(0));
  });

  it("Python's etcd3 client (grpcio, not grpc-js) puts and gets", { skip: !pythonEtcd3 }, async () => {
    const [host, port] = c.endpoint(1).split(':');
    const script = `
import etcd3
c = etcd3.client(host='${host}', port=${port})
c.put('py-key', 'from python')
v, meta = c.get('py-key')
print(v.decode(), meta.mod_revision > 0)
v, _ = c.get('door')
print(v.decode())
`;
    const { stdout } = await run(PYTHON, ['-c', script]);
    assert.equal(stdout, 'from python True\nopen\n');
    assert.equal(await c.client(0).get('py-key'), 'from python');
  });

  it('/health answers false without a quorum', async () => {
    await c.kill(1);
    await c.kill(2);
    const h = await curl(`${url0}/health`);
    // etcd 3.4's answer, as its http.Error writes it (3.5 added a reason).
    assert.deepEqual([h.status, h.body, h.headers['x-content-type-options']], [503, '{"health":"false"}\n', 'nosniff']);
    const ready = await curl(`${url0}/readyz`);
    assert.equal(ready.status, 503);
    const live = await curl(`${url0}/livez`);
    assert.equal(live.status, 200);
  });
});

describe('client port over TLS: h2 and http/1.1 by ALPN', { skip: !etcdctlAvailable || !curlAvailable || !hasOpenssl() }, () => {
  let c: ProcCluster;
  let certs: TestCerts;
  before(async () => {
    certs = makeTestCerts();
    const creds = grpc.credentials.createSsl(readFileSync(certs.ca.cert), readFileSync(certs.client.key), readFileSync(certs.client.cert));
    c = await ProcCluster.start({ size: 3, scheme: 'https', extraArgs: memberTlsArgs(certs), clientCredentials: creds });
    await c.client(0).put('door', 'locked');
  });
  after(async () => {
    await c?.destroy();
    certs?.cleanup();
  });

  it('etcdctl --cluster over https, curl over https with a client certificate, and none without', async () => {
    const status = await run('etcdctl', ['--endpoints', `https://${c.endpoint(0)}`, ...etcdctlTlsArgs(certs), 'endpoint', 'status', '--cluster', '-w', 'json'], { env: etcdctlEnv });
    assert.equal((JSON.parse(status.stdout) as unknown[]).length, 3);
    const tls = ['--cacert', certs.ca.cert, '--cert', certs.client.cert, '--key', certs.client.key];
    const h = await curl(`https://${c.endpoint(0)}/health`, tls);
    assert.deepEqual([h.status, JSON.parse(h.body)], [200, { health: 'true' }]);
    // curl offers h2 and http/1.1 by ALPN (also with --http2): it gets HTTP/1.1, gRPC clients h2.
    const v = await curl(`https://${c.endpoint(0)}/version`, [...tls, '--http2']);
    assert.equal(v.status, 200);
    const r = await rangeWithAuthority(c.endpoint(0), `https://${c.endpoint(0)}`, 'door', c.opts.clientCredentials);
    assert.equal(Buffer.from(r.kvs[0]!.value).toString(), 'locked');
    // Client cert auth: a client without a certificate does not get through the handshake.
    await assert.rejects(run('curl', ['-s', '--max-time', '10', '--cacert', certs.ca.cert, `https://${c.endpoint(0)}/version`]));
  });
});
