// The Raft safety properties, checked in every state the model checker reaches. A state holds
// a little history ("ghost" state, as in TLA+ specs) for the properties that are about the
// past: which member led each term, what was committed at each index and in which term, and
// the reads in flight with the commit index they must see. The ghost is part of the state's
// canonical form, so two states are merged only when their histories agree on these.

import { type Entry, EntryType, type NodeId, type ReadState, StateType } from '../../src/raft/index.js';
import { InvariantViolation } from '../sim/invariants.js';
import type { McNode, McState } from './model.js';
import { entryKey, storedEntries } from './views.js';

export { InvariantViolation };

export interface Ghost {
  /** [term, leader] for every term that had a leader, by term. */
  leaders: Array<[number, NodeId]>;
  /** By index - 1: what was first applied at that index, and the applier's term then (the commit's term). */
  committed: ReadonlyArray<{ entry: Entry; term: number; value: boolean }>;
  /** ReadIndex requests not yet answered, and the highest committed index when each was issued. */
  reads: Array<{ ctx: string; node: NodeId; minIndex: number }>;
  proposed: number;
  readsIssued: number;
  changesMade: number;
}

/** State machine safety: every member applies the same entry at each index. */
export function onApply(s: McState, nd: McNode, e: Entry): void {
  const key = entryKey(e);
  const prev = s.ghost.committed[e.index - 1];
  if (prev === undefined) {
    const term = nd.raw!.inspect().term;
    s.ghost.committed = [...s.ghost.committed, { entry: e, term, value: e.type === EntryType.Normal && e.data.length > 0 }];
  } else if (entryKey(prev.entry) !== key) {
    throw new InvariantViolation('state machine safety', `member ${nd.id} applied ${JSON.stringify(key)} at index ${e.index}, where ${JSON.stringify(entryKey(prev.entry))} was applied before`);
  }
}

const decoder = new TextDecoder();

/** Read linearizability (ReadIndex): the read index covers everything committed before the request. */
export function checkReadState(s: McState, nd: McNode, rs: ReadState): void {
  const ctx = decoder.decode(rs.requestCtx);
  const i = s.ghost.reads.findIndex((r) => r.ctx === ctx);
  if (i < 0) return; // answered twice: the first answer was checked
  const r = s.ghost.reads[i]!;
  s.ghost.reads.splice(i, 1);
  if (rs.index < r.minIndex) {
    throw new InvariantViolation(
      'read linearizability',
      `member ${nd.id} answered read ${ctx} with read index ${rs.index}, but index ${r.minIndex} was committed before the read was issued: the read can miss a committed write`,
    );
  }
}

/** The properties of one state (with its ghost history). */
export function checkState(s: McState): void {
  const leaderOfTerm = new Map<number, NodeId>();
  for (const n of s.nodes) {
    if (!n.raw) continue;
    const r = n.raw.inspect();
    if (r.state !== StateType.Leader) continue;
    // At most one leader per term, among the members now.
    const other = leaderOfTerm.get(r.term);
    if (other !== undefined) throw new InvariantViolation('one leader per term', `members ${other} and ${n.id} are both leaders of term ${r.term}`);
    leaderOfTerm.set(r.term, n.id);
    // Election safety: at most one member is ever elected in a term.
    const at = s.ghost.leaders.findIndex(([t]) => t >= r.term);
    const was = at >= 0 ? s.ghost.leaders[at]! : undefined;
    if (was && was[0] === r.term) {
      if (was[1] !== n.id) throw new InvariantViolation('election safety', `member ${n.id} leads term ${r.term}, which member ${was[1]} was elected in`);
    } else {
      s.ghost.leaders.splice(at < 0 ? s.ghost.leaders.length : at, 0, [r.term, n.id]);
    }
    // Leader completeness: a leader of term T holds every entry committed in a term before T.
    const ents = storedEntries(n.storage);
    s.ghost.committed.forEach((c, i) => {
      if (c.term >= r.term) return;
      const e = ents[i + 1];
      if (!e || entryKey(e) !== entryKey(c.entry)) {
        throw new InvariantViolation('leader completeness', `leader ${n.id} of term ${r.term} lacks the entry ${JSON.stringify(entryKey(c.entry))} committed at index ${i + 1} in term ${c.term}`);
      }
    });
  }
  // Log matching: two logs with an entry of the same index and term are equal up to it.
  for (let a = 0; a < s.nodes.length; a++) {
    const x = storedEntries(s.nodes[a]!.storage);
    for (let b = a + 1; b < s.nodes.length; b++) {
      const y = storedEntries(s.nodes[b]!.storage);
      let i = Math.min(x.length, y.length) - 1;
      while (i > 0 && x[i]!.term !== y[i]!.term) i--;
      for (let j = i; j > 0; j--) {
        if (x[j] !== y[j] && entryKey(x[j]!) !== entryKey(y[j]!)) {
          throw new InvariantViolation(
            'log matching',
            `members ${s.nodes[a]!.id} and ${s.nodes[b]!.id} both have an entry of term ${x[i]!.term} at index ${i}, but differ at index ${j}: ${JSON.stringify(entryKey(x[j]!))} vs ${JSON.stringify(entryKey(y[j]!))}`,
          );
        }
      }
    }
  }
}

/** The properties of one step: what a member had before and has now. */
export function checkTransition(before: McState, after: McState): void {
  for (let k = 0; k < after.nodes.length; k++) {
    const n0 = before.nodes[k]!;
    const n1 = after.nodes[k]!;
    if (!n0.raw || !n1.raw || n0.incarnation !== n1.incarnation) continue;
    const r0 = n0.raw.inspect();
    const r1 = n1.raw.inspect();
    // Commit index never moves backwards (within one incarnation: a restart forgets it).
    if (r1.raftLog.committed < r0.raftLog.committed) {
      throw new InvariantViolation('monotonic commit', `member ${n1.id}'s commit index went from ${r0.raftLog.committed} to ${r1.raftLog.committed}`);
    }
    // Leader append-only: while it leads a term, a leader never overwrites or deletes entries.
    if (r0.state === StateType.Leader && r1.state === StateType.Leader && r0.term === r1.term) {
      const e0 = storedEntries(n0.storage);
      const e1 = storedEntries(n1.storage);
      for (let i = 1; i < e0.length; i++) {
        if (!e1[i] || (e1[i] !== e0[i] && entryKey(e1[i]!) !== entryKey(e0[i]!))) {
          throw new InvariantViolation('leader append-only', `leader ${n1.id} of term ${r1.term} lost or changed its entry at index ${i}`);
        }
      }
    }
  }
}
