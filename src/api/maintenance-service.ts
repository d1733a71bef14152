// etcdserverpb.Maintenance: Status, Alarm, Defragment, Hash, HashKV, Snapshot, MoveLeader.

import type * as grpc from '@grpc/grpc-js';
import {
  type AlarmRequest,
  AlarmRequest_AlarmAction,
  AlarmResponse,
  DefragmentResponse,
  type HashKVRequest,
  HashKVResponse,
  HashResponse,
  MaintenanceService,
  type MoveLeaderRequest,
  MoveLeaderResponse,
  SnapshotResponse,
  StatusResponse,
} from '../gen/etcd/rpc.js';
import { authOf, withAuthStoreErrors } from '../auth/frontend.js';
import { Errors, isRequestTimeout } from '../kv/errors.js';
import { alarmText } from '../server/alarms.js';
import { API_VERSION, type EtcdServer } from '../server/etcd-server.js';
import { yieldToEventLoop } from '../util/yield.js';
import { etcdSnapshotOfMachine, rechunk } from '../backup/member-backup.js';
import { guardStream, toServiceError, unary, withoutResponseCopies } from './grpc-util.js';
import { cancellationOf, untilCancelled } from './call-cancellation.js';

/** etcd's snapshotSendBufferSize: the database goes out in messages of this many bytes. */
const SNAPSHOT_SEND_BYTES = 32 * 1024;

/**
 * Snapshot streams served at once by one member. Each holds a whole image of the state while its
 * client reads it (etcd streams from a bbolt read transaction, in constant memory): a third call
 * waits for a slot — until its client goes away — rather than build a third image.
 */
export const SNAPSHOTS_AT_ONCE = 2;

