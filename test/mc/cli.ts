// `npm run mc -- [--scenario NAME | --all] [--depth N] [--budget kind=n,...] [--time S]
//                [--max-states N] [--no-symmetry] [--goals] [--mutation NAME] [--replay PATH] [--list]`
// Exhaustive breadth-first model checking of the pure Raft core (src/raft, as it is): every
// interleaving of a scenario's bounded events, the Raft invariants checked in every state,
// the shortest trace printed for a violation or a goal. Exits 1 on a violation.
// --mutation loads the core with a deliberate bug (mutations.ts) to show the checker finds it;
// it must be registered before anything imports the core, hence the dynamic import below.

import { parseArgs } from 'node:util';
import { registerMutation } from './register-mutation.js';

const { values } = parseArgs({
  options: {
    scenario: { type: 'string', default: 'elections' },
    all: { type: 'boolean', default: false },
    depth: { type: 'string' },
    budget: { type: 'string' },
    time: { type: 'string', default: '110' },
    'max-states': { type: 'string', default: '20000000' },
    'no-symmetry': { type: 'boolean', default: false },
    goals: { type: 'boolean', default: false },
    mutation: { type: 'string' },
    replay: { type: 'string' },
    list: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

if (values.mutation && !process.env.RAFT_MUTATION) registerMutation(values.mutation);
const { runCli } = await import('./run.js');
process.exitCode = await runCli({
  scenarios: values.all ? 'all' : [values.scenario],
  depth: values.depth === undefined ? undefined : Number(values.depth),
  budget: values.budget,
  maxMs: Number(values.time) * 1000,
  maxStates: Number(values['max-states']),
  symmetry: !values['no-symmetry'],
  stopAtGoals: values.goals,
  mutation: values.mutation ?? process.env.RAFT_MUTATION,
  replay: values.replay,
  list: values.list,
  json: values.json,
});
