// The stable sort in steps (src/util/sort-in-steps.ts) that Ranges, etcd snapshots and the
// MVCC hash use.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { runSteps, runStepsPaused, sortIndexSteps } from '../../src/util/sort-in-steps.js';

it('sorts in steps like Array.prototype.sort, stably, yielding every step', async () => {
  let x = 12345;
  const vals = Array.from({ length: 10_000 }, () => (x = (x * 1103515245 + 12345) % 2 ** 31) % 500);
  let pauses = 0;
  const order = await runStepsPaused(
    sortIndexSteps(vals.length, (i, j) => vals[i]! - vals[j]!, 1000),
    async () => void pauses++,
  );
  const want = vals.map((_, i) => i).sort((i, j) => vals[i]! - vals[j]! || i - j);
  assert.deepEqual([...order], want);
  // 10 runs, then 4 merge passes of 10,000 items placed, a yield every 1,000.
  assert.equal(pauses, 10 + 4 * 10);
});

it('any array, any step: the same order as one stable sort (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { maxLength: 300 }), fc.integer({ min: 1, max: 40 }), (vals, step) => {
      const by = (i: number, j: number): number => vals[i]! - vals[j]!;
      assert.deepEqual([...runSteps(sortIndexSteps(vals.length, by, step))], vals.map((_, i) => i).sort((i, j) => by(i, j) || i - j));
    }),
    { numRuns: 300 },
  );
});
