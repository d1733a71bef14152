// etcdserverpb.Lease. Grants and revokes go through Raft; keepalives and TTL queries are
// answered by the leader (which owns the expiry clocks); a follower forwards them to the
// leader's client endpoint, as etcd forwards them over its peer port.

import * as grpc from '@grpc/grpc-js';
import {
  type LeaseGrantRequest,
  LeaseGrantResponse,
  type LeaseKeepAliveRequest,
  LeaseKeepAliveResponse,
  LeaseLeasesResponse,
  type LeaseRevokeRequest,
  LeaseRevokeResponse,
  LeaseService,
  type LeaseTimeToLiveRequest,
  LeaseTimeToLiveResponse,
} from '../gen/etcd/rpc.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { randomInt63 } from '../util/ids.js';
import { authOf } from '../auth/frontend.js';
import { guardStream, toServiceError, unary, withoutResponseCopies } from './grpc-util.js';
import { LeaderClient } from './leader-client.js';

/** Keepalives waiting on one stream before it is read no further (resumed at half). */
const KEEPALIVE_QUEUE_PAUSE = 16;

export function leaseService(s: EtcdServer): [typeof LeaseService, grpc.UntypedServiceImplementation] {
  const leader = new LeaderClient(s);

  const auth = authOf(s);
  // As the caller of the token: an invalid token is refused; a revoke needs WRITE on every key
  // attached to the lease, decided when it is applied (src/auth/apply-checks.ts). A grant needs
  // no permission (etcd 3.4).
  const grant = async (req: LeaseGrantRequest, call: grpc.ServerUnaryCall<LeaseGrantRequest, LeaseGrantResponse>): Promise<LeaseGrantResponse> => {
    const ID = req.ID === 0n ? randomInt63() : req.ID;
    return auth.propose(call, 'leaseGrant', { TTL: req.TTL, ID });
  };
  const revoke = async (req: LeaseRevokeRequest, call: grpc.ServerUnaryCall<LeaseRevokeRequest, LeaseRevokeResponse>): Promise<LeaseRevokeResponse> =>
    auth.propose(call, 'leaseRevoke', req);

  const timeToLive = async (req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> => {
    // The leader's answer under this member's header (etcd's leasehttp answers with an empty
    // header, which the member asked fills with its own); asked again if it cannot be reached.
    return leader.forward(async () => {
      const c = leader.lease();
      const r = await leader.call(c.leaseTimeToLive.bind(c), req);
      return { ...r, header: s.header(s.sm.store.currentRev) };
    }, () => timeToLiveHere(req));
  };
  const timeToLiveHere = async (req: LeaseTimeToLiveRequest): Promise<LeaseTimeToLiveResponse> => {
    await s.linearizableRead();
    const l = s.lessor.leases.get(req.ID);
    if (!l) return { header: s.header(s.sm.store.currentRev), ID: req.ID, TTL: -1n, grantedTTL: 0n, keys: [] };
    return {
      header: s.header(s.sm.store.currentRev),
      ID: req.ID,
      TTL: s.lessor.remaining(req.ID),
      grantedTTL: l.ttl,
      keys: req.keys ? [...l.keys].map((k) => Buffer.from(k, 'latin1')) : [],
    };
  };

  // From this member's own state, as etcd's LeaseLeases answers: no round to the leader, so a
  // member without one still lists what it has.
  const leases = async (): Promise<LeaseLeasesResponse> => {
    return { header: s.header(s.sm.store.currentRev), leases: [...s.lessor.leases.keys()].map((ID) => ({ ID })) };
  };

  const keepAlive = (call: grpc.ServerDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse>): void => {
    if (!guardStream(s, call)) return;
    /** One keepalive after another, as etcd's stream loop renews each before reading the next. */
    let queue: Promise<void> = Promise.resolve();
    let pending = 0;
    let failed = false;
    let closed = false;
    /** The client does not take its answers: its keepalives are read no further until it does. */
    let awaitingDrain = false;
    /** Reads again, unless answers or keepalives are still held. */
    const readOn = (): void => {
      if (!closed && !awaitingDrain && pending < KEEPALIVE_QUEUE_PAUSE) call.resume?.();
    };
    const answer = (ID: bigint, TTL: bigint): void => {
      if (call.write({ header: s.header(s.sm.store.currentRev), ID, TTL }) || awaitingDrain) return;
      // etcd's stream.Send blocks its loop, which then reads nothing more: a client that sends
      // keepalives without reading the answers is held back by HTTP/2 flow control, instead of
      // its answers being queued without bound (1 M of them: 300 MB, and seconds of the loop).
      awaitingDrain = true;
      call.pause?.();
      call.once('drain', () => {
        awaitingDrain = false;
        readOn();
      });
    };
    /** The leader's renewal (EtcdServer.renewLease); undefined: this member no longer leads, forward it. */
    const renewHere = async (ID: bigint): Promise<void> => {
      if (closed) return;
      const TTL = await s.renewLease(ID);
      if (TTL === undefined) return renew({ ID });
      if (!closed) answer(ID, TTL);
    };
    const renew = async (req: LeaseKeepAliveRequest): Promise<void> => {
      if (s.isLeader()) return renewHere(req.ID);
      // A follower forwards each keepalive to the leader and answers with the leader's TTL,
      // under its own header; during an election, or while the leader it knows has just died,
      // it asks again until a leader answers, as etcd's LeaseRenew (up to the request timeout),
      // rather than leave the keepalive unanswered.
      await leader.forward(
        async () => {
          const TTL = await leader.renew(req.ID);
          if (!closed) answer(req.ID, TTL);
        },
        () => renewHere(req.ID),
      );
    };
    call.on('data', (req: LeaseKeepAliveRequest) => {
      if (closed || failed) return;
      // The common case at once: the leader renewing a lease it knows, nothing queued before it.
      if (pending === 0) {
        const TTL = s.renewLeaseNow(req.ID);
        if (TTL !== undefined) return answer(req.ID, TTL);
      }
      pending++;
      // Read no further while keepalives wait (for a leader, or for this member to catch up),
      // as etcd reads the next only after answering: the client is held back, not queued for.
      if (pending >= KEEPALIVE_QUEUE_PAUSE) call.pause?.();
      queue = queue.then(async () => {
        try {
          if (!failed && !closed) await renew(req);
        } catch (e) {
          failed = true;
          call.emit('error', toServiceError(e));
        } finally {
          if (--pending === KEEPALIVE_QUEUE_PAUSE / 2) readOn();
        }
      });
    });
    // etcd answers each keepalive before reading the next, so a client's half-close comes after
    // its answers: end once every keepalive read is answered.
    call.on('end', () => void queue.then(() => call.end()));
    // The client went away (or the stream failed): nothing more is renewed or answered for it.
    const close = (): void => {
      closed = true;
    };
    call.on('error', close);
    call.on('cancelled', close);
  };

  return [
    withoutResponseCopies(LeaseService, {
      leaseGrant: LeaseGrantResponse,
      leaseRevoke: LeaseRevokeResponse,
      leaseKeepAlive: LeaseKeepAliveResponse,
      leaseTimeToLive: LeaseTimeToLiveResponse,
      leaseLeases: LeaseLeasesResponse,
    }),
    {
      leaseGrant: unary(s, grant),
      leaseRevoke: unary(s, revoke),
      leaseKeepAlive: keepAlive,
      leaseTimeToLive: unary(s, timeToLive),
      leaseLeases: unary(s, leases),
    },
  ];
}
