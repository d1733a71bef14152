// What `npm run mc` does once the core is loaded (cli.ts): run the scenarios' searches, print
// the numbers, the goals and the shortest counterexample as a golden-format trace with the
// command that replays it.

import { MUTATIONS } from './mutations.js';
import { type ModelContext, silentLogger } from './model.js';
import { BUDGET_KINDS, type Budget, SCENARIOS, type Scenario, scenarioByName } from './scenarios.js';
import { type SearchResult, search } from './search.js';
import { parsePath, pathText, replay } from './trace.js';

export interface CliOptions {
  scenarios: string[] | 'all';
  depth?: number;
  budget?: string;
  maxMs: number;
  maxStates: number;
  symmetry: boolean;
  stopAtGoals: boolean;
  mutation?: string;
  replay?: string;
  list: boolean;
  json: boolean;
}

/** The scenario with the command line's budget overrides ("timeouts=3,crashes=1"). */
export function withBudget(sc: Scenario, text: string | undefined): Scenario {
  if (!text) return sc;
  const budget: Budget = { ...sc.budget };
  for (const kv of text.split(',')) {
    const [k, v] = kv.split('=');
    if (!(BUDGET_KINDS as readonly string[]).includes(k ?? '') || !Number.isInteger(Number(v))) {
      throw new Error(`bad --budget item ${JSON.stringify(kv)} (kinds: ${BUDGET_KINDS.join(', ')})`);
    }
    budget[k as keyof Budget] = Number(v);
  }
  return { ...sc, budget };
}

const budgetText = (b: Budget): string =>
  BUDGET_KINDS.filter((k) => b[k] > 0)
    .map((k) => `${k}=${b[k]}`)
    .join(',');

export function replayCommand(sc: Scenario, base: Scenario, mutation: string | undefined, path: readonly number[]): string {
  const budget = budgetText(sc.budget) !== budgetText(base.budget) ? ` --budget ${budgetText(sc.budget)}` : '';
  return `npm run mc -- --scenario ${sc.name}${budget}${mutation ? ` --mutation ${mutation}` : ''} --replay ${pathText(path) || "''"}`;
}

const mb = (b: number): string => `${(b / 1048576).toFixed(0)} MB`;

export function summary(r: SearchResult): string {
  const secs = r.ms / 1000;
  const bound = r.exhaustive ? 'the bounded space explored completely' : r.stoppedBy ? `stopped: ${r.stoppedBy}` : 'bounded by depth';
  const cpu = r.cpuMs / 1000;
  return `${r.explored} states explored, ${r.unique} unique, depth ${r.depth}, ${secs.toFixed(1)} s (${cpu.toFixed(1)} s CPU), ${Math.round(r.explored / secs)} states/s (${Math.round(r.explored / cpu)} per CPU-second; ${Math.round(r.unique / secs)} unique/s), heap ${mb(r.heapBytes)} (fingerprints ${mb(r.fingerprintBytes)}); ${bound}`;
}

export async function runCli(o: CliOptions): Promise<number> {
  if (o.list) {
    for (const s of SCENARIOS) console.log(`${s.name.padEnd(26)} ${s.about} [budget ${budgetText(s.budget)}, depth ${s.depth}]`);
    console.log('');
    for (const m of MUTATIONS) console.log(`--mutation ${m.name.padEnd(30)} ${m.bug} [scenario ${m.scenario}]`);
    return 0;
  }
  const names = o.scenarios === 'all' ? SCENARIOS.map((s) => s.name) : o.scenarios;
  let failed = 0;
  for (const name of names) {
    const base = scenarioByName(name);
    const sc = withBudget(base, o.budget);
    const core = o.mutation ? `core with mutation ${o.mutation}` : 'core unchanged';
    if (o.replay !== undefined) {
      const path = parsePath(o.replay);
      const r = replay(sc, path);
      console.log(`# replay of scenario ${sc.name} (${core}), ${path.length} events\n`);
      console.log(r.text);
      const bad = sc.goals.find((g) => g.kind === 'unreachable' && g.holds(r.final));
      if (bad) console.log(`VIOLATION goal "${bad.name}" is unreachable, but this state reaches it`);
      if (r.violation || bad) failed++;
      continue;
    }
    const depth = o.depth ?? sc.depth;
    console.log(`mc: scenario ${sc.name}: ${sc.about}`);
    console.log(`    budget ${budgetText(sc.budget)}, depth <= ${depth}, ${o.symmetry && sc.symmetric.length > 1 ? `symmetry over members ${sc.symmetric.join(',')}` : 'no symmetry'}; ${core}`);
    const cx: ModelContext = { sc, logger: silentLogger };
    const r = await search({
      cx,
      maxDepth: depth,
      maxStates: o.maxStates,
      maxMs: o.maxMs,
      symmetry: o.symmetry,
      stopAtGoals: o.stopAtGoals,
      onLevel: (p) => {
        process.stderr.write(`    depth ${p.depth}: ${p.unique} unique, ${p.explored} explored, frontier ${p.frontier}, ${(p.ms / 1000).toFixed(1)} s\n`);
      },
    });
    console.log(`    ${summary(r)}`);
    if (o.json) console.log(JSON.stringify({ scenario: sc.name, mutation: o.mutation ?? null, ...r, reached: Object.fromEntries(r.reached), heapMB: r.heapBytes / 1048576 }));
    for (const g of sc.goals) {
      if (g.kind === 'reachable') {
        const p = r.reached.get(g.name);
        console.log(p ? `    goal reached: ${g.name}, in ${p.length} events (${replayCommand(sc, base, o.mutation, p)})` : `    goal NOT reached within the bound: ${g.name}`);
      } else if (!r.violation) console.log(`    goal unreachable${r.exhaustive ? '' : ' (so far)'}: ${g.name}`);
    }
    if (r.violation) {
      failed++;
      const t = replay(sc, r.violation.path);
      console.log(`\nVIOLATION of ${r.violation.property}: ${r.violation.message}`);
      const prefix = sc.prefix?.length ?? 0;
      console.log(`found at depth ${r.violation.path.length - prefix}${prefix ? ` (after the scenario's ${prefix}-event set-up)` : ''} after ${(r.ms / 1000).toFixed(1)} s; shortest counterexample, ${r.violation.path.length} events:\n`);
      console.log(t.text);
      console.log(`replay: ${replayCommand(sc, base, o.mutation, r.violation.path)}\n`);
    } else console.log('    no invariant violated');
  }
  return failed > 0 ? 1 : 0;
}
