// Breadth-first search over every interleaving of the model's events (as DSLabs searches),
// with states hashed in canonical form so each is expanded once. The invariants are checked
// in every state reached (model.ts step); a violation comes back with the shortest trace that
// reaches it. A goal search stops at the first state where a predicate holds, and proves it
// reachable with the shortest trace; with no goal, the search covers the whole bounded space.

import { InvariantViolation } from '../sim/invariants.js';
import { type Budget, type McEvent, type McState, canonical, describeEvent, enabled, initialState, step } from './model.js';

export interface SearchOptions {
  nodes: number;
  budget: Budget;
  /** Events in one trace at most. */
  maxDepth: number;
  /** Distinct states at most (the search reports it stopped early). */
  maxStates: number;
  /** Stop at the first state where this holds (a goal search). */
  goal?: (s: McState) => boolean;
  onProgress?: (states: number, depth: number) => void;
}

export interface SearchResult {
  states: number;
  transitions: number;
  depth: number;
  /** The whole bounded space was explored (no state limit hit, no goal stop). */
  exhaustive: boolean;
  violation?: { property: string; message: string; trace: string[] };
  goal?: { trace: string[] };
}

interface Visit {
  state: McState;
  parent: number; // index into `trail`, -1 for the root
  label: string;
}

export function search(o: SearchOptions): SearchResult {
  const root = initialState(o.nodes, o.budget);
  const seen = new Set<string>([canonical(root)]);
  // Every visited state's way back to the root, for the shortest trace.
  const trail: Array<{ parent: number; label: string }> = [{ parent: -1, label: 'init' }];
  const traceOf = (i: number): string[] => {
    const out: string[] = [];
    for (let j = i; j > 0; j = trail[j]!.parent) out.push(trail[j]!.label);
    return out.reverse();
  };
  let frontier: Array<Visit & { at: number }> = [{ state: root, parent: -1, label: 'init', at: 0 }];
  let transitions = 0;
  let depth = 0;
  if (o.goal?.(root)) return { states: 1, transitions, depth, exhaustive: false, goal: { trace: [] } };
  while (frontier.length > 0 && depth < o.maxDepth) {
    depth++;
    const next: typeof frontier = [];
    for (const v of frontier) {
      for (const ev of enabled(v.state)) {
        const label = describeEvent(v.state, ev);
        let s: McState | undefined;
        try {
          s = step(v.state, ev as McEvent);
        } catch (e) {
          if (!(e instanceof InvariantViolation)) throw e;
          return {
            states: seen.size,
            transitions,
            depth,
            exhaustive: false,
            violation: { property: e.property, message: e.message, trace: [...traceOf(v.at), label] },
          };
        }
        transitions++;
        if (!s) continue;
        const h = canonical(s);
        if (seen.has(h)) continue;
        seen.add(h);
        trail.push({ parent: v.at, label });
        const at = trail.length - 1;
        if (o.goal?.(s)) return { states: seen.size, transitions, depth, exhaustive: false, goal: { trace: traceOf(at) } };
        if (seen.size >= o.maxStates) return { states: seen.size, transitions, depth, exhaustive: false };
        next.push({ state: s, parent: v.at, label, at });
      }
    }
    o.onProgress?.(seen.size, depth);
    frontier = next;
  }
  return { states: seen.size, transitions, depth, exhaustive: frontier.length === 0 };
}
