// Watch fragments (fragment=true on create) split where etcd's sendFragments splits: by each
// response's protobuf size, its envelope measured with `fragment` set.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { fragments } from '../../src/api/watch-service.js';
import type { Event } from '../../src/gen/etcd/kv.js';
import { WatchResponse } from '../../src/gen/etcd/rpc.js';

const size = (r: WatchResponse, fragment: boolean): number => WatchResponse.encode({ ...r, fragment }).finish().length;

it("splits 1,400 deletions with prev_kv where etcd 3.4 splits them (1,190 + 210 at 4 KiB + 512 KiB)", () => {
  // A fresh member's 1,400 puts of 400-byte values (revisions 2..1401) deleted at revision 1402,
  // watched with prev_kv and fragment on a fresh etcd 3.4.23 with --max-request-bytes 4096: it
  // sent 1,190 events marked fragment, then 210 (the estimate split 1,138 + 262).
  const events: Event[] = Array.from({ length: 1400 }, (_, i) => {
    const key = Buffer.from(`fg/${String(i).padStart(5, '0')}`);
    return {
      type: 1,
      kv: { key, createRevision: 0n, modRevision: 1402n, version: 0n, value: Buffer.alloc(0), lease: 0n },
      prevKv: { key, createRevision: BigInt(i + 2), modRevision: BigInt(i + 2), version: 1n, value: Buffer.alloc(400, 'v'), lease: 0n },
    };
  });
  const r = WatchResponse.fromPartial({ header: { clusterId: 0x180ad5739f7c5e16n, memberId: 0xc37601223782e271n, revision: 1402n, raftTerm: 2n }, watchId: 0n });
  const parts = fragments({ ...r, events }, 4096 + 512 * 1024);
  assert.deepEqual(parts.map((p) => [p.events.length, p.fragment]), [[1190, true], [210, false]]);
});

it('fills each fragment to below the limit, as etcd does, and sends a response under it whole (property)', () => {
  const kv = fc.record({ key: fc.uint8Array({ minLength: 1, maxLength: 30 }), value: fc.uint8Array({ maxLength: 600 }), rev: fc.bigInt({ min: 1n, max: 1n << 40n }) });
  const ev: fc.Arbitrary<Event> = fc.record({ type: fc.integer({ min: 0, max: 1 }), kv, prev: fc.boolean() }).map(({ type, kv: k, prev }) => {
    const x = { key: Buffer.from(k.key), createRevision: k.rev, modRevision: k.rev, version: 1n, value: Buffer.from(k.value), lease: 0n };
    return { type, kv: x, prevKv: prev ? { ...x, value: Buffer.from(k.value.slice(1)) } : undefined };
  });
  fc.assert(
    fc.property(fc.array(ev, { maxLength: 40 }), fc.integer({ min: 50, max: 6000 }), fc.bigInt({ min: -5n, max: 1n << 62n }), (events, limit, watchId) => {
      const r = WatchResponse.fromPartial({ header: { clusterId: 1n, memberId: 2n, revision: 9n, raftTerm: 1n }, watchId });
      const whole = { ...r, events };
      const parts = fragments(whole, limit);
      assert.deepEqual(parts.flatMap((p) => p.events), events);
      if (events.length < 2 || size(whole, false) < limit) return assert.deepEqual(parts, [whole]);
      parts.forEach((p, i) => {
        assert.equal(p.fragment, i < parts.length - 1);
        assert.ok(p.events.length === 1 || size(p, true) < limit, 'under the limit, or one event');
        const next = parts[i + 1]?.events[0];
        if (next) assert.ok(size({ ...p, events: [...p.events, next] }, true) >= limit, 'as full as it can be');
      });
    }),
    { numRuns: 300 },
  );
});
