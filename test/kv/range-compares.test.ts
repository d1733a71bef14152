// A txn's compare over a range is decided key by key on the stored versions, stopping at the
// first key that fails it (etcd's applyCompare), and a value compared as the stored string of its
// bytes: the same outcome as collecting the range's key-values and testing each (property).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Compare, Compare_CompareTarget } from '../../src/gen/etcd/rpc.js';
import type { KeyValue } from '../../src/gen/etcd/kv.js';
import { evalCompare } from '../../src/kv/kv-ops.js';
import { MvccStore } from '../../src/kv/mvcc.js';

const key = (i: number) => Buffer.from(`k${String(i).padStart(2, '0')}`);
const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);

/** The compare's outcome for one key-value, written out from etcd's compareKV. */
function model(c: Compare, kv: KeyValue | undefined): boolean {
  let r: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      if (!kv) return false;
      r = Buffer.compare(Buffer.from(kv.value), Buffer.from(c.value ?? []));
      break;
    case Compare_CompareTarget.VERSION:
      r = cmp(kv?.version ?? 0n, c.version ?? 0n);
      break;
    case Compare_CompareTarget.CREATE:
      r = cmp(kv?.createRevision ?? 0n, c.createRevision ?? 0n);
      break;
    case Compare_CompareTarget.MOD:
      r = cmp(kv?.modRevision ?? 0n, c.modRevision ?? 0n);
      break;
    default:
      r = cmp(kv?.lease ?? 0n, c.lease ?? 0n);
  }
  // EQUAL, GREATER, LESS, NOT_EQUAL
  return [r === 0, r > 0, r < 0, r !== 0][c.result]!;
}

// Values of a few bytes, high ones included (their order as bytes is their order as latin1 text).
const value = fc.uint8Array({ maxLength: 3 }).map((b) => Buffer.from(b.map((x) => [0, 1, 0x7f, 0x80, 0xff, 0x61][x % 6]!)));

describe('range compares', () => {
  it('decide as testing every key-value of the range would (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ k: fc.integer({ min: 0, max: 15 }), v: fc.option(value, { nil: undefined }) }), { maxLength: 40 }),
        fc.array(
          fc.record({
            lo: fc.integer({ min: 0, max: 16 }),
            n: fc.option(fc.integer({ min: -1, max: 17 }), { nil: undefined }),
            target: fc.integer({ min: 0, max: 4 }),
            result: fc.integer({ min: 0, max: 3 }),
            v: value,
            num: fc.bigInt({ min: 0n, max: 45n }),
          }),
          { minLength: 1, maxLength: 20 },
        ),
        (writes, compares) => {
          const s = new MvccStore();
          for (const w of writes) s.write((x) => (w.v === undefined ? x.deleteRange(key(w.k), undefined) : x.put(key(w.k), w.v, w.k % 3 === 0 ? 0n : BigInt(w.k % 3))));
          for (const q of compares) {
            const c: Compare = {
              key: key(q.lo),
              rangeEnd: q.n === undefined ? Buffer.alloc(0) : q.n < 0 ? Buffer.from([0]) : key(q.lo + q.n),
              target: q.target,
              result: q.result,
              value: q.v,
              version: q.num,
              createRevision: q.num,
              modRevision: q.num,
              lease: q.num % 3n,
            };
            const kvs = s.range(c.key, c.rangeEnd.length > 0 ? c.rangeEnd : undefined).kvs;
            const want = kvs.length === 0 ? model(c, undefined) : kvs.every((kv) => model(c, kv));
            assert.equal(s.write((w) => evalCompare(w, c)), want, `${c.target}/${c.result} over ${kvs.length} keys`);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
