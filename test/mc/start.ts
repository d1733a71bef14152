// Where a scenario's search starts: its initial state, or the state its prefix of events leads
// to (scenario.prefix, written as trace commands so that a reader sees the set-up).

import { type McState, type ModelContext, enabled, initialState, step } from './model.js';
import { commandText } from './trace.js';

export interface Start {
  state: McState;
  /** The prefix as positions in each state's enabled events (a replay path starts with it). */
  path: number[];
}

export function startState(cx: ModelContext): Start {
  let state = initialState(cx);
  const path: number[] = [];
  for (const cmd of cx.sc.prefix ?? []) {
    const evs = enabled(cx, state);
    const k = evs.findIndex((ev) => commandText(cx, state, ev) === cmd);
    if (k < 0) throw new Error(`scenario ${cx.sc.name}: prefix event "${cmd}" is not enabled; enabled: ${evs.map((ev) => commandText(cx, state, ev)).join(' | ')}`);
    state = step(cx, state, evs[k]!) ?? state;
    path.push(k);
  }
  return { state, path };
}
