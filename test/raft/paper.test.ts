// Scenario tests from the Raft paper (Ongaro & Ousterhout 2014) and the thesis, one rule each.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ErrProposalDropped,
  MessageType,
  NONE,
  ReadOnlyOption,
  StateType,
  emptyConfState,
  MemoryStorage,
  RawNode,
  SeededRand,
} from '../../src/raft/index.js';
import { TestNet, ents, msg } from './harness.js';

describe('leader election (§5.2)', () => {
  it('a campaigning node with votes from a majority becomes leader; the others follow', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    assert.equal(net.peer(1).state, StateType.Leader);
    assert.equal(net.peer(2).state, StateType.Follower);
    assert.equal(net.peer(2).raft.lead, 1n);
    assert.equal(net.peer(1).term, 1);
  });

  it('a candidate without a majority does not become leader', () => {
    const net = TestNet.of(5);
    net.isolate(1);
    net.cutLink(1, 2); // already cut; 1 can reach nobody
    net.campaign(1);
    assert.equal(net.peer(1).state, StateType.Candidate);
  });

  it('an election timeout with no leader starts an election; randomized timeouts elect exactly one', () => {
    const net = TestNet.of(5);
    net.tickAll(40);
    const leaders = net.leaders();
    assert.equal(leaders.length, 1);
    for (const p of net.peers.values()) assert.equal(p.raft.lead, leaders[0]!.id);
  });

  it('a node grants at most one vote per term', () => {
    const net = TestNet.of(3);
    const p3 = net.peer(3);
    p3.raft.step(msg(MessageType.MsgVote, 1, 3, { term: 5, index: 10, logTerm: 5 }));
    p3.raft.step(msg(MessageType.MsgVote, 2, 3, { term: 5, index: 10, logTerm: 5 }));
    const out = net.flush(p3).filter((m) => m.type === MessageType.MsgVoteResp);
    assert.deepEqual(
      out.map((m) => [m.to, m.reject]),
      [
        [1n, false],
        [2n, true],
      ],
    );
    assert.equal(p3.raft.vote, 1n);
    // The vote is durable before the response leaves.
    assert.equal(p3.storage.initialState().hardState.vote, 1n);
  });
});

describe('election restriction (§5.4.1)', () => {
  it('a candidate with a stale log cannot win', () => {
    // 1 has the shortest log; 2 and 3 have a newer entry.
    const per = new Map([
      [1n, { logTerms: [1], hardState: { term: 2, vote: NONE, commit: 0 } }],
      [2n, { logTerms: [1, 2], hardState: { term: 2, vote: NONE, commit: 0 } }],
      [3n, { logTerms: [1, 2], hardState: { term: 2, vote: NONE, commit: 0 } }],
    ]);
    const net = TestNet.of(3, {}, per);
    net.campaign(1);
    assert.notEqual(net.peer(1).state, StateType.Leader);
    const resps = net.delivered.filter((m) => m.type === MessageType.MsgVoteResp && m.to === 1n);
    assert.ok(resps.length === 2 && resps.every((m) => m.reject));
    // A candidate with the most up-to-date log wins.
    net.campaign(2);
    assert.equal(net.peer(2).state, StateType.Leader);
  });

  it('a higher last term beats a longer log', () => {
    const per = new Map([
      [1n, { logTerms: [1, 1, 1, 1], hardState: { term: 3, vote: NONE, commit: 0 } }],
      [2n, { logTerms: [1, 3], hardState: { term: 3, vote: NONE, commit: 0 } }],
      [3n, { logTerms: [1, 1, 1, 1], hardState: { term: 3, vote: NONE, commit: 0 } }],
    ]);
    const net = TestNet.of(3, {}, per);
    net.isolate(3);
    net.campaign(1);
    const fromTwo = net.delivered.find((m) => m.type === MessageType.MsgVoteResp && m.from === 2n && m.to === 1n);
    assert.equal(fromTwo?.reject, true, 'a longer log with an older last term is not up to date');
    assert.notEqual(net.peer(1).state, StateType.Leader);
    net.recover();
    net.campaign(2);
    assert.equal(net.peer(2).state, StateType.Leader);
  });
});

