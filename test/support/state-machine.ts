// A state machine on its own (no server), for tests of apply and snapshot images.

import { Lessor } from '../../src/kv/lessor.js';
import { StateMachine } from '../../src/server/state-machine.js';

export function newStateMachine(): StateMachine {
  return new StateMachine(new Lessor(1n, () => 0), () => ({ clusterId: 1n, memberId: 1n, revision: 0n, raftTerm: 1n }));
}
