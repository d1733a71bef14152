// --force-new-cluster: a member restarts from its own data as the only voter of its cluster
// (etcd's restartAsStandaloneNode, etcdserver/raft.go). For a cluster that lost its quorum for
// good: the survivor keeps everything committed, and `member add` then brings new members in.
//
// As etcd does it: the uncommitted tail of the log is discarded (it may never have reached a
// quorum); the configuration as of the log's end is worked out from the snapshot's ConfState
// and the conf changes after it (getIDs); one ConfChange entry per other member removes it (and
// one adds this member if it is somehow missing) (createConfigChangeEnts); those entries are
// appended, durable, and marked committed, so that the member applies them like any committed
// entry — the membership change goes through the log, and the member list and the Raft
// configuration change together. The cluster id stays the same, as with etcd.

import {
  type ConfState,
  ConfChangeType,
  type Entry,
  EntryType,
  decodeConfChangeEntry,
  encodeConfChangeV1,
} from '../raft/index.js';
import { MemberInfo } from '../gen/raftkv/member.js';
import { compareOrdered } from '../util/compare.js';

/**
 * The ids in the configuration at the end of `ents` (committed entries after the snapshot),
 * starting from the snapshot's ConfState: voters and learners (etcd 3.4 counts only voters of
 * the snapshot; a learner left in would keep a stale member in the list).
 */
export function configuredIds(snapConf: ConfState | undefined, ents: readonly Entry[]): Set<bigint> {
  const ids = new Set<bigint>([...(snapConf?.voters ?? []), ...(snapConf?.learners ?? []), ...(snapConf?.votersOutgoing ?? [])]);
  for (const e of ents) {
    if (e.type !== EntryType.ConfChange && e.type !== EntryType.ConfChangeV2) continue;
    for (const c of decodeConfChangeEntry(e.type, e.data).changes) {
      if (c.type === ConfChangeType.AddNode || c.type === ConfChangeType.AddLearnerNode) ids.add(c.nodeId);
      else if (c.type === ConfChangeType.RemoveNode) ids.delete(c.nodeId);
    }
  }
  return ids;
}

/**
 * How far a restarted member replays its log before it serves clients (EtcdServer.replayed):
 * to the commit index it found — or, when it is the only member of its configuration (and no
 * conf change waits uncommitted), to the last entry it found: every entry it persisted was
 * committed then (it is the whole quorum), whether or not the commit index saying so reached
 * the disk before the process was killed (it is written unsynced, as etcd's), so a single
 * member never answers from a state older than writes it had acknowledged.
 */
export function replayTarget(snapConf: ConfState | undefined, ents: readonly Entry[], commit: number, lastIndex: number, self: bigint): number {
  const isConf = (e: Entry): boolean => e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
  if (ents.some((e) => e.index > commit && isConf(e))) return commit;
  const ids = configuredIds(snapConf, ents.filter((e) => e.index <= commit));
  return ids.size === 1 && ids.has(self) ? Math.max(commit, lastIndex) : commit;
}

/**
 * The entries that make `self` the only member: a removal of every other id, then (if `self` is
 * not configured) an addition of `self` described by `selfInfo`; at indexes after `index`, in
 * term `term`.
 */
export function standaloneEntries(ids: ReadonlySet<bigint>, self: bigint, selfInfo: MemberInfo | undefined, term: number, index: number): Entry[] {
  const out: Entry[] = [];
  const others = [...ids].filter((id) => id !== self).sort(compareOrdered);
  for (const id of others) {
    out.push({ term, index: index + out.length + 1, type: EntryType.ConfChange, data: encodeConfChangeV1({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array(0) }) });
  }
  if (!ids.has(self)) {
    const context = selfInfo ? MemberInfo.encode(selfInfo).finish() : new Uint8Array(0);
    out.push({ term, index: index + out.length + 1, type: EntryType.ConfChange, data: encodeConfChangeV1({ type: ConfChangeType.AddNode, nodeId: self, context }) });
  }
  return out;
}
