// The model checker in npm test: small bounds that finish in seconds. Longer searches run with
// `npm run mc -- ...` (see test/mc/cli.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Message, MessageType, NONE, StateType } from '../../src/raft/index.js';
import { initialState } from './model.js';
import { search } from './search.js';

const none = { proposals: 0, timeouts: 0, heartbeats: 0, drops: 0, duplicates: 0, crashes: 0 };

describe('model checking the pure core (BFS over every interleaving)', () => {
  it('one election with a crash and a restart: the whole bounded space, no invariant violated', () => {
    const r = search({ nodes: 3, budget: { ...none, timeouts: 1, crashes: 1 }, maxDepth: 40, maxStates: 50_000 });
    assert.equal(r.violation, undefined, r.violation?.message);
    assert.ok(r.exhaustive, `not exhaustive: ${r.states} states`);
    assert.ok(r.states > 50, `${r.states} states`);
  });

  it('goal: a state where a proposed value is committed is reachable (shortest trace)', () => {
    const r = search({
      nodes: 3,
      budget: { ...none, timeouts: 1, proposals: 1 },
      maxDepth: 20,
      maxStates: 50_000,
      goal: (s) =>
        s.nodes.some((n) => {
          const raft = n.raw?.inspect();
          if (!raft || raft.state !== StateType.Leader) return false;
          const ents = n.storage.entries(n.storage.firstIndex(), raft.raftLog.applied + 1, Number.MAX_SAFE_INTEGER);
          return ents.some((e) => e.data.length > 0 && new TextDecoder().decode(e.data) === 'v1');
        }),
    });
    assert.equal(r.violation, undefined, r.violation?.message);
    assert.ok(r.goal, 'the value could not be committed');
    // Elect (timeout, a vote, its answer), replicate the no-op, propose, replicate the value.
    assert.equal(r.goal.trace.length, 8, r.goal.trace.join('\n'));
    assert.match(r.goal.trace.at(-1)!, /MsgAppResp/);
  });

  it('finds a planted bug — a member that forgets its vote — with the shortest trace to two leaders in one term', () => {
    const proto = Object.getPrototypeOf(initialState(3, none).nodes[0]!.raw!.inspect()) as { step(m: Message): void };
    const original = proto.step;
    proto.step = function (this: { term: number; vote: bigint; lead: bigint }, m: Message) {
      // The bug: a vote request of the current term finds the vote forgotten (as if not persisted).
      if (m.type === MessageType.MsgVote && m.term === this.term && this.lead === NONE) this.vote = NONE;
      original.call(this, m);
    };
    try {
      const r = search({ nodes: 3, budget: { ...none, timeouts: 2 }, maxDepth: 12, maxStates: 50_000 });
      assert.ok(r.violation, 'no violation found');
      assert.equal(r.violation.property, 'election safety');
      // Two campaigns, both vote requests to the same voter, both answers: six events.
      assert.equal(r.violation.trace.length, 6, r.violation.trace.join('\n'));
    } finally {
      proto.step = original;
    }
  });
});
