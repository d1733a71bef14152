// etcd's JSON gateway (src/api/gateway/): routes, jsonpb encoding, streams, errors and auth, as
// etcd 3.4.23 answers them. The expected bodies below are what etcd 3.4.23 answered to the
// same requests with curl (ids, revisions, terms and tokens masked as "*").
//
// The gateway is served as raftkv serves it: behind the client port's front door (gRPC and
// HTTP/1.1 on one listener, src/api/front-door.ts, with src/api/http-endpoints.ts), in front of
// an in-process member whose manual clock a timer moves on (time only makes the member elect
// itself and keep leading; nothing here asserts how long anything takes).

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { clientServices, createClientServer } from '../../src/api/client-server.js';
import { ClientFrontDoor } from '../../src/api/front-door.js';
import { httpEndpoints } from '../../src/api/http-endpoints.js';
import { authOf } from '../../src/auth/frontend.js';
import { createGateway } from '../../src/api/gateway/index.js';
import { decodeGoBase64 } from '../../src/api/gateway/go-base64.js';
import { unmarshal } from '../../src/api/gateway/go-json.js';
import { decodeMessage, emptyMessage, encodeMessage, goString } from '../../src/api/gateway/jsonpb.js';
import { type MessageSchema, apiSchema, tsProtoName } from '../../src/api/gateway/schema.js';
import { describeApi, loadEtcdProtos } from '../../src/api/gateway/schema-description.js';
import { API_DESCRIPTION } from '../../src/gen/etcd/api-schema.js';
import * as auth from '../../src/gen/etcd/auth.js';
import * as kv from '../../src/gen/etcd/kv.js';
import * as rpc from '../../src/gen/etcd/rpc.js';
import * as v3election from '../../src/gen/etcd/v3election.js';
import * as v3lock from '../../src/gen/etcd/v3lock.js';
import { hasOpenssl, makeTestCerts } from '../support/certs.js';
import { etcdctlAvailable, etcdctlEnv } from '../support/etcdctl.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster } from '../support/proc-cluster.js';
import { type InProcCluster, InProcCluster as Cluster } from '../support/inproc-cluster.js';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';
const curlAvailable = spawnSync('curl', ['--version']).status === 0;
const etcd3gwAvailable = spawnSync(PYTHON, ['-c', 'import etcd3gw']).status === 0;
if (process.env.CI && (!curlAvailable || !etcd3gwAvailable)) throw new Error('curl and python3-etcd3gw are required in CI');

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** `curl -i`: status, headers (lower-case names; trailers too) and body. */
async function curl(url: string, args: string[] = []): Promise<Reply> {
  const { stdout } = await run('curl', ['-s', '-i', '--max-time', '20', ...args, url], { maxBuffer: 64 * 1024 * 1024 });
  let text = stdout;
  // A "100 Continue" before the answer (large bodies).
  while (text.startsWith('HTTP/1.1 100')) text = text.slice(text.indexOf('\r\n\r\n') + 4);
  const cut = text.indexOf('\r\n\r\n');
  const lines = text.slice(0, cut).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = text.slice(cut + 4);
  // curl prints HTTP trailers after the body.
  const trailer = /Grpc-Trailer-Content-Type: (\S+)\r\n$/.exec(body);
  if (trailer) {
    headers['grpc-trailer-content-type'] = trailer[1]!;
    body = body.slice(0, trailer.index);
  }
  return { status: Number(lines[0]!.split(' ')[1]), headers, body };
}

const MASKED = new Set(['cluster_id', 'member_id', 'revision', 'raft_term', 'create_revision', 'mod_revision', 'ID', 'token', 'leader', 'raftIndex', 'raftTerm', 'raftAppliedIndex', 'dbSize', 'dbSizeInUse', 'TTL', 'hash', 'peerURLs', 'clientURLs', 'name']);

/** A JSON text with ids, revisions and the like replaced by "*" (key order kept). */
function masked(json: string): string {
  return JSON.stringify(JSON.parse(json), (k, v) => (MASKED.has(k) && (typeof v === 'string' || typeof v === 'number' || Array.isArray(v)) ? '*' : v));
}

interface MessageFns {
  fromPartial(o: object): Record<string, unknown>;
  toJSON(o: object): unknown;
}

const fns = (x: unknown): MessageFns => x as MessageFns;

/**
 * The first `n` lines of a streamed answer (then the connection is dropped); `afterFirst` runs
 * once the first line is in.
 */
function streamLines(target: string, body: string, n: number, afterFirst?: () => Promise<void>, headers: Record<string, string> = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let buf = '';
    const req = httpRequest(target, { method: 'POST', headers }, (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          lines.push(buf.slice(0, i));
          buf = buf.slice(i + 1);
          if (lines.length === 1 && afterFirst) afterFirst().catch(reject);
          if (lines.length === n) {
            req.destroy();
            resolve(lines);
          }
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', (e) => (lines.length < n ? reject(e) : undefined));
    req.end(body);
  });
}

const b64 = (s: string): string => Buffer.from(s).toString('base64');

