// Requests only the leader can answer (lease keep-alives and TTLs: it owns the expiry clocks;
// learner promotion: it knows how far a learner caught up), forwarded by a follower to the
// leader's client URL, as etcd forwards them to its leader. One cache of clients per member,
// rebuilt when the leader (or its URL) changes.

import * as grpc from '@grpc/grpc-js';
import { ClusterClient, LeaseClient, type LeaseKeepAliveResponse } from '../gen/etcd/rpc.js';
import { ErrorCode, type EtcdError, Errors } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { channelCredentials } from '../util/grpc-tls.js';
import { grpcTarget } from '../util/url.js';
import { fromServiceError } from './grpc-status.js';

type Clients = { url: string; lease: InstanceType<typeof LeaseClient>; cluster: InstanceType<typeof ClusterClient> };

export class LeaderClient {
  private clients: Clients | undefined;

  constructor(private readonly s: EtcdServer) {}

  /** Clients to the current leader's client URL (etcd's "no leader" when there is none known). */
  private current(): Clients {
    const url = this.s.leaderClientUrl();
    if (!url || this.s.leader() === 0n) throw Errors.noLeader();
    if (this.clients?.url !== url) {
      this.close();
      const target = grpcTarget(url);
      // An https leader URL is dialed with the member's client-side certificate and trusted CA.
      const creds = channelCredentials(url, this.s.cfg.tls?.client);
      this.clients = { url, lease: new LeaseClient(target, creds), cluster: new ClusterClient(target, creds) };
    }
    return this.clients;
  }

  /**
   * etcd's waitLeader: resolves once a leader is known (this member, or one whose client URL it
   * knows), looking again every heartbeat; "no leader" only when none came within the request
   * timeout. A request forwarded during an election thus waits for it, as etcd's does, instead
   * of failing at once (which sent etcdctl into a hundred retries in three seconds).
   */
  async waitForLeader(): Promise<void> {
    const deadline = this.s.clock.now() + this.s.requestTimeoutMs;
    while (!this.s.isLeader() && (this.s.leader() === 0n || !this.s.leaderClientUrl())) {
      if (this.s.isStopped() || this.s.clock.now() >= deadline) throw Errors.noLeader();
      await new Promise<void>((r) => this.s.clock.setTimeout(r, this.s.cfg.heartbeatMs));
    }
  }

  /**
   * etcd's forwarding loop (LeaseRenew, LeaseTimeToLive): wait for a leader and ask it; if it
   * cannot be reached — a leader that has just died, before this member noticed — ask again
   * 50 ms later, the new leader once there is one, up to the request timeout (then etcd's
   * `request timed out`). An answer ends it, an error of etcd's from the leader too; and if
   * this member becomes the leader meanwhile, `here` answers.
   */
  async forward<T>(viaLeader: () => Promise<T>, here: () => Promise<T>): Promise<T> {
    const deadline = this.s.clock.now() + this.s.requestTimeoutMs;
    for (;;) {
      await this.waitForLeader();
      if (this.s.isLeader()) return here();
      try {
        return await viaLeader();
      } catch (e) {
        if (!unreachable(e as EtcdError)) throw e;
        if (this.s.isStopped() || this.s.clock.now() >= deadline) throw Errors.timeout();
        await new Promise<void>((r) => this.s.clock.setTimeout(r, 50));
      }
    }
  }

  /** One keepalive of lease `ID` forwarded to the leader: its TTL (0: the leader does not know it). */
  renew(ID: bigint): Promise<bigint> {
    const stream = this.lease().leaseKeepAlive(new grpc.Metadata(), { deadline: Date.now() + this.s.requestTimeoutMs });
    return new Promise((resolve, reject) => {
      let done = false;
      stream.on('data', (r: LeaseKeepAliveResponse) => {
        if (done) return;
        done = true;
        resolve(r.TTL);
        stream.end();
      });
      stream.on('error', (e: grpc.ServiceError) => {
        if (done) return;
        done = true;
        reject(fromServiceError(e));
      });
      stream.on('end', () => {
        if (done) return;
        done = true;
        reject(fromServiceError({ code: grpc.status.UNAVAILABLE, details: 'the leader ended the keepalive stream unanswered' }));
      });
      stream.write({ ID });
    });
  }

  lease(): InstanceType<typeof LeaseClient> {
    return this.current().lease;
  }

  cluster(): InstanceType<typeof ClusterClient> {
    return this.current().cluster;
  }

  /**
   * A unary call to the leader within the request timeout, with `md` (e.g. the caller's token);
   * its error comes back as etcd's.
   */
  call<Req, Res>(
    method: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => unknown,
    req: Req,
    md: grpc.Metadata = new grpc.Metadata(),
  ): Promise<Res> {
    return new Promise((resolve, reject) =>
      method(req, md, { deadline: Date.now() + this.s.requestTimeoutMs }, (err, res) =>
        err ? reject(fromServiceError(err)) : resolve(res!),
      ),
    );
  }

  close(): void {
    this.clients?.lease.close();
    this.clients?.cluster.close();
    this.clients = undefined;
  }
}

/** A forwarded call that never reached an answering leader (refused, reset, timed out on the way). */
function unreachable(e: EtcdError): boolean {
  return (e.code === ErrorCode.UNAVAILABLE || e.code === ErrorCode.DEADLINE_EXCEEDED) && !e.message.startsWith('etcdserver:');
}