describe('log replication (§5.3)', () => {
  it('a committed entry is applied on every node', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.propose(1, 'hello');
    for (const p of net.peers.values()) {
      const last = p.applied[p.applied.length - 1]!;
      assert.equal(new TextDecoder().decode(last.data), 'hello');
    }
  });

  it('a follower forwards proposals to the leader', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.propose(2, 'via-follower');
    const data = net.peer(3).applied.map((e) => new TextDecoder().decode(e.data));
    assert.ok(data.includes('via-follower'));
  });

  it('a proposal with no leader is dropped with ErrProposalDropped', () => {
    const net = TestNet.of(3);
    assert.throws(() => net.peer(1).node.propose(new Uint8Array([1])), ErrProposalDropped);
  });

  // Figure 7: whatever the follower's log, the leader makes it identical to its own.
  const leaderLog = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
  const followers: Record<string, number[]> = {
    a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
    b: [1, 1, 1, 4],
    c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    e: [1, 1, 1, 4, 4, 4, 4],
    f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
  };
  for (const [name, flog] of Object.entries(followers)) {
    it(`Figure 7 (${name}): the leader repairs a divergent follower log`, () => {
      const per = new Map([
        [1n, { logTerms: leaderLog, hardState: { term: 8, vote: NONE, commit: 0 } }],
        [2n, { logTerms: flog, hardState: { term: 7, vote: NONE, commit: 0 } }],
        [3n, { logTerms: [], hardState: { term: 7, vote: NONE, commit: 0 } }],
      ]);
      const net = TestNet.of(3, {}, per);
      // Node 3 is a black hole; node 2 may refuse its vote (its log can be longer), so the
      // third vote is forged, as in etcd's TestLeaderSyncFollowerLog.
      net.cut.add('1>3');
      net.peer(1).node.campaign();
      net.send(msg(MessageType.MsgVoteResp, 3, 1, { term: 9 }));
      assert.equal(net.peer(1).state, StateType.Leader);
      net.propose(1, 'new');
      assert.deepEqual(net.peer(2).logTerms(), net.peer(1).logTerms());
      // Fast backtracking: a handful of round trips, not one per divergent entry.
      const rejects = net.delivered.filter((m) => m.type === MessageType.MsgAppResp && m.reject).length;
      assert.ok(rejects <= 3, `${rejects} rejections`);
    });
  }
});

describe('commitment rules (§5.4.2, Figure 8)', () => {
  it('a leader does not commit an old-term entry by counting replicas', () => {
    for (const [ackIndex, wantCommit] of [
      [1, 0],
      [2, 0],
      [3, 3],
    ] as const) {
      const st = new MemoryStorage();
      st.bootstrap({ ...emptyConfState(), voters: [1n, 2n] });
      st.append(ents([1, 2]));
      st.setHardState({ term: 2, vote: NONE, commit: 0 });
      const node = new RawNode({ id: 1n, storage: st, electionTick: 10, heartbeatTick: 1, rand: new SeededRand(1) });
      const r = node.inspect();
      r.becomeCandidate();
      r.becomeLeader(); // term 3, appends the no-op at index 3
      const rd = node.ready();
      st.append(rd.entries);
      if (rd.hardState) st.setHardState(rd.hardState);
      node.advance(rd);
      r.step(msg(MessageType.MsgAppResp, 2, 1, { term: r.term, index: ackIndex }));
      assert.equal(r.raftLog.committed, wantCommit, `ack ${ackIndex}`);
    }
  });

  it('Figure 8: an old-term entry stored on a majority is not committed until a current-term entry is', () => {
    const net = TestNet.of(5);
    // (a) S1 leads and replicates a new entry to S2 only.
    net.campaign(1);
    const base = net.peer(1).raft.raftLog.lastIndex();
    for (const id of [3, 4, 5]) net.isolate(id);
    net.propose(1, 'from-S1');
    const t2 = net.peer(1).term;
    assert.equal(net.peer(2).raft.raftLog.term(base + 1), t2);
    // (b) S1 is cut off; S5 is elected by S3, S4, S5 but replicates nothing.
    net.recover();
    net.isolate(1);
    net.isolate(2);
    net.ignore.add(MessageType.MsgApp);
    net.campaign(5);
    assert.equal(net.peer(5).state, StateType.Leader);
    // (c) S5 is cut off; S1 is elected by S1, S2, S3 (S3's log is no newer than S1's).
    net.recover();
    net.isolate(4);
    net.isolate(5);
    net.ignore.add(MessageType.MsgApp);
    net.restart(1); // S1 had crashed: it comes back as a follower
    while (net.peer(1).state !== StateType.Leader) net.campaign(1);
    const r1 = net.peer(1).raft;
    assert.ok(r1.term > t2);
    // S1 now replicates only its old entry (base+1, term t2) to S2 and S3: stored on a
    // majority (S1, S2, S3) but from an older term, so counting replicas must not commit it.
    net.ignore.clear();
    net.cutLink(1, 2);
    net.cutLink(1, 3);
    const oldEntry = { ...r1.raftLog.slice(base + 1, base + 2, Number.MAX_SAFE_INTEGER)[0]! };
    for (const to of [2, 3]) {
      // Hand-deliver the append and its answer; everything else S1 sends stays cut.
      const p = net.peer(to);
      p.raft.step(msg(MessageType.MsgApp, 1, to, { term: r1.term, index: base, logTerm: r1.raftLog.term(base), entries: [oldEntry], commit: r1.raftLog.committed }));
      for (const m of net.flush(p)) if (m.type === MessageType.MsgAppResp) r1.step(m);
      net.settle();
    }
    assert.equal(r1.trk.progress.get(2n)!.match, base + 1);
    assert.equal(r1.trk.progress.get(3n)!.match, base + 1);
    assert.ok(r1.raftLog.committed < base + 1, `committed ${r1.raftLog.committed}`);
    // Once the current-term no-op reaches the majority, both commit together.
    net.recover();
    net.isolate(4);
    net.isolate(5);
    net.tick(1, 1);
    assert.ok(r1.raftLog.committed >= base + 2);
  });
});