export function maintenanceService(s: EtcdServer): [typeof MaintenanceService, grpc.UntypedServiceImplementation] {
  let streaming = 0;
  const slotWaiters: Array<() => void> = [];
  /** A slot for a snapshot stream, released once when the call ends however it ends. */
  const snapshotSlot = async (call: grpc.ServerWritableStream<unknown, SnapshotResponse>): Promise<void> => {
    const signal = cancellationOf(call);
    while (streaming >= SNAPSHOTS_AT_ONCE) {
      await untilCancelled(signal, new Promise<void>((resolve) => slotWaiters.push(resolve)));
    }
    streaming++;
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      streaming--;
      // Every waiter looks again (one takes the slot; a cancelled one has gone).
      for (const w of slotWaiters.splice(0)) w();
    };
    call.once('finish', release);
    call.once('cancelled', release);
    call.once('error', release);
    call.once('close', release);
  };
  const hdr = () => s.header(s.sm.store.currentRev);
  const status = async (): Promise<StatusResponse> => {
    const leader = s.leader();
    // etcd: "no leader" and each raised alarm in its protobuf text form.
    const errors = [
      ...(leader === 0n ? [Errors.noLeader().message] : []),
      ...s.sm.alarms.get().map(alarmText),
    ];
    // Both O(1): the store keeps its size as it changes (src/kv/mvcc.ts).
    const sizes = s.sm.store.shownSizes();
    return {
      header: hdr(),
      version: API_VERSION,
      dbSize: BigInt(sizes.dbSize),
      leader,
      raftIndex: BigInt(s.committedIndex()),
      raftTerm: BigInt(s.term()),
      raftAppliedIndex: BigInt(s.sm.appliedIndex),
      errors,
      dbSizeInUse: BigInt(sizes.dbSizeInUse),
      isLearner: s.isLearner(),
    };
  };
  const alarm = async (req: AlarmRequest, call: grpc.ServerUnaryCall<AlarmRequest, AlarmResponse>): Promise<AlarmResponse> => {
    // etcd proposes every Alarm request: a token sent along must be valid (no permission needed).
    await authOf(s).readerOf(call);
    if (req.action === AlarmRequest_AlarmAction.ACTIVATE || req.action === AlarmRequest_AlarmAction.DEACTIVATE) {
      // Through the log: every member raises (or disarms) the alarm at the same point.
      return s.propose('alarm', req);
    }
    // GET: etcd sends it through the log too; a ReadIndex round is as linearizable. With no
    // leader for the whole request timeout, etcd's proposal never reaches Raft and its context's
    // own error goes to the client unconverted (Unknown "context deadline exceeded", which
    // etcdctl does not retry); a read's timeout is Unavailable "request timed out", which etcdctl
    // retried until its own deadline (`alarm list` and `alarm disarm` hung for all of it).
    await s.linearizableRead().catch((e: unknown) => {
      if (isRequestTimeout(e) && s.leader() === 0n) throw Errors.noLeaderDeadline();
      throw e;
    });
    // No header, as etcd's AlarmResponse (and DefragmentResponse below): etcdctl -w json prints {}.
    return { alarms: req.action === AlarmRequest_AlarmAction.GET ? s.sm.alarms.get(req.alarm) : [] };
  };
  const defragment = async (): Promise<DefragmentResponse> => {
    // This member only, as etcd's: repack what compaction left (src/kv/mvcc.ts defragment).
    const before = s.sm.store.size();
    const timed = s.metrics?.defragDuration.startTimer();
    s.metrics?.defragInflight.set(1);
    try {
      const after = await s.sm.store.defragment(yieldToEventLoop);
      timed?.();
      s.logger.info(`defragmented: db size ${before} -> ${after} bytes`);
    } finally {
      s.metrics?.defragInflight.set(0);
    }
    return {};
  };
  const hash = async (): Promise<HashResponse> => {
    // etcd hashes its whole backend file here (for tests only); raftkv has no such file.
    const timed = s.metrics?.hashDuration.startTimer();
    const r = await s.sm.store.hashByRev(0n, yieldToEventLoop);
    timed?.();
    return { header: s.header(r.currentRev), hash: r.hash };
  };
  const hashKV = async (req: HashKVRequest): Promise<HashKVResponse> => {
    // etcd's HashByRev: the header carries the revision current when hashing started, and the
    // compact revision is -1 on a store never compacted.
    const timed = s.metrics?.hashRevDuration.startTimer();
    const r = await s.sm.store.hashByRev(req.revision, yieldToEventLoop);
    // Not observed when the revision is refused (compacted, future), as etcd's HashByRev.
    timed?.();
    return { header: s.header(r.currentRev), hash: r.hash, compactRevision: r.compactRev };
  };
  const moveLeader = async (req: MoveLeaderRequest): Promise<MoveLeaderResponse> => {
    if (!s.isLeader()) throw Errors.notLeader();
    const target = s.sm.membership.get(req.targetID);
    if (!target || target.isLearner) throw Errors.badLeaderTransferee();
    await s.transferLeadership(req.targetID);
    return {}; // etcd 3.4 answers MoveLeader without a header
  };
  const snapshot = (call: grpc.ServerWritableStream<unknown, SnapshotResponse>): void => {
    if (!guardStream(s, call)) return;
    streamSnapshot(s, call).catch((e: unknown) => {
      if (call.cancelled) return; // the client has gone (while waiting for a slot, say): nobody to tell
      s.logger.warn(`snapshot stream failed: ${(e as Error)?.message ?? String(e)}`);
      call.emit('error', toServiceError(e));
    });
  };
  const streamSnapshot = async (s: EtcdServer, call: grpc.ServerWritableStream<unknown, SnapshotResponse>): Promise<void> => {
    // Root only with auth on (etcd's authMaintenanceServer: the auth store's errors as they are).
    await withAuthStoreErrors(authOf(s).requireAdmin(call));
    await snapshotSlot(call);
    // etcd's snapshot file (a bbolt database with etcd's buckets, then its sha256) of the
    // state at the current applied index, so that etcdctl snapshot status/restore and etcd
    // itself read it (src/backup/member-backup.ts); built in slices that yield.
    const timed = s.metrics?.snapshotDuration.startTimer();
    const chunks = await etcdSnapshotOfMachine(s.sm, yieldToEventLoop);
    // As etcd 3.4 streams it: the database in 32 KiB messages, remaining_bytes counting down
    // to 0, then the sha256 alone in a last message; no header in any.
    const sha = chunks.pop()!;
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const pieces = rechunk(chunks, SNAPSHOT_SEND_BYTES);
    let sent = 0;
    let shaSent = false;
    const pump = (): void => {
      for (let r = pieces.next(); !r.done; r = pieces.next()) {
        sent += r.value.length;
        if (!call.write({ remainingBytes: BigInt(total - sent), blob: r.value })) {
          call.once('drain', pump);
          return;
        }
      }
      if (!shaSent) {
        shaSent = true;
        if (!call.write({ remainingBytes: 0n, blob: sha })) {
          call.once('drain', pump);
          return;
        }
      }
      // etcd times a backend snapshot from its start until it is closed, once sent.
      timed?.();
      call.end();
    };
    pump();
  };
  return [
    // Snapshot chunks are 32 KiB: each is sent without a second copy.
    withoutResponseCopies(MaintenanceService, {
      alarm: AlarmResponse,
      status: StatusResponse,
      defragment: DefragmentResponse,
      hash: HashResponse,
      hashKv: HashKVResponse,
      snapshot: SnapshotResponse,
      moveLeader: MoveLeaderResponse,
    }),
    {
      alarm: unary(s, alarm),
      status: unary(s, status, { learnerOk: true }),
      // Root only with auth on, as etcd's authMaintenanceServer, which passes the auth store's
      // errors on as they are (code Unknown, "auth: …"); Alarm, Status and MoveLeader are open,
      // as there.
      defragment: unary(s, defragment, { admin: 'auth-store-errors' }),
      hash: unary(s, hash, { admin: 'auth-store-errors' }),
      hashKv: unary(s, hashKV, { admin: 'auth-store-errors' }),
      snapshot,
      moveLeader: unary(s, moveLeader),
    },
  ];
}
