// v3lockpb.Lock: etcd's distributed locks, served as etcd serves them — its concurrency.Mutex
// run on the server, as the caller. A lock named N is held by the key `N/<lease in hex>` with
// the oldest create revision under `N/`; a locker puts its key with its lease, then waits for
// every older key under the prefix to be deleted (Unlock, or its lease revoked or expired).
//
// Differences from etcd 3.4, both towards what later etcd does: a Lock whose own key vanished
// (its lease expired or was revoked) while it waited fails with `mutex: session is expired`
// instead of answering a key that no longer exists (etcd 3.5's Mutex); and a Lock cancelled by
// its caller deletes the key it just created even when the cancellation arrives during its
// first round trip, so a gone caller never leaves a waiter key behind.

import type * as grpc from '@grpc/grpc-js';
import {
  type LockRequest,
  type LockResponse,
  LockService,
  type UnlockRequest,
  type UnlockResponse,
} from '../gen/etcd/v3lock.js';
import { EtcdError, ErrorCode } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { callCancelled, cancellationOf } from './call-cancellation.js';
import { CallerKv, createRevisionIs, firstCreated, getOp, putOp } from './caller-kv.js';
import { unary } from './grpc-util.js';
import { sessionKey, sessionLease } from './session-lease.js';

/** concurrency.ErrSessionExpired (a plain error in etcd: code UNKNOWN). */
export const errSessionExpired = (): EtcdError => new EtcdError(ErrorCode.UNKNOWN, 'mutex: session is expired');

export function lockService(s: EtcdServer): [typeof LockService, grpc.UntypedServiceImplementation] {
  const lock = async (req: LockRequest, call: grpc.ServerUnaryCall<LockRequest, LockResponse>): Promise<LockResponse> => {
    const signal = cancellationOf(call);
    const kv = new CallerKv(s, call);
    const lease = await sessionLease(kv, req.lease);
    const prefix = Buffer.concat([Buffer.from(req.name), Buffer.from('/')]);
    const myKey = sessionKey(prefix, lease);
    // One round trip: join the queue unless this lease already did (locking twice with one
    // lease is one acquisition), and learn who holds the lock.
    const t = await kv.txn([createRevisionIs(myKey, 0n)], [putOp(myKey, Buffer.alloc(0), lease), { requestRange: firstCreated(prefix) }], [getOp(myKey), { requestRange: firstCreated(prefix) }]);
    const myRev = t.succeeded ? t.header!.revision : t.responses[0]!.responseRange!.kvs[0]!.createRevision;
    if (signal.aborted) {
      // Nobody will learn of this key: take back what this call created (a key that existed
      // before belongs to an earlier Lock with the same lease).
      if (t.succeeded) await kv.delete(myKey).catch(() => undefined);
      throw callCancelled();
    }
    const owner = t.responses[1]!.responseRange!.kvs[0];
    if (!owner || owner.createRevision === myRev) return { header: t.header, key: myKey };

    let header: LockResponse['header'];
    try {
      await kv.waitDeletes(prefix, myRev - 1n, signal);
      // Waiting is only over if this locker is still queued: its lease may have gone meanwhile.
      const mine = await kv.getKey(myKey);
      if (!mine.kv) throw errSessionExpired();
      header = mine.header;
    } catch (e) {
      // As Mutex.Lock on a failed wait (the caller cancelled, or a read failed): leave the
      // queue, so that the next locker does not wait for a key nobody will unlock.
      if (!(e instanceof EtcdError && e.message === errSessionExpired().message)) await kv.delete(myKey).catch(() => undefined);
      throw e;
    }
    return { header, key: myKey };
  };

  // Deleting the key releases the lock; a key that is already gone is not an error (etcd).
  const unlock = async (req: UnlockRequest, call: grpc.ServerUnaryCall<UnlockRequest, UnlockResponse>): Promise<UnlockResponse> => {
    const r = await new CallerKv(s, call).delete(req.key);
    return { header: r.header };
  };

  return [LockService, { lock: unary(s, lock), unlock: unary(s, unlock) }];
}
