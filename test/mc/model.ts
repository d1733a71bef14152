// The model the checker explores: a small cluster of the real pure cores (src/raft, unchanged),
// their durable storage, and the network as a multiset of messages in flight. Time is not a
// clock here: an election timeout and a heartbeat are events of their own, as are delivering,
// dropping or duplicating a message, proposing, crashing (losing what was not persisted) and
// restarting. Each event kind has a budget, part of the state, which bounds the search.
//
// The driver follows the core's contract, simplified to one atomic step: after every event each
// node's Readys are persisted (to its MemoryStorage, which survives a crash), their messages put
// on the network and their committed entries applied. So a crash loses exactly the volatile
// state (role, progress, commit index beyond the HardState, votes received).

import { createHash } from 'node:crypto';
import {
  type Entry,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  type Message,
  MessageType,
  NO_LIMIT,
  RawNode,
  SeededRand,
  StateType,
  decodeConfChangeEntry,
  newMessage,
} from '../../src/raft/index.js';
import { type Logger } from '../../src/raft/logger.js';
import { Invariants, chainHash, dataKey } from '../sim/invariants.js';
import { deepClone } from './clone.js';

export interface Budget {
  proposals: number;
  timeouts: number;
  heartbeats: number;
  drops: number;
  duplicates: number;
  crashes: number;
}

export interface McNode {
  id: bigint;
  raw: RawNode | undefined; // undefined while crashed
  storage: MemoryStorage;
  incarnation: number;
  /** The applied state's fingerprint (chained over applied entries) and its index. */
  appHash: number;
  appIndex: number;
}

export interface McState {
  nodes: McNode[];
  net: Message[];
  left: Budget;
  inv: Invariants;
  /** Proposals made so far (their values are "v1", "v2", ...). */
  proposed: number;
}

export type McEvent =
  | { kind: 'deliver' | 'drop' | 'duplicate'; msg: number }
  | { kind: 'timeout' | 'heartbeat' | 'propose' | 'crash' | 'restart'; node: number };

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };
const SHARED = new Set<unknown>([silent]);

function newRaw(id: bigint, storage: MemoryStorage, applied: number): RawNode {
  return new RawNode({
    id,
    electionTick: 10,
    heartbeatTick: 1,
    storage,
    applied,
    maxSizePerMsg: NO_LIMIT,
    maxInflightMsgs: 256,
    checkQuorum: false,
    preVote: false,
    rand: new SeededRand(1),
    logger: silent,
  });
}

/** A fresh cluster of `n` members (ids 1..n), every one bootstrapped with the same configuration. */
export function initialState(n: number, budget: Budget): McState {
  const nodes: McNode[] = [];
  for (let i = 1; i <= n; i++) {
    const storage = new MemoryStorage();
    const raw = newRaw(BigInt(i), storage, 0);
    raw.bootstrap(Array.from({ length: n }, (_, j) => ({ id: BigInt(j + 1) })));
    nodes.push({ id: BigInt(i), raw, storage, incarnation: 0, appHash: 0, appIndex: 0 });
  }
  const s: McState = { nodes, net: [], left: { ...budget }, inv: new Invariants(), proposed: 0 };
  for (const nd of s.nodes) drive(s, nd);
  return s;
}

/** Persist, send and apply everything a node's core has ready (one atomic step). */
function drive(s: McState, nd: McNode): void {
  const raw = nd.raw;
  if (!raw) return;
  while (raw.hasReady()) {
    const rd = raw.ready();
    if (rd.snapshot) nd.storage.applySnapshot(rd.snapshot);
    nd.storage.append(rd.entries);
    if (rd.hardState) nd.storage.setHardState(rd.hardState);
    for (const m of rd.messages) s.net.push(m);
    for (const m of rd.messagesAfterPersist) s.net.push(m);
    for (const e of rd.committedEntries) apply(s, nd, e);
    raw.advance(rd);
  }
}

function apply(s: McState, nd: McNode, e: Entry): void {
  if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) nd.raw!.applyConfChange(decodeConfChangeEntry(e.type, e.data));
  nd.appHash = chainHash(nd.appHash, dataKey(e));
  nd.appIndex = e.index;
  s.inv.onApply(nd.id, e, nd.appHash);
}

/** The events possible in `s` (within the budget), in a fixed order. */
export function enabled(s: McState): McEvent[] {
  const out: McEvent[] = [];
  // Delivering one of several identical messages leads to the same state: offer the first.
  const seen = new Set<string>();
  s.net.forEach((m, i) => {
    const k = msgKey(m);
    if (seen.has(k)) return;
    seen.add(k);
    if (s.nodes[Number(m.to) - 1]?.raw) out.push({ kind: 'deliver', msg: i });
    if (s.left.drops > 0) out.push({ kind: 'drop', msg: i });
    if (s.left.duplicates > 0) out.push({ kind: 'duplicate', msg: i });
  });
  s.nodes.forEach((nd, i) => {
    const r = nd.raw?.basicStatus();
    if (!r) {
      out.push({ kind: 'restart', node: i });
      return;
    }
    if (r.raftState !== StateType.Leader && s.left.timeouts > 0) out.push({ kind: 'timeout', node: i });
    if (r.raftState === StateType.Leader && s.left.heartbeats > 0) out.push({ kind: 'heartbeat', node: i });
    if (r.raftState === StateType.Leader && s.left.proposals > 0) out.push({ kind: 'propose', node: i });
    if (s.left.crashes > 0) out.push({ kind: 'crash', node: i });
  });
  return out;
}

