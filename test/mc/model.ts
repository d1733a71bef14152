// The model the checker explores: a small cluster of the real pure cores (src/raft, unchanged),
// each member's durable storage, and the network as a multiset of messages in flight. Time is
// not a clock here: a member's election timeout and a leader's heartbeat are events of their
// own, as are delivering, dropping or duplicating a message, proposing, a ReadIndex request,
// a membership change, cutting a member off and healing, crashing (losing what was not
// persisted) and restarting. Each event kind has a budget (scenarios.ts) that bounds the search.
//
// The driver follows the core's contract in one atomic step per event: each member's Readys
// are persisted to its MemoryStorage (which survives a crash), their messages put on the
// network, their committed entries applied and their read states answered. A crash therefore
// loses exactly the volatile state: role, leader, progress, votes received, pending reads,
// and the commit index beyond the last persisted HardState.
//
// Timers are normalized: electionElapsed and heartbeatElapsed are reset after every event and
// are not part of a state (nor is the random election timeout, which no event consults). So
// a follower is "in lease" (CheckQuorum) until its own election timeout fires, which makes it
// campaign at once; a leader's election timeout is its CheckQuorum check.

import {
  type ConfChangeV2,
  EntryType,
  ErrProposalDropped,
  ErrStepPeerNotFound,
  MemoryStorage,
  type Message,
  MessageType,
  NO_LIMIT,
  type NodeId,
  RawNode,
  type Ready,
  SeededRand,
  StateType,
  decodeConfChangeEntry,
  newMessage,
} from '../../src/raft/index.js';
import type { Logger } from '../../src/raft/logger.js';
import { deepClone, share } from './clone.js';
import { type Ghost, InvariantViolation, checkReadState, checkState, checkTransition, onApply } from './invariants.js';
import type { Budget, Scenario } from './scenarios.js';
import { isLeader, storedEntries } from './views.js';

export interface McNode {
  id: NodeId;
  raw: RawNode | undefined; // undefined while crashed
  storage: MemoryStorage;
  /** Restarts so far: the commit index is monotonic within one incarnation only. */
  incarnation: number;
}

export interface McState {
  nodes: McNode[];
  net: Message[];
  left: Budget;
  /** The member cut off from the others (0n: none). Messages to or from it are lost. */
  isolated: NodeId;
  /** The cut-off member's term when it was cut off. */
  isolatedAtTerm: number;
  ghost: Ghost;
}

export type McEvent =
  | { kind: 'deliver' | 'drop' | 'duplicate'; msg: number }
  | { kind: 'timeout' | 'heartbeat' | 'propose' | 'read' | 'conf' | 'crash' | 'restart' | 'isolate'; node: number }
  | { kind: 'heal' };

/** Sees what the driver does (the trace printer formats it; the search passes nothing). */
export interface DriveObserver {
  ready(node: NodeId, rd: Ready): void;
  applied?(node: NodeId, text: string): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** Everything one search shares and never copies: the scenario, the logger. */
export interface ModelContext {
  sc: Scenario;
  logger: Logger;
  observer?: DriveObserver;
}

function newRaw(cx: ModelContext, id: NodeId, storage: MemoryStorage, applied: number): RawNode {
  return new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    applied,
    // 1 byte: one entry per append message (limitSize keeps at least one), so that a follower
    // can acknowledge part of the leader's log, as with large entries or pipelining.
    maxSizePerMsg: cx.sc.oneEntryPerMessage ? 1 : NO_LIMIT,
    maxInflightMsgs: cx.sc.maxInflight ?? 256,
    checkQuorum: cx.sc.checkQuorum,
    preVote: cx.sc.preVote,
    stepDownOnRemoval: true,
    rand: RAND,
    logger: cx.logger,
  });
}

// Only the election timer draws from it, and no event consults the timer: one shared instance.
const RAND = share(new SeededRand(1));

export function initialState(cx: ModelContext): McState {
  const sc = cx.sc;
  share(cx.logger);
  const nodes: McNode[] = [];
  const voters = Array.from({ length: sc.voters }, (_, j) => ({ id: BigInt(j + 1) }));
  for (const { id } of voters) {
    const storage = new MemoryStorage();
    const raw = newRaw(cx, id, storage, 0);
    raw.bootstrap(voters);
    nodes.push({ id, raw, storage, incarnation: 0 });
  }
  for (const id of sc.joiners) {
    const storage = new MemoryStorage();
    nodes.push({ id, raw: newRaw(cx, id, storage, 0), storage, incarnation: 0 });
  }
  const s: McState = { nodes, net: [], left: { ...sc.budget }, isolated: 0n, isolatedAtTerm: 0, ghost: { leaders: [], committed: [], reads: [], proposed: 0, readsIssued: 0, changesMade: 0 } };
  for (const nd of s.nodes) drive(cx, s, nd);
  normalizeTimers(s);
  checkState(s);
  return s;
}

const nodeIndex = (s: McState, id: NodeId): number => s.nodes.findIndex((n) => n.id === id);

