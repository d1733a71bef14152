// Runs a block of seeded schedules and fails with the seed and the replay command.

import assert from 'node:assert/strict';
import { type ScheduleOptions, replayCommand, runSchedule } from './schedule.js';

export interface SeedBlock {
  nodes: number;
  from: number;
  count: number;
  ticks: number;
  membership?: boolean;
}

export function runSeeds(b: SeedBlock): { proposed: number; acked: number; reads: number; elections: number } {
  const total = { proposed: 0, acked: 0, reads: 0, elections: 0 };
  // SIM_SEED_OFFSET explores other seeds without changing the code (e.g. in test:faults runs).
  const offset = Number(process.env.SIM_SEED_OFFSET ?? 0);
  for (let s = b.from + offset; s < b.from + offset + b.count; s++) {
    const o: ScheduleOptions = { seed: s, nodes: b.nodes, ticks: b.ticks, membership: b.membership };
    const r = runSchedule(o);
    if (!r.ok) {
      assert.fail(`seed ${s} (${b.nodes} nodes): ${r.violation}\n  replay with: ${replayCommand(o)}`);
    }
    total.proposed += r.proposed;
    total.acked += r.acked;
    total.reads += r.reads;
    total.elections += r.elections;
  }
  return total;
}

/** The standard pair of simulator suites for one cluster size (plain faults, then membership). */
export async function simSuite(nodes: number, count: number): Promise<void> {
  const { it } = await import('node:test');
  it(`${nodes} nodes: ${count} schedules of crashes, restarts, partitions, loss, duplication, reordering, slow nodes`, () => {
    const t = runSeeds({ nodes, from: nodes * 10000, count, ticks: 300 });
    assert.ok(t.acked > 0 && t.elections >= count);
  });
  it(`${nodes} nodes: ${count} schedules with membership changes (joint, learners, leader removal) during faults`, () => {
    const t = runSeeds({ nodes, from: nodes * 10000 + 5000, count, ticks: 300, membership: true });
    assert.ok(t.acked > 0);
  });
}
