// v3electionpb.Election: etcd's leader elections, served as etcd serves them — its
// concurrency.Election run on the server, as the caller. Campaigners of election N put
// `N/<lease in hex>` with their lease and value; the one whose key was created first leads,
// the others wait until every older key is deleted (Resign, or a lease revoked or expired).
// A LeaderKey (key and create revision) proves leadership: Proclaim and Resign act only while
// the key still has that create revision.

import type * as grpc from '@grpc/grpc-js';
import { Event_EventType, type KeyValue } from '../gen/etcd/kv.js';
import type { ResponseHeader } from '../gen/etcd/rpc.js';
import {
  type CampaignRequest,
  type CampaignResponse,
  ElectionService,
  type LeaderRequest,
  type LeaderResponse,
  type ProclaimRequest,
  type ProclaimResponse,
  type ResignRequest,
  type ResignResponse,
} from '../gen/etcd/v3election.js';
import { EtcdError, ErrorCode } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { cancellationOf, throwIfCancelled } from './call-cancellation.js';
import { CallerKv, createRevisionIs, deleteOp, firstCreated, getOp, prefixEnd, putOp } from './caller-kv.js';
import { guardStream, unary } from './grpc-util.js';
import { sessionKey, sessionLease } from './session-lease.js';

// etcd's election errors are plain Go errors, so its clients see code UNKNOWN and these texts.
export const ElectionErrors = {
  /** v3election.ErrMissingLeaderKey: Proclaim or Resign without a leader key. */
  missingLeaderKey: () => new EtcdError(ErrorCode.UNKNOWN, '"leader" field must be provided'),
  /** concurrency.ErrElectionNotLeader: the leader key is gone or was created again since. */
  notLeader: () => new EtcdError(ErrorCode.UNKNOWN, 'election: not leader'),
  /** concurrency.ErrElectionNoLeader: nobody campaigns in the election. */
  noLeader: () => new EtcdError(ErrorCode.UNKNOWN, 'election: no leader'),
};

const electionPrefix = (name: Uint8Array): Buffer => Buffer.concat([Buffer.from(name), Buffer.from('/')]);

