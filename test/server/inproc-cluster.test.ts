// Complete members in one process (test/support/inproc-cluster.ts: EtcdServer on a ManualClock
// and an InMemNetwork, WAL and snapshots on temp dirs), for what real processes cannot force:
//
// a. a write proposed on a follower and forwarded to a leader that is handing over leadership
//    is dropped there, proposed again as soon as the new leader is known, and applied once;
//    and when the first copy did make it into the log, the second is committed and skipped;
// b. a learner added to an idle cluster whose log was compacted catches up from a merged
//    snapshot (an image of the applied state with the current ConfState), with no more writes;
// c. a snapshot saved while a conf change is in flight (in the log, not yet committed) carries
//    the applied ConfState, also when the change is applied while the image is being built,
//    and a member restarted from it and the WAL after it ends with the right members and data.
//
// Each runs under several seeds (election timeouts and the network's delivery order). Nothing
// depends on wall-clock time: conditions are awaited for a bounded number of ticks.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { RequestOp } from '../../src/gen/etcd/rpc.js';
import { type ConfState, type Message, MessageType, type SnapshotMetadata } from '../../src/raft/index.js';
import { Snapshotter } from '../../src/storage/snap/snapshotter.js';
import { type InProcCluster, type InProcMember, parts, withCluster } from '../support/inproc-cluster.js';

const SEEDS = [1, 2, 3, 4, 5];
/**
 * c: transactions of 2,000 puts made before the test proper. Building a snapshot image yields
 * once per 2,000 keys; a conf change delivered just after the build started is applied one
 * turn later, so 4 leaves a margin (1 is too few: the test's precondition then fails).
 */
