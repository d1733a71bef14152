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
