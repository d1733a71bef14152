// Whether the leader sends its heartbeats on time (etcd's TimeoutDetector in raftNode): a
// heartbeat to a peer more than two heartbeat intervals after the previous one means the leader
// was held up — a slow disk, or here, a stalled event loop — and its followers may soon call an
// election. Counted (etcd_server_heartbeat_send_failures_total) and logged with etcd's warning.
//
// Owns: the time of the last heartbeat to each peer. Never: delays or changes what is sent.

import { type Message, MessageType } from '../raft/index.js';
import { hex } from '../util/ids.js';

export class HeartbeatTimeliness {
  /** Heartbeats sent late (etcd_server_heartbeat_send_failures_total). */
  late = 0;
  private readonly last = new Map<bigint, number>();

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number,
    private readonly warn: (msg: string) => void,
  ) {}

  /** A new term of leadership: no heartbeat was sent in it yet (etcd resets its detector). */
  reset(): void {
    this.last.clear();
  }

  /** Messages the leader is sending now. */
  sending(msgs: readonly Message[]): void {
    let now: number | undefined;
    for (const m of msgs) {
      if (m.type !== MessageType.MsgHeartbeat) continue;
      now ??= this.now();
      const prev = this.last.get(m.to);
      this.last.set(m.to, now);
      if (prev === undefined) continue;
      const exceeded = now - prev - 2 * this.intervalMs;
      if (exceeded <= 0) continue;
      this.late++;
      this.warn(
        `leader failed to send out heartbeat on time; took too long, leader is overloaded likely from slow disk (to ${hex(m.to)}, heartbeat-interval ${this.intervalMs}ms, expected-duration ${2 * this.intervalMs}ms, exceeded-duration ${Math.round(exceeded)}ms)`,
      );
    }
  }
}