/** A copy of `s` after event `ev`; undefined if the event changes nothing (pruned). */
export function step(s0: McState, ev: McEvent): McState | undefined {
  const s = deepClone(s0, SHARED);
  switch (ev.kind) {
    case 'deliver':
    case 'duplicate': {
      const m = ev.kind === 'deliver' ? s.net.splice(ev.msg, 1)[0]! : s.net[ev.msg]!;
      if (ev.kind === 'duplicate') s.left.duplicates--;
      const nd = s.nodes[Number(m.to) - 1]!;
      try {
        nd.raw!.step(m);
      } catch {
        /* a response from a peer it no longer tracks: dropped, as the server does */
      }
      drive(s, nd);
      break;
    }
    case 'drop':
      s.net.splice(ev.msg, 1);
      s.left.drops--;
      break;
    case 'timeout': {
      s.left.timeouts--;
      const nd = s.nodes[ev.node]!;
      nd.raw!.campaign();
      drive(s, nd);
      break;
    }
    case 'heartbeat': {
      s.left.heartbeats--;
      const nd = s.nodes[ev.node]!;
      nd.raw!.inspect().step(newMessage(MessageType.MsgBeat));
      drive(s, nd);
      break;
    }
    case 'propose': {
      s.left.proposals--;
      const nd = s.nodes[ev.node]!;
      try {
        nd.raw!.propose(new TextEncoder().encode(`v${++s.proposed}`));
      } catch (e) {
        if (e instanceof ErrProposalDropped) return undefined;
        throw e;
      }
      drive(s, nd);
      break;
    }
    case 'crash': {
      s.left.crashes--;
      const nd = s.nodes[ev.node]!;
      // The storage is what was persisted; everything in the core is lost.
      nd.raw = undefined;
      break;
    }
    case 'restart': {
      const nd = s.nodes[ev.node]!;
      nd.incarnation++;
      const snapIndex = nd.storage.snapshot().metadata.index;
      nd.raw = newRaw(nd.id, nd.storage, snapIndex);
      nd.appHash = 0;
      nd.appIndex = snapIndex;
      drive(s, nd);
      break;
    }
  }
  s.inv.check(s.nodes.map((n) => ({ id: n.id, raw: n.raw, incarnation: n.incarnation })));
  return s;
}

const entryKey = (e: Entry): string => `${e.index}/${e.term}/${dataKey(e)}`;

function msgKey(m: Message): string {
  const ctx = m.context && m.context.length > 0 ? Buffer.from(m.context).toString('hex') : '';
  return `${m.type}|${m.from}>${m.to}|t${m.term}|lt${m.logTerm}|i${m.index}|c${m.commit}|${m.reject ? 'R' : ''}${m.rejectHint}|${(m.entries ?? []).map(entryKey).join(',')}|${m.snapshot?.metadata.index ?? ''}|${ctx}`;
}

/**
 * The state's canonical form: each member's durable and volatile protocol state, the applied
 * state, the network as a sorted multiset, the remaining budget, and the election history
 * (which leader each term had: part of what the invariants judge). Not in it: timers (never
 * ticked here), the random generator (only timers use it), the invariants' other bookkeeping.
 */
export function canonical(s: McState): string {
  const parts: string[] = [];
  for (const nd of s.nodes) {
    const st = nd.storage;
    const hs = st.initialState().hardState;
    const last = st.lastIndex();
    const first = st.firstIndex();
    const log = last >= first ? st.entries(first, last + 1, NO_LIMIT).map(entryKey).join(',') : '';
    const durable = `hs${hs.term}/${hs.vote}/${hs.commit}|snap${st.snapshot().metadata.index}|${log}`;
    if (!nd.raw) {
      parts.push(`DOWN ${durable}`);
      continue;
    }
    const r = nd.raw.inspect();
    let vol = `${r.state}|t${r.term}|v${r.vote}|lead${r.lead}|c${r.raftLog.committed}|a${r.raftLog.applied}|app${nd.appIndex}:${nd.appHash}`;
    if (r.state === StateType.Leader) {
      const prs = [...r.trk.progress].sort(([a], [b]) => (a < b ? -1 : 1));
      vol += `|${prs.map(([id, p]) => `${id}:${p.state}:${p.match}:${p.next}:${p.pendingSnapshot}:${p.msgAppFlowPaused ? 'P' : ''}${p.recentActive ? 'A' : ''}:${p.inflights.len()}`).join(';')}`;
    } else if (r.state === StateType.Candidate || r.state === StateType.PreCandidate) {
      vol += `|votes:${[...r.trk.votes].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, v]) => `${id}${v ? '+' : '-'}`).join('')}`;
    }
    parts.push(`${durable}#${vol}`);
  }
  parts.push(`net:${s.net.map(msgKey).sort().join(' ')}`);
  const b = s.left;
  parts.push(`left:${b.proposals}/${b.timeouts}/${b.heartbeats}/${b.drops}/${b.duplicates}/${b.crashes}|p${s.proposed}`);
  parts.push(`leaders:${[...s.inv.leadersByTerm()].sort((a, c) => a[0] - c[0]).join(';')}`);
  return createHash('sha1').update(parts.join('\n')).digest('base64');
}

export function describeEvent(s: McState, ev: McEvent): string {
  if ('msg' in ev) {
    const m = s.net[ev.msg]!;
    const ents = (m.entries ?? []).map((e) => `${e.index}/${e.term}`).join(',');
    return `${ev.kind} ${MessageType[m.type]} ${m.from}->${m.to} term=${m.term} index=${m.index} logTerm=${m.logTerm} commit=${m.commit}${m.reject ? ' reject' : ''}${ents ? ` entries=[${ents}]` : ''}`;
  }
  return `${ev.kind} n${s.nodes[ev.node]!.id}`;
}
