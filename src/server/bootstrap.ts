// Bootstrap and recovery: turns a data directory (or none) into a Raft node ready to run.
//
// Owns: deciding between restart, fresh start and join; replaying the newest valid snapshot
// and the WAL after it into the storage and the state machine; computing member and cluster
// ids as etcd does. Never: sends a message, ticks, or serves a request (the caller starts the
// loop once this returns). Refuses to start, rather than guess, when the WAL does not join up
// with the newest snapshot.

import { mkdir } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import { type MemoryStorage, RawNode, ReadOnlyOption, SeededRand } from '../raft/index.js';
import { MemberInfo } from '../gen/raftkv/member.js';
import type { Snapshotter } from '../storage/snap/snapshotter.js';
import { newestSnapshotIndex } from '../storage/snap/snap-names.js';
import { Wal, compactEntryViews } from '../storage/wal/wal.js';
import { type SyncCalls, osSync, unsafeNoSync } from '../storage/fatal.js';
import type { TransportFactory } from '../transport/transport.js';
import { clusterId as computeClusterId, hex, memberId as computeMemberId } from '../util/ids.js';
import { type ServerConfig, electionTicks, walDirOf } from './config.js';
import type { StateMachine } from './state-machine.js';
import { configuredIds, replayTarget, standaloneEntries } from './force-new-cluster.js';
import { yieldToEventLoop } from '../util/yield.js';
import { urlsMapString } from '../util/url.js';

const MAX_SIZE_PER_MSG = 1024 * 1024;

/**
 * Append messages the leader keeps in flight to one follower (--max-inflight-appends). etcd
 * pipelines 512, which suits a network whose round trip is long next to the cost of a message.
 * Here a message is what costs: a follower pays a read, a decode, a WAL write (a thread-pool
 * trip) and an ack for every append it gets, however few entries it carries, and with 64
 * clients the leader's turns made appends of a handful of entries each. With one in flight the
 * leader sends the next append when the last is acknowledged, carrying everything proposed
 * meanwhile (up to MAX_SIZE_PER_MSG): Raft's own Nagle, clocked by the follower's pace. Measured
 * on 3 members, 64 clients: per put, a follower's WAL writes 0.09 → 0.04 and socket reads
 * 0.20 → 0.09; 2,007–2,462 → 2,570–2,575 puts/s, and at 11 members 708–847 → 848–898. One
 * client waits for nothing (nothing else is in flight); catching up 100,000 entries took no
 * longer (1.95 vs 2.24 s). A lost append still frees the window at the next heartbeat
 * response (raft.ts: a throttled follower gets an empty append).
 */
const DEFAULT_MAX_INFLIGHT_APPENDS = 1;

export interface Booted {
  id: bigint;
  clusterId: bigint;
  wal: Wal;
  raw: RawNode;
  /** Everyone the node should talk to (the restored or initial member list). */
  peers: MemberInfo[];
  /** Index of the snapshot the state was restored from (0: none). */
  snapshotIndex: number;
  /** The last entry already applied before the restart, which the log replays (0: a new member). */
  replayTo: number;
}

