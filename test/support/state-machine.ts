// A state machine on its own (no server), for tests of apply and snapshot images.

import { Lessor } from '../../src/kv/lessor.js';
import type { Entry } from '../../src/raft/index.js';
import { type Applied, type ResponseWanted, StateMachine } from '../../src/server/state-machine.js';

export function newStateMachine(lessor = new Lessor(1n, () => 0)): StateMachine {
  return new StateMachine(lessor, () => ({ clusterId: 1n, memberId: 1n, revision: 0n, raftTerm: 1n }));
}

/** sm.applyNormal for an entry applied in one go (none of a test's small ones is applied in slices). */
export function applyNow(sm: StateMachine, e: Entry, wanted?: ResponseWanted): Applied {
  const r = sm.applyNormal(e, wanted);
  if (r instanceof Promise) throw new Error(`entry ${e.index} was applied in slices`);
  return r;
}
