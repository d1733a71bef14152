// Seeded random fault schedules on a 7-node cluster; the Raft safety properties are checked
// after every simulated event, and liveness after the network heals.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { runSeeds } from './run-seeds.js';

it('7 nodes: 100 schedules of crashes, restarts, partitions, loss, duplication, reordering, slow nodes', () => {
  const t = runSeeds({ nodes: 7, from: 70000, count: 100, ticks: 300 });
  assert.ok(t.acked > 0 && t.elections >= 100);
});

it('7 nodes: 100 schedules with membership changes (joint, learners, leader removal) during faults', () => {
  const t = runSeeds({ nodes: 7, from: 75000, count: 100, ticks: 300, membership: true });
  assert.ok(t.acked > 0);
});
