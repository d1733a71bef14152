// Seeded random fault schedules ("nemesis") over the simulated cluster, followed by a healing
// phase that checks liveness. One seed determines everything, so a failure replays exactly.

import {
  type ConfChangeSingle,
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeV2,
  type NodeId,
  StateType,
} from '../../src/raft/index.js';
import { SimCluster, TICK } from './cluster.js';
import { InvariantViolation } from './invariants.js';

export interface ScheduleOptions {
  seed: number;
  nodes: number;
  /** Ticks of the fault phase. */
  ticks: number;
  /** Max ticks the healed cluster gets to converge (the liveness bound). */
  healTicks?: number;
  /** Include membership changes (add/remove/promote/demote, joint and simple). */
  membership?: boolean;
  /** Proposals per tick, on average. */
  load?: number;
  trace?: (line: string) => void;
  verbose?: boolean;
}

export interface ScheduleResult {
  seed: number;
  ok: boolean;
  violation?: string;
  proposed: number;
  acked: number;
  reads: number;
  elections: number;
  events: number;
  restarts: number;
  finalMembers: number;
}

const enc = (s: string) => new TextEncoder().encode(s);

export function replayCommand(o: ScheduleOptions): string {
  return `npm run sim -- --seed ${o.seed} --nodes ${o.nodes} --steps ${o.ticks}${o.membership ? ' --membership' : ''}`;
}

