// A watch stream's bookkeeping as etcd 3.4's serverWatchStream keeps it, over real gRPC: progress
// notifications for the watchers that ask (--experimental-watch-progress-notify-interval), ids of
// watches canceled by a compaction kept until the client cancels them, and a negative start
// revision canceled as compacted.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { WatchClient, WatchRequest, WatchResponse } from '../../src/gen/etcd/rpc.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const B = (s: string): Buffer => Buffer.from(s);

describe('watch streams', () => {
  let c: ProcCluster;
  let client: InstanceType<typeof WatchClient>;
  before(async () => {
    c = await ProcCluster.start({ size: 1, extraArgs: ['--experimental-watch-progress-notify-interval', '500ms'] });
    client = new WatchClient(c.endpoint(0), grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await c?.destroy();
  });

  /** A stream and what it got. */
  const open = () => {
    const call = client.watch();
    const got: WatchResponse[] = [];
    call.on('data', (r: WatchResponse) => got.push(r));
    call.on('error', () => undefined);
    return { call, got };
  };

  it('tells a watcher that asked for progress notifications the current revision when it has had no events', async () => {
    const { call, got } = open();
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('pn/a'), progressNotify: true, watchId: 1n } }));
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('pn/b'), watchId: 2n } }));
    await eventually(async () => assert.equal(got.filter((r) => r.created).length, 2));
    const put = await c.client(0).put('pn/other', 'x');
    const progress = (id: bigint) => got.filter((r) => r.watchId === id && !r.created && !r.canceled && r.events.length === 0);
    await eventually(async () => assert.ok(progress(1n).length >= 1), 10_000);
    // At the revision the store is at; none for the watcher that did not ask.
    assert.equal(progress(1n)[0]!.header!.revision, put.header!.revision);
    assert.equal(progress(2n).length, 0);
    call.cancel();
  });

  it("keeps a compacted watch's id until the client cancels it, and cancels a negative start as compacted", async () => {
    const first = await c.client(0).put('cw/k', '1');
    await c.client(0).put('cw/k', '2');
    const last = await c.client(0).put('cw/k', '3');
    await new Promise<void>((res, rej) => c.client(0).kv.compact({ revision: last.header!.revision, physical: false }, (e) => (e ? rej(e) : res())));
    const { call, got } = open();
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('cw/k'), startRevision: first.header!.revision, watchId: 3n } }));
    await eventually(async () => assert.ok(got.some((r) => r.watchId === 3n && r.canceled && r.compactRevision === last.header!.revision)));
    // The id is still the stream's: a create may not take it, and its cancel is answered.
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('cw/k'), watchId: 3n } }));
    await eventually(async () => assert.ok(got.some((r) => r.watchId === -1n && r.cancelReason === 'mvcc: duplicate watch ID provided on the WatchStream')));
    const before = got.length;
    call.write(WatchRequest.fromPartial({ cancelRequest: { watchId: 3n } }));
    await eventually(async () => assert.ok(got.slice(before).some((r) => r.watchId === 3n && r.canceled && r.compactRevision === 0n)));
    // A start revision below 0 is below every compaction: created, then canceled as compacted.
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('cw/'), rangeEnd: B('cw0'), startRevision: -5n, watchId: 4n } }));
    await eventually(async () => assert.ok(got.some((r) => r.watchId === 4n && r.canceled && r.compactRevision === last.header!.revision)));
    await c.client(0).put('cw/k', '4');
    assert.ok(!got.some((r) => r.watchId === 4n && r.events.length > 0));
    call.cancel();
  });

  it("fails a stream sent a message over gRPC's limit with grpc-go's text, as etcd (grpc-js's own text before)", async () => {
    const { call } = open();
    const failed = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    // 1.5 MiB (--max-request-bytes) + 512 KiB: gRPC's receive limit of an etcd member.
    const limit = 1.5 * 1024 * 1024 + 512 * 1024;
    const req = WatchRequest.fromPartial({ createRequest: { key: Buffer.alloc(limit + 100, 'k') } });
    call.write(req);
    const e = await failed;
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.equal(e.details, `grpc: received message larger than max (${WatchRequest.encode(req).finish().length} vs. ${limit})`);
  });

  it('takes the last of create, cancel and progress in one request, as protobuf (and etcd) take a oneof', async () => {
    // Hand-made bytes: two requests' encodings one after the other are one message with both.
    const raw = new grpc.Client(c.endpoint(0), grpc.credentials.createInsecure());
    const call = raw.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', (b: Buffer) => b, (b: Buffer) => WatchResponse.decode(b));
    const got: WatchResponse[] = [];
    call.on('data', (r: WatchResponse) => got.push(r));
    call.on('error', () => undefined);
    const enc = (r: WatchRequest): Buffer => Buffer.from(WatchRequest.encode(r).finish());
    const P = WatchRequest.fromPartial;
    try {
      call.write(enc(P({ createRequest: { key: B('one/a'), watchId: 30n } })));
      await eventually(async () => assert.ok(got.some((r) => r.watchId === 30n && r.created)));
      // A create, then a cancel of watch 30: the cancel.
      call.write(Buffer.concat([enc(P({ createRequest: { key: B('one/b'), watchId: 31n } })), enc(P({ cancelRequest: { watchId: 30n } }))]));
      await eventually(async () => assert.ok(got.some((r) => r.watchId === 30n && r.canceled)));
      // A create, then a progress request: the progress answer (watch id -1).
      call.write(Buffer.concat([enc(P({ createRequest: { key: B('one/c'), watchId: 32n } })), enc(P({ progressRequest: {} }))]));
      await eventually(async () => assert.ok(got.some((r) => r.watchId === -1n && !r.created && !r.canceled)));
      // A cancel, then a create: the create.
      call.write(Buffer.concat([enc(P({ cancelRequest: { watchId: 33n } })), enc(P({ createRequest: { key: B('one/d'), watchId: 33n } }))]));
      await eventually(async () => assert.ok(got.some((r) => r.watchId === 33n && r.created)));
      assert.ok(!got.some((r) => r.watchId === 31n || r.watchId === 32n), 'no watch made from a create that came first');
    } finally {
      call.cancel();
      raw.close();
    }
  });

  it('watches the key "\\0" for an empty key, as etcd\'s watch server does (found by test/compat)', async () => {
    const { call, got } = open();
    call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.alloc(0), watchId: 8n } }));
    await eventually(async () => assert.ok(got.some((r) => r.watchId === 8n && r.created)));
    await c.client(0).put(Buffer.from([0]), 'zero');
    await eventually(async () => assert.deepEqual(got.filter((r) => r.watchId === 8n).flatMap((r) => r.events.map((e) => Buffer.from(e.kv!.value).toString())), ['zero']));
    call.cancel();
  });

  it('splits a large revision into fragments for a watcher that asked, and only for it', async () => {
    // Three keys of 900 KB deleted in one revision: with prev_kv, ~2.7 MB of events, over the
    // 2 MiB a member takes in (--max-request-bytes and gRPC's 512 KiB): etcd's sendFragments.
    const big = 'v'.repeat(900 * 1024);
    for (const k of ['fr/a', 'fr/b', 'fr/c']) await c.client(0).put(k, big);
    const { call, got } = open();
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('fr/'), rangeEnd: B('fr0'), prevKv: true, fragment: true, watchId: 5n } }));
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('fr/'), rangeEnd: B('fr0'), prevKv: true, watchId: 6n } }));
    await eventually(async () => assert.equal(got.filter((r) => r.created).length, 2));
    await c.client(0).del('fr/', { rangeEnd: B('fr0') });
    const of = (id: bigint) => got.filter((r) => r.watchId === id && r.events.length > 0);
    await eventually(async () => assert.equal(of(5n).reduce((n, r) => n + r.events.length, 0), 3));
    await eventually(async () => assert.equal(of(6n).length, 1));
    assert.deepEqual(of(5n).map((r) => [r.events.length, r.fragment]), [[2, true], [1, false]]);
    assert.deepEqual(of(5n).flatMap((r) => r.events.map((e) => Buffer.from(e.kv!.key).toString())), ['fr/a', 'fr/b', 'fr/c']);
    assert.deepEqual([of(6n)[0]!.events.length, of(6n)[0]!.fragment], [3, false]);
    call.cancel();
  });

  it('delivers a deletion of thousands of keys (read in slices after its apply) whole, in order, before what followed', async () => {
    const n = 2500;
    const keyOf = (i: number) => `many/${String(i).padStart(4, '0')}`;
    for (let i = 0; i < n; i += 125) {
      const success = Array.from({ length: 125 }, (_, j) => ({ requestPut: { key: B(keyOf(i + j)), value: B(`v${i + j}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }));
      await c.client(0).txn({ compare: [], success, failure: [] });
    }
    const { call, got } = open();
    call.write(WatchRequest.fromPartial({ createRequest: { key: B('many/'), rangeEnd: B('many0'), prevKv: true, watchId: 7n } }));
    await eventually(async () => assert.equal(got.filter((r) => r.created).length, 1));
    const del = await c.client(0).del('many/', { rangeEnd: B('many0') });
    await c.client(0).put(keyOf(1), 'after');
    const events = () => got.filter((r) => r.watchId === 7n && r.events.length > 0);
    await eventually(async () => assert.equal(events().length, 2));
    const [deletion, put] = events();
    assert.equal(deletion!.events.length, n);
    deletion!.events.forEach((e, i) => {
      assert.equal(Buffer.from(e.kv!.key).toString(), keyOf(i));
      assert.equal(e.kv!.modRevision, del.header!.revision);
      assert.equal(Buffer.from(e.prevKv!.value).toString(), `v${i}`);
    });
    assert.deepEqual(put!.events.map((e) => Buffer.from(e.kv!.value).toString()), ['after']);
    call.cancel();
  });
});
