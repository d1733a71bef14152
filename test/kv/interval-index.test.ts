// The interval index (src/kv/interval-index.ts): whatever ranges are added and deleted, in any
// order, it answers "which ranges contain this key?" exactly as a scan of every range does.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type IntervalHandle, IntervalIndex } from '../../src/kv/interval-index.js';

/** Keys over a small latin1 alphabet (with the lowest and highest bytes), so ranges overlap a lot. */
const keyArb = fc.string({ unit: fc.constantFrom('\x00', 'a', 'b', 'c', '\xff'), maxLength: 3 });

/** A range [lo, hi): open-ended, empty, inverted, one key, or any. */
const rangeArb = fc.oneof(
  fc.record({ lo: keyArb, hi: fc.constant<string | undefined>(undefined) }),
  keyArb.map((k) => ({ lo: k, hi: k as string | undefined })), // empty
  keyArb.map((k) => ({ lo: k, hi: (k + '\x00') as string | undefined })), // exactly the key k
  fc.record({ lo: keyArb, hi: keyArb as fc.Arbitrary<string | undefined> }), // may be inverted (empty)
);

type Op =
  | { t: 'add'; lo: string; hi: string | undefined }
  | { t: 'dup'; i: number } // the same range as a live one, added again
  | { t: 'del'; i: number }
  | { t: 'redel'; i: number } // a handle deleted before, deleted again
  | { t: 'stab'; k: string }
  | { t: 'stabEdge'; i: number; hi: boolean }; // at a live range's lo or hi

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: rangeArb.map((r) => ({ t: 'add' as const, ...r })) },
  { weight: 1, arbitrary: fc.nat().map((i) => ({ t: 'dup' as const, i })) },
  { weight: 2, arbitrary: fc.nat().map((i) => ({ t: 'del' as const, i })) },
  { weight: 1, arbitrary: fc.nat().map((i) => ({ t: 'redel' as const, i })) },
  { weight: 3, arbitrary: keyArb.map((k) => ({ t: 'stab' as const, k })) },
  { weight: 2, arbitrary: fc.record({ i: fc.nat(), hi: fc.boolean() }).map((x) => ({ t: 'stabEdge' as const, ...x })) },
);

interface Live {
  id: number;
  lo: string;
  hi: string | undefined;
  h: IntervalHandle<number>;
}

const contains = (r: { lo: string; hi: string | undefined }, k: string): boolean => r.lo <= k && (r.hi === undefined || k < r.hi);

describe('interval index', () => {
  it('finds exactly the ranges a scan finds, in lo order, through adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const ix = new IntervalIndex<number>();
        let live: Live[] = [];
        const dead: Array<IntervalHandle<number>> = [];
        let nextId = 0;
        const check = (k: string): void => {
          const got: number[] = [];
          const los: string[] = [];
          ix.stab(k, (id) => {
            got.push(id);
            los.push(live.find((r) => r.id === id)!.lo);
          });
          const want = live.filter((r) => contains(r, k)).map((r) => r.id);
          assert.deepEqual([...got].sort((a, b) => a - b), want, `ranges holding ${JSON.stringify(k)}`);
          for (let i = 1; i < los.length; i++) assert.ok(los[i - 1]! <= los[i]!, 'answered in lo order');
        };
        const add = (lo: string, hi: string | undefined): void => {
          const id = nextId++;
          live.push({ id, lo, hi, h: ix.add(lo, hi, id) });
        };
        for (const op of ops) {
          const pick = <T>(xs: T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
          if (op.t === 'add') add(op.lo, op.hi);
          else if (op.t === 'dup') {
            const r = pick(live, op.i);
            if (r) add(r.lo, r.hi);
          } else if (op.t === 'del') {
            const r = pick(live, op.i);
            if (r) {
              assert.equal(ix.delete(r.h), true);
              live = live.filter((x) => x !== r);
              dead.push(r.h);
            }
          } else if (op.t === 'redel') {
            const h = pick(dead, op.i);
            if (h) assert.equal(ix.delete(h), false);
          } else if (op.t === 'stab') check(op.k);
          else {
            const r = pick(live, op.i);
            if (r) check(op.hi ? (r.hi ?? r.lo) : r.lo);
          }
          assert.equal(ix.size, live.length);
        }
        // Finally, every key near every bound.
        for (const r of live) for (const k of [r.lo, r.hi ?? '', r.lo + '\x00', r.lo.slice(0, -1)]) check(k);
      }),
      { numRuns: 500 },
    );
  });

  it('stays shallow when ranges come in key order (a plain search tree would be a list)', () => {
    const ix = new IntervalIndex<number>();
    const key = (i: number) => `key/${String(i).padStart(6, '0')}`;
    const hs: Array<IntervalHandle<number>> = [];
    for (let i = 0; i < 20000; i++) hs.push(ix.add(key(i), key(i + 1), i));
    // A random binary search tree of 20,000 nodes is ~43 high (4.3 ln n); a list would be 20,000.
    assert.ok(ix.height() <= 64, `height ${ix.height()}`);
    for (let i = 0; i < 20000; i += 2) ix.delete(hs[i]!);
    assert.ok(ix.height() <= 64, `height ${ix.height()} after deletes`);
    assert.equal(ix.size, 10000);
    for (let i = 0; i < 20000; i++) {
      const got: number[] = [];
      ix.stab(key(i), (v) => got.push(v));
      assert.deepEqual(got, i % 2 ? [i] : []);
    }
  });
});
