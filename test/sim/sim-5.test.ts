// Seeded random fault schedules on a 5-node cluster; the Raft safety properties are checked
// after every simulated event, and liveness after the network heals.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runSeeds } from './run-seeds.js';

it('5 nodes: 200 schedules of crashes, restarts, partitions, loss, duplication, reordering, slow nodes', () => {
  const t = runSeeds({ nodes: 5, from: 50000, count: 200, ticks: 300 });
  assert.ok(t.acked > 0 && t.elections >= 200);
});

it('5 nodes: 200 schedules with membership changes (joint, learners, leader removal) during faults', () => {
  const t = runSeeds({ nodes: 5, from: 55000, count: 200, ticks: 300, membership: true });
  assert.ok(t.acked > 0);
});