function send(s: McState, m: Message): void {
  if (s.isolated !== 0n && (m.from === s.isolated || m.to === s.isolated)) return;
  const to = s.nodes[nodeIndex(s, m.to)];
  if (!to || !to.raw) return; // a crashed member loses what is sent to it
  s.net.push(m);
}

/** Persist, send, apply and answer everything a member's core has ready. */
function drive(cx: ModelContext, s: McState, nd: McNode): void {
  const raw = nd.raw;
  if (!raw) return;
  while (raw.hasReady()) {
    const rd = raw.ready();
    cx.observer?.ready(nd.id, rd);
    if (rd.snapshot) nd.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) nd.storage.append(rd.entries);
    if (rd.hardState) nd.storage.setHardState(rd.hardState);
    for (const m of rd.messages) send(s, m);
    for (const m of rd.messagesAfterPersist) send(s, m);
    for (const e of rd.committedEntries) {
      if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) raw.applyConfChange(decodeConfChangeEntry(e.type, e.data));
      onApply(s, nd, e);
    }
    for (const rs of rd.readStates) checkReadState(s, nd, rs);
    raw.advance(rd);
  }
}

function normalizeTimers(s: McState): void {
  for (const n of s.nodes) {
    if (!n.raw) continue;
    const r = n.raw.inspect();
    // Members shared with other states are already normalized: only write what changed.
    if (r.electionElapsed !== 0) r.electionElapsed = 0;
    if (r.heartbeatElapsed !== 0) r.heartbeatElapsed = 0;
  }
}

/** The events possible in `s` within the budget, in a fixed order (a trace is a list of positions in it). */
export function enabled(cx: ModelContext, s: McState): McEvent[] {
  const out: McEvent[] = [];
  const left = s.left;
  // Delivering (dropping, duplicating) one of several identical messages leads to the same
  // state: offer the first of each.
  for (let i = 0; i < s.net.length; i++) {
    const m = s.net[i]!;
    let dup = false;
    for (let j = 0; j < i && !dup; j++) dup = sameMessage(s.net[j]!, m);
    if (dup) continue;
    out.push({ kind: 'deliver', msg: i });
    if (left.drops > 0) out.push({ kind: 'drop', msg: i });
    if (left.duplicates > 0) out.push({ kind: 'duplicate', msg: i });
  }
  s.nodes.forEach((nd, i) => {
    if (!nd.raw) {
      out.push({ kind: 'restart', node: i });
      return;
    }
    const r = nd.raw.inspect();
    const leader = r.state === StateType.Leader;
    if (left.timeouts > 0 && (leader ? cx.sc.checkQuorum : r.promotable())) out.push({ kind: 'timeout', node: i });
    if (leader && left.heartbeats > 0) out.push({ kind: 'heartbeat', node: i });
    if (leader && left.proposals > 0) out.push({ kind: 'propose', node: i });
    if (leader && left.reads > 0) out.push({ kind: 'read', node: i });
    if (leader && left.confChanges > 0) out.push({ kind: 'conf', node: i });
    if (left.crashes > 0 && r.raftLog.lastIndex() > 0) out.push({ kind: 'crash', node: i });
    if (left.partitions > 0 && s.isolated === 0n && r.raftLog.lastIndex() > 0) out.push({ kind: 'isolate', node: i });
  });
  if (s.isolated !== 0n) out.push({ kind: 'heal' });
  return out;
}

/** Whether two messages in flight are interchangeable (delivering either leads to the same state). */
function sameMessage(a: Message, b: Message): boolean {
  if (a === b) return true;
  if (a.type !== b.type || a.from !== b.from || a.to !== b.to || a.term !== b.term || a.index !== b.index || a.logTerm !== b.logTerm) return false;
  if (a.commit !== b.commit || a.reject !== b.reject || a.rejectHint !== b.rejectHint || a.snapshot !== b.snapshot) return false;
  if (a.entries.length !== b.entries.length || !sameBytes(a.context, b.context)) return false;
  for (let i = 0; i < a.entries.length; i++) {
    const x = a.entries[i]!;
    const y = b.entries[i]!;
    if (x !== y && (x.index !== y.index || x.term !== y.term || x.type !== y.type || !sameBytes(x.data, y.data))) return false;
  }
  return true;
}

function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  const la = a?.length ?? 0;
  if (la !== (b?.length ?? 0)) return false;
  for (let i = 0; i < la; i++) if (a![i] !== b![i]) return false;
  return true;
}

const encoder = new TextEncoder();

/**
 * A copy of `s0` after `ev`, its invariants checked (throws InvariantViolation); undefined if
 * the event was refused (a proposal the leader dropped) and so changes nothing.
 */
export function step(cx: ModelContext, s0: McState, ev: McEvent): McState | undefined {
  try {
    return stepUnchecked(cx, s0, ev);
  } catch (e) {
    // The core (or the storage under it) refusing what it was asked to do is a finding too:
    // the correct core never throws here.
    if (e instanceof InvariantViolation || !(e instanceof Error)) throw e;
    throw new InvariantViolation('no exception in the core', `${e.message} (${e.stack?.split('\n')[1]?.trim() ?? ''})`);
  }
}