const BULK_TXNS = 4;
const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const sortIds = (xs: readonly bigint[]): bigint[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
const confOf = (cs: ConfState): { voters: bigint[]; learners: bigint[]; outgoing: bigint[] } => ({
  voters: sortIds(cs.voters),
  learners: sortIds(cs.learners),
  outgoing: sortIds(cs.votersOutgoing),
});

/** Every running member has applied everything the leader has. */
async function allApplied(c: InProcCluster, what = 'every member applied the leader log'): Promise<void> {
  await c.until(() => {
    const l = c.leader();
    if (!l) return false;
    const last = parts(l.server).node.storage.lastIndex();
    return l.server.committedIndex() === last && c.running().every((m) => m.server.sm.appliedIndex === last);
  }, { what });
}

function others(c: InProcCluster, l: InProcMember): InProcMember[] {
  return c.running().filter((m) => m !== l);
}

// ---------------------------------------------------------------------------------------- a

async function forwardedProposalDroppedDuringTransfer(seed: number): Promise<void> {
  await withCluster({ size: 3, seed }, async (c) => {
    const L = await c.waitIdle();
    const [F, T] = others(c, L); // F proposes, T takes over
    // Hold the leader's MsgTimeoutNow: the transfer stays in progress as long as we like.
    const timeoutNow = c.net.hold((m) => m.type === MessageType.MsgTimeoutNow && m.from === L.id);
    const transfer = L.server.transferLeadership(T!.id);
    transfer.catch(() => {});
    await c.settle();
    assert.equal(L.server.raftStatus().leadTransferee, T!.id, 'the leader is transferring leadership');
    assert.equal(timeoutNow.messages.length, 1);

    const toOld = c.net.counter((m) => m.type === MessageType.MsgProp && m.from === F!.id && m.to === L.id);
    const toNew = c.net.counter((m) => m.type === MessageType.MsgProp && m.from === F!.id && m.to === T!.id);
    const lastBefore = parts(L.server).node.raw.inspect().raftLog.lastIndex();
    let answered = false;
    const put = c.put(F!, 'k', 'v');
    put.then(
      () => (answered = true),
      () => (answered = true),
    );
    await c.settle();
    assert.equal(toOld.delivered, 1, 'the follower forwarded the write to the transferring leader');
    assert.equal(parts(L.server).node.raw.inspect().raftLog.lastIndex(), lastBefore, 'the transferring leader dropped it');
    assert.equal(answered, false);

    // The transfer completes; the follower proposes again as soon as it knows the new leader,
    // well before its stale-proposal retry (two election timeouts) would.
    timeoutNow.end();
    const ticks = await c.until(() => answered, { ticks: 3, what: 'the write answered after the leader changed' });
    await put;
    await c.run(transfer, { ticks: 5 });
    assert.ok(T!.server.isLeader());
    assert.ok(ticks < 2 * c.electionTicks);
    assert.equal(toNew.sent, 1, 'proposed again exactly once, to the new leader');
    assert.equal(F!.counters.proposalsRetried, 1);

    await allApplied(c);
    const id = F!.applied.find((r) => r.key === 'k')!.id;
    for (const m of c.running()) {
      const kv = c.get(m, 'k');
      assert.equal(kv?.value.toString(), 'v', m.name);
      assert.equal(kv?.version, 1n, `${m.name}: applied once`);
      const copies = m.applied.filter((r) => r.id === id);
      assert.equal(copies.length, 1, `${m.name}: one copy in the log (the first was dropped)`);
      assert.equal(m.counters.duplicatesSkipped, 0);
    }
  });
}

async function forwardedProposalCommittedTwice(seed: number): Promise<void> {
  await withCluster({ size: 3, seed }, async (c) => {
    const L = await c.waitIdle();
    const [F, T] = others(c, L);
    // The proposer does not hear of its write (the leader's appends to it are held) ...
    const toF = c.net.hold((m) => m.type === MessageType.MsgApp && m.from === L.id && m.to === F!.id);
    let answered = false;
    const put = c.put(F!, 'k', 'v');
    put.then(
      () => (answered = true),
      () => (answered = true),
    );
    await c.settle();
    // ... although the leader and T committed and applied it.
    assert.equal(c.get(L, 'k')?.version, 1n);
    assert.equal(c.get(T!, 'k')?.version, 1n);
    assert.equal(c.get(F!, 'k'), undefined);
    assert.equal(answered, false);

    // Leadership moves to T, which has the first copy; F proposes again on seeing T lead.
    const transfer = L.server.transferLeadership(T!.id);
    transfer.catch(() => {});
    await c.run(put, { ticks: 3, what: 'the write answered after the leader changed' });
    await c.run(transfer, { ticks: 5 });
    toF.stop();
    toF.drop(); // stale appends of the old term
    assert.ok(T!.server.isLeader());
    assert.equal(F!.counters.proposalsRetried, 1);

    await allApplied(c);
    const id = F!.applied.find((r) => r.key === 'k')!.id;
    for (const m of c.running()) {
      const kv = c.get(m, 'k');
      assert.equal(kv?.version, 1n, `${m.name}: applied once although committed twice`);
      const copies = m.applied.filter((r) => r.id === id);
      assert.deepEqual(
        copies.map((r) => r.duplicate),
        [false, true],
        `${m.name}: two copies in the log, the second skipped`,
      );
      assert.equal(m.counters.duplicatesSkipped, 1, m.name);
    }
  });
}

// ---------------------------------------------------------------------------------------- b

async function learnerCaughtUpBySnapshot(seed: number): Promise<void> {
  await withCluster({ size: 3, seed, snapshotCount: 10, snapshotCatchUpEntries: 5 }, async (c) => {
    const L = await c.waitIdle();
    for (let i = 0; i < 40; i++) await c.run(c.put(L, `key${i}`, `value${i}`));
    // Fill up to a snapshot at the leader's last entry: the member add and the new member's
    // publish then stay below --snapshot-count, so no snapshot taken later includes the learner.
    for (let i = 0; parts(L.server).snapshots.lastSavedIndex !== L.server.sm.appliedIndex; i++) {
      assert.ok(i < 20, 'the leader snapshots every 10 entries');
      await c.run(c.put(L, `fill${i}`, 'x'));
      await c.settle();
    }
    await allApplied(c);
    const store = parts(L.server).node.storage;
    assert.ok(store.firstIndex() > 2, 'the leader compacted its log');
    const before = c.dump(L);

    const snaps: SnapshotMetadata[] = [];
    c.net.observe((m: Message, outcome) => {
      if (m.type === MessageType.MsgSnap && outcome === 'delivered') snaps.push(m.snapshot!.metadata);
    });
    const N = await c.addMember('n4', { learner: true });
    // No client writes from here on: only heartbeats (and the learner's own publish).
    await c.until(() => N.server.sm.appliedIndex === L.server.sm.appliedIndex && c.dump(N).size === before.size, {
      ticks: 50,
      what: 'the learner caught up',
    });
    assert.deepEqual(c.dump(N), before, 'the learner has every key');
    assert.deepEqual(c.dump(L), before, 'no writes meanwhile');
    assert.ok(N.server.isLearner());
    assert.ok(snaps.length >= 1, 'caught up by a snapshot');
    for (const s of snaps) assert.ok(s.confState.learners.includes(N.id), 'the snapshot sent names the learner');
    // The leader's own last snapshot predates the learner: sending it would not have done.
    const own = store.snapshot().metadata;
    assert.ok(!own.confState.learners.includes(N.id));
    assert.ok(own.index < snaps[0]!.index);
    assert.equal(parts(L.server).node.raw.matchOf(N.id), store.lastIndex());
  });
}

// ---------------------------------------------------------------------------------------- c

async function snapshotDuringConfChange(seed: number): Promise<void> {
  // Pipelined appends (as etcd's 512 in flight): F must get the conf change in a second append
  // while the first, with the puts, is unacknowledged, and hear of no commit meanwhile.
  await withCluster({ size: 5, seed, snapshotCount: 8, snapshotCatchUpEntries: 4, maxInflightAppends: 8 }, async (c) => {
    const L = await c.waitIdle();
    const [F, ...G] = others(c, L);
    const voters = sortIds(c.running().map((m) => m.id));
    // A state big enough that building its image takes a few event-loop turns (2,000 keys a turn).
    for (let b = 0; b < BULK_TXNS; b++) {
      const success: RequestOp[] = Array.from({ length: 2000 }, (_, i) => ({
        requestPut: { key: B(`bulk/${b}/${String(i).padStart(4, '0')}`), value: B(`v${b}.${i}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
      }));
      await c.run(L.server.propose('txn', { compare: [], success, failure: [] }));
    }
    await allApplied(c);

    // Eight puts and then a conf change (add learner n6), proposed in one go on the leader.
    const first = parts(L.server).node.storage.lastIndex() + 1;
    const P = 8;
    const ccIndex = first + P;
    // The members other than F do not get the conf change yet: it cannot commit (L and F are
    // 2 of 5), while the puts before it do.
    const ccToG = c.net.hold((m) => m.type === MessageType.MsgApp && G.some((g) => g.id === m.to) && m.entries.some((e) => e.index >= ccIndex));
    // F gets every entry, but no news of any commit from `first` on.
    const commitToF = c.net.hold(
      (m) => m.from === L.id && m.to === F!.id && (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat) && m.commit >= first,
    );
    const puts = Array.from({ length: P }, (_, i) => c.put(L, `p${i}`, `pv${i}`));
    const added = L.server.members.add([c.peerUrlOf('n6')], true);
    added.catch(() => {});
    assert.equal(parts(L.server).node.raw.inspect().raftLog.lastIndex(), ccIndex);
    await c.settle();
    assert.ok(ccToG.caught >= 1);
    assert.equal(L.server.committedIndex(), ccIndex - 1, 'the puts committed, the conf change not');
    for (const p of puts) await p;
    // The leader snapshotted with the conf change in flight.
    const lSnap = await new Snapshotter(join(L.dataDir, 'member', 'snap'), silent).loadNewest();
    assert.ok(lSnap && lSnap.metadata.index >= first && lSnap.metadata.index < ccIndex, `leader snapshot at ${lSnap?.metadata.index}`);
    assert.deepEqual(confOf(lSnap.metadata.confState), { voters, learners: [], outgoing: [] }, 'the leader snapshot has the applied ConfState');
    assert.equal(parts(F!.server).node.storage.lastIndex(), ccIndex, 'F has the conf change in its log');
    assert.equal(F!.server.sm.appliedIndex, first - 1);

    // The conf change commits (the other members get it); F still hears nothing of commits.
    ccToG.end();
    const member = await c.run(added, { ticks: 0, what: 'the conf change applied on the leader' });
    const learner = member!.ID;
    assert.ok(L.server.committedIndex() >= ccIndex);
    assert.ok(commitToF.messages.some((m) => m.commit >= ccIndex));
    assert.ok(commitToF.messages[0]!.commit < ccIndex);

    // Let F learn that the puts committed: it applies them and starts a snapshot. Right after,
    // it learns that the conf change committed too, and applies it while the image is built.
    commitToF.stop();
    const fParts = parts(F!.server);
    // Whether the applied ConfState changed while F's image was being built (the race itself).
    let changedDuringImage: boolean | undefined;
    const sm = F!.server.sm;
    const imageAsync = sm.imageAsync.bind(sm);
    sm.imageAsync = async (pause) => {
      const cs = sm.confState;
      const r = await imageAsync(pause);
      changedDuringImage ??= sm.confState !== cs;
      return r;
    };
    while (!fParts.snapshots.isSaving) {
      const next = commitToF.messages[0];
      assert.ok(next && next.commit < ccIndex, 'F started a snapshot on applying the puts');
      commitToF.releaseOne();
      c.net.deliver(); // now, not at the next quiet point
      for (let t = 0; t < 1000 && !fParts.snapshots.isSaving && !c.isQuiet(F!); t++) await nextTurn();
      for (let t = 0; t < 10 && !fParts.snapshots.isSaving; t++) await nextTurn();
    }
    const snapIndex = F!.server.sm.appliedIndex;
    assert.ok(snapIndex >= first && snapIndex < ccIndex);
    commitToF.release();
    c.net.deliver();
    let appliedWhileSaving = false;
    for (let t = 0; t < 100_000 && F!.server.sm.appliedIndex < ccIndex; t++) {
      await nextTurn();
      if (F!.server.sm.appliedIndex >= ccIndex) appliedWhileSaving = fParts.snapshots.isSaving;
    }
    assert.ok(appliedWhileSaving, 'the conf change was applied on F while its snapshot was being made');
    await c.settle();
    assert.equal(changedDuringImage, true, 'precondition: the conf change was applied while the image was being built');
    assert.deepEqual(confOf(F!.server.sm.confState), { voters, learners: [learner], outgoing: [] });

    // The snapshot F saved is of the applied state at snapIndex, with that state's ConfState.
    const fSnap = await new Snapshotter(join(F!.dataDir, 'member', 'snap'), silent).loadNewest();
    assert.equal(fSnap?.metadata.index, snapIndex);
    assert.deepEqual(confOf(fSnap.metadata.confState), { voters, learners: [], outgoing: [] }, 'the snapshot has the applied ConfState, not the pending one');

    // Restarted from that snapshot and the WAL after it, F ends with the learner and all the data.
    await allApplied(c);
    const want = c.dump(L);
    assert.equal(want.size, BULK_TXNS * 2000 + P);
    await c.restart(F!);
    await c.until(() => F!.server.sm.appliedIndex === L.server.sm.appliedIndex, { ticks: 20, what: 'F restarted and caught up' });
    assert.equal(parts(F!.server).snapshots.lastSavedIndex, snapIndex, 'F restarted from that snapshot');
    assert.ok(F!.applied.every((r) => r.index > snapIndex), 'and replayed only the entries after it');
    assert.deepEqual(confOf(F!.server.sm.confState), { voters, learners: [learner], outgoing: [] });
    assert.deepEqual(confOf(parts(F!.server).node.raw.confState()), { voters, learners: [learner], outgoing: [] });
    assert.equal(F!.server.sm.membership.get(learner)?.isLearner, true);
    assert.deepEqual(c.dump(F!), want);
  });
}

// ---------------------------------------------------------------------------------------- replay

/** Every message delivered in a short run (election, writes on every member, a transfer), with the time. */
async function trace(seed: number): Promise<string[]> {
  const out: string[] = [];
  await withCluster({ size: 3, seed }, async (c) => {
    c.net.observe((m, outcome) => {
      if (outcome === 'delivered') out.push(`${c.clock.now()} ${MessageType[m.type]} ${c.member(m.from).name}>${c.member(m.to).name} t${m.term} i${m.index} c${m.commit} n${m.entries.length}`);
    });
    const L = await c.waitIdle();
    for (let i = 0; i < 6; i++) await c.run(c.put(c.running()[i % 3]!, `k${i}`, 'v'));
    await c.run(L.server.transferLeadership(others(c, L)[0]!.id));
    await c.tick(3);
  });
  return out;
}

describe('in-process cluster: the helpers', () => {
  it('partitions a leader away and back, adds a voter, removes a member (it stops), restarts one', async () => {
    await withCluster({ size: 3, seed: 11 }, async (c) => {
      const L = await c.waitIdle();
      c.net.isolate(L.id);
      const L2 = await c.until(() => others(c, L).some((m) => m.server.isLeader()), { ticks: 50, what: 'a new leader' }).then(() => c.leader()!);
      assert.notEqual(L2, L);
      await c.run(c.put(L2, 'during', 'partition'));
      c.net.heal();
      await c.waitIdle();
      assert.equal(c.get(L, 'during')?.value.toString(), 'partition');

      const n4 = await c.addMember('n4', { learner: false });
      await c.waitIdle();
      assert.equal(n4.server.isLearner(), false);
      assert.equal(c.dump(n4).get('during'), 'partition');
      const gone = c.leader()!;
      await c.removeMember(gone.name);
      await c.until(() => gone.removed && !gone.running, { ticks: 30, what: 'the removed member stopped' });
      const rest = c.running();
      assert.equal(rest.length, 3);
      const again = rest.find((m) => !m.server.isLeader())!;
      await c.restart(again);
      await c.waitIdle();
      await c.run(c.put(again, 'after', 'restart'));
      await allApplied(c);
      for (const m of c.running()) {
        assert.equal(c.get(m, 'after')?.value.toString(), 'restart');
        assert.equal(m.server.sm.membership.get(gone.id), undefined);
      }
    });
  });
});

describe('in-process cluster: cases real processes cannot force', () => {
  it('replays the same run for the same seed (disk timing does not matter in lockstep)', async () => {
    const a = await trace(7);
    assert.ok(a.length > 50);
    assert.deepEqual(await trace(7), a);
    assert.notDeepEqual(await trace(8), a);
  });

  it("d. a restarted member's first linearizable read is asked again as soon as a leader is known, not a retry interval later", async () => {
    await withCluster({ size: 3, seed: 21 }, async (c) => {
      const leader = await c.waitIdle();
      const follower = c.running().find((m) => m !== leader)!;
      await c.run(c.put(leader, 'k', 'v'));
      await c.restart(follower);
      // Served before the member has heard from a leader (as a restarted raftkv member serves):
      // Raft drops that ReadIndex ("no leader at term ..."), and it used to be asked again only
      // by the retry timer, max(500 ms, the election timeout) later: 10 heartbeat ticks here.
      assert.equal(follower.server.leader(), 0n);
      const read = follower.server.linearizableRead();
      let done = false;
      void read.then(() => (done = true));
      const ticks = await c.until(() => done, { ticks: 3 * c.electionTicks, what: 'the read' });
      await read;
      assert.ok(ticks < c.electionTicks, `read served after ${ticks} ticks (the retry interval is ${c.electionTicks})`);
      assert.equal(c.get(follower, 'k')?.value.toString(), 'v');
    });
  });

  for (const seed of SEEDS) {
    it(`a. a forwarded write dropped by a transferring leader is proposed again once and applied once (seed ${seed})`, () =>
      forwardedProposalDroppedDuringTransfer(seed));
    it(`a. a forwarded write committed twice across a leader change is applied once (seed ${seed})`, () => forwardedProposalCommittedTwice(seed));
    it(`b. a learner on an idle, compacted cluster catches up by a merged snapshot (seed ${seed})`, () => learnerCaughtUpBySnapshot(seed));
    it(`c. a snapshot taken with a conf change in flight has the applied ConfState; a restart from it ends right (seed ${seed})`, () =>
      snapshotDuringConfChange(seed));
  }
});