export function runSchedule(o: ScheduleOptions): ScheduleResult {
  // Every other seed with the members' own flow control (one append in flight per follower,
  // src/server/bootstrap.ts), so that a lost or late append stalls nothing for good there either.
  const c = new SimCluster({ seed: o.seed, nodes: o.nodes, trace: o.trace, verbose: o.verbose, ...(o.seed % 2 === 0 ? { maxInflightMsgs: 1 } : {}) });
  const rng = c.rng;
  const load = o.load ?? 0.5;
  const healTicks = o.healTicks ?? 400;
  let nextId = BigInt(o.nodes + 1);
  const maxNodes = Math.max(o.nodes + 2, 5);
  const pick = <T>(xs: readonly T[]): T | undefined => (xs.length === 0 ? undefined : xs[rng.intn(xs.length)]);
  const result = (ok: boolean, violation?: string): ScheduleResult => ({
    seed: o.seed,
    ok,
    violation,
    proposed: c.proposed,
    acked: c.acked.size,
    reads: c.readsDone,
    elections: c.stats.elections,
    events: c.stats.events,
    restarts: c.stats.restarts,
    finalMembers: c.leader()?.raw?.inspect().trk.progress.size ?? 0,
  });

  const faults: Array<() => void> = [
    () => {
      const n = pick(c.upNodes());
      if (n) c.crash(n.id);
    },
    () => {
      const down = [...c.nodes.values()].filter((n) => !n.up);
      const n = pick(down);
      if (n) c.restart(n.id);
    },
    () => {
      const l = c.leader();
      if (l) c.crash(l.id);
    },
    () => {
      // Symmetric partition into two random groups.
      const ids = [...c.nodes.keys()];
      const a: NodeId[] = [];
      const b: NodeId[] = [];
      for (const id of ids) (rng.next() < 0.5 ? a : b).push(id);
      if (a.length > 0 && b.length > 0) c.partition(a, b);
    },
    () => {
      // Isolate the leader (it must step down by CheckQuorum; the rest elect a new one).
      const l = c.leader();
      if (l) c.partition([l.id], [...c.nodes.keys()].filter((id) => id !== l.id));
    },
    () => {
      const ids = [...c.nodes.keys()];
      const from = pick(ids)!;
      const to = pick(ids.filter((x) => x !== from));
      if (to !== undefined) c.blockOneWay(from, to);
    },
    () => c.heal(),
    () => c.heal(),
    () => {
      // Crash in the middle of the next disk write of a random node (e.g. right after it
      // granted a vote or accepted entries, before they are durable).
      const n = pick(c.upNodes());
      if (n) c.crashOnPersist.add(n.id);
    },
    () => {
      // Same, for every node at once: a correlated power failure during writes.
      for (const n of c.upNodes()) c.crashOnPersist.add(n.id);
    },
    () => {
      c.lossRate = pick([0, 0, 0.05, 0.2])!;
      c.dupRate = pick([0, 0, 0.05, 0.2])!;
      c.maxDelay = pick([3, 5, 10, 40])!;
      c.trace(`NETWORK loss=${c.lossRate} dup=${c.dupRate} maxDelay=${c.maxDelay}`);
    },
    () => {
      const n = pick([...c.nodes.values()]);
      if (n) {
        n.slow = n.slow > 1 ? 1 : pick([5, 20])!;
        c.trace(`n${n.id} SLOW x${n.slow}`);
      }
    },
  ];

  const confChanges: Array<() => void> = [
    () => {
      if (c.nodes.size >= maxNodes) return;
      c.proposeConfChange(cc([{ type: ConfChangeType.AddLearnerNode, nodeId: nextId++ }]));
    },
    () => {
      if (c.nodes.size >= maxNodes) return;
      c.proposeConfChange(cc([{ type: ConfChangeType.AddNode, nodeId: nextId++ }]));
    },
    () => {
      const l = c.leader();
      const learner = l && pick([...l.raw!.inspect().trk.config.learners]);
      if (learner !== undefined) c.proposeConfChange(cc([{ type: ConfChangeType.AddNode, nodeId: learner }]));
    },
    () => {
      const l = c.leader();
      const voters = l ? [...l.raw!.inspect().trk.config.voters.incoming] : [];
      const v = voters.length > 2 ? pick(voters) : undefined;
      if (v !== undefined) c.proposeConfChange(cc([{ type: ConfChangeType.RemoveNode, nodeId: v }]));
    },
    () => {
      // Replace a voter through a joint configuration (auto leave).
      const l = c.leader();
      const voters = l ? [...l.raw!.inspect().trk.config.voters.incoming] : [];
      const v = pick(voters);
      if (v === undefined || c.nodes.size >= maxNodes) return;
      c.proposeConfChange(
        cc([
          { type: ConfChangeType.AddNode, nodeId: nextId++ },
          { type: ConfChangeType.RemoveNode, nodeId: v },
        ]),
      );
    },
    () => {
      // Demote a voter to learner in an explicit joint config, left later.
      const l = c.leader();
      const voters = l ? [...l.raw!.inspect().trk.config.voters.incoming] : [];
      const v = voters.length > 2 ? pick(voters) : undefined;
      if (v !== undefined) {
        c.proposeConfChange(cc([{ type: ConfChangeType.AddLearnerNode, nodeId: v }], ConfChangeTransition.JointExplicit));
      }
    },
    () => maybeLeaveJoint(c),
  ];

  try {
    const faultEnd = o.ticks * TICK;
    while (c.now < faultEnd) {
      const ups = c.upNodes();
      // Client load: proposals and reads at random live nodes.
      let k = Math.floor(load) + (rng.next() < load - Math.floor(load) ? 1 : 0);
      while (k-- > 0) {
        const n = pick(ups);
        if (n) c.propose(n.id);
      }
      if (rng.next() < 0.3) {
        const n = pick(ups);
        if (n) c.read(n.id);
      }
      if (rng.next() < 1 / 12) pick(faults)!();
      if (o.membership && rng.next() < 1 / 25) pick(confChanges)!();
      c.runUntil(c.now + TICK);
    }

    // Healing: everything back up, a perfect network. A leader must emerge and every
    // acknowledged write must reach every member.
    c.trace('--- HEAL: restart all, heal network, no loss ---');
    c.crashOnPersist.clear();
    for (const n of c.nodes.values()) {
      n.slow = 1;
      if (!n.up) c.restart(n.id);
    }
    c.heal();
    c.lossRate = 0;
    c.dupRate = 0;
    c.maxDelay = 5;
    const healEnd = c.now + healTicks * TICK;
    let finalKey: string | undefined;
    let proposedAt = -Infinity;
    while (c.now < healEnd) {
      c.runUntil(c.now + TICK);
      const l = c.leader();
      if (!l?.raw || l.raw.inspect().state !== StateType.Leader) continue;
      maybeLeaveJoint(c);
      if (finalKey === undefined || (!c.acked.has(finalKey) && c.now - proposedAt > 30 * TICK)) {
        finalKey = `final${c.proposed}`;
        c.proposed++;
        proposedAt = c.now;
        try {
          l.raw.propose(enc(finalKey));
        } catch {
          finalKey = undefined;
        }
        continue;
      }
      const idx = c.acked.get(finalKey);
      if (idx === undefined) continue;
      const members = [...l.raw.inspect().trk.progress.keys()];
      if (members.every((id) => (c.nodes.get(id)?.smIndex ?? 0) >= idx)) {
        c.trace(`CONVERGED: final write at index ${idx} applied on members ${members.join(',')}`);
        return result(true);
      }
    }
    const l = c.leader();
    const detail = l
      ? `leader n${l.id} term ${l.raw!.inspect().term}; applied: ${[...c.nodes.values()].map((n) => `n${n.id}=${n.smIndex}${n.up ? '' : '(down)'}`).join(' ')}`
      : `no leader; states: ${[...c.nodes.values()].map((n) => `n${n.id}=${n.raw?.inspect().state}/t${n.raw?.inspect().term}`).join(' ')}`;
    return result(false, `liveness: cluster did not converge within ${healTicks} ticks after healing (${detail})`);
  } catch (e) {
    if (e instanceof InvariantViolation) return result(false, e.message);
    throw e;
  }
}

function cc(changes: ConfChangeSingle[], transition = ConfChangeTransition.Auto): ConfChangeV2 {
  return { transition, changes, context: new Uint8Array(0) };
}

function maybeLeaveJoint(c: SimCluster): void {
  const l = c.leader();
  const cfg = l?.raw?.inspect().trk.config;
  if (!cfg || !cfg.voters.isJoint() || cfg.autoLeave) return;
  if (l!.raw!.inspect().pendingConfIndex > l!.raw!.inspect().raftLog.applied) return;
  c.proposeConfChange(cc([]));
}