export async function bootstrap(cfg: ServerConfig, storage: MemoryStorage, sm: StateMachine, snapshotter: Snapshotter, transport: TransportFactory): Promise<Booted> {
  const logger = cfg.logger;
  const walDir = walDirOf(cfg);
  const rawConfig = {
    electionTick: electionTicks(cfg),
    heartbeatTick: 1,
    storage,
    maxSizePerMsg: MAX_SIZE_PER_MSG,
    // etcd-io/raft's default (MaxSizePerMsg): a Ready hands out at most ~1 MiB of committed
    // entries, so that a long backlog (a restart replaying its WAL, a follower far behind) is
    // applied in pieces the raft loop can spread over event-loop turns (raft-node.ts).
    maxCommittedSizePerReady: MAX_SIZE_PER_MSG,
    maxInflightMsgs: cfg.maxInflightAppends ?? DEFAULT_MAX_INFLIGHT_APPENDS,
    maxUncommittedEntriesSize: 1 << 30,
    checkQuorum: true,
    preVote: true,
    readOnlyOption: cfg.leaseReads ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
    stepDownOnRemoval: true,
    rand: new SeededRand(cfg.raftSeed ?? randomInt(2 ** 31)),
    logger,
  };
  const walOptions = { logger, segmentBytes: cfg.walSegmentBytes, sync: syncCallsOf(cfg), maxFiles: cfg.maxWals };
  // The replay begins at the newest snapshot: segments older than it are left unread (etcd's WAL
  // opens at its snapshot too), so those --max-wals keeps cost a restart nothing.
  const newestSnapshot = await newestSnapshotIndex(snapshotter.dir);
  let existing = (await Wal.hasWal(walDir)) ? await Wal.open(walDir, { ...walOptions, readAhead: cfg.walReadAhead, from: newestSnapshot }) : undefined;
  const neverPersisted =
    existing !== undefined && existing.contents.entries.length === 0 && !existing.contents.snapshot && existing.contents.hardState.term === 0;

  if (existing && !neverPersisted) {
    // ---- restart: newest valid snapshot, then the WAL entries after it.
    if (cfg.discovery) logger.warn(`discovery token is ignored since cluster already initialized; valid logs are found in ${walDir}`);
    const snap = await snapshotter.loadNewest();
    if (existing.contents.readFrom > (snap?.metadata.index ?? 0) + 1) {
      // The newest snapshot file did not load (the snapshotter said why): the entries after the
      // older one it fell back to are in segments left unread, if --max-wals kept them.
      await existing.wal.close();
      existing = await Wal.open(walDir, walOptions);
    }
    const { wal, contents } = existing;
    if (snap) {
      storage.applySnapshot(snap);
      await sm.restoreAsync(snap.data, snap.metadata.index, yieldToEventLoop, snap.metadata.confState);
    }
    const base = snap?.metadata.index ?? 0;
    let ents = contents.entries.filter((e) => e.index > base);
    if (ents.length > 0 && ents[0]!.index !== base + 1) {
      throw new Error(`data dir ${cfg.dataDir}: the WAL starts at index ${ents[0]!.index} but the newest valid snapshot is at ${base}; entries are missing`);
    }
    if (contents.snapshot && contents.snapshot.index > base) {
      logger.warn(`snapshot at index ${contents.snapshot.index} is missing or corrupt; recovering from ${base}`);
    }
    if (cfg.forceNewCluster) {
      // --force-new-cluster (./force-new-cluster.ts): keep the committed log, then append,
      // durably and committed, the conf changes that leave this member the only one.
      const hs0 = contents.hardState;
      const last = ents.length > 0 ? ents[ents.length - 1]!.index : base;
      const commit = Math.max(base, Math.min(hs0.commit, last));
      const kept = ents.filter((e) => e.index <= commit);
      const self = contents.meta.nodeId;
      const selfInfo = sm.membership.get(self) ?? { id: self, name: cfg.name, peerUrls: cfg.initialAdvertisePeerUrls, clientUrls: [], isLearner: false };
      const forced = standaloneEntries(configuredIds(snap?.metadata.confState, kept), self, selfInfo, hs0.term, commit);
      ents = [...kept, ...forced];
      hs0.commit = commit + forced.length;
      // Written after the committed entries, they supersede the discarded tail on replay.
      await existing.wal.save({ ...hs0 }, forced, true);
      logger.warn(
        `forcing a new cluster: member ${hex(self)} is now its only voter; ${last - commit} uncommitted entries discarded, ${forced.length} conf changes appended at ${commit + 1}`,
      );
    }
    compactEntryViews(ents);
    storage.append(ents);
    const hs = contents.hardState;
    if (hs.commit > storage.lastIndex()) hs.commit = storage.lastIndex();
    if (hs.commit < base) hs.commit = base;
    storage.setHardState(hs);
    const id = contents.meta.nodeId;
    const clusterId = contents.meta.clusterId;
    const raw = new RawNode({ ...rawConfig, id, applied: base });
    logger.info(`restarted member ${hex(id)} in cluster ${hex(clusterId)} at commit ${hs.commit}, term ${hs.term}, ${ents.length} WAL entries after snapshot ${base}`);
    const replayTo = replayTarget(snap?.metadata.confState, ents, hs.commit, storage.lastIndex(), id);
    return { id, clusterId, wal, raw, peers: [...sm.membership.members.values()], snapshotIndex: base, replayTo };
  }

  // ---- a brand-new member, or one that crashed before its bootstrap was durable: start over.
  if (existing) {
    await existing.wal.close();
    // Its segments, not the directory: a dedicated --wal-dir may be a mount point.
    await Wal.removeSegments(walDir);
  }
  let joinedClusterId = cfg.existingClusterId;
  let members = cfg.existingMembers;
  // --discovery / --discovery-srv: the cluster as the service or DNS tells it (for a member
  // joining a running cluster, the peers to ask; v2 discovery refuses that case, as etcd's).
  let initialCluster = cfg.initialCluster;
  if (!members && cfg.discovery) {
    initialCluster = await cfg.discovery(computeMemberId(cfg.initialAdvertisePeerUrls, cfg.initialClusterToken), urlsMapString(cfg.initialCluster), cfg.initialClusterState);
    const urls = [...initialCluster.values()].flat();
    if (new Set(urls).size !== urls.length) throw new Error(`discovery cluster ${urlsMapString(initialCluster)} has duplicate url`);
  }
  if (cfg.initialClusterState === 'existing' && !members) {
    // Joining: learn the cluster id and our member id (assigned by `member add`) from a peer.
    const mine = new Set(cfg.initialAdvertisePeerUrls);
    const others = [...initialCluster.values()].flat().filter((u) => !mine.has(u));
    const info = await transport.fetchClusterInfo(others);
    members = info.members;
    joinedClusterId = info.clusterId;
  }
  members ??= initialMembers(initialCluster, cfg.initialClusterToken);
  const same = (a: string[], b: string[]) => [...a].sort().join(',') === [...b].sort().join(',');
  const me =
    cfg.initialClusterState === 'existing'
      ? members.find((m) => same(m.peerUrls, cfg.initialAdvertisePeerUrls))
      : members.find((m) => m.name === cfg.name);
  if (!me) {
    throw new Error(
      cfg.initialClusterState === 'existing'
        ? `no member with peer URLs ${cfg.initialAdvertisePeerUrls.join(',')} in the cluster: add it first (etcdctl member add)`
        : `couldn't find local name "${cfg.name}" in the initial cluster configuration`,
    );
  }
  await mkdir(cfg.dataDir, { recursive: true, mode: 0o700 });
  const id = me.id;
  const clusterId = cfg.initialClusterState === 'existing' ? joinedClusterId! : computeClusterId(members.map((m) => m.id));
  const wal = await Wal.create(walDir, { nodeId: id, clusterId }, walOptions);
  const raw = new RawNode({ ...rawConfig, id });
  if (cfg.initialClusterState === 'new') {
    raw.bootstrap(members.map((m) => ({ id: m.id, context: MemberInfo.encode(m).finish() })));
  }
  logger.info(`started new member ${hex(id)} in cluster ${hex(clusterId)} (${cfg.initialClusterState})`);
  return { id, clusterId, wal, raw, peers: members, snapshotIndex: 0, replayTo: 0 };
}

/** How the member's files are made durable: the operating system's syncs, or none (--unsafe-no-fsync). */
export function syncCallsOf(cfg: Pick<ServerConfig, 'unsafeNoFsync'>): SyncCalls {
  return cfg.unsafeNoFsync ? unsafeNoSync : osSync;
}

/** The members named by --initial-cluster (or found by discovery), with etcd's member ids. */
function initialMembers(cluster: ReadonlyMap<string, string[]>, token: string): MemberInfo[] {
  const out: MemberInfo[] = [];
  for (const [name, urls] of cluster) {
    out.push({ id: computeMemberId(urls, token), name, peerUrls: urls, clientUrls: [], isLearner: false });
  }
  return out;
}