export function electionService(s: EtcdServer): [typeof ElectionService, grpc.UntypedServiceImplementation] {
  /** Puts `value` on the leader key only if it is still the one created at `rev`. */
  const proclaimAs = async (kv: CallerKv, key: Buffer, rev: bigint, lease: bigint, value: Buffer): Promise<ResponseHeader> => {
    const t = await kv.txn([createRevisionIs(key, rev)], [putOp(key, value, lease)], []);
    if (!t.succeeded) throw ElectionErrors.notLeader();
    return t.header!;
  };
  /** Deletes the leader key if it is still the one created at `rev`; a lost leadership is no error. */
  const resignAs = async (kv: CallerKv, key: Buffer, rev: bigint): Promise<ResponseHeader> => {
    const t = await kv.txn([createRevisionIs(key, rev)], [deleteOp(key)], []);
    return t.header!;
  };

  const campaign = async (req: CampaignRequest, call: grpc.ServerUnaryCall<CampaignRequest, CampaignResponse>): Promise<CampaignResponse> => {
    const signal = cancellationOf(call);
    const kv = new CallerKv(s, call);
    const lease = await sessionLease(kv, req.lease);
    const prefix = electionPrefix(req.name);
    const key = sessionKey(prefix, lease);
    const value = Buffer.from(req.value);
    const t = await kv.txn([createRevisionIs(key, 0n)], [putOp(key, value, lease)], [getOp(key)]);
    let rev = t.header!.revision;
    if (!t.succeeded) {
      // This lease campaigns already: resume that candidacy, with the new value.
      const mine = t.responses[0]!.responseRange!.kvs[0]!;
      rev = mine.createRevision;
      if (!Buffer.from(mine.value).equals(value)) {
        try {
          await proclaimAs(kv, key, rev, lease, value);
        } catch (e) {
          await resignAs(kv, key, rev).catch(() => undefined);
          throw e;
        }
      }
    }
    try {
      await kv.waitDeletes(prefix, rev - 1n, signal);
    } catch (e) {
      // A caller that gave up withdraws its candidacy (as Election.Campaign on ctx cancel);
      // after any other failure the key stays, as in etcd.
      if (signal.aborted) await resignAs(kv, key, rev).catch(() => undefined);
      throw e;
    }
    return { header: t.header, leader: { name: Buffer.from(req.name), key, rev, lease } };
  };

  const proclaim = async (req: ProclaimRequest, call: grpc.ServerUnaryCall<ProclaimRequest, ProclaimResponse>): Promise<ProclaimResponse> => {
    const l = req.leader;
    if (!l) throw ElectionErrors.missingLeaderKey();
    const kv = new CallerKv(s, call);
    const lease = await sessionLease(kv, l.lease);
    return { header: await proclaimAs(kv, Buffer.from(l.key), l.rev, lease, Buffer.from(req.value)) };
  };

  const resign = async (req: ResignRequest, call: grpc.ServerUnaryCall<ResignRequest, ResignResponse>): Promise<ResignResponse> => {
    const l = req.leader;
    if (!l) throw ElectionErrors.missingLeaderKey();
    const kv = new CallerKv(s, call);
    await sessionLease(kv, l.lease); // etcd's session, even though Resign does not use its lease
    return { header: await resignAs(kv, Buffer.from(l.key), l.rev) };
  };

  const leader = async (req: LeaderRequest, call: grpc.ServerUnaryCall<LeaderRequest, LeaderResponse>): Promise<LeaderResponse> => {
    const r = await new CallerKv(s, call).get(firstCreated(electionPrefix(req.name)));
    const kv = r.kvs[0];
    if (!kv) throw ElectionErrors.noLeader();
    return { header: r.header, kv };
  };

  /**
   * concurrency's Election.observe: the current leader (or, with none, the first key put under
   * the prefix), then every value it proclaims until its key is deleted; then the next leader.
   * `send` resolves when the stream can take more: until then nothing more is read of the
   * watch (whose own queue is bounded: KeyWatch), as etcd's Observe blocks in Send.
   */
  const observeLeaders = async (kv: CallerKv, prefix: Buffer, signal: AbortSignal, send: (r: LeaderResponse) => void | Promise<void>): Promise<void> => {
    for (;;) {
      throwIfCancelled(signal);
      const r = await kv.get(firstCreated(prefix));
      let header = r.header!;
      let current: KeyValue | undefined = r.kvs[0];
      if (!current) {
        const w = kv.watch(prefix, prefixEnd(prefix), header.revision);
        try {
          while (!current) {
            const b = await w.next(signal);
            // Only a put makes a leader; the header is that put's revision.
            const put = b.events.find((ev) => ev.type === Event_EventType.PUT);
            if (put) {
              current = put.kv!;
              header = s.header(current.modRevision);
            }
          }
        } finally {
          w.close();
        }
      }
      await send({ header, kv: current });
      const w = kv.watch(current.key, undefined, header.revision + 1n);
      try {
        proclaims: for (;;) {
          const b = await w.next(signal);
          for (const ev of b.events) {
            if (ev.type === Event_EventType.DELETE) break proclaims;
            await send({ header: s.header(b.rev), kv: ev.kv });
          }
        }
      } finally {
        w.close();
      }
    }
  };

  const observe = (call: grpc.ServerWritableStream<LeaderRequest, LeaderResponse>): void => {
    if (!guardStream(s, call)) return;
    const signal = cancellationOf(call);
    observeLeaders(new CallerKv(s, call), electionPrefix(call.request.name), signal, (r) => {
      if (signal.aborted || call.write(r)) return;
      // The client does not read: wait for room (or for the call to end) before reading on.
      return new Promise<void>((resolve) => {
        const go = (): void => {
          call.off('drain', go);
          signal.removeEventListener('abort', go);
          resolve();
        };
        call.on('drain', go);
        signal.addEventListener('abort', go, { once: true });
      });
    }).catch(() => {
      // etcd's Observe ends the stream without an error when a read or watch fails (its
      // observer's channel closes); a cancelled call has nobody to tell.
      if (!signal.aborted) call.end();
    });
  };

  return [
    ElectionService,
    {
      campaign: unary(s, campaign),
      proclaim: unary(s, proclaim),
      leader: unary(s, leader),
      observe,
      resign: unary(s, resign),
    },
  ];
}
