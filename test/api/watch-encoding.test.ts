// Watch responses encoded with shared events (src/api/watch-encoding.ts): byte for byte what the
// generated encoder writes, for any envelope (created, canceled, compacted, negative watch ids,
// empty and changing headers) and events with and without prev_kv; an event carried by many
// responses is encoded once. And watchers share the events they get (src/kv/event-cache.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeWatchResponse, encodeWatchResponseInSlices, eventBytes } from '../../src/api/watch-encoding.js';
import { SLICED_ENCODING_MIN_KVS, sendingFramedAsIs, usingPreEncoded } from '../../src/api/sliced-encoding.js';
import * as grpc from '@grpc/grpc-js';
import { Event } from '../../src/gen/etcd/kv.js';
import { WatchClient, type WatchRequest, WatchResponse, WatchService } from '../../src/gen/etcd/rpc.js';
import { EventCache, eventSize } from '../../src/kv/event-cache.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { type Watcher, WatchHub } from '../../src/kv/watch-hub.js';

const u64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }));
const i64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1000n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
const kv = fc
  .record({ key: fc.uint8Array({ maxLength: 20 }), createRevision: i64, modRevision: i64, version: i64, value: fc.uint8Array({ maxLength: 300 }), lease: i64 })
  .map((k) => ({ ...k, key: Buffer.from(k.key), value: Buffer.from(k.value) }));
const event: fc.Arbitrary<Event> = fc.record({ type: fc.integer({ min: 0, max: 1 }), kv: fc.option(kv, { nil: undefined }), prevKv: fc.option(kv, { nil: undefined }) });
const header = fc.option(fc.record({ clusterId: u64, memberId: u64, revision: i64, raftTerm: u64 }), { nil: undefined });
const response: fc.Arbitrary<WatchResponse> = fc.record({
  header,
  watchId: i64,
  created: fc.boolean(),
  canceled: fc.boolean(),
  compactRevision: fc.oneof(fc.constant(0n), i64),
  cancelReason: fc.oneof(fc.constant(''), fc.string({ maxLength: 10 })),
  fragment: fc.boolean(),
  events: fc.array(event, { maxLength: 4 }),
});
// Most responses of a watcher are plain event responses: weigh them in.
const plain = fc.record({ header, watchId: i64, events: fc.array(event, { minLength: 1, maxLength: 4 }) }).map((r) => ({ ...WatchResponse.fromPartial({ ...r, events: [] }), events: r.events }));

