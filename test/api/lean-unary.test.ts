// The lean unary path (src/api/lean-unary.ts) behind the front door, with a stand-in KV
// service: the hot methods reach the implementation through it (raftkv's ServiceCall, not grpc-js's call),
// everything else through grpc-js on the same connection; answers, errors, metadata, deadlines,
// cancellation, the receive limit, compressed requests and a large pre-encoded Range come out
// as grpc-js would give them to a grpc-js client.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { ClientFrontDoor } from '../../src/api/front-door.js';
import { ServiceCall } from '../../src/api/gateway/calls.js';
import { leanMethods } from '../../src/api/lean-unary.js';
import { encodeRangeResponseInSlices, usingPreEncoded } from '../../src/api/sliced-encoding.js';
import { CompactionRequest, KVClient, KVService, PutRequest, PutResponse, RangeRequest, type RangeResponse } from '../../src/gen/etcd/rpc.js';

const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };
type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

describe('lean unary path', () => {
  const seen: Array<{ method: string; lean: boolean; md: grpc.Metadata }> = [];
  let cancelled: (() => void) | undefined;
  let server: grpc.Server;
  let door: ClientFrontDoor;
  let port = 0;
  let client: InstanceType<typeof KVClient>;

  const record = (method: string, call: grpc.ServerUnaryCall<unknown, unknown>): void => {
    seen.push({ method, lean: call instanceof ServiceCall, md: call.metadata });
  };
  const impl: Record<string, Unary> = {
    put: (call, cb) => {
      record('put', call);
      const req = call.request as PutRequest;
      const key = Buffer.from(req.key).toString();
      if (key === 'fail') return cb({ code: grpc.status.FAILED_PRECONDITION, details: 'etcdserver: requested lease not found' } as grpc.ServiceError, null);
      if (key === 'throw-plain') return cb(new Error('plain error') as grpc.ServiceError, null);
      if (key === 'slow') {
        setTimeout(() => cb(null, PutResponse.fromPartial({ header })), 100);
        return;
      }
      if (key === 'hang') {
        (call as unknown as ServiceCall).once('cancelled', () => cancelled?.());
        return; // never answers: the deadline or the client ends it
      }
      cb(null, PutResponse.fromPartial({ header, prevKv: { key: req.key, value: req.value } }));
    },
    range: (call, cb) => {
      record('range', call);
      const req = call.request as RangeRequest;
      const n = Number(req.limit);
      const kvs = Array.from({ length: n }, (_, i) => ({ key: Buffer.from(`k${String(i).padStart(7, '0')}`), value: Buffer.alloc(100, i % 256), createRevision: 1n, modRevision: BigInt(i + 1), version: 1n, lease: 0n }));
      const res: RangeResponse = { header, kvs, more: false, count: BigInt(n) };
      void encodeRangeResponseInSlices(res, () => new Promise((r) => setImmediate(r))).then((r) => cb(null, r));
    },
    compact: (call, cb) => {
      record('compact', call);
      // Revision 1 answers a little later (as 'slow' Put does), so that a deadline can pass first.
      if ((call.request as CompactionRequest).revision === 1n) setTimeout(() => cb(null, { header }), 100);
      else cb(null, { header });
    },
  };

  before(async () => {
    const def = { ...KVService, range: { ...KVService.range, responseSerialize: usingPreEncoded(KVService.range.responseSerialize) } };
    server = new grpc.Server();
    server.addService(def, impl as unknown as grpc.UntypedServiceImplementation);
    door = new ClientFrontDoor(server, (_req, res) => res.end('http'), { lean: { methods: leanMethods([[def, impl as unknown as grpc.UntypedServiceImplementation]]), maxReceiveBytes: 64 * 1024, maxSendBytes: 8 * 1024 * 1024 } });
    assert.ok(door.leanUnary, 'grpc-js let the lean path in');
    port = await door.listen('http://127.0.0.1:0');
    client = new KVClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
  });
  after(() => {
    client.close();
    door.close();
    server.forceShutdown();
  });

  const put = (key: string, value = 'v', md = new grpc.Metadata(), opts: grpc.CallOptions = {}, c = client): Promise<PutResponse> =>
    new Promise((resolve, reject) =>
      c.put({ key: Buffer.from(key), value: Buffer.from(value), lease: 0n, prevKv: true, ignoreValue: false, ignoreLease: false }, md, opts, (e, r) => (e ? reject(e) : resolve(r!))),
    );

  it('serves Put through the lean path, with the metadata, and Compact through grpc-js on the same connection', async () => {
    seen.length = 0;
    const md = new grpc.Metadata();
    md.set('token', 'abc');
    const r = await put('k', 'hello', md);
    assert.equal(Buffer.from(r.prevKv!.value).toString(), 'hello');
    assert.equal(r.header!.raftTerm, 4n);
    await new Promise((resolve, reject) => client.compact({ revision: 2n, physical: false }, (e, x) => (e ? reject(e) : resolve(x))));
    assert.deepEqual(
      seen.map((s) => [s.method, s.lean]),
      [
        ['put', true],
        ['compact', false],
      ],
    );
    assert.deepEqual(seen[0]!.md.get('token'), ['abc']);
    assert.deepEqual(seen[0]!.md.get('grpc-timeout'), [], 'transport headers are not metadata');
  });

  it("answers errors with the service's code and message, or UNKNOWN and the message", async () => {
    await assert.rejects(put('fail'), (e: grpc.ServiceError) => e.code === grpc.status.FAILED_PRECONDITION && e.details === 'etcdserver: requested lease not found');
    await assert.rejects(put('throw-plain'), (e: grpc.ServiceError) => e.code === grpc.status.UNKNOWN && e.details === 'plain error');
  });

  it('ends a call at its deadline and tells the implementation it was cancelled', async () => {
    const gone = new Promise<void>((r) => (cancelled = r));
    // The client's own deadline, at the same moment, says DEADLINE_EXCEEDED whatever the server sends.
    await assert.rejects(put('hang', 'v', new grpc.Metadata(), { deadline: Date.now() + 200 }), (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED);
    await gone;
  });

  it("answers a passed deadline as etcd does: UNKNOWN, Go's 'context deadline exceeded'", async () => {
    // A bare HTTP/2 request with a grpc-timeout and no deadline of its own: what the server sends.
    // (It sent grpc-js's DEADLINE_EXCEEDED "Deadline exceeded" before.)
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const body = PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('hang'), value: Buffer.from('v') })).finish();
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' });
      const status = new Promise<[string, string]>((resolve) => {
        const take = (h: http2.IncomingHttpHeaders) => h['grpc-status'] !== undefined && resolve([String(h['grpc-status']), decodeURIComponent(String(h['grpc-message']))]);
        req.on('response', take);
        req.on('trailers', take);
      });
      req.resume();
      req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]));
      assert.deepEqual(await status, [String(grpc.status.UNKNOWN), 'context deadline exceeded']);
    } finally {
      session.close();
    }
  });

  for (const [path, body] of [
    ['/etcdserverpb.KV/Put', PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from('slow'), value: Buffer.from('v') })).finish()],
    // Not a lean method: grpc-js's own path.
    ['/etcdserverpb.KV/Compact', CompactionRequest.encode(CompactionRequest.fromPartial({ revision: 1n })).finish()],
  ] as const)
  it(`serves a call whose deadline is weeks away (past a timer's 24.8 days), not failing it at once: ${path}`, async () => {
    // 30 days as a Go client sends it; `| 0` wrapped it negative (grpc-js's own path still does:
    // the front door takes such a header off before grpc-js sees it). (grpc-js's client sends no
    // grpc-timeout for a deadline past a timer's reach: a bare HTTP/2 request.)
    const session = http2.connect(`http://127.0.0.1:${port}`);
    try {
      const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
      const req = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '2592000S' });
      const status = new Promise<string>((resolve) => {
        req.on('response', (h) => h['grpc-status'] !== undefined && resolve(String(h['grpc-status'])));
        req.on('trailers', (t) => resolve(String(t['grpc-status'])));
      });
      req.resume();
      req.end(frame);
      assert.equal(await status, String(grpc.status.OK));
    } finally {
      session.close();
    }
  });

  it("answers with grpc-go's headers and trailers: no date (Node's HTTP/2 adds one by default), no encoding headers", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const names = (h: http2.IncomingHttpHeaders) => Object.keys(h).sort().join(' ');
    try {
      for (const [key, headers, trailers] of [
        ['k', ':status content-type', 'grpc-status'],
        ['fail', ':status content-type grpc-message grpc-status', undefined], // trailers only
      ] as const) {
        const body = PutRequest.encode(PutRequest.fromPartial({ key: Buffer.from(key), value: Buffer.from('v') })).finish();
        const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Put', 'content-type': 'application/grpc', te: 'trailers' });
        let got: http2.IncomingHttpHeaders | undefined;
        let gotTrailers: http2.IncomingHttpHeaders | undefined;
        req.on('response', (h) => (got = h));
        req.on('trailers', (t) => (gotTrailers = t));
        const ended = new Promise((resolve) => req.on('close', resolve));
        req.resume();
        req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]));
        await ended;
        assert.equal(got && names(got), headers, `${key}: headers`);
        assert.equal(got?.['content-type'], 'application/grpc');
        assert.equal(gotTrailers && names(gotTrailers), trailers, `${key}: trailers`);
      }
      // A method grpc-js serves (Compact here) answers without `date` too.
      const body = CompactionRequest.encode(CompactionRequest.fromPartial({ revision: 2n })).finish();
      const req = session.request({ ':method': 'POST', ':path': '/etcdserverpb.KV/Compact', 'content-type': 'application/grpc', te: 'trailers' });
      let got: http2.IncomingHttpHeaders | undefined;
      req.on('response', (h) => (got = h));
      const ended = new Promise((resolve) => req.on('close', resolve));
      req.resume();
      req.end(Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]));
      await ended;
      assert.ok(got && !('date' in got), `grpc-js's answer: ${got && names(got)}`);
    } finally {
      session.close();
    }
  });

  it('tells the implementation when the client cancels', async () => {
    const gone = new Promise<void>((r) => (cancelled = r));
    const call = client.put({ key: Buffer.from('hang'), value: Buffer.alloc(0), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false }, () => {});
    await new Promise((r) => setTimeout(r, 50));
    call.cancel();
    await gone;
  });

  it('refuses a request over the receive limit with RESOURCE_EXHAUSTED, as grpc-js does', async () => {
    await assert.rejects(put('big', 'x'.repeat(100 * 1024)), (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED && /^grpc: received message larger than max \(\d+ vs\. \d+\)$/.test(e.details));
  });

  it('leaves a compressed request to grpc-js, which still answers it', async () => {
    seen.length = 0;
    const gz = new KVClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.default_compression_algorithm': 2 });
    try {
      const r = await put('zipped', 'y'.repeat(2000), new grpc.Metadata(), {}, gz);
      assert.equal(Buffer.from(r.prevKv!.value).length, 2000);
    } finally {
      gz.close();
    }
    assert.deepEqual(seen.map((s) => [s.method, s.lean]), [['put', false]]);
  });

  it('sends a large Range encoded in slices whole, slice by slice', async () => {
    const n = 50_000;
    const r = await new Promise<RangeResponse>((resolve, reject) => client.range(RangeRequest.fromPartial({ key: Buffer.from('k'), limit: BigInt(n) }), (e, x) => (e ? reject(e) : resolve(x!))));
    assert.equal(r.kvs.length, n);
    assert.equal(r.count, BigInt(n));
    assert.equal(Buffer.from(r.kvs[n - 1]!.key).toString(), `k${String(n - 1).padStart(7, '0')}`);
    assert.equal(r.kvs[n - 1]!.modRevision, BigInt(n));
    assert.ok(r.kvs.every((kv, i) => kv.value.length === 100 && kv.value[0] === i % 256));
  });

  it("refuses an answer over the send limit with grpc-go's RESOURCE_EXHAUSTED (etcd's is 2 GiB; 8 MiB here)", async () => {
    const n = 80_000; // ~9.6 MB
    await assert.rejects(
      new Promise((resolve, reject) => client.range(RangeRequest.fromPartial({ key: Buffer.from('k'), limit: BigInt(n) }), (e, x) => (e ? reject(e) : resolve(x)))),
      (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED && /^grpc: trying to send message larger than max \(\d+ vs\. 8388608\)$/.test(e.details),
    );
  });
});