/**
 * A copy of `s0` to step: the network, budget and ghost copied (their items are immutable),
 * the member the event acts on deep-copied, the other members shared with `s0` (an event
 * changes one member only), which saves most of the copying and of the memory per state.
 */
function branch(s0: McState, ev: McEvent): McState {
  const s: McState = {
    nodes: s0.nodes.slice(),
    net: s0.net.slice(),
    left: { ...s0.left },
    isolated: s0.isolated,
    isolatedAtTerm: s0.isolatedAtTerm,
    ghost: { ...s0.ghost, leaders: s0.ghost.leaders.map(([t, id]) => [t, id]), reads: s0.ghost.reads.slice() },
  };
  let acts = -1;
  if (ev.kind === 'deliver') acts = nodeIndex(s0, s0.net[ev.msg]!.to);
  else if ('node' in ev) acts = ev.node;
  if (acts >= 0) s.nodes[acts] = deepClone(s0.nodes[acts]!);
  return s;
}

function stepUnchecked(cx: ModelContext, s0: McState, ev: McEvent): McState | undefined {
  const s = branch(s0, ev);
  switch (ev.kind) {
    case 'deliver':
    case 'duplicate': {
      const sent = ev.kind === 'deliver' ? s.net.splice(ev.msg, 1)[0]! : s.net[ev.msg]!;
      if (ev.kind === 'duplicate') {
        s.left.duplicates--;
        s.net.push(sent);
        break;
      }
      const nd = s.nodes[nodeIndex(s, sent.to)]!;
      // The receiver gets its own copy: the core may keep parts of it, and the sender's state
      // in other branches of the search shares the original.
      const m: Message = { ...sent, entries: sent.entries.map((e) => ({ ...e })) };
      try {
        nd.raw!.step(m);
      } catch (e) {
        // A response from a peer it no longer tracks is dropped, as the server does.
        if (!(e instanceof ErrStepPeerNotFound)) throw e;
      }
      drive(cx, s, nd);
      break;
    }
    case 'drop':
      s.net.splice(ev.msg, 1);
      s.left.drops--;
      break;
    case 'timeout': {
      s.left.timeouts--;
      const nd = s.nodes[ev.node]!;
      const r = nd.raw!.inspect();
      if (r.state === StateType.Leader) r.step(newMessage(MessageType.MsgCheckQuorum, { from: r.id }));
      else nd.raw!.campaign();
      drive(cx, s, nd);
      break;
    }
    case 'heartbeat': {
      s.left.heartbeats--;
      const nd = s.nodes[ev.node]!;
      nd.raw!.inspect().step(newMessage(MessageType.MsgBeat, { from: nd.id }));
      drive(cx, s, nd);
      break;
    }
    case 'propose':
    case 'conf': {
      const nd = s.nodes[ev.node]!;
      try {
        if (ev.kind === 'propose') {
          s.left.proposals--;
          nd.raw!.propose(encoder.encode(`v${++s.ghost.proposed}`));
        } else {
          s.left.confChanges--;
          const change = cx.sc.changes[s.ghost.changesMade++]!;
          nd.raw!.proposeConfChange(change.make(nd.id) satisfies ConfChangeV2);
        }
      } catch (e) {
        if (e instanceof ErrProposalDropped) return undefined;
        throw e;
      }
      drive(cx, s, nd);
      break;
    }
    case 'read': {
      s.left.reads--;
      const nd = s.nodes[ev.node]!;
      const ctx = `r${++s.ghost.readsIssued}`;
      // Linearizability: the read must see every entry committed before it was issued.
      s.ghost.reads.push({ ctx, node: nd.id, minIndex: s.ghost.committed.length });
      nd.raw!.readIndex(encoder.encode(ctx));
      drive(cx, s, nd);
      break;
    }
    case 'crash': {
      s.left.crashes--;
      const nd = s.nodes[ev.node]!;
      // The storage is what was persisted; everything in the core is lost, and so is what
      // was on its way to the member.
      nd.raw = undefined;
      s.net = s.net.filter((m) => m.to !== nd.id);
      s.ghost.reads = s.ghost.reads.filter((r) => r.node !== nd.id);
      break;
    }
    case 'restart': {
      const nd = s.nodes[ev.node]!;
      nd.incarnation++;
      nd.raw = newRaw(cx, nd.id, nd.storage, storedEntries(nd.storage)[0]!.index);
      drive(cx, s, nd);
      break;
    }
    case 'isolate': {
      s.left.partitions--;
      const id = s.nodes[ev.node]!.id;
      s.isolated = id;
      s.isolatedAtTerm = s.nodes[ev.node]!.raw!.inspect().term;
      s.net = s.net.filter((m) => m.from !== id && m.to !== id);
      break;
    }
    case 'heal':
      s.isolated = 0n;
      s.isolatedAtTerm = 0;
      break;
  }
  normalizeTimers(s);
  checkTransition(s0, s);
  checkState(s);
  return s;
}

export { isLeader };