describe('watch responses with shared events', () => {
  it("are the generated encoder's bytes, for any response and whichever encodes an event first (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(response, plain), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 6 }), (responses, shuffle) => {
        // Responses share events, as watchers of one range do.
        const pool = responses.flatMap((r) => r.events);
        const shared = responses.map((r, i) => ({ ...r, events: r.events.map((e, j) => pool[(shuffle[(i + j) % Math.max(1, shuffle.length)] ?? j) % pool.length] ?? e) }));
        for (const r of [...shared, ...shared]) assert.ok(encodeWatchResponse(r).equals(Buffer.from(WatchResponse.encode(r).finish())));
      }),
      { numRuns: 500 },
    );
  });

  it("a large response encoded in slices is the same bytes, put together over several turns (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(response, plain), fc.integer({ min: 0, max: 5000 }), async (r, n) => {
        // Thousands of events: over the count at which one slice ends.
        const many = { ...r, events: [...r.events, ...Array.from({ length: n }, (_, i) => ({ type: i % 2, kv: { key: Buffer.from(`k${i}`), createRevision: 1n, modRevision: 2n, version: 3n, value: Buffer.alloc(i % 50, 1), lease: 0n }, prevKv: undefined }))] };
        let pauses = 0;
        const sent = await encodeWatchResponseInSlices(many, async () => void pauses++);
        assert.ok(usingPreEncoded(encodeWatchResponse)(sent).equals(Buffer.from(WatchResponse.encode(many).finish())));
        assert.ok(pauses >= Math.floor(many.events.length / (SLICED_ENCODING_MIN_KVS + 1)), `${pauses} pauses for ${many.events.length} events`);
      }),
      { numRuns: 30 },
    );
  });

  it('an event carried by many responses is encoded once', () => {
    const ev: Event = { type: 0, kv: { key: Buffer.from('k'), createRevision: 2n, modRevision: 5n, version: 3n, value: Buffer.from('v'), lease: 0n }, prevKv: undefined };
    const first = eventBytes(ev);
    // (fromPartial would copy the event: the responses must carry the one object.)
    for (let id = 0n; id < 100n; id++) encodeWatchResponse({ ...WatchResponse.fromPartial({ header: { revision: 5n }, watchId: id }), events: [ev] });
    assert.equal(eventBytes(ev), first, 'the same bytes, not encoded again');
    assert.deepEqual(Buffer.from(first), Buffer.from(Event.encode(ev).finish()));
  });

  it('watchers share the events they get, live and catching up', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    const got: Event[][] = [[], [], [], []];
    const watcher = (i: number, startRevision: bigint, prevKv: boolean): Watcher => ({
      key: Buffer.from('s/'),
      rangeEnd: Buffer.from('s0'),
      startRevision,
      prevKv,
      noPut: false,
      noDelete: false,
      deliver: (events: Event[]) => void got[i]!.push(...events),
    });
    for (let i = 0; i < 20; i++) store.write((w) => w.put(Buffer.from(`s/${i % 5}`), Buffer.from(`v${i}`), 0n));
    // Two catch up from revision 2 (one with prev_kv), two are live; then 10 more writes.
    const ws = [watcher(0, 2n, false), watcher(1, 2n, false), watcher(2, 0n, false), watcher(3, 0n, true)];
    for (const w of ws) {
      hub.add(w);
      if (hub.isUnsynced(w)) hub.resume(w);
    }
    for (let i = 0; i < 10; i++) store.write((w) => w.put(Buffer.from(`s/${i % 5}`), Buffer.from(`w${i}`), 0n));
    assert.equal(got[0]!.length, 30);
    got[0]!.forEach((ev, i) => assert.equal(ev, got[1]![i], `catch-up event ${i} is one object`));
    got[2]!.forEach((ev, i) => assert.equal(ev, got[0]![20 + i], `live event ${i} is the same object`));
    assert.ok(got[3]!.every((ev, i) => ev.prevKv !== undefined && ev.kv === got[2]![i]!.kv), 'with prev_kv: the same key-value');
  });

  it('the event cache is bounded in count and bytes', () => {
    const make = (n: number): Event => ({ type: 0, kv: { key: Buffer.alloc(10), createRevision: 1n, modRevision: 1n, version: 1n, value: Buffer.alloc(n), lease: 0n }, prevKv: undefined });
    const byCount = new EventCache<object>(100, 1 << 30);
    for (let i = 0; i < 1000; i++) byCount.get({}, () => make(1));
    assert.equal(byCount.size, 100);
    const byBytes = new EventCache<object>(1 << 30, 10 * eventSize(make(990)));
    for (let i = 0; i < 1000; i++) byBytes.get({}, () => make(990));
    assert.equal(byBytes.size, 10);
    const version = {};
    const first = byBytes.get(version, () => make(1));
    assert.equal(byBytes.get(version, () => make(1)), first, 'a cached version gives its one event');
  });
});

describe('a large watch response sent as it was put together', () => {
  it("goes out through grpc-js with no call of the method's serializer (no copy), and is read as the message", async () => {
    // A bidi method like Watch, on a real grpc-js server: the framed response is written as it
    // is, the others through the serializer. If grpc-js's call changes shape, the hook stays
    // out and this fails (the bytes would still be right, copied once more).
    const events = Array.from({ length: 3000 }, (_, i) => ({ type: 0, kv: { key: Buffer.from(`k${i}`), createRevision: 1n, modRevision: 2n, version: 1n, value: Buffer.from('v'), lease: 0n }, prevKv: undefined }));
    const big: WatchResponse = { ...WatchResponse.fromPartial({ header: { revision: 9n }, watchId: 1n }), events };
    let serialized = 0;
    const def = { ...WatchService, watch: { ...WatchService.watch, responseSerialize: (r: WatchResponse) => (serialized++, usingPreEncoded(encodeWatchResponse)(r)) } };
    const server = new grpc.Server();
    server.addService(def, {
      watch: (call: grpc.ServerDuplexStream<WatchRequest, WatchResponse>) => {
        sendingFramedAsIs(call);
        void encodeWatchResponseInSlices(big, async () => {}).then((framed) => {
          call.write(framed);
          call.write(WatchResponse.fromPartial({ watchId: 2n }));
          call.end();
        });
      },
    } as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const client = new WatchClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const got: WatchResponse[] = [];
      const stream = client.watch();
      await new Promise<void>((res, rej) => {
        stream.on('data', (r: WatchResponse) => got.push(r));
        stream.on('end', res);
        stream.on('error', rej);
      });
      assert.deepEqual(got.map((r) => [r.watchId, r.events.length]), [[1n, 3000], [2n, 0]]);
      assert.deepEqual(got[0], WatchResponse.decode(WatchResponse.encode(big).finish()));
      assert.equal(serialized, 1, 'only the small response went through the serializer');
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
