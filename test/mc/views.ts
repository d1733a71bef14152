// Read-only views of a model state's members, shared by the invariants, the goals and the
// canonical form: a member's log as the storage holds it, entry identities, roles.

import { ConfChangeType, type Entry, EntryType, type MemoryStorage, type NodeId, StateType, decodeConfChangeEntry } from '../../src/raft/index.js';
import type { McNode } from './model.js';

/** MemoryStorage's entry array (index 0 is a dummy with the snapshot's index and term). */
export function storedEntries(st: MemoryStorage): readonly Entry[] {
  return (st as unknown as { ents: Entry[] }).ents;
}

export function storedHardState(st: MemoryStorage): { term: number; vote: NodeId; commit: number } {
  return (st as unknown as { hardState: { term: number; vote: NodeId; commit: number } }).hardState;
}

interface DecodedChange {
  kind: string;
  /** (change type letter, node id) pairs; empty: leave the joint configuration. */
  changes: Array<[string, NodeId]>;
}

const decoded = new WeakMap<Entry, DecodedChange>();
const letter: Record<number, string> = { [ConfChangeType.AddNode]: 'v', [ConfChangeType.AddLearnerNode]: 'l', [ConfChangeType.RemoveNode]: 'r', [ConfChangeType.UpdateNode]: 'u' };

/** A conf change entry's changes (memoized per entry object: entries are never mutated once logged). */
export function confChangeOf(e: Entry): DecodedChange {
  let d = decoded.get(e);
  if (!d) {
    const cc = decodeConfChangeEntry(e.type, e.data);
    d = { kind: 'transition' in cc ? `t${cc.transition}` : '', changes: cc.changes.map((c) => [letter[c.type] ?? '?', c.nodeId]) };
    decoded.set(e, d);
  }
  return d;
}

const textDecoder = new TextDecoder();
const keys = new WeakMap<Entry, string>();

/** An entry's identity (term and content; its index is its position), member ids as they are. */
export function entryKey(e: Entry): string {
  let k = keys.get(e);
  if (k === undefined) {
    if (e.type === EntryType.Normal) k = `${e.term}:${e.data.length === 0 ? '' : textDecoder.decode(e.data)}`;
    else {
      const d = confChangeOf(e);
      k = `${e.term}:cc${d.kind}${d.changes.map(([t, id]) => `${t}${id}`).join('')}`;
    }
    keys.set(e, k);
  }
  return k;
}

/** The member's committed log as entry keys, index 1 first (from its durable storage). */
export function committedEntries(n: McNode): string[] {
  const commit = n.raw ? n.raw.inspect().raftLog.committed : storedHardState(n.storage).commit;
  const ents = storedEntries(n.storage);
  const out: string[] = [];
  for (let i = 1; i < ents.length && ents[i]!.index <= commit; i++) out.push(entryKey(ents[i]!));
  return out;
}

export function isLeader(n: McNode): boolean {
  return n.raw !== undefined && n.raw.inspect().state === StateType.Leader;
}
