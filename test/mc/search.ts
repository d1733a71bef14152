// Breadth-first search over every interleaving of a scenario's events (as DSLabs searches),
// with each state's canonical fingerprint kept so that a state is expanded once. The
// invariants are checked in every state reached (model.ts step); goals are evaluated in every
// new state. Breadth-first means the first violation or goal found has a shortest trace. A
// trace is kept as the position of each event in the enabled list of the state before it, so
// it replays exactly (trace.ts) and costs 6 bytes per visited state.

import { fingerprinter } from './canonical.js';
import { FingerprintSet } from './fingerprints.js';
import { InvariantViolation } from './invariants.js';
import { type McState, type ModelContext, enabled, step } from './model.js';
import { startState } from './start.js';

export interface SearchOptions {
  cx: ModelContext;
  /** Events in one trace at most. */
  maxDepth: number;
  /** Distinct states at most (the search reports it stopped early). */
  maxStates: number;
  /** Stop after this long (checked between states). */
  maxMs?: number;
  /** Rename interchangeable members (scenario.symmetric) to one canonical state. */
  symmetry: boolean;
  /** Stop as soon as every reachable goal was reached (a goal search). */
  stopAtGoals?: boolean;
  onLevel?: (r: SearchProgress) => void;
}

export interface SearchProgress {
  /** Transitions computed (states generated, duplicates included). */
  explored: number;
  /** Distinct states (after symmetry). */
  unique: number;
  /** Depth fully explored. */
  depth: number;
  frontier: number;
  ms: number;
  /** CPU time of this process (the machine is shared: wall time alone says little). */
  cpuMs: number;
  heapBytes: number;
}

export interface SearchResult extends SearchProgress {
  /** The whole bounded space was explored (no state or time limit hit, no stop). */
  exhaustive: boolean;
  stoppedBy?: 'states' | 'time' | 'violation' | 'goals';
  violation?: { property: string; message: string; path: number[] };
  /** Reachable goals reached: the shortest path to each. */
  reached: Map<string, number[]>;
  fingerprintBytes: number;
  /** The progress at the end of each complete depth (for extrapolating bounds). */
  levels: SearchProgress[];
}

export async function search(o: SearchOptions): Promise<SearchResult> {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const { cx } = o;
  const fp = await fingerprinter(o.symmetry ? cx.sc.symmetric : []);
  const seen = new FingerprintSet(20);
  // Visited state i came from state parent[i] by the choice[i]-th enabled event.
  let parent = new Int32Array(1 << 16);
  let choice = new Uint16Array(1 << 16);
  const start = startState(cx);
  // Paths start from the initial state: the scenario's prefix, then the search's events.
  const pathOf = (i: number): number[] => {
    const out: number[] = [];
    for (let j = i; j > 0; j = parent[j]!) out.push(choice[j]!);
    return [...start.path, ...out.reverse()];
  };
  const reachable = cx.sc.goals.filter((g) => g.kind === 'reachable');
  const unreachable = cx.sc.goals.filter((g) => g.kind === 'unreachable');
  const reached = new Map<string, number[]>();
  let heapBytes = 0;
  const levels: SearchProgress[] = [];
  let explored = 0;
  let depth = 0;
  const progress = (frontier: number): SearchProgress => {
    heapBytes = Math.max(heapBytes, process.memoryUsage().heapUsed);
    const cpu = process.cpuUsage(cpu0);
    return { explored, unique: seen.size, depth, frontier, ms: performance.now() - t0, cpuMs: (cpu.user + cpu.system) / 1000, heapBytes };
  };
  const finish = (frontier: number, exhaustive: boolean, extra: Partial<SearchResult> = {}): SearchResult => ({
    ...progress(frontier),
    exhaustive,
    reached,
    fingerprintBytes: seen.bytes(),
    levels,
    ...extra,
  });
  /** Goals of a new state: true if the search must stop. */
  const judge = (s: McState, at: number): SearchResult['violation'] | undefined => {
    for (const g of unreachable) if (g.holds(s)) return { property: `goal "${g.name}" is unreachable`, message: `reached: ${g.name}`, path: pathOf(at) };
    for (const g of reachable) if (!reached.has(g.name) && g.holds(s)) reached.set(g.name, pathOf(at));
    return undefined;
  };

  const root = start.state;
  seen.add(fp(root));
  const rootViolation = judge(root, 0);
  if (rootViolation) return finish(1, false, { stoppedBy: 'violation', violation: rootViolation });
  let frontier: Array<{ state: McState; at: number }> = [{ state: root, at: 0 }];
  let count = 1;
  while (frontier.length > 0 && depth < o.maxDepth) {
    const next: typeof frontier = [];
    for (let f = 0; f < frontier.length; f++) {
      const v = frontier[f]!;
      frontier[f] = undefined as never; // let the expanded state go
      const evs = enabled(cx, v.state);
      for (let k = 0; k < evs.length; k++) {
        let s: McState | undefined;
        try {
          s = step(cx, v.state, evs[k]!);
        } catch (e) {
          if (!(e instanceof InvariantViolation)) throw e;
          explored++;
          depth++;
          return finish(next.length, false, { stoppedBy: 'violation', violation: { property: e.property, message: e.message, path: [...pathOf(v.at), k] } });
        }
        explored++;
        if (!s || !seen.add(fp(s))) continue;
        if (count === parent.length) {
          const p = new Int32Array(count * 2);
          p.set(parent);
          parent = p;
          const c = new Uint16Array(count * 2);
          c.set(choice);
          choice = c;
        }
        parent[count] = v.at;
        choice[count] = k;
        const at = count++;
        const bad = judge(s, at);
        if (bad) {
          depth++;
          return finish(next.length, false, { stoppedBy: 'violation', violation: bad });
        }
        if (o.stopAtGoals && reachable.length > 0 && reached.size === reachable.length) {
          depth++;
          return finish(next.length, false, { stoppedBy: 'goals' });
        }
        next.push({ state: s, at });
      }
      if (seen.size >= o.maxStates) return finish(next.length, false, { stoppedBy: 'states' });
      if (o.maxMs !== undefined && performance.now() - t0 > o.maxMs) return finish(next.length, false, { stoppedBy: 'time' });
    }
    depth++;
    frontier = next;
    const p = progress(frontier.length);
    levels.push(p);
    o.onLevel?.(p);
  }
  return finish(frontier.length, frontier.length === 0);
}
