// `node dist/test/mc/sim-check.js --mutation NAME [--limit N]`: runs the simulator's 1,000
// seeded schedules of npm test (test/sim: 3, 5 and 7 members, with and without membership
// changes) against the core with a deliberate bug, and reports the first seed that catches
// it, or that none does. This is how the README tells which bugs only exhaustive search finds.

import { parseArgs } from 'node:util';
import { registerMutation } from './register-mutation.js';

const { values } = parseArgs({ options: { mutation: { type: 'string' }, limit: { type: 'string' } } });
if (!values.mutation) {
  console.error('sim-check: --mutation NAME is required');
  process.exit(2);
}
registerMutation(values.mutation);
const { runSchedule, replayCommand } = await import('../sim/schedule.js');

// The blocks of test/sim/sim-{3,5,7}.test.ts (run-seeds.ts simSuite): 200 + 200 + 100 seeds,
// each plain and with membership changes.
const blocks = [3, 5, 7].flatMap((nodes) => {
  const count = nodes === 7 ? 100 : 200;
  return [
    { nodes, from: nodes * 10000, count, membership: false },
    { nodes, from: nodes * 10000 + 5000, count, membership: true },
  ];
});
const limit = values.limit ? Number(values.limit) : Infinity;
const t0 = performance.now();
let ran = 0;
for (const b of blocks) {
  for (let seed = b.from; seed < b.from + b.count && ran < limit; seed++) {
    ran++;
    const o = { seed, nodes: b.nodes, ticks: 300, membership: b.membership };
    let failure: string | undefined;
    try {
      const r = runSchedule(o);
      if (!r.ok) failure = r.violation;
    } catch (e) {
      failure = `exception: ${(e as Error).message}`;
    }
    if (failure) {
      console.log(`mutation ${values.mutation}: FOUND by seed ${seed} (${b.nodes} members${b.membership ? ', membership' : ''}), schedule ${ran} of 1000, ${((performance.now() - t0) / 1000).toFixed(1)} s: ${failure}`);
      console.log(`  replay: RAFT_MUTATION=${values.mutation} node --import ./dist/test/mc/register-mutation.js dist/test/sim/cli.js ${replayCommand(o).replace('npm run sim -- ', '')}`);
      process.exit(0);
    }
  }
}
console.log(`mutation ${values.mutation}: NOT found by the ${ran} schedules (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
