// A member's replicated state as an etcd snapshot file: what Maintenance.Snapshot streams to
// `etcdctl snapshot save` and `raftkv snapshot save` (format: ./etcd-snapshot.ts).
//
// raftkv-only state is left out, as it means nothing to a new cluster: the exactly-once table
// (per-member request ids) and the Raft term. Alarms are kept (etcd keeps its alarm bucket).

import type { StateMachine } from '../server/state-machine.js';
import { CLUSTER_VERSION, encodeEtcdSnapshot } from './etcd-snapshot.js';

/**
 * The snapshot file of `sm`'s state at its current applied index, as chunks that concatenate
 * to the file. Once no entry is being applied in slices, every part is captured in one
 * synchronous stretch, so the file is of one applied index while applying goes on; the key
 * histories are then walked in slices that yield (`pause`).
 */
export async function etcdSnapshotOfMachine(sm: StateMachine, pause: () => Promise<void>): Promise<Buffer[]> {
  await sm.settled();
  // A lease checkpoint goes to the backend only when checkpoints persist, as etcd writes it.
  const persist = sm.lessor.checkpoints.persist;
  const leases = [...sm.lessor.leases.values()].map((l) => ({ id: l.id, ttl: l.ttl, remainingTTL: persist ? l.remainingTTL : 0n }));
  return encodeEtcdSnapshot(
    {
      store: sm.store,
      leases,
      members: [...sm.membership.members.values()].map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] })),
      removed: [...sm.membership.removed],
      auth: sm.auth.toImage(),
      alarms: sm.alarms.toImage(),
      consistentIndex: BigInt(sm.appliedIndex),
      clusterVersion: CLUSTER_VERSION,
    },
    pause,
  );
}

/** Regroups `chunks` into pieces of `size` bytes, the last one shorter (gRPC messages of a snapshot stream). */
export function* rechunk(chunks: readonly Buffer[], size: number): Generator<Buffer> {
  let pending: Buffer[] = [];
  let len = 0;
  for (const c of chunks) {
    pending.push(c);
    len += c.length;
    while (len >= size) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending, len);
      yield all.subarray(0, size);
      const rest = all.subarray(size);
      pending = rest.length > 0 ? [rest] : [];
      len = rest.length;
    }
  }
  if (len > 0) yield Buffer.concat(pending, len);
}
