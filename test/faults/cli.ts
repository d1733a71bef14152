// `npm run test:faults -- [--nodes 3|5] [--time S] [--seed N] [--runs K] [--faults kill,pause,partition,leader] [--lease-reads] [--snapshot-count N] [--wal-segment-bytes N] [--tls]`
// Runs fault-injection runs on real processes and checks linearizability of the recorded
// client histories. Exits non-zero on the first violation (seed, window and saved results).

import { parseArgs } from 'node:util';
import { FAULT_KINDS, type Fault, SCENARIO_FAULTS, frequentSnapshotArgs, runFaults } from './run.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    time: { type: 'string', default: '30' },
    seed: { type: 'string' },
    runs: { type: 'string', default: '1' },
    faults: { type: 'string', default: FAULT_KINDS.join(',') },
    quiet: { type: 'boolean', default: false },
    'lease-reads': { type: 'boolean', default: false },
    'snapshot-count': { type: 'string' },
    'wal-segment-bytes': { type: 'string' },
    tls: { type: 'boolean', default: false },
  },
});

const nodes = Number(values.nodes);
// Optional member flags: lease reads, or frequent snapshots (so that restarts and lagging members
// go through snapshot install under faults; the catch-up tail is kept short to force it).
const extraArgs: string[] = [];
if (values['lease-reads']) extraArgs.push('--lease-reads');
if (values['snapshot-count']) extraArgs.push(...frequentSnapshotArgs(values['snapshot-count']));
// Small WAL segments: rotation, release and purging (--max-wals) and restarts that skip the
// segments before their snapshot, all under kills.
if (values['wal-segment-bytes']) extraArgs.push('--wal-segment-bytes', values['wal-segment-bytes']);
const seconds = Number(values.time);
const runs = Number(values.runs);
const known = new Set<string>([...FAULT_KINDS, ...SCENARIO_FAULTS]);
const faults = values.faults.split(',').filter(Boolean) as Fault[];
for (const f of faults) {
  if (!known.has(f)) {
    console.error(`test:faults: unknown fault "${f}" (known: ${[...known].join(', ')})`);
    process.exit(2);
  }
}
if (!Number.isInteger(nodes) || nodes < 1 || !(seconds > 0) || !Number.isInteger(runs) || runs < 1) {
  console.error('test:faults: --nodes, --time and --runs must be positive numbers');
  process.exit(2);
}
const firstSeed = values.seed !== undefined ? Number(values.seed) : Date.now() % 1_000_000;

let totalOps = 0;
let totalUnknown = 0;
for (let r = 0; r < runs; r++) {
  const seed = firstSeed + r;
  console.log(`run ${r + 1}/${runs}: seed ${seed}, ${nodes} nodes, ${seconds}s, faults ${faults.join(',')}`);
  const res = await runFaults({ nodes, seconds, seed, faults, extraArgs, tls: values.tls, log: values.quiet ? undefined : (l) => console.log(`  ${l}`) });
  totalOps += res.ops;
  totalUnknown += res.unknown;
  console.log(
    `  => ${res.ok ? 'OK' : 'VIOLATION'}: ${res.ops} operations (${res.unknown} unknown), ${res.inserts} acknowledged inserts, ${res.faultsApplied} faults`,
  );
  if (!res.ok) {
    for (const v of res.violations) console.log(`  ${v}`);
    const extra = `${values['lease-reads'] ? ' --lease-reads' : ''}${values['snapshot-count'] ? ` --snapshot-count ${values['snapshot-count']}` : ''}${values['wal-segment-bytes'] ? ` --wal-segment-bytes ${values['wal-segment-bytes']}` : ''}${values.tls ? ' --tls' : ''}`;
    console.log(`  replay: npm run test:faults -- --nodes ${nodes} --time ${seconds} --seed ${seed} --faults ${faults.join(',')}${extra}`);
    if (res.savedTo) console.log(`  history and member logs saved in ${res.savedTo}`);
    process.exit(1);
  }
}
console.log(`all ${runs} runs linearizable: ${totalOps} operations checked (${totalUnknown} with unknown outcome)`);
process.exit(0);
