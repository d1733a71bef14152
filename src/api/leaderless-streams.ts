// Streams opened with etcd's require-leader metadata (`hasleader: true`: etcdctl's watch,
// clientv3's WithRequireLeader, kube-apiserver's watches) are ended with `etcdserver: no leader`
// once their member has gone without a leader for three election timeouts in a row, as etcd's
// monitorLeader ends them: a watch on a member cut off from the quorum would otherwise stay open
// and silent for good, and its client would never move to a member that still sees writes.
// (Opening such a stream without a leader is refused at once: grpc-util.ts, checkCall.)
//
// Owns: the set of such streams of one server and the timer that watches its leader. Never:
// any other stream; what a stream does with its own resources when it ends (its 'error' event).

import type * as grpc from '@grpc/grpc-js';
import { Errors } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import type { Timer } from '../server/clock.js';
import { toServiceError } from './grpc-status.js';

/** etcd's maxNoLeaderCnt: election timeouts without a leader before such streams are ended. */
export const MAX_NO_LEADER_CHECKS = 3;

type Stream = grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;

class LeaderlessStreams {
  private readonly streams = new Set<Stream>();
  private timer: Timer | undefined;
  private noLeaderChecks = 0;

  constructor(private readonly s: EtcdServer) {}

  track(call: Stream): void {
    this.streams.add(call);
    const forget = (): void => void this.streams.delete(call);
    call.once('cancelled', forget);
    call.once('error', forget);
    call.once('finish', forget);
    call.once('close', forget);
    // One timer per server, from the first such stream on (as etcd's, started with its server).
    this.timer ??= this.s.clock.setInterval(() => this.check(), this.s.cfg.electionMs);
  }

  private check(): void {
    if (this.s.isStopped()) {
      this.timer?.cancel();
      this.streams.clear();
      return;
    }
    this.noLeaderChecks = this.s.leader() === 0n ? this.noLeaderChecks + 1 : 0;
    if (this.noLeaderChecks < MAX_NO_LEADER_CHECKS) return;
    const ending = [...this.streams];
    this.streams.clear();
    for (const call of ending) call.emit('error', toServiceError(Errors.noLeader()));
  }
}

const perServer = new WeakMap<EtcdServer, LeaderlessStreams>();

/** Ends `call` with `etcdserver: no leader` if it asked for a leader and its member loses it for long. */
export function endWhenLeaderless(s: EtcdServer, call: Stream): void {
  if (call.metadata.get('hasleader')[0] !== 'true') return;
  let m = perServer.get(s);
  if (!m) {
    m = new LeaderlessStreams(s);
    perServer.set(s, m);
  }
  m.track(call);
}
