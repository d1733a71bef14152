// Range in slices (MvccStore.rangeAsync): the same answer as the one-go range() at the
// revision it started at, whatever is written, deleted or compacted between its slices.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KeyValue } from '../../src/gen/etcd/kv.js';
import fc from 'fast-check';
import { MvccStore } from '../../src/kv/mvcc.js';
import { doRange, doRangeAsync } from '../../src/kv/kv-ops.js';
import { RangeRequest } from '../../src/gen/etcd/rpc.js';

const B = (s: string) => Buffer.from(s);
const key = (k: number) => B(`k/${String(k).padStart(3, '0')}`);

describe('rangeAsync', () => {
  it('answers as range() did when it started, with writes and compactions between slices', async () => {
    const write = fc.oneof(
      fc.record({ t: fc.constant('put' as const), k: fc.integer({ min: 0, max: 40 }), v: fc.string({ maxLength: 5 }) }),
      fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 40 }), n: fc.integer({ min: 1, max: 10 }) }),
      fc.constant({ t: 'compact' as const }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(write, { maxLength: 40 }),
        fc.array(write, { maxLength: 40 }),
        fc.record({ lo: fc.integer({ min: 0, max: 40 }), n: fc.integer({ min: 0, max: 45 }), limit: fc.integer({ min: 0, max: 10 }), keysOnly: fc.boolean(), chunk: fc.integer({ min: 1, max: 7 }) }),
        async (before, during, q) => {
          const s = new MvccStore();
          const apply = (w: (typeof before)[number]): void => {
            if (w.t === 'put') s.write((x) => x.put(key(w.k), B(w.v), 0n));
            else if (w.t === 'del') s.write((x) => x.deleteRange(key(w.k), key(w.k + w.n)));
            else if (s.currentRev > s.compactRev) s.compact(s.currentRev);
          };
          before.forEach(apply);
          const end = q.n === 45 ? Buffer.from([0]) : key(q.lo + q.n);
          const opts = { limit: q.limit, keysOnly: q.keysOnly };
          const expected = s.range(key(q.lo), end, opts);
          const pending = [...during];
          const got = await s.rangeAsync(key(q.lo), end, opts, async () => {
            // Between slices: other requests change the store.
            for (let i = 0; i < 3 && pending.length; i++) apply(pending.shift()!);
          }, q.chunk);
          // Its key-values are the store's (StoredKeyValue: bytes made when read): compare fields.
          const plain = (kv: KeyValue): KeyValue => ({ key: kv.key, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, value: kv.value, lease: kv.lease });
          assert.deepEqual({ ...got, kvs: got.kvs.map(plain) }, expected);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a client's Range (doRangeAsync, the store's own key-values) sorts, filters and limits as doRange does", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 60 }), fc.uint8Array({ maxLength: 6 })), { minLength: 1, maxLength: 120 }),
        fc.record({ sortOrder: fc.integer({ min: 0, max: 2 }), sortTarget: fc.integer({ min: 0, max: 4 }), limit: fc.integer({ min: 0, max: 30 }), minModRevision: fc.integer({ min: 0, max: 40 }), keysOnly: fc.boolean() }),
        async (puts, q) => {
          const s = new MvccStore();
          for (const [k, v] of puts) s.write((w) => w.put(Buffer.concat([key(k), Buffer.from([0xf0 + (k % 16)])]), Buffer.from(v), 0n));
          const req = RangeRequest.fromPartial({ key: Buffer.from([0]), rangeEnd: Buffer.from([0]), ...q, limit: BigInt(q.limit), minModRevision: BigInt(q.minModRevision) });
          const plain = (kv: KeyValue): KeyValue => ({ key: kv.key, createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, value: kv.value, lease: kv.lease });
          const got = await doRangeAsync(s, req, async () => {});
          const want = doRange(s, req);
          assert.deepEqual({ ...got, kvs: got.kvs.map(plain) }, { ...want, kvs: want.kvs.map(plain) });
        },
      ),
      { numRuns: 200 },
    );
  });
});
