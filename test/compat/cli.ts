// Long differential runs against real etcd 3.4 (the test runs a few short ones):
//   node dist/test/compat/cli.js [--seed N] [--seeds K] [--steps M] [--members 3] [--keep-going] [--auth | --gateway] [--trace]
// Starts one etcd member and a raftkv cluster on free ports, runs K sequences of M steps
// (seeds N … N+K-1, one after the other on the same servers), prints each divergence with the
// steps before it, and stops everything it started. Exit code 1 if any sequence diverged.

import { Command } from 'commander';
import { authSteps, forgetPasswords } from './auth-steps.js';
import { gatewaySteps } from './gateway-steps.js';
import { FRESH, type Known, describeDivergence, describeStep, runSequence } from './differential.js';
import { type Servers, startServers } from './servers.js';

const program = new Command()
  .option('--seed <n>', 'first seed', '1')
  .option('--seeds <k>', 'how many sequences', '5')
  .option('--steps <m>', 'steps per sequence', '500')
  .option('--members <n>', 'raftkv members', '3')
  .option('--keep-going', 'after a divergence, restart both servers and go on with the next seed')
  .option('--auth', 'auth steps (users, roles, permissions) with KV steps made as those users')
  .option('--gateway', 'the KV, Txn, compaction and lease steps over the HTTP/JSON gateway')
  .option('--trace', 'print every step and the answer both gave')
  .parse();
const o = program.opts<{ seed: string; seeds: string; steps: string; members: string; keepGoing?: boolean; auth?: boolean; gateway?: boolean; trace?: boolean }>();
const trace = o.trace ? (i: number, step: unknown, outcome: unknown) => process.stdout.write(`${i} ${describeStep(step)}\n  -> ${JSON.stringify(outcome)}\n`) : undefined;

async function servers(): Promise<Servers> {
  forgetPasswords();
  return startServers(Number(o.members));
}

async function main(): Promise<number> {
  let s = await servers();
  let known: Known = FRESH;
  let diverged = 0;
  try {
    for (let i = 0; i < Number(o.seeds); i++) {
      const seed = Number(o.seed) + i;
      const t0 = Date.now();
      const r = o.auth
        ? await runSequence(s.ref, s.cand, seed, Number(o.steps), known, trace, authSteps)
        : o.gateway
          ? await runSequence(s.ref, s.cand, seed, Number(o.steps), known, trace, gatewaySteps)
          : await runSequence(s.ref, s.cand, seed, Number(o.steps), known, trace);
      if (!r.divergence) {
        const kept = r.deviations > 0 ? `, ${r.deviations} differences kept on purpose` : '';
        process.stdout.write(`seed ${seed}: ${o.steps} steps agree (${Date.now() - t0} ms, revision ${r.known.revision}${kept})\n`);
        known = r.known;
        continue;
      }
      diverged++;
      process.stdout.write(`${describeDivergence(r.divergence)}\n`);
      if (!o.keepGoing) break;
      await s.close();
      s = await servers();
      known = FRESH;
    }
  } finally {
    await s.close();
  }
  return diverged > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(2);
  },
);
