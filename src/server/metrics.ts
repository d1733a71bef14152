// Prometheus metrics and a health check over HTTP (etcd's --listen-metrics-urls), with etcd's
// metric names where an equivalent exists, plus the event-loop delay that tells whether
// heartbeats can be late.

import { type Server, createServer } from 'node:http';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { StateMachine } from './state-machine.js';

/**
 * What the metrics read of the member (the EtcdServer). Declared here rather than imported, so
 * that etcd-server.ts, which creates the metrics, and this module do not import each other.
 */
export interface MetricsSource {
  leader(): bigint;
  isLeader(): boolean;
  isLearner(): boolean;
  isStopped(): boolean;
  term(): number;
  committedIndex(): number;
  readonly sm: Pick<StateMachine, 'appliedIndex' | 'store'>;
  readonly loopDelay: IntervalHistogram;
}

export class Metrics {
  readonly registry = new Registry();
  readonly proposalsCommitted: Gauge;
  readonly proposalsApplied: Gauge;
  readonly proposalsFailed: Counter;
  readonly proposalsRetried: Counter;
  readonly duplicatesSkipped: Counter;
  readonly leaderChanges: Counter;
  readonly walFsync: Histogram;

  constructor(s: MetricsSource) {
    collectDefaultMetrics({ register: this.registry, prefix: 'raftkv_' });
    const r = this.registry;
    new Gauge({ name: 'etcd_server_has_leader', help: 'Whether a leader exists (1) or not (0).', registers: [r], collect() { this.set(s.leader() !== 0n ? 1 : 0); } });
    new Gauge({ name: 'etcd_server_is_leader', help: 'Whether this member is the leader.', registers: [r], collect() { this.set(s.isLeader() ? 1 : 0); } });
    new Gauge({ name: 'etcd_server_is_learner', help: 'Whether this member is a learner.', registers: [r], collect() { this.set(s.isLearner() ? 1 : 0); } });
    new Gauge({ name: 'raftkv_raft_term', help: 'Current Raft term.', registers: [r], collect() { this.set(s.term()); } });
    this.proposalsCommitted = new Gauge({ name: 'etcd_server_proposals_committed_total', help: 'Committed index.', registers: [r], collect() { this.set(s.committedIndex()); } });
    this.proposalsApplied = new Gauge({ name: 'etcd_server_proposals_applied_total', help: 'Applied index.', registers: [r], collect() { this.set(s.sm.appliedIndex); } });
    new Gauge({ name: 'etcd_mvcc_db_total_size_in_bytes', help: 'Approximate size of the key-value state.', registers: [r], collect() { this.set(s.sm.store.approximateSize()); } });
    new Gauge({ name: 'etcd_debugging_mvcc_keys_total', help: 'Number of keys.', registers: [r], collect() { this.set(s.sm.store.keyCount()); } });
    new Gauge({
      name: 'raftkv_event_loop_delay_p99_seconds',
      help: 'p99 event-loop delay since the last scrape: above the heartbeat interval, heartbeats are late.',
      registers: [r],
      collect() {
        this.set(s.loopDelay.percentile(99) / 1e9);
        s.loopDelay.reset();
      },
    });
    this.proposalsFailed = new Counter({ name: 'etcd_server_proposals_failed_total', help: 'Failed proposals.', registers: [r] });
    this.proposalsRetried = new Counter({ name: 'raftkv_server_proposals_retried_total', help: 'Proposals proposed again (leader changed, or not applied after two election timeouts).', registers: [r] });
    this.duplicatesSkipped = new Counter({ name: 'raftkv_server_duplicate_proposals_skipped_total', help: 'Committed copies of re-proposed requests that were not applied again.', registers: [r] });
    this.leaderChanges = new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'Leader changes seen.', registers: [r] });
    this.walFsync = new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'Latency of WAL writes with fsync (one per Ready).',
      buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024],
      registers: [r],
    });
  }
}

/** Serves /metrics and /health (etcd's JSON: {"health":"true"} when a leader is known). */
export function serveMetrics(s: MetricsSource, m: Metrics, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      m.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': m.registry.contentType });
          res.end(text);
        },
        (e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        },
      );
    } else if (req.url === '/health') {
      const ok = s.leader() !== 0n && !s.isStopped();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ health: String(ok) }));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