describe('JSON gateway', { skip: !curlAvailable && 'curl is not installed' }, () => {
  let c: InProcCluster;
  let door: ClientFrontDoor;
  let grpcServer: grpc.Server;
  let url: string;
  let ticker: NodeJS.Timeout;
  let tmp: string;
  let bodies = 0;
  /** A POST with `body` (from a file: large bodies do not fit on a command line). */
  const post = async (path: string, body: string, args: string[] = []): Promise<Reply> => {
    const file = join(tmp, `body-${bodies++}`);
    await writeFile(file, body);
    return curl(`${url}${path}`, ['-X', 'POST', '--data-binary', `@${file}`, ...args]);
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'raftkv-gateway-'));
    c = await Cluster.start({ size: 1, seed: 7, delivery: 'auto' });
    ticker = setInterval(() => c.clock.advance(c.heartbeatMs), 5);
    await c.waitForLeader();
    await c.waitIdle();
    const s = c.member('n1').server;
    // The member's client port as raftkv serves it: gRPC and HTTP/1.1 on one listener.
    const services = clientServices(s);
    grpcServer = createClientServer(s, services);
    door = new ClientFrontDoor(grpcServer, httpEndpoints(s, createGateway(s, services)));
    const [port] = await freePorts(1);
    url = `http://127.0.0.1:${await door.listen(`http://127.0.0.1:${port}`)}`;
  });

  after(async () => {
    clearInterval(ticker);
    door?.close();
    grpcServer?.forceShutdown();
    await c?.close();
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  // First, while the member is empty: etcd's Status of an empty database shows 20,480 and
  // 16,384 bytes, and a 0 would be left out of the JSON (python3-etcd3gw's status() reads it).
  it('shows a fresh member\'s dbSize and dbSizeInUse as an empty etcd database\'s', async () => {
    const st = JSON.parse((await post('/v3/maintenance/status', '{}')).body) as { dbSize?: string; dbSizeInUse?: string };
    assert.equal(st.dbSize, '20480');
    assert.equal(st.dbSizeInUse, '16384');
  });

  it('puts, ranges, deletes and runs a txn with etcd 3.4 shapes', async () => {
    let r = await post('/v3/kv/put', `{"key":"${b64('foo')}","value":"${b64('bar')}"}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/json');
    assert.equal(r.headers['grpc-metadata-content-type'], 'application/grpc');
    assert.equal(r.headers['access-control-allow-origin'], '*');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"}}');

    r = await post('/v3/kv/range', '{"key":"Zm9v"}');
    assert.equal(
      masked(r.body),
      '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"kvs":[{"key":"Zm9v","create_revision":"*","mod_revision":"*","version":"1","value":"YmFy"}],"count":"1"}',
    );
    // camelCase and snake_case both read; /v3beta/ is /v3/; unknown fields ignored.
    const camel = await post('/v3beta/kv/range', '{"key":"Zm9v","rangeEnd":"Zm9w","keysOnly":true,"bogus":1}');
    const snake = await post('/v3/kv/range', '{"key":"Zm9v","range_end":"Zm9w","keys_only":true}');
    assert.equal(camel.body, snake.body);
    assert.equal(masked(snake.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"kvs":[{"key":"Zm9v","create_revision":"*","mod_revision":"*","version":"1"}],"count":"1"}');
    // int64 as a number or a quoted number, enums by name or number.
    r = await post('/v3/kv/range', '{"key":"Zm9v","limit":"5","sort_order":"DESCEND"}');
    assert.equal(r.status, 200);
    r = await post('/v3/kv/range', '{"key":"Zm9v","limit":5,"sort_order":2}');
    assert.equal(r.status, 200);

    r = await post(
      '/v3/kv/txn',
      '{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_range":{"key":"Zm9v"}},{"requestPut":{"key":"Zm9v","value":"YmF6"}}]}',
    );
    assert.equal(r.status, 200);
    const txn = JSON.parse(r.body);
    assert.equal(txn.succeeded, true);
    assert.deepEqual(Object.keys(txn.responses[0]), ['response_range']);
    assert.deepEqual(Object.keys(txn.responses[1]), ['response_put']);
    assert.equal(txn.responses[0].response_range.kvs[0].value, 'YmFy');

    r = await post('/v3/kv/deleterange', '{"key":"Zm9v","prev_kv":true}');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"deleted":"1","prev_kvs":[{"key":"Zm9v","create_revision":"*","mod_revision":"*","version":"2","value":"YmF6"}]}');
  });

  it('shares the client port with gRPC (etcdctl sees what JSON wrote)', { skip: !etcdctlAvailable && 'etcdctl is not installed' }, async () => {
    await post('/v3/kv/put', `{"key":"${b64('both')}","value":"${b64('ways')}"}`);
    const { stdout } = await run('etcdctl', ['--endpoints', url.replace('http://', ''), 'get', 'both'], { env: etcdctlEnv });
    assert.equal(stdout, 'both\nways\n');
  });

  it('answers bad input as etcd 3.4 does', async () => {
    const cases: Array<[string, number, string]> = [
      ['{"key":"Zm9v', 400, '{"error":"unexpected EOF","message":"unexpected EOF","code":3}'],
      ['{"key":"Zm9v!!"}', 400, '{"error":"illegal base64 data at input byte 4","message":"illegal base64 data at input byte 4","code":3}'],
      ['{"key":"Zm9"}', 400, '{"error":"illegal base64 data at input byte 0","message":"illegal base64 data at input byte 0","code":3}'],
      ['{"key":"Zm9vYg"}', 400, '{"error":"illegal base64 data at input byte 4","message":"illegal base64 data at input byte 4","code":3}'],
      ['{"key":"Zm9v","limit":"abc"}', 400, '{"error":"invalid character \'a\' looking for beginning of value","message":"invalid character \'a\' looking for beginning of value","code":3}'],
      ['{"key":"Zm9v","limit":5.5}', 400, '{"error":"json: cannot unmarshal number 5.5 into Go value of type int64","message":"json: cannot unmarshal number 5.5 into Go value of type int64","code":3}'],
      [
        '{"key":"Zm9v","limit":"99999999999999999999"}',
        400,
        '{"error":"json: cannot unmarshal number 99999999999999999999 into Go value of type int64","message":"json: cannot unmarshal number 99999999999999999999 into Go value of type int64","code":3}',
      ],
      ['{"key":"Zm9v","serializable":"true"}', 400, '{"error":"json: cannot unmarshal string into Go value of type bool","message":"json: cannot unmarshal string into Go value of type bool","code":3}'],
      ['{"key":5}', 400, '{"error":"json: cannot unmarshal number into Go value of type []uint8","message":"json: cannot unmarshal number into Go value of type []uint8","code":3}'],
      [
        '{"key":"Zm9v","sort_order":"BAD"}',
        400,
        '{"error":"unknown value \\"BAD\\" for enum etcdserverpb.RangeRequest_SortOrder","message":"unknown value \\"BAD\\" for enum etcdserverpb.RangeRequest_SortOrder","code":3}',
      ],
      [
        '[1]',
        400,
        '{"error":"json: cannot unmarshal array into Go value of type map[string]json.RawMessage","message":"json: cannot unmarshal array into Go value of type map[string]json.RawMessage","code":3}',
      ],
    ];
    for (const [body, status, expected] of cases) {
      const r = await post('/v3/kv/range', body);
      assert.equal(r.status, status, body);
      assert.equal(r.body, expected, body);
      assert.equal(r.headers['grpc-trailer-content-type'], undefined, body);
    }
    // Empty and null bodies are an empty request: the server's own error, with its trailer.
    for (const body of ['', 'null', '{"key":null}']) {
      const r = await post('/v3/kv/range', body);
      assert.equal(r.status, 400);
      assert.equal(r.body, '{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}');
      assert.equal(r.headers['grpc-trailer-content-type'], 'application/grpc');
    }
    // FailedPrecondition is 412 in grpc-gateway v1.
    let r = await post('/v3/auth/user/get', '{"name":"nobody"}');
    assert.deepEqual([r.status, r.body], [412, '{"error":"etcdserver: user name not found","message":"etcdserver: user name not found","code":9}']);
    // encoding/json reads bytes from an array of numbers too.
    r = await post('/v3/kv/range', '{"key":[300]}');
    assert.equal(r.body, '{"error":"json: cannot unmarshal number 300 into Go value of type uint8","message":"json: cannot unmarshal number 300 into Go value of type uint8","code":3}');
    // Go's mux sends an unclean path to its clean form.
    r = await post('/v3/kv//range', '{}');
    assert.deepEqual([r.status, r.headers.location], [301, '/v3/kv/range']);
    r = await post('/v3/kv/rangex', '{}');
    assert.deepEqual([r.status, r.headers['content-type'], r.body], [404, 'text/plain; charset=utf-8', 'Not Found\n']);
    r = await curl(`${url}/v3/kv/range`);
    assert.deepEqual([r.status, r.body], [405, 'Method Not Allowed\n']);
    r = await curl(`${url}/v3/kv/range`, ['-X', 'OPTIONS']);
    assert.deepEqual([r.status, r.body, r.headers['access-control-allow-methods']], [200, '', 'POST, GET, OPTIONS, PUT, DELETE']);
  });

  it('refuses a request beyond --max-request-bytes as etcd does', async () => {
    const s = c.member('n1').server;
    const max = s.cfg.maxRequestBytes;
    // Over the request limit but within gRPC's message limit: etcd's own error.
    let r = await post('/v3/kv/put', JSON.stringify({ key: b64('big'), value: Buffer.alloc(max + 1000).toString('base64') }));
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).message, 'etcdserver: request is too large');
    // Over gRPC's message limit (max + 512 KiB): gRPC's ResourceExhausted, 429.
    const value = Buffer.alloc(max + 600 * 1024);
    r = await post('/v3/kv/put', JSON.stringify({ key: b64('big'), value: value.toString('base64') }));
    assert.equal(r.status, 429);
    const size = rpc.PutRequest.encode(rpc.PutRequest.fromPartial({ key: Buffer.from('big'), value })).finish().length;
    const limit = max + 512 * 1024;
    const msg = `grpc: received message larger than max (${size} vs. ${limit})`;
    assert.equal(r.body, `{"error":"${msg}","message":"${msg}","code":8}`);
    // Far beyond it, the body is not kept at all: the same error, its size counted in bytes.
    const huge = JSON.stringify({ key: b64('big'), value: Buffer.alloc(5 * limit).toString('base64') });
    r = await post('/v3/kv/put', huge);
    assert.equal(r.status, 429);
    const hugeMsg = `grpc: received message larger than max (${huge.length} vs. ${limit})`;
    assert.equal(r.body, `{"error":"${hugeMsg}","message":"${hugeMsg}","code":8}`);
  });

  it('grants, keeps alive, lists and revokes leases', async () => {
    let r = await post('/v3/lease/grant', '{"TTL":60,"ID":7}');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"ID":"*","TTL":"*"}');
    assert.equal(JSON.parse(r.body).ID, '7');
    r = await post('/v3/lease/keepalive', '{"ID":7} {"ID":"7"}');
    assert.equal(r.status, 200);
    const lines = r.body.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const l of lines) assert.equal(masked(l), '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"ID":"*","TTL":"*"}}');
    // An unknown lease: TTL 0, left out.
    r = await post('/v3/lease/keepalive', '{"ID":8}');
    assert.equal(masked(r.body), '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"ID":"*"}}');
    r = await post('/v3/kv/lease/timetolive', '{"ID":7,"keys":true}');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"ID":"*","TTL":"*","grantedTTL":"60"}');
    r = await post('/v3/lease/leases', '{}');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"leases":[{"ID":"*"}]}');
    r = await post('/v3/lease/revoke', '{"ID":7}');
    assert.equal(r.status, 200);
    r = await post('/v3/kv/lease/revoke', '{"ID":7}');
    assert.equal(r.status, 404);
    assert.equal(r.body, '{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}');
  });

  it('reads a streaming body as it comes: one answer per keepalive, on one request', async () => {
    await post('/v3/lease/grant', '{"TTL":60,"ID":21}');
    const lines: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${url}/v3/lease/keepalive`, { method: 'POST' }, (res) => {
        res.setEncoding('utf8');
        let buf = '';
        res.on('data', (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            lines.push(buf.slice(0, i));
            buf = buf.slice(i + 1);
            // The next keepalive only once this one is answered, its JSON split across writes.
            if (lines.length === 1) {
              req.write('{"ID"');
              setImmediate(() => req.end(':"21"}'));
            }
          }
        });
        res.on('end', resolve);
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write('{"ID":21}');
    });
    assert.equal(lines.length, 2);
    for (const l of lines) assert.equal(JSON.parse(l).result.ID, '21');
  });

  it('ends a keepalive stream only after its answers, even when they come later', async () => {
    // A member that answers keepalives asynchronously and ends at the half-close (as raftkv's
    // follower does, through the leader): the gateway still gets every answer.
    const s = c.member('n1').server;
    const later: grpc.UntypedServiceImplementation = {
      leaseKeepAlive: (call: grpc.ServerDuplexStream<rpc.LeaseKeepAliveRequest, rpc.LeaseKeepAliveResponse>) => {
        call.on('data', (req: rpc.LeaseKeepAliveRequest) => setImmediate(() => call.write({ header: undefined, ID: req.ID, TTL: 9n })));
        call.on('end', () => call.end());
      },
    };
    const http = createServer(createGateway(s, [[rpc.LeaseService, later]]));
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    try {
      const r = await curl(`http://127.0.0.1:${(http.address() as AddressInfo).port}/v3/lease/keepalive`, ['-X', 'POST', '--data-binary', '{"ID":1} {"ID":2}']);
      assert.equal(r.body, '{"result":{"ID":"1","TTL":"9"}}\n{"result":{"ID":"2","TTL":"9"}}\n');
    } finally {
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    }
  });

  it('streams watch events as {"result":...} lines', async () => {
    // Writes once the watch is created (its first line is out), then three more lines.
    const lines = (
      await streamLines(`${url}/v3/watch`, `{"create_request":{"key":"${b64('w')}","prev_kv":true}}`, 4, async () => {
        await post('/v3/kv/put', `{"key":"${b64('w')}","value":"${b64('1')}"}`);
        await post('/v3/kv/put', `{"key":"${b64('w')}","value":"${b64('2')}"}`);
        await post('/v3/kv/deleterange', `{"key":"${b64('w')}"}`);
      })
    ).map(masked);
    assert.deepEqual(lines, [
      '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"created":true}}',
      '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"events":[{"kv":{"key":"dw==","create_revision":"*","mod_revision":"*","version":"1","value":"MQ=="}}]}}',
      '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"events":[{"kv":{"key":"dw==","create_revision":"*","mod_revision":"*","version":"2","value":"Mg=="},"prev_kv":{"key":"dw==","create_revision":"*","mod_revision":"*","version":"1","value":"MQ=="}}]}}',
      '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"events":[{"type":"DELETE","kv":{"key":"dw==","mod_revision":"*"},"prev_kv":{"key":"dw==","create_revision":"*","mod_revision":"*","version":"2","value":"Mg=="}}]}}',
    ]);
    // The client went away: its watcher is gone too (the call was cancelled).
    const hub = c.member('n1').server.watchHub;
    for (let i = 0; hub.size > 0 && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(hub.size, 0);
    // A first message that cannot be read fails the call (Unknown, 500), as etcd's gateway.
    const r = await post('/v3/watch', '{"create_request":{"key":"Zm9v!"}}');
    assert.equal(r.status, 500);
    assert.equal(r.body, '{"error":"illegal base64 data at input byte 4","message":"illegal base64 data at input byte 4","code":2}');
  });

  it('a watch stream carries every event past its bound of 128 responses in flight, in order', { timeout: 60_000 }, async () => {
    // The gateway dropped the write callbacks the watch stream counts its responses in flight
    // by: after 128 the stream was full for good, and its watchers froze (128 lines of 300).
    const n = 300;
    const lines = await streamLines(`${url}/v3/watch`, `{"create_request":{"key":"${b64('many')}"}}`, 1 + n, async () => {
      for (let i = 0; i < n; i++) await c.put('n1', 'many', String(i));
    });
    const values = lines.slice(1).map((l) => Buffer.from((JSON.parse(l) as { result: { events: Array<{ kv: { value: string } }> } }).result.events[0]!.kv.value, 'base64').toString());
    assert.deepEqual(values, Array.from({ length: n }, (_, i) => String(i)));
  });

  it('a keepalive stream whose client does not read is not read either: held back, then all answered', { timeout: 120_000 }, async () => {
    // Keepalives sent without reading the answers used to be read and answered regardless, the
    // answers queued in the member without bound (450 MB of RSS for 24 MB of keepalives).
    await post('/v3/lease/grant', '{"TTL":600,"ID":31}');
    const s = c.member('n1').server;
    let renewed = 0;
    const renewNow = s.renewLeaseNow.bind(s);
    s.renewLeaseNow = (id: bigint) => {
      renewed++;
      return renewNow(id);
    };
    const total = 200_000;
    const line = '{"ID":31}\n';
    let answers = 0;
    let res: import('node:http').IncomingMessage | undefined;
    const req = httpRequest(`${url}/v3/lease/keepalive`, { method: 'POST' }, (r) => {
      res = r;
      r.pause(); // not read: the answers back up
    });
    req.on('error', () => undefined);
    // Writes as fast as the member takes them, until all are sent or it stops taking them.
    let sent = 0;
    const writeSome = (): void => {
      while (sent < total) {
        sent++;
        if (!req.write(line)) return void req.once('drain', writeSome);
      }
      req.end();
    };
    writeSome();
    // Until the member has stopped renewing (nothing for half a second) or renewed them all.
    for (let last = -1; renewed !== last && renewed < total; ) {
      last = renewed;
      await new Promise((r) => setTimeout(r, 500));
    }
    try {
      assert.ok(renewed < total / 2, `the member read ${renewed} of ${total} keepalives its client did not read the answers of`);
      // The client reads again: every keepalive is read and answered.
      let buf = '';
      await new Promise<void>((resolve, reject) => {
        res!.setEncoding('utf8');
        res!.on('data', (chunk: string) => {
          buf += chunk;
          for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
            answers++;
            buf = buf.slice(i + 1);
          }
        });
        res!.on('end', resolve);
        res!.on('error', reject);
        res!.resume();
      });
      assert.equal(answers, total);
    } finally {
      s.renewLeaseNow = renewNow;
      req.destroy();
    }
  });

  it('refuses an empty watch range and a watch id in use, and answers only a cancel of a watch it has, as etcd 3.4', async () => {
    // One stream: what etcd 3.4.23 answered to the same body (curl), headers masked.
    const body = [
      `{"create_request":{"key":"${b64('b')}","range_end":"${b64('a')}"}}`,
      `{"create_request":{"key":"${b64('a')}","watch_id":7}}`,
      `{"create_request":{"key":"${b64('a')}","watch_id":7}}`,
      '{"cancel_request":{"watch_id":99}}',
      '{"cancel_request":{"watch_id":7}}',
      '{"create_request":{"key":"","range_end":"AA=="}}',
    ].join('');
    const h = '"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"}';
    assert.deepEqual((await streamLines(`${url}/v3/watch`, body, 5)).map(masked), [
      `{"result":{${h},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"mvcc: watcher range is empty"}}`,
      `{"result":{${h},"watch_id":"7","created":true}}`,
      `{"result":{${h},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"mvcc: duplicate watch ID provided on the WatchStream"}}`,
      `{"result":{${h},"watch_id":"7","canceled":true}}`,
      `{"result":{${h},"created":true}}`,
    ]);
  });

  it('takes the member of a oneof last in the JSON text (etcd 3.4\'s gateway takes one at random): a cancel or a progress request after a create', { timeout: 30_000 }, async () => {
    const h = '"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"}';
    const body = [
      `{"create_request":{"key":"${b64('j')}","watch_id":40}}`,
      `{"create_request":{"key":"${b64('j2')}","watch_id":41},"cancel_request":{"watch_id":40}}`,
      `{"cancel_request":{"watch_id":99},"progress_request":{}}`,
      `{"cancel_request":{"watch_id":99},"create_request":{"key":"${b64('j3')}","watch_id":42}}`,
    ].join('');
    assert.deepEqual((await streamLines(`${url}/v3/watch`, body, 4)).map(masked), [
      `{"result":{${h},"watch_id":"40","created":true}}`,
      `{"result":{${h},"watch_id":"40","canceled":true}}`,
      `{"result":{${h},"watch_id":"-1"}}`,
      `{"result":{${h},"watch_id":"42","created":true}}`,
    ]);
  });

  it('fails a watch stream sent a message over gRPC\'s limit as etcd 3.4 does: its error object, first message or later (found by a probe)', async () => {
    const limit = c.member('n1').server.cfg.maxRequestBytes + 512 * 1024;
    const key = Buffer.alloc(limit + 1000, 'k');
    const size = rpc.WatchRequest.encode(rpc.WatchRequest.fromPartial({ createRequest: { key } })).finish().length;
    const error = `{"error":{"grpc_code":8,"http_code":429,"message":"grpc: received message larger than max (${size} vs. ${limit})","http_status":"Too Many Requests"}}`;
    const big = `{"create_request":{"key":"${key.toString('base64')}"}}`;
    // First: a 429 whose body is the stream's error object (it was a unary call's error body).
    const r = await post('/v3/watch', big);
    assert.deepEqual([r.status, r.headers['transfer-encoding'], r.body], [429, 'chunked', error]);
    // After a watch was created: its line, then the error, and the answer ends (it stayed open).
    const h = '"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"}';
    const later = await post('/v3/watch', `{"create_request":{"key":"${b64('ok')}"}}${big}`);
    assert.deepEqual([later.status, ...later.body.split('\n')], [200, later.body.split('\n')[0], error]);
    assert.equal(masked(later.body.split('\n')[0]!), `{"result":{${h},"created":true}}`);
  });

  it('writes no Connection header on a kept connection, as Go\'s server (node:http wrote keep-alive)', async () => {
    for (const r of [await post('/v3/kv/range', `{"key":"${b64('a')}"}`), await curl(`${url}/version`)]) {
      assert.equal(r.status, 200);
      assert.equal(r.headers.connection, undefined);
    }
    // A watch's streamed answer neither.
    const streamed = await new Promise<{ status?: number; connection?: string }>((resolve, reject) => {
      const req = httpRequest(`${url}/v3/watch`, { method: 'POST' }, (res) => {
        resolve({ status: res.statusCode, connection: res.headers.connection });
        req.destroy();
      });
      req.on('error', reject);
      req.end(`{"create_request":{"key":"${b64('a')}"}}`);
    });
    assert.deepEqual(streamed, { status: 200, connection: undefined });
    // Asked to close, Go's server says so; so does this one.
    assert.equal((await curl(`${url}/version`, ['-H', 'Connection: close'])).headers.connection, 'close');
  });

  it('takes the call\'s deadline from Grpc-Timeout, as etcd 3.4 does', async () => {
    // etcd 3.4.23's answers to the same requests (grpc-gateway's timeoutDecode: 0 is none, a
    // negative one — or one that wraps Go's int64 nanoseconds — has passed already).
    const range = (t: string) => curl(`${url}/v3/kv/range`, ['-X', 'POST', '-H', `Grpc-Timeout: ${t}`, '-d', `{"key":"${b64('gt')}"}`]);
    const invalid = (t: string) => `{"error":"invalid grpc-timeout: ${t}","message":"invalid grpc-timeout: ${t}","code":3}`;
    const passed = '{"error":"context deadline exceeded","message":"context deadline exceeded","code":4}';
    for (const [t, status, body] of [['1x', 400, invalid('1x')], ['5', 400, invalid('5')], ['-1S', 504, passed], ['99999999999H', 504, passed]] as const) {
      const r = await range(t);
      assert.deepEqual([r.status, r.body], [status, body], t);
    }
    for (const t of ['0n', '10S']) assert.equal((await range(t)).status, 200, t);
    // A watch outliving its deadline ends with etcd's error chunk, and its watcher is gone.
    const w = await curl(`${url}/v3/watch`, ['-X', 'POST', '-H', 'Grpc-Timeout: 300m', '-d', `{"create_request":{"key":"${b64('gt')}"}}`]);
    assert.equal(w.status, 200);
    assert.deepEqual(w.body.split('\n').map(masked), [
      '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"created":true}}',
      '{"error":{"grpc_code":4,"http_code":504,"message":"context deadline exceeded","http_status":"Gateway Timeout"}}',
    ]);
    const hub = c.member('n1').server.watchHub;
    for (let i = 0; hub.size > 0 && i < 200; i++) await new Promise((r) => setTimeout(r, 25));
    assert.equal(hub.size, 0);
  });

  it('serves member list, status, compaction and hash', async () => {
    let r = await post('/v3/cluster/member/list', '{}');
    assert.equal(r.status, 200);
    const members = JSON.parse(r.body).members;
    assert.equal(members.length, 1);
    assert.deepEqual(Object.keys(members[0]), ['ID', 'name', 'peerURLs', 'clientURLs']);
    r = await post('/v3/maintenance/status', '{}');
    const st = JSON.parse(r.body);
    for (const k of ['version', 'dbSize', 'leader', 'raftIndex', 'raftTerm', 'raftAppliedIndex']) assert.ok(k in st, k);
    assert.equal(typeof st.raftTerm, 'string');
    r = await post('/v3/maintenance/hash', '{}');
    assert.equal(typeof JSON.parse(r.body).hash, 'number'); // uint32: a JSON number
    await post('/v3/kv/put', `{"key":"${b64('c')}","value":"${b64('1')}"}`);
    const rev = BigInt(JSON.parse((await post('/v3/kv/put', `{"key":"${b64('c')}","value":"${b64('2')}"}`)).body).header.revision);
    r = await post('/v3/kv/compaction', `{"revision":"${rev - 1n}"}`);
    assert.equal(r.status, 200);
    r = await post('/v3/kv/compaction', `{"revision":"${rev - 1n}"}`);
    assert.equal(r.status, 400);
    assert.equal(r.body, '{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}');
  });

  it('serves v3lock and v3election with etcd 3.4 shapes', async () => {
    const shape = (json: string): string => masked(json).replace(/"(key|lease|rev)":"[^"]*"/g, '"$1":"*"');
    let r = await post('/v3/lock/lock', '{"name":"bG9jaw=="}');
    assert.equal(shape(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"key":"*"}');
    const lockKey = JSON.parse(r.body).key as string;
    assert.ok(Buffer.from(lockKey, 'base64').toString().startsWith('lock/'));
    r = await post('/v3/lock/unlock', `{"key":"${lockKey}"}`);
    assert.equal(shape(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"}}');
    r = await post('/v3/election/campaign', '{"name":"ZWw=","value":"djE="}');
    assert.equal(shape(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"leader":{"name":"*","key":"*","rev":"*","lease":"*"}}');
    const leader = JSON.parse(r.body).leader;
    r = await post('/v3/election/leader', '{"name":"ZWw="}');
    assert.equal(shape(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"kv":{"key":"*","create_revision":"*","mod_revision":"*","version":"1","value":"djE=","lease":"*"}}');
    const [observed] = await streamLines(`${url}/v3/election/observe`, '{"name":"ZWw="}', 1);
    assert.equal(shape(observed!), '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"kv":{"key":"*","create_revision":"*","mod_revision":"*","version":"1","value":"djE=","lease":"*"}}}');
    r = await post('/v3/election/resign', JSON.stringify({ leader }));
    assert.equal(r.status, 200);
    r = await post('/v3/election/leader', '{"name":"ZWw="}');
    assert.deepEqual([r.status, r.body], [500, '{"error":"election: no leader","message":"election: no leader","code":2}']);
  });

  it('works with Python etcd3gw', { skip: !etcd3gwAvailable && 'python3-etcd3gw is not installed' }, async () => {
    const port = new URL(url).port;
    const script = `
import sys, threading
from etcd3gw.client import Etcd3Client
c = Etcd3Client(host='127.0.0.1', port=int(sys.argv[1]), api_path='/v3/')
c.delete_prefix('py/')
print(c.put('py/a', 'one'))
print(c.get('py/a'))
v, meta = c.get('py/a', metadata=True)[0]
print(v, sorted(meta.keys()), meta['version'])
l = c.lease(ttl=30)
print(c.put('py/b', 'two', lease=l))
print(sorted(v for v, _ in c.get_prefix('py/')))
print(l.ttl() > 0, l.keys())
print(l.refresh() > 0)
print(c.create('py/a', 'x'), c.create('py/c', 'three'))
print(c.replace('py/c', 'three', 'four'), c.replace('py/c', 'nope', 'five'), c.get('py/c'))
events, cancel = c.watch('py/w')
got = []
def reader():
    for e in events:
        got.append((e.get('type', 'PUT'), e['kv']['key'], e['kv'].get('value')))
        if len(got) == 2:
            break
t = threading.Thread(target=reader); t.start()
import time; time.sleep(0.5)
c.put('py/w', 'w1'); c.delete('py/w')
t.join(10); cancel()
print(got)
print(c.delete('py/a'), c.delete('py/nothing'))
print(l.revoke())
print(c.get('py/b'))
print(len(c.members()), sorted(c.members()[0].keys()))
print(sorted(c.status().keys()))
`;
    const { stdout } = await run(PYTHON, ['-c', script, port], { timeout: 60_000 });
    // What the same script printed against etcd 3.4.23.
    assert.deepEqual(stdout.trim().split('\n'), [
      'True',
      "[b'one']",
      "b'one' ['create_revision', 'key', 'mod_revision', 'version'] 1",
      'True',
      "[b'one', b'two']",
      "True [b'py/b']",
      'True',
      'False True',
      "True False [b'four']",
      "[('PUT', b'py/w', b'w1'), ('DELETE', b'py/w', None)]",
      'True False',
      'True',
      '[]',
      "1 ['ID', 'clientURLs', 'name', 'peerURLs']",
      "['dbSize', 'dbSizeInUse', 'header', 'leader', 'raftAppliedIndex', 'raftIndex', 'raftTerm', 'version']",
    ]);
  });

  it('takes the token from the Authorization header under auth', async () => {
    let r = await post('/v3/auth/user/add', '{"name":"root","password":"pw"}');
    assert.equal(r.status, 200);
    r = await post('/v3/auth/user/grant', '{"user":"root","role":"root"}');
    assert.equal(r.status, 200);
    r = await post('/v3/auth/role/add', '{"name":"r1"}');
    r = await post('/v3/auth/user/add', '{"name":"u1","password":"pw"}');
    r = await post('/v3/auth/role/grant', '{"name":"r1","perm":{"key":"YQ==","range_end":"Yg==","permType":"READWRITE"}}');
    r = await post('/v3/auth/role/get', '{"role":"r1"}');
    assert.equal(masked(r.body), '{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"perm":[{"permType":"READWRITE","key":"YQ==","range_end":"Yg=="}]}');
    r = await post('/v3/auth/enable', '{}');
    assert.equal(r.status, 200);
    try {
      r = await post('/v3/kv/range', '{"key":"Zm9v"}');
      assert.deepEqual([r.status, r.body], [400, '{"error":"etcdserver: user name is empty","message":"etcdserver: user name is empty","code":3}']);
      r = await post('/v3/auth/authenticate', '{"name":"root","password":"bad"}');
      assert.equal(r.status, 400);
      assert.equal(JSON.parse(r.body).error, 'etcdserver: authentication failed, invalid user ID or password');
      r = await post('/v3/auth/authenticate', '{"name":"root","password":"pw"}');
      const token = JSON.parse(r.body).token as string;
      assert.ok(token);
      r = await post('/v3/kv/range', '{"key":"Zm9v"}', ['-H', `Authorization: ${token}`]);
      assert.equal(r.status, 200);
      // A user without the root role adding a user with no name: the permission is checked
      // first, as etcd does (found by test/compat's differential run: it said "user name is empty").
      const u1 = JSON.parse((await post('/v3/auth/authenticate', '{"name":"u1","password":"pw"}')).body).token as string;
      r = await post('/v3/auth/user/add', '{"name":"","password":"x"}', ['-H', `Authorization: ${u1}`]);
      assert.deepEqual([r.status, r.body], [403, '{"error":"etcdserver: permission denied","message":"etcdserver: permission denied","code":7}']);
      // gRPC callers too: etcd reads the token from `token` or `authorization` metadata.
      const md = new grpc.Metadata();
      md.set('authorization', token);
      assert.equal((await authOf(c.member('n1').server).authInfo(md)).username, 'root');
      r = await post('/v3/kv/range', '{"key":"Zm9v"}', ['-H', `Grpc-Metadata-Token: ${token}`]);
      assert.equal(r.status, 200);
      r = await post('/v3/kv/range', '{"key":"Zm9v"}', ['-H', 'Authorization: garbage']);
      assert.deepEqual([r.status, r.body], [401, '{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}']);
      const [line] = await streamLines(`${url}/v3/watch`, '{"create_request":{"key":"Zm9v"}}', 1);
      assert.equal(
        masked(line!),
        '{"result":{"header":{"cluster_id":"*","member_id":"*","revision":"*","raft_term":"*"},"watch_id":"-1","created":true,"canceled":true,"cancel_reason":"rpc error: code = InvalidArgument desc = etcdserver: user name is empty"}}',
      );
      // Under --client-cert-auth with auth on, etcd refuses a gateway client whose certificate
      // has a CommonName (it would not be used as the user).
      if (hasOpenssl()) {
        const certs = makeTestCerts();
        const s = c.member('n1').server;
        const tlsCfg = { client: { clientCertAuth: true } };
        const withCertAuth = new Proxy(s, { get: (t, k) => (k === 'cfg' ? { ...t.cfg, tls: tlsCfg } : Reflect.get(t, k, t)) });
        const https = createHttpsServer(
          { key: readFileSync(certs.server.key), cert: readFileSync(certs.server.cert), ca: readFileSync(certs.ca.cert), requestCert: true, rejectUnauthorized: true },
          createGateway(withCertAuth, clientServices(s)),
        );
        await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
        try {
          const port = (https.address() as AddressInfo).port;
          const tlsArgs = ['--cacert', certs.ca.cert, '--cert', certs.client.cert, '--key', certs.client.key];
          r = await curl(`https://127.0.0.1:${port}/v3/kv/range`, ['-X', 'POST', '--data-binary', '{"key":"Zm9v"}', ...tlsArgs]);
          assert.deepEqual([r.status, r.body], [400, 'CommonName of client sending a request against gateway will be ignored and not used as expected\n']);
        } finally {
          https.closeAllConnections();
          await new Promise<void>((r) => https.close(() => r()));
          certs.cleanup();
        }
      }
    } finally {
      const token = JSON.parse((await post('/v3/auth/authenticate', '{"name":"root","password":"pw"}')).body).token as string;
      r = await post('/v3/auth/disable', '{}', ['-H', `Authorization: ${token}`]);
      assert.equal(r.status, 200);
    }
  });

  it('a txn op with two requests (hand-made JSON) is one of them (test/server/txn-ops.test.ts: the same on every member)', async () => {
    // put and delete of one key: read as two ops it is a "duplicate key"; it is the delete.
    const op = `{"request_put":{"key":"${b64('two/k')}","value":"dg=="},"request_delete_range":{"key":"${b64('two/k')}"}}`;
    let r = await post('/v3/kv/put', `{"key":"${b64('two/k')}","value":"MA=="}`);
    assert.equal(r.status, 200);
    r = await post('/v3/kv/txn', `{"success":[${op}]}`);
    assert.equal(r.status, 200, r.body);
    assert.ok(JSON.parse(r.body).responses[0].response_delete_range, r.body);
    r = await post('/v3/kv/range', `{"key":"${b64('two/k')}"}`);
    assert.equal(JSON.parse(r.body).kvs, undefined, 'deleted');
  });

  it('checks a token with auth off too, as etcd does: unknown or stale after a disable, it is refused', async () => {
    const invalid = [401, '{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}'];
    const garbage = ['-H', 'Authorization: garbage'];
    let r = await post('/v3/kv/range', '{"key":"Zm9v"}', garbage);
    assert.deepEqual([r.status, r.body], invalid);
    r = await post('/v3/kv/put', `{"key":"${b64('off/k')}","value":"dg=="}`, garbage);
    assert.deepEqual([r.status, r.body], invalid);
    r = await post('/v3/kv/range', `{"key":"${b64('off/k')}"}`);
    assert.equal(JSON.parse(r.body).kvs, undefined, 'the refused put wrote nothing');
    // etcd's maintenance server passes the auth store's error on unconverted (code Unknown).
    r = await post('/v3/maintenance/alarm', '{"action":"GET"}', garbage);
    assert.deepEqual([r.status, r.body], invalid);
    r = await post('/v3/maintenance/defragment', '{}', garbage);
    assert.deepEqual([r.status, JSON.parse(r.body).error], [500, 'auth: invalid auth token']);
    const [line] = await streamLines(`${url}/v3/watch`, '{"create_request":{"key":"Zm9v"}}', 1, undefined, { authorization: 'garbage' });
    assert.match(line!, /"canceled":true,"cancel_reason":"rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"/);
    // A token from before `auth disable` (root from the test above), and one sent along to Authenticate.
    r = await post('/v3/auth/enable', '{}');
    assert.equal(r.status, 200);
    const token = JSON.parse((await post('/v3/auth/authenticate', '{"name":"root","password":"pw"}')).body).token as string;
    r = await post('/v3/auth/authenticate', '{"name":"root","password":"pw"}', garbage);
    assert.deepEqual([r.status, r.body], invalid);
    r = await post('/v3/auth/disable', '{}', ['-H', `Authorization: ${token}`]);
    assert.equal(r.status, 200);
    r = await post('/v3/kv/range', '{"key":"Zm9v"}', ['-H', `Authorization: ${token}`]);
    assert.deepEqual([r.status, r.body], invalid);
    r = await post('/v3/kv/range', '{"key":"Zm9v"}');
    assert.equal(r.status, 200, 'without a token all is open');
  });
});

describe('JSON gateway on raftkv processes', { skip: !curlAvailable && 'curl is not installed' }, () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('serves the client port of every member, followers included', async () => {
    const leader = await c.waitForLeader();
    const follower = [0, 1, 2].find((i) => i !== leader)!;
    const at = (i: number, path: string, body: string): Promise<Reply> => curl(`http://${c.endpoints()[i]}${path}`, ['-X', 'POST', '--data-binary', body]);
    let r = await at(follower, '/v3/kv/put', `{"key":"${b64('p')}","value":"${b64('q')}"}`);
    assert.equal(r.status, 200);
    r = await at(leader, '/v3/kv/range', `{"key":"${b64('p')}"}`);
    assert.equal(JSON.parse(r.body).kvs[0].value, b64('q'));
    r = await at(follower, '/v3/lease/grant', '{"TTL":60,"ID":42}');
    assert.equal(r.status, 200);
    // A follower answers keepalives through the leader: both answers still come.
    r = await at(follower, '/v3/lease/keepalive', '{"ID":42} {"ID":42}');
    assert.deepEqual(
      r.body.trim().split('\n').map((l) => JSON.parse(l).result.TTL),
      ['60', '60'],
    );
    // Under the follower's own header (etcd fills the header where it was asked), not the leader's.
    const followerId = String((await c.client(follower).status()).header!.memberId);
    for (const l of r.body.trim().split('\n')) assert.equal(JSON.parse(l).result.header.member_id, followerId);
    r = await at(follower, '/v3/lease/timetolive', '{"ID":42}');
    assert.equal(JSON.parse(r.body).header.member_id, followerId);
    assert.equal(JSON.parse(r.body).TTL !== '-1', true);
  });
});

describe('gateway JSON codec', () => {
  // The gateway's codec works from the .proto files; ts-proto's generated code is the reference
  // for the objects the services take and give.
  const modules: Array<Record<string, unknown>> = [rpc, kv, auth, v3lock, v3election];

  it('has a description of proto/etcd that is current (scripts/gen-api-schema.mjs)', () => {
    assert.deepEqual(describeApi(loadEtcdProtos(fileURLToPath(new URL('../../../proto', import.meta.url)))), API_DESCRIPTION);
  });

  it("builds ts-proto's empty object of every etcd message", () => {
    const schema = apiSchema();
    let checked = 0;
    for (const mod of modules) {
      const pkg = mod.protobufPackage as string;
      for (const [name, fns] of Object.entries(mod)) {
        if (typeof (fns as MessageFns).fromPartial !== 'function') continue;
        const m = schema.messageNamed(`${pkg}.${name.replace(/_/g, '.')}`);
        assert.ok(m, `${pkg}.${name} in the schema`);
        assert.deepEqual(emptyMessage(m), (fns as MessageFns).fromPartial({}), name);
        checked++;
      }
    }
    assert.ok(checked > 100, `${checked} messages`);
  });

  it("writes what ts-proto's toJSON writes, under the proto names", () => {
    const schema = apiSchema();
    /** etcd's JSON with ts-proto's (camelCase) names. */
    const camel = (m: MessageSchema, v: Record<string, unknown>): Record<string, unknown> => {
      const out: Record<string, unknown> = {};
      for (const f of m.fields) {
        if (!(f.orig in v)) continue;
        const x = v[f.orig];
        const conv = (y: unknown): unknown => (f.kind === 'message' ? camel(f.message!, y as Record<string, unknown>) : y);
        out[f.ts] = Array.isArray(x) ? x.map(conv) : conv(x);
      }
      return out;
    };
    const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };
    const kv1 = { key: Buffer.from('k'), createRevision: 2n, modRevision: 3n, version: 1n, value: Buffer.from('v'), lease: 0n };
    const samples: Array<[string, MessageFns, object]> = [
      ['etcdserverpb.RangeResponse', fns(rpc.RangeResponse), { header, kvs: [kv1], more: false, count: 1n }],
      ['etcdserverpb.StatusResponse', fns(rpc.StatusResponse), { header, version: '3.4.23', dbSize: 5n, leader: 2n, raftIndex: 9n, raftTerm: 4n, raftAppliedIndex: 9n, errors: ['<x>'], dbSizeInUse: 5n, isLearner: true }],
      ['etcdserverpb.WatchResponse', fns(rpc.WatchResponse), { header, watchId: -1n, created: true, canceled: true, compactRevision: 0n, cancelReason: 'no', fragment: false, events: [{ type: 1, kv: kv1, prevKv: kv1 }] }],
      [
        'etcdserverpb.TxnRequest',
        fns(rpc.TxnRequest),
        {
          compare: [{ result: 0, target: 3, key: Buffer.from('k'), value: Buffer.alloc(0), rangeEnd: Buffer.alloc(0) }],
          success: [{ requestPut: { key: Buffer.from('k'), value: Buffer.from('v'), lease: 5n, prevKv: true, ignoreValue: false, ignoreLease: false } }],
          failure: [],
        },
      ],
      ['v3lockpb.LockResponse', fns(v3lock.LockResponse), { header, key: Buffer.from('lock/1') }],
    ];
    for (const [name, fns, partial] of samples) {
      const m = schema.messageNamed(name)!;
      const obj = fns.fromPartial(partial);
      const written = JSON.parse(encodeMessage(m, obj));
      assert.deepEqual(camel(m, written), fns.toJSON(obj), name);
      // And read back to the same object.
      assert.deepEqual(decodeMessage(m, unmarshal(JSON.stringify(written))), obj, name);
    }
    // StatusResponse's raftTerm keeps its name where ResponseHeader's is raft_term.
    const st = encodeMessage(schema.messageNamed('etcdserverpb.StatusResponse')!, rpc.StatusResponse.fromPartial({ header, raftTerm: 4n }));
    assert.equal(st, '{"header":{"cluster_id":"1","member_id":"2","revision":"3","raft_term":"4"},"raftTerm":"4"}');
    assert.equal(tsProtoName('range_end'), 'rangeEnd');
    assert.equal(goString('<a&b>\u2028'), '"\\u003ca\\u0026b\\u003e\\u2028"');
  });

  it("reads base64 as Go's StdEncoding", () => {
    assert.equal(decodeGoBase64('Zm9v').toString(), 'foo');
    assert.equal(decodeGoBase64('Zm9v\nYmFy').toString(), 'foobar');
    assert.throws(() => decodeGoBase64('Zm9'), /input byte 0/);
    assert.throws(() => decodeGoBase64('Zm9vYg'), /input byte 4/);
    assert.throws(() => decodeGoBase64('Zg=x'), /input byte 2/);
    assert.throws(() => decodeGoBase64('Zg==Zg=='), /input byte 4/);
  });
});
