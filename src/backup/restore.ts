// `raftkv snapshot restore`: a new member data dir from an etcd snapshot file (made by raftkv or
// by etcd 3.4), from which a new cluster starts, as `etcdctl snapshot restore` does for etcd.
//
// What etcd's restore does, in raftkv's terms: the keys with their histories, the revision,
// the compaction, leases and auth are kept; the membership is replaced by --initial-cluster
// (member ids from the peer URLs and --initial-cluster-token, hence a new cluster id when the
// token or URLs differ); the Raft log starts over at term 1 with a snapshot at index
// len(members) (etcd's restore commits one conf change per member there). The member then
// starts with the usual flags and finds an existing data dir: a restart (src/server/bootstrap.ts).
// Alarms are dropped (they name members of the old cluster) as is the exactly-once table.
//
// Nothing is written unless everything checks out: the file's sha256 (unless skipped) and its
// structure are verified before the first write, and the data dir is assembled in a temporary
// directory next to it, renamed into place only when complete and synced.

import { existsSync, readdirSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { MemberInfo } from '../gen/raftkv/member.js';
import { emptyConfState, NONE, type Logger } from '../raft/index.js';
import { encodeStateImageAsync } from '../server/snapshot-image.js';
import { leaseImageEntry } from '../kv/lessor.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { Wal } from '../storage/wal/wal.js';
import { snapDirOf, walDirOf } from '../server/config.js';
import { osSync } from '../storage/fatal.js';
import { clusterId as computeClusterId, memberId as computeMemberId } from '../util/ids.js';
import { decodeEtcdSnapshot } from './etcd-snapshot.js';

export interface RestoreOptions {
  /** The snapshot file's bytes. */
  file: Buffer;
  name: string;
  dataDir: string;
  /** --wal-dir: the WAL goes there (which must not exist yet) instead of <data-dir>/member/wal. */
  walDir?: string;
  /** name -> peer URLs */
  initialCluster: Map<string, string[]>;
  initialClusterToken: string;
  initialAdvertisePeerUrls: string[];
  skipHashCheck: boolean;
  logger: Logger;
  pause: () => Promise<void>;
}

export interface RestoreResult {
  memberId: bigint;
  clusterId: bigint;
  revision: bigint;
  /** Live keys (not counting deleted ones whose history is kept). */
  keys: number;
  leases: number;
  /** The Raft index of the restored snapshot (the number of members). */
  index: number;
}

const sameUrls = (a: string[], b: string[]): boolean => [...a].sort().join(',') === [...b].sort().join(',');

export async function restoreDataDir(o: RestoreOptions): Promise<RestoreResult> {
  // Refusals first: nothing is written for a bad flag, a data dir in use or a damaged file.
  if (existsSync(o.dataDir) && readdirSync(o.dataDir).length > 0) throw new Error(`data-dir "${o.dataDir}" not empty or could not be read`);
  if (o.walDir !== undefined && existsSync(o.walDir)) throw new Error(`wal-dir "${o.walDir}" exists`);
  const mine = o.initialCluster.get(o.name);
  if (!mine) throw new Error(`couldn't find local name "${o.name}" in the initial cluster configuration`);
  if (!sameUrls(mine, o.initialAdvertisePeerUrls)) {
    throw new Error(`--initial-cluster has ${o.name}=${mine.join(',')} but --initial-advertise-peer-urls is ${o.initialAdvertisePeerUrls.join(',')}`);
  }
  const state = await decodeEtcdSnapshot(o.file, o.pause, o.skipHashCheck);

  const members: MemberInfo[] = [...o.initialCluster].map(([name, urls]) => ({
    id: computeMemberId(urls, o.initialClusterToken),
    name,
    peerUrls: urls,
    clientUrls: [],
    isLearner: false,
  }));
  const ids = members.map((m) => m.id);
  if (new Set(ids).size !== ids.length) throw new Error('--initial-cluster has two members with the same peer URLs');
  const memberId = computeMemberId(mine, o.initialClusterToken);
  const clusterId = computeClusterId(ids);
  const index = members.length;
  const image = await encodeStateImageAsync(
    state.store,
    {
      leases: state.leases.map((l) => leaseImageEntry(l.id, l.ttl, l.remainingTTL)),
      members: { members: members.map((m) => Buffer.from(MemberInfo.encode(m).finish()).toString('base64')), removed: [] },
      alarms: [],
      auth: state.auth,
    },
    o.pause,
  );

  const target = resolve(o.dataDir);
  const tmp = join(dirname(target), `.${target.split('/').pop()}.restoring-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  // A dedicated WAL dir is made beside its final place too, and moved there last.
  const walTarget = o.walDir === undefined ? undefined : resolve(o.walDir);
  const walTmp = walTarget === undefined ? walDirOf({ dataDir: tmp }) : join(dirname(walTarget), `.${walTarget.split('/').pop()}.restoring-${process.pid}`);
  if (walTarget !== undefined) await rm(walTmp, { recursive: true, force: true });
  try {
    const snapshotter = new Snapshotter(snapDirOf({ dataDir: tmp }), o.logger);
    await snapshotter.save({ data: image, metadata: { index, term: 1, confState: { ...emptyConfState(), voters: ids } } });
    const wal = await Wal.create(walTmp, { nodeId: memberId, clusterId }, { logger: o.logger });
    try {
      await wal.saveSnapshotMark(index, 1);
      await wal.save({ term: 1, vote: NONE, commit: index }, [], true);
    } finally {
      await wal.close();
    }
    await osSync.fsyncDir(tmp);
    // An empty target directory (allowed above) is replaced.
    if (existsSync(target)) await rm(target, { recursive: true });
    await rename(tmp, target);
    await osSync.fsyncDir(dirname(target));
    if (walTarget !== undefined) {
      await mkdir(dirname(walTarget), { recursive: true, mode: 0o700 });
      await rename(walTmp, walTarget);
      await osSync.fsyncDir(dirname(walTarget));
    }
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (walTarget !== undefined) await rm(walTmp, { recursive: true, force: true });
    throw e;
  }
  const keys = state.store.range(Buffer.from([0]), Buffer.from([0]), { countOnly: true }).count;
  return { memberId, clusterId, revision: state.store.currentRev, keys, leases: state.leases.length, index };
}
