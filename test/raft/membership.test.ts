// Membership changes (joint consensus, learners) and leadership transfer in the core.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  EntryType,
  ErrProposalDropped,
  MessageType,
  StateType,
} from '../../src/raft/index.js';
import { TestNet } from './harness.js';

const cc = (changes: ConfChangeV2['changes'], transition = ConfChangeTransition.Auto): ConfChangeV2 => ({
  transition,
  changes,
  context: new Uint8Array(0),
});

describe('learners', () => {
  it('a learner receives the log but is not counted and never campaigns', () => {
    const net = TestNet.of(3, {}, new Map([[3n, { learners: [3n] }], [1n, { learners: [3n] }], [2n, { learners: [3n] }]]));
    net.campaign(1);
    net.propose(1, 'x');
    assert.equal(net.peer(3).applied.at(-1) && new TextDecoder().decode(net.peer(3).applied.at(-1)!.data), 'x');
    net.tick(3, 100);
    assert.equal(net.peer(3).state, StateType.Follower);
    assert.equal(net.peer(1).state, StateType.Leader);
    // With 2 down, the leader (1 of 2 voters) cannot commit even though the learner acks.
    net.isolate(2);
    const c = net.peer(1).raft.raftLog.committed;
    net.propose(1, 'y');
    assert.equal(net.peer(1).raft.raftLog.committed, c);
  });

  it('a learner is promoted to voter by a conf change', () => {
    const per = new Map([[1n, { learners: [3n] }], [2n, { learners: [3n] }], [3n, { learners: [3n] }]]);
    const net = TestNet.of(3, {}, per);
    net.campaign(1);
    net.peer(1).node.proposeConfChange(cc([{ type: ConfChangeType.AddNode, nodeId: 3n }]));
    net.settle();
    for (const p of net.peers.values()) assert.deepEqual(p.raft.trk.confState().voters, [1n, 2n, 3n]);
    assert.equal(net.peer(3).raft.isLearner, false);
  });
});

describe('joint consensus (§6)', () => {
  it('replacing a voter goes through C_old,new and leaves it automatically', () => {
    const net = TestNet.of(4, {}, new Map([1n, 2n, 3n, 4n].map((id) => [id, { learners: [4n] }])));
    net.campaign(1);
    net.peer(1).node.proposeConfChange(
      cc([
        { type: ConfChangeType.AddNode, nodeId: 4n },
        { type: ConfChangeType.RemoveNode, nodeId: 3n },
      ]),
    );
    net.settle();
    const leader = net.peer(1).raft;
    assert.equal(leader.trk.config.voters.isJoint(), false, 'left the joint config');
    assert.deepEqual(leader.trk.confState().voters, [1n, 2n, 4n]);
    // Two conf change entries were committed: enter joint, then the automatic leave.
    const confEntries = net.peer(2).applied.filter((e) => e.type === EntryType.ConfChangeV2);
    assert.equal(confEntries.length, 2);
  });

  it('while joint, a decision needs majorities of both configurations', () => {
    const net = TestNet.of(5, {}, new Map([1n, 2n, 3n, 4n, 5n].map((id) => [id, { learners: [4n, 5n] }])));
    net.campaign(1);
    // Enter (1 2 4 5) && (1 2 3) explicitly and stay there.
    net.peer(1).node.proposeConfChange(
      cc(
        [
          { type: ConfChangeType.AddNode, nodeId: 4n },
          { type: ConfChangeType.AddNode, nodeId: 5n },
          { type: ConfChangeType.RemoveNode, nodeId: 3n },
        ],
        ConfChangeTransition.JointExplicit,
      ),
    );
    net.settle();
    const r = net.peer(1).raft;
    assert.equal(r.trk.config.voters.isJoint(), true);
    // 1, 4, 5 are a majority of the new config but only 1 of (1 2 3): nothing commits.
    net.isolate(2);
    net.isolate(3);
    const c = r.raftLog.committed;
    net.propose(1, 'needs-both');
    assert.equal(r.raftLog.committed, c);
    // With 2 back, (1 2) is a majority of the old config too.
    net.recover();
    net.isolate(3);
    net.tick(1, 1);
    assert.ok(r.raftLog.committed > c);
  });

  it('only one conf change may be pending: a second one becomes a no-op', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.ignore.add(MessageType.MsgApp);
    const n1 = net.peer(1).node;
    n1.proposeConfChange(cc([{ type: ConfChangeType.AddLearnerNode, nodeId: 4n }]));
    n1.proposeConfChange(cc([{ type: ConfChangeType.AddLearnerNode, nodeId: 5n }]));
    net.settle();
    const last = n1.inspect().raftLog.lastIndex();
    const tail = n1.inspect().raftLog.slice(last - 1, last + 1, Number.MAX_SAFE_INTEGER);
    assert.equal(tail[0]!.type, EntryType.ConfChangeV2);
    assert.equal(tail[1]!.type, EntryType.Normal, 'the second change was neutralized');
  });

  it('a leader removed from the configuration steps down', () => {
    const net = TestNet.of(3, { extra: { stepDownOnRemoval: true } });
    net.campaign(1);
    net.peer(1).node.proposeConfChange(cc([{ type: ConfChangeType.RemoveNode, nodeId: 1n }]));
    net.settle();
    assert.notEqual(net.peer(1).state, StateType.Leader);
    net.tickAll(30);
    const leaders = net.leaders();
    assert.equal(leaders.length, 1);
    assert.notEqual(leaders[0]!.id, 1n);
  });
});

describe('leadership transfer (thesis §3.10)', () => {
  it('transfers to an up-to-date follower', () => {
    const net = TestNet.of(3, { preVote: true, checkQuorum: true });
    net.campaign(1);
    net.peer(1).node.transferLeader(2n);
    net.settle();
    assert.equal(net.peer(2).state, StateType.Leader);
    assert.equal(net.peer(1).state, StateType.Follower);
  });

  it('brings a lagging target up to date first, and drops proposals meanwhile', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.propose(1, 'b');
    net.peer(1).node.transferLeader(3n);
    net.settle();
    assert.equal(net.peer(1).state, StateType.Leader);
    assert.throws(() => net.peer(1).node.propose(new Uint8Array([1])), ErrProposalDropped);
    net.recover();
    net.tick(1, 1);
    assert.equal(net.peer(3).state, StateType.Leader);
    assert.deepEqual(net.peer(3).logTerms().slice(0, -1), net.peer(1).logTerms().slice(0, net.peer(3).logTerms().length - 1));
  });

  it('an unfinished transfer is abandoned after an election timeout', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.isolate(3);
    net.propose(1, 'a');
    net.peer(1).node.transferLeader(3n);
    net.settle();
    net.tick(1, 10);
    assert.equal(net.peer(1).raft.leadTransferee, 0n);
    net.propose(1, 'accepted again');
  });
});
