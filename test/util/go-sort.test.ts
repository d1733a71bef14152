// Go's sort.Sort in steps (src/util/go-sort.ts): the orders etcd 3.4.23 (built with go1.19.8)
// answered for Ranges sorted by value with many equal values — recorded from a real etcd with
// `etcdctl`-equivalent gRPC calls (keys 000…n-1 put in one txn, values from the index as below,
// a keys-only Range sorted by VALUE) — are reproduced exactly; and for any input the result is a
// sorted permutation, stable for 12 items or fewer (insertion sort), and made in steps.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { goSortSteps } from '../../src/util/go-sort.js';

function run<T>(g: Generator<void, T>): { value: T; yields: number } {
  let yields = 0;
  for (;;) {
    const r = g.next();
    if (r.done) return { value: r.value, yields };
    yields++;
  }
}

const VALUES: Record<string, (i: number, n: number) => number> = {
  thirds_desc: (i, n) => 2 - Math.floor((i * 3) / n),
  mod3: (i) => i % 3,
  mod7sq: (i) => (i * i) % 7,
};

// [values, n, order, the keys in etcd's answer]
const ETCD: Array<[string, number, 'ascend' | 'descend', string]> = [
  ['thirds_desc', 30, 'ascend', '20 29 28 27 26 25 24 23 22 21 14 19 12 13 10 15 16 17 18 11 0 9 8 7 6 5 4 3 2 1'],
  ['thirds_desc', 30, 'descend', '0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29'],
  ['thirds_desc', 100, 'ascend', '67 99 98 97 96 95 94 93 92 91 90 89 88 87 86 85 84 83 82 81 80 79 78 77 76 75 74 73 72 71 70 69 68 50 66 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 34 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 18 27 32 31 0 29 28 17 26 16 24 23 22 21 20 19 30 33 25 15 14 13 12 11 10 9 8 7 6 5 4 3 2 1'],
  ['thirds_desc', 100, 'descend', '0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99'],
  ['mod3', 30, 'ascend', '12 27 24 3 21 18 6 0 15 9 7 4 10 13 28 1 16 25 22 19 8 20 5 23 2 17 26 11 14 29'],
  ['mod3', 30, 'descend', '11 29 2 26 23 5 20 17 8 14 7 4 1 13 28 25 16 10 22 19 6 21 18 0 24 15 3 27 9 12'],
  ['mod3', 100, 'ascend', '36 99 96 3 93 90 6 87 84 9 81 78 12 75 72 15 69 66 18 63 60 21 57 54 24 51 0 27 48 45 30 42 39 33 49 67 34 37 1 97 40 94 31 43 4 91 46 88 28 7 85 25 52 82 10 55 79 22 58 76 13 61 73 19 64 70 16 17 8 35 65 71 14 62 74 20 59 77 11 56 80 23 53 83 68 50 86 26 47 89 5 29 92 44 41 95 2 32 98 38'],
  ['mod3', 100, 'descend', '35 98 2 95 92 5 89 86 8 83 80 11 77 74 14 71 68 17 65 62 20 59 56 23 53 50 26 47 44 29 41 38 32 49 67 1 97 37 31 94 40 4 91 43 28 88 46 7 85 82 25 10 52 79 76 55 22 13 58 73 70 61 19 16 64 34 18 9 63 69 60 15 72 21 57 75 54 12 78 24 51 81 0 66 84 48 27 87 45 6 90 42 30 93 39 3 96 36 33 99'],
  ['mod7sq', 30, 'ascend', '14 7 0 28 21 22 29 15 8 27 6 1 20 13 24 4 3 17 18 25 10 11 2 23 12 19 26 9 16 5'],
  ['mod7sq', 30, 'descend', '9 23 2 26 19 5 16 12 18 3 10 11 24 4 25 17 6 15 27 13 20 8 22 1 29 14 21 0 28 7'],
  ['mod7sq', 100, 'ascend', '77 42 49 98 56 35 63 7 28 91 0 70 84 21 14 22 64 78 15 76 20 13 48 71 85 90 69 27 8 29 83 6 62 57 34 92 36 97 55 50 99 41 1 43 25 73 46 3 4 95 39 94 52 53 10 38 88 87 11 59 60 81 32 31 80 17 66 67 18 74 24 45 23 58 26 75 19 68 65 79 30 61 82 16 12 72 86 33 37 89 54 9 5 93 51 40 96 44 47 2'],
  ['mod7sq', 100, 'descend', '30 96 2 93 89 5 86 82 79 9 75 72 12 68 65 61 16 58 54 19 51 47 44 23 40 37 26 33 74 81 95 31 32 94 3 4 88 25 38 39 24 87 80 10 73 45 46 11 67 66 60 59 52 53 18 17 78 20 55 99 50 15 62 97 64 1 76 48 27 69 34 71 92 22 90 43 36 57 13 8 41 29 6 83 85 0 70 42 21 35 84 7 49 91 56 28 14 63 98 77'],
];

describe("Go's sort.Sort (pdqsort), in steps", () => {
  for (const [name, n, order, keys] of ETCD) {
    it(`orders ${n} key-values of ${name} values ${order}ing as etcd 3.4.23 did`, () => {
      const v = Array.from({ length: n }, (_, i) => String(VALUES[name]!(i, n)));
      // sort.Reverse for descending: Less(i, j) is the ascending Less(j, i).
      const less = order === 'ascend' ? (i: number, j: number) => v[i]! < v[j]! : (i: number, j: number) => v[j]! < v[i]!;
      assert.equal([...run(goSortSteps(n, less, 1_000)).value].join(' '), keys);
    });
  }

  it('leaves any input a sorted permutation of itself, stable up to 12 items', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 300 }), fc.integer({ min: 1, max: 500 }), (v, step) => {
        const d = run(goSortSteps(v.length, (i, j) => v[i]! < v[j]!, step)).value;
        assert.deepEqual([...d].sort((a, b) => a - b), v.map((_, i) => i));
        for (let i = 1; i < d.length; i++) assert.ok(v[d[i - 1]!]! <= v[d[i]!]!);
        if (v.length <= 12) assert.deepEqual([...d], v.map((_, i) => i).sort((a, b) => v[a]! - v[b]! || a - b));
      }),
    );
  });

  it('yields between steps: a sort of 100,000 items in steps of 4,096 pauses many times', () => {
    const v = Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 1000);
    const { value, yields } = run(goSortSteps(v.length, (i, j) => v[i]! < v[j]!, 4096));
    for (let i = 1; i < value.length; i++) assert.ok(v[value[i - 1]!]! <= v[value[i]!]!);
    assert.ok(yields >= 20, `${yields} yields`);
  });
});