describe('safety across partitions', () => {
  it('an old leader partitioned away cannot commit, steps down on rejoin, and its entries are replaced', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.propose(1, 'before');
    net.isolate(1);
    net.peer(1).node.propose(new TextEncoder().encode('lost'));
    net.settle();
    const c1 = net.peer(1).raft.raftLog.committed;
    net.campaign(2);
    assert.equal(net.peer(2).state, StateType.Leader);
    net.propose(2, 'after');
    assert.equal(net.peer(1).raft.raftLog.committed, c1, 'isolated old leader commits nothing');
    net.recover();
    net.tick(2, 1); // heartbeat reaches 1
    assert.equal(net.peer(1).state, StateType.Follower);
    net.propose(2, 'later');
    assert.deepEqual(net.peer(1).logTerms(), net.peer(2).logTerms());
    const applied = net.peer(1).applied.map((e) => new TextDecoder().decode(e.data));
    assert.ok(!applied.includes('lost'));
    assert.ok(applied.includes('after') && applied.includes('later'));
  });
});

describe('PreVote (thesis §9.6)', () => {
  it('a partitioned node does not inflate its term, and does not disrupt the leader when it rejoins', () => {
    const net = TestNet.of(3, { preVote: true, checkQuorum: true });
    net.campaign(1);
    const term = net.peer(1).term;
    net.isolate(3);
    net.tick(3, 100);
    assert.equal(net.peer(3).term, term, 'term unchanged while partitioned');
    assert.equal(net.peer(3).state, StateType.PreCandidate);
    net.recover();
    net.tick(1, 1);
    assert.equal(net.peer(1).state, StateType.Leader);
    assert.equal(net.peer(1).term, term);
    assert.equal(net.peer(3).raft.lead, 1n);
  });

  it('without PreVote the same partition inflates the term and deposes the leader', () => {
    const net = TestNet.of(3, { preVote: false, checkQuorum: false });
    net.campaign(1);
    const term = net.peer(1).term;
    net.isolate(3);
    net.tick(3, 100);
    assert.ok(net.peer(3).term > term + 2);
    net.recover();
    net.tick(3, 30);
    assert.ok(net.peer(1).term > term, 'the leader had to move to a higher term');
  });
});

describe('CheckQuorum', () => {
  it('an isolated leader steps down after an election timeout', () => {
    const net = TestNet.of(3, { checkQuorum: true });
    net.campaign(1);
    net.isolate(1);
    // The first check after isolation may still see the peers' earlier activity.
    net.tick(1, 2 * 10 + 1);
    assert.equal(net.peer(1).state, StateType.Follower);
  });

  it('a leader hearing from a quorum stays leader', () => {
    const net = TestNet.of(3, { checkQuorum: true });
    net.campaign(1);
    net.isolate(3);
    net.tick(1, 50);
    assert.equal(net.peer(1).state, StateType.Leader);
  });

  it('followers ignore vote requests within the leader lease', () => {
    const net = TestNet.of(3, { checkQuorum: true });
    net.campaign(1);
    const term = net.peer(1).term;
    net.peer(3).raft.step(msg(MessageType.MsgVote, 3, 2, { term: term + 5, index: 100, logTerm: term }));
    assert.equal(net.peer(2).term, term);
  });
});

