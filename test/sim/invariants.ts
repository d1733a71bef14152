// The Raft safety properties (paper Figure 3), checked on the whole simulated cluster after
// every event. Each check is phrased so that it can only fail on a real violation.

import type { Entry, NodeId, RawNode } from '../../src/raft/index.js';
import { NO_LIMIT, StateType } from '../../src/raft/index.js';

export class InvariantViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

export function dataKey(e: Entry): string {
  if (e.data.length === 0) return `${e.type}:`;
  let s = `${e.type}:`;
  for (let i = 0; i < e.data.length; i++) s += String.fromCharCode(e.data[i]!);
  return s;
}

/** FNV-1a chained over entries: the state machine's fingerprint at an index. */
export function chainHash(prev: number, key: string): number {
  let h = (prev ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

interface LeaderShadow {
  term: number;
  /** The leader's entries (by index) when last checked: they must never change. */
  entries: Map<number, Entry>;
}

export interface NodeView {
  id: NodeId;
  raw: RawNode | undefined; // undefined while crashed
  incarnation: number;
}

export class Invariants {
  /** term -> the node that led it. */
  private leaders = new Map<number, NodeId>();
  /** "index:term" -> the entry's identity and its predecessor's term. */
  private entryRegistry = new Map<string, { key: string; prevTerm: number }>();
  /** index -> [hash of the state after applying it, entry key]. */
  private applied = new Map<number, { hash: number; key: string }>();
  /** commitTerm -> highest (index, term) known committed by a node in that term. */
  private committedByTerm = new Map<number, { index: number; term: number }>();
  private shadows = new Map<NodeId, LeaderShadow>();
  private lastCommit = new Map<string, number>();
  checks = 0;

  /** State machine safety: every node applies the same entry at each index. */
  onApply(node: NodeId, e: Entry, hashAfter: number): void {
    const key = dataKey(e);
    const prev = this.applied.get(e.index);
    if (prev === undefined) {
      this.applied.set(e.index, { hash: hashAfter, key });
      return;
    }
    if (prev.key !== key || prev.hash !== hashAfter) {
      throw new InvariantViolation(
        'state machine safety',
        `node ${node} applied ${JSON.stringify(key)} at index ${e.index}, another node applied ${JSON.stringify(prev.key)}`,
      );
    }
  }

  /** A restored snapshot must equal the state every node reached at that index. */
  onSnapshotRestore(node: NodeId, index: number, hash: number): void {
    const prev = this.applied.get(index);
    if (prev !== undefined && prev.hash !== hash) {
      throw new InvariantViolation('state machine safety', `node ${node} restored a snapshot at ${index} whose state differs from the applied one`);
    }
  }

  /** Which node led each term so far (the model checker counts it as part of the state). */
  leadersByTerm(): ReadonlyMap<number, NodeId> {
    return this.leaders;
  }

  appliedHash(index: number): number | undefined {
    return this.applied.get(index)?.hash;
  }

  maxAppliedIndex(): number {
    let m = 0;
    for (const k of this.applied.keys()) if (k > m) m = k;
    return m;
  }

  check(nodes: readonly NodeView[]): void {
    this.checks++;
    for (const n of nodes) {
      const raw = n.raw;
      if (!raw) continue;
      const r = raw.inspect();
      const log = r.raftLog;
      const first = log.firstIndex();
      const last = log.lastIndex();
      const ents = last >= first ? log.slice(first, last + 1, NO_LIMIT) : [];

      // Log matching, strengthened: an (index, term) pair identifies one entry and one
      // predecessor term, for all nodes and for all time.
      let prevTerm = log.zeroTermOnErr(first - 1);
      for (const e of ents) {
        const k = `${e.index}:${e.term}`;
        const key = dataKey(e);
        const reg = this.entryRegistry.get(k);
        if (reg === undefined) {
          this.entryRegistry.set(k, { key, prevTerm });
        } else if (reg.key !== key || reg.prevTerm !== prevTerm) {
          throw new InvariantViolation(
            'log matching',
            `node ${n.id} has entry (${e.index}, term ${e.term}) = ${JSON.stringify(key)} after term ${prevTerm}; another log has ${JSON.stringify(reg.key)} after term ${reg.prevTerm}`,
          );
        }
        prevTerm = e.term;
      }

      // Commit index never moves backwards within one incarnation.
      const ck = `${n.id}/${n.incarnation}`;
      const lc = this.lastCommit.get(ck) ?? 0;
      if (log.committed < lc) {
        throw new InvariantViolation('monotonic commit', `node ${n.id} commit went from ${lc} to ${log.committed}`);
      }
      this.lastCommit.set(ck, log.committed);
      if (log.committed > 0 && log.committed >= first - 1) {
        const t = log.zeroTermOnErr(log.committed);
        const cur = this.committedByTerm.get(r.term);
        if (t > 0 && (!cur || cur.index < log.committed)) this.committedByTerm.set(r.term, { index: log.committed, term: t });
      }

      if (r.state !== StateType.Leader) {
        if (this.shadows.get(n.id)?.term !== r.term) this.shadows.delete(n.id);
        continue;
      }

      // Election safety: at most one leader per term.
      const other = this.leaders.get(r.term);
      if (other !== undefined && other !== n.id) {
        throw new InvariantViolation('election safety', `nodes ${other} and ${n.id} both leaders in term ${r.term}`);
      }
      this.leaders.set(r.term, n.id);

      // Leader append-only: while leading, a leader never overwrites or deletes entries.
      let sh = this.shadows.get(n.id);
      if (!sh || sh.term !== r.term) {
        sh = { term: r.term, entries: new Map() };
        this.shadows.set(n.id, sh);
      }
      for (const [idx, e] of sh.entries) {
        if (idx < first) {
          sh.entries.delete(idx); // compacted: fine, it was applied
          continue;
        }
        const cur = idx <= last ? ents[idx - first] : undefined;
        if (!cur || cur.term !== e.term || dataKey(cur) !== dataKey(e)) {
          throw new InvariantViolation('leader append-only', `leader ${n.id} (term ${r.term}) lost or changed its entry at index ${idx}`);
        }
      }
      for (const e of ents) sh.entries.set(e.index, e);

      // Leader completeness: a leader of term T has every entry committed in a term < T.
      let best: { index: number; term: number } | undefined;
      for (const [ct, c] of this.committedByTerm) {
        if (ct < r.term && (!best || c.index > best.index)) best = c;
      }
      if (best && best.index >= first - 1) {
        if (last < best.index || log.zeroTermOnErr(best.index) !== best.term) {
          throw new InvariantViolation(
            'leader completeness',
            `leader ${n.id} of term ${r.term} lacks committed entry (${best.index}, term ${best.term}); its last index is ${last}`,
          );
        }
      }
    }
  }
}
