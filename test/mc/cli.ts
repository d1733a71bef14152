// `npm run mc -- [--nodes 3] [--proposals 1] [--timeouts 2] [--heartbeats 1] [--drops 0]
//                [--duplicates 0] [--crashes 0] [--depth 40] [--max-states 200000] [--goal committed]`
// Exhaustive breadth-first model checking of the pure Raft core (src/raft, as it is): every
// interleaving of the bounded events, the Raft invariants checked in every state, the shortest
// trace printed for a violation or for a goal reached. Exits 1 on a violation.

import { parseArgs } from 'node:util';
import { EntryType, StateType } from '../../src/raft/index.js';
import type { McState } from './model.js';
import { search } from './search.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    proposals: { type: 'string', default: '1' },
    timeouts: { type: 'string', default: '2' },
    heartbeats: { type: 'string', default: '1' },
    drops: { type: 'string', default: '0' },
    duplicates: { type: 'string', default: '0' },
    crashes: { type: 'string', default: '0' },
    depth: { type: 'string', default: '40' },
    'max-states': { type: 'string', default: '200000' },
    goal: { type: 'string' },
  },
});

/** Goals as DSLabs states them: a state the search must be able to reach. */
const goals: Record<string, (s: McState) => boolean> = {
  // A client's value is committed (the leader applied it).
  committed: (s) => s.nodes.some((n) => n.raw?.basicStatus().raftState === StateType.Leader && committedValue(n.raw.inspect().raftLog.applied, n)),
  // A client's value is applied by every member.
  'applied-everywhere': (s) => s.nodes.every((n) => n.raw !== undefined && committedValue(n.raw.inspect().raftLog.applied, n)),
};

function committedValue(applied: number, n: McState['nodes'][number]): boolean {
  if (applied === 0) return false;
  const st = n.storage;
  const first = st.firstIndex();
  return st.entries(first, applied + 1, Number.MAX_SAFE_INTEGER).some((e) => e.type === EntryType.Normal && e.data.length > 0);
}

const num = (k: keyof typeof values): number => Number(values[k]);
const goal = values.goal ? goals[values.goal] : undefined;
if (values.goal && !goal) {
  console.error(`mc: unknown goal ${values.goal} (known: ${Object.keys(goals).join(', ')})`);
  process.exit(2);
}
const budget = {
  proposals: num('proposals'),
  timeouts: num('timeouts'),
  heartbeats: num('heartbeats'),
  drops: num('drops'),
  duplicates: num('duplicates'),
  crashes: num('crashes'),
};
const started = performance.now();
console.log(`mc: ${num('nodes')} nodes, budget ${JSON.stringify(budget)}, depth <= ${num('depth')}, states <= ${num('max-states')}${values.goal ? `, goal ${values.goal}` : ''}`);
const r = search({
  nodes: num('nodes'),
  budget,
  maxDepth: num('depth'),
  maxStates: num('max-states'),
  goal,
  onProgress: (states, depth) => process.stderr.write(`\r  depth ${depth}: ${states} states`),
});
process.stderr.write('\n');
const secs = ((performance.now() - started) / 1000).toFixed(1);
console.log(`mc: ${r.states} distinct states, ${r.transitions} transitions, depth ${r.depth}, ${secs} s${r.exhaustive ? ', the bounded space explored completely' : ''}`);
if (r.violation) {
  console.log(`VIOLATION of ${r.violation.property}: ${r.violation.message}\nshortest trace (${r.violation.trace.length} events):`);
  r.violation.trace.forEach((l, i) => console.log(`  ${String(i + 1).padStart(3)}. ${l}`));
  process.exit(1);
}
if (goal) {
  if (!r.goal) {
    console.log(`goal ${values.goal} NOT reached within the bounds`);
    process.exit(1);
  }
  console.log(`goal ${values.goal} reached; shortest trace (${r.goal.trace.length} events):`);
  r.goal.trace.forEach((l, i) => console.log(`  ${String(i + 1).padStart(3)}. ${l}`));
}
console.log('no invariant violated');
