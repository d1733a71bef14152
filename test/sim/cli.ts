// `npm run sim -- --seed S --nodes N --steps T [--membership] [--verbose] [--runs K]`
// Replays one seeded schedule and prints a readable trace, or runs K consecutive seeds
// quietly and reports the first failure.

import { parseArgs } from 'node:util';
import { replayCommand, runSchedule } from './schedule.js';

const { values } = parseArgs({
  options: {
    seed: { type: 'string', default: '1' },
    nodes: { type: 'string', default: '3' },
    steps: { type: 'string', default: '500' },
    membership: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
    runs: { type: 'string', default: '1' },
  },
});

const seed = Number(values.seed);
const nodes = Number(values.nodes);
const ticks = Number(values.steps);
const runs = Number(values.runs);
for (const [name, v] of [['seed', seed], ['nodes', nodes], ['steps', ticks], ['runs', runs]] as const) {
  if (!Number.isInteger(v) || v < 0) {
    console.error(`sim: invalid --${name}: must be a non-negative integer`);
    process.exit(2);
  }
}

let failed = 0;
for (let s = seed; s < seed + runs; s++) {
  const opts = {
    seed: s,
    nodes,
    ticks,
    membership: values.membership,
    verbose: values.verbose,
    trace: runs === 1 && !values.quiet ? (l: string) => console.log(l) : undefined,
  };
  const r = runSchedule(opts);
  const line = `seed=${s} nodes=${nodes} ticks=${ticks}: ${r.ok ? 'OK' : 'FAIL'} proposed=${r.proposed} acked=${r.acked} reads=${r.reads} elections=${r.elections} restarts=${r.restarts} events=${r.events}`;
  console.log(line);
  if (!r.ok) {
    failed++;
    console.log(`  violation: ${r.violation}`);
    console.log(`  replay: ${replayCommand(opts)}`);
    if (runs > 1) break;
  }
}
process.exit(failed > 0 ? 1 : 0);