describe('ReadIndex (thesis §6.4)', () => {
  it('the leader answers with its commit index after a heartbeat quorum', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.propose(1, 'a');
    net.peer(1).node.readIndex(new TextEncoder().encode('ctx1'));
    net.settle();
    const rs = net.peer(1).readStates;
    assert.equal(rs.length, 1);
    assert.equal(rs[0]!.index, net.peer(1).raft.raftLog.committed);
    assert.equal(new TextDecoder().decode(rs[0]!.requestCtx), 'ctx1');
  });

  it('a follower read is forwarded and answered', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.peer(2).node.readIndex(new TextEncoder().encode('r2'));
    net.settle();
    assert.equal(net.peer(2).readStates.length, 1);
  });

  it('an isolated leader cannot answer (no quorum of acks)', () => {
    const net = TestNet.of(3);
    net.campaign(1);
    net.isolate(1);
    net.peer(1).node.readIndex(new TextEncoder().encode('r'));
    net.settle();
    assert.equal(net.peer(1).readStates.length, 0);
  });

  it('a new leader defers reads until it commits an entry of its term', () => {
    const net = TestNet.of(3);
    net.ignore.add(MessageType.MsgApp);
    net.campaign(1);
    net.peer(1).node.readIndex(new TextEncoder().encode('early'));
    net.settle();
    assert.equal(net.peer(1).readStates.length, 0);
    net.ignore.clear();
    net.tick(1, 1); // heartbeat responses trigger appends; the no-op commits
    net.settle();
    assert.equal(net.peer(1).readStates.length, 1);
  });
});

describe('lease-based reads (opt-in, thesis §6.4.1)', () => {
  const lease = { checkQuorum: true, extra: { readOnlyOption: ReadOnlyOption.LeaseBased } };

  it('the leader answers from its commit index without a heartbeat round', () => {
    const net = TestNet.of(3, lease);
    net.campaign(1);
    net.propose(1, 'a');
    net.settle();
    net.ignore.add(MessageType.MsgHeartbeat);
    net.peer(1).node.readIndex(new TextEncoder().encode('fast'));
    net.settle();
    const rs = net.peer(1).readStates;
    assert.equal(rs.length, 1, 'answered with heartbeats dropped');
    assert.equal(rs[0]!.index, net.peer(1).raft.raftLog.committed);
  });

  it('needs CheckQuorum (the lease is only as good as the step-down)', () => {
    assert.throws(() => TestNet.of(3, { checkQuorum: false, extra: { readOnlyOption: ReadOnlyOption.LeaseBased } }), /CheckQuorum/i);
  });
});

describe('durability contract', () => {
  it('a granted vote never leaves before it is durable: a crash before the persist sends nothing', () => {
    const net = TestNet.of(3);
    const p3 = net.peer(3);
    p3.raft.step(msg(MessageType.MsgVote, 1, 3, { term: 5, index: 10, logTerm: 5 }));
    const rd = p3.node.ready();
    assert.equal(rd.messages.filter((m) => m.type === MessageType.MsgVoteResp).length, 0, 'no vote response before the persist');
    assert.equal(rd.messagesAfterPersist.filter((m) => m.type === MessageType.MsgVoteResp && !m.reject).length, 1);
    assert.equal(rd.hardState?.vote, 1n);
    assert.ok(rd.mustSync);
    // Crash now (nothing persisted, nothing sent); after the restart a vote for 2 in the same
    // term is legitimate, because no grant for 1 ever left the node.
    const again = net.restart(3);
    again.raft.step(msg(MessageType.MsgVote, 2, 3, { term: 5, index: 10, logTerm: 5 }));
    const out = net.flush(again).filter((m) => m.type === MessageType.MsgVoteResp);
    assert.deepEqual(out.map((m) => [m.to, m.reject]), [[2n, false]]);
  });


  it('vote requests and acks wait for the persist; leader appends may go first', () => {
    const net = TestNet.of(3);
    const p1 = net.peer(1);
    p1.node.campaign();
    const rd = p1.node.ready();
    assert.equal(rd.messages.length, 0);
    assert.ok(rd.messagesAfterPersist.every((m) => m.type === MessageType.MsgVote));
    assert.ok(rd.mustSync);
    p1.storage.append(rd.entries);
    p1.storage.setHardState(rd.hardState!);
    p1.node.advance(rd);
    net.send(...rd.messagesAfterPersist);
    assert.equal(p1.state, StateType.Leader);
    p1.node.propose(new Uint8Array([7]));
    const rd2 = p1.node.ready();
    assert.ok(rd2.messages.some((m) => m.type === MessageType.MsgApp && m.entries.length > 0));
    // Not yet persisted on the leader: its own ack does not count yet.
    const last = rd2.entries[rd2.entries.length - 1]!.index;
    assert.ok(p1.raft.trk.progress.get(1n)!.match < last);
  });
});
