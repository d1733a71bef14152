// Prometheus metrics and a health check over HTTP (etcd's --listen-metrics-urls), with etcd's
// metric names and labels where raftkv has an equivalent (so etcd's Grafana dashboard and
// alerts work unchanged), Node's process metrics unprefixed as the Prometheus client
// conventions name them, plus the event-loop delay that tells whether heartbeats can be late.
// The same URL serves the live dashboard (./dashboard/).
//
// Owns: the metric objects and the HTTP listener. Never: computes anything on the member's hot
// path beyond an increment or an observation; gauges read the member when scraped.

import { type Server, createServer } from 'node:http';
import type { IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GrpcCallLabels, GrpcMethodMetrics, GrpcServerMetrics } from '../api/grpc-metrics.js';
import type { PeerTrafficObserver } from '../transport/grpc-transport.js';
import { hex } from '../util/ids.js';
import { API_VERSION } from './config.js';
import { Dashboard, type DashboardSource } from './dashboard/dashboard.js';
import { type RecentActivity, SampleWindow } from './dashboard/sample-window.js';
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
  pendingProposals(): number;
  /** The space quota (--quota-backend-bytes), where the member has one. */
  readonly quotaBytes?: number;
  readonly sm: Pick<StateMachine, 'appliedIndex' | 'store'>;
  readonly loopDelay: IntervalHistogram;
  /** The watchers served (etcd_debugging_mvcc_watcher_total). */
  readonly watchHub: { readonly size: number };
}

/** prometheus.ExponentialBuckets(start, factor, count), as etcd declares its histograms. */
const exponentialBuckets = (start: number, factor: number, count: number): number[] =>
  Array.from({ length: count }, (_, i) => start * factor ** i);

export class Metrics implements GrpcServerMetrics {
  readonly registry = new Registry();
  readonly proposalsCommitted: Gauge;
  readonly proposalsApplied: Gauge;
  readonly proposalsFailed: Counter;
  readonly proposalsRetried: Counter;
  readonly duplicatesSkipped: Counter;
  readonly leaderChanges: Counter;
  /** WAL write + fsync per Ready (the histogram, and the dashboard's raw values). */
  readonly walFsync: { observe(seconds: number): void };
  /** Applying a Ready's committed entries: raftkv's stand-in for etcd's backend commit (README). */
  readonly backendCommit: Histogram;
  /** etcd_network_peer_*: give it to the gRPC transport (GrpcTransport.observer). */
  readonly peerTraffic: PeerTrafficObserver;
  readonly recent: RecentActivity = { putSeconds: new SampleWindow(), walFsyncSeconds: new SampleWindow(), reads: 0 };
  private readonly grpcStarted: Counter;
  private readonly grpcHandled: Counter;
  private readonly grpcHandling: Histogram;

  constructor(s: MetricsSource) {
    const r = this.registry;
    // process_* and nodejs_*, unprefixed as every Prometheus client library names them.
    collectDefaultMetrics({ register: r });
    new Gauge({ name: 'etcd_server_has_leader', help: 'Whether or not a leader exists. 1 is existence, 0 is not.', registers: [r], collect() { this.set(s.leader() !== 0n ? 1 : 0); } });
    new Gauge({ name: 'etcd_server_is_leader', help: 'Whether or not this member is a leader. 1 if is, 0 otherwise.', registers: [r], collect() { this.set(s.isLeader() ? 1 : 0); } });
    new Gauge({ name: 'etcd_server_is_learner', help: 'Whether or not this member is a learner. 1 if is, 0 otherwise.', registers: [r], collect() { this.set(s.isLearner() ? 1 : 0); } });
    new Gauge({ name: 'etcd_server_version', help: "Which version is running. 1 for 'server_version' label with current version.", labelNames: ['server_version'], registers: [r] }).set({ server_version: API_VERSION }, 1);
    new Gauge({ name: 'raftkv_raft_term', help: 'Current Raft term.', registers: [r], collect() { this.set(s.term()); } });
    // etcd's "proposals committed/applied" gauges are the committed and applied Raft indexes.
    this.proposalsCommitted = new Gauge({ name: 'etcd_server_proposals_committed_total', help: 'The total number of consensus proposals committed.', registers: [r], collect() { this.set(s.committedIndex()); } });
    this.proposalsApplied = new Gauge({ name: 'etcd_server_proposals_applied_total', help: 'The total number of consensus proposals applied.', registers: [r], collect() { this.set(s.sm.appliedIndex); } });
    if (s.quotaBytes !== undefined) {
      const quota = s.quotaBytes;
      new Gauge({ name: 'etcd_server_quota_backend_bytes', help: 'Current backend storage quota size in bytes.', registers: [r], collect() { this.set(quota); } });
    }
    new Gauge({ name: 'etcd_server_proposals_pending', help: 'The current number of pending proposals to commit.', registers: [r], collect() { this.set(s.pendingProposals()); } });
    const dbSize = function (this: Gauge) {
      this.set(s.sm.store.size());
    };
    // raftkv's state is in memory, never fragmented: size, size in use and the 3.4 debugging
    // name (etcd 3.4's Grafana dashboard plots that one) are the same value.
    new Gauge({ name: 'etcd_mvcc_db_total_size_in_bytes', help: 'Total size of the underlying database physically allocated in bytes (raftkv: approximate size of the key-value state).', registers: [r], collect: dbSize });
    new Gauge({ name: 'etcd_mvcc_db_total_size_in_use_in_bytes', help: 'Total size of the underlying database logically in use in bytes (raftkv: as etcd_mvcc_db_total_size_in_bytes).', registers: [r], collect: dbSize });
    new Gauge({ name: 'etcd_debugging_mvcc_db_total_size_in_bytes', help: 'Total size of the underlying database in bytes (etcd 3.4 name).', registers: [r], collect: dbSize });
    new Gauge({ name: 'etcd_debugging_mvcc_keys_total', help: 'Total number of keys.', registers: [r], collect() { this.set(s.sm.store.keyCount()); } });
    new Gauge({ name: 'etcd_debugging_mvcc_watcher_total', help: 'Total number of watchers.', registers: [r], collect() { this.set(s.watchHub.size); } });
    new Gauge({
      name: 'raftkv_event_loop_delay_p99_seconds',
      help: 'p99 event-loop delay since the last scrape: above the heartbeat interval, heartbeats are late.',
      registers: [r],
      collect() {
        this.set(s.loopDelay.percentile(99) / 1e9);
        s.loopDelay.reset();
      },
    });
    this.proposalsFailed = new Counter({ name: 'etcd_server_proposals_failed_total', help: 'The total number of failed proposals seen.', registers: [r] });
    this.proposalsRetried = new Counter({ name: 'raftkv_server_proposals_retried_total', help: 'Proposals proposed again (leader changed, or not applied after two election timeouts).', registers: [r] });
    this.duplicatesSkipped = new Counter({ name: 'raftkv_server_duplicate_proposals_skipped_total', help: 'Committed copies of re-proposed requests that were not applied again.', registers: [r] });
    this.leaderChanges = new Counter({ name: 'etcd_server_leader_changes_seen_total', help: 'The number of leader changes seen.', registers: [r] });
    const walFsync = new Histogram({
      name: 'etcd_disk_wal_fsync_duration_seconds',
      help: 'The latency distributions of fsync called by WAL (raftkv: one write + fdatasync per Ready).',
      buckets: exponentialBuckets(0.001, 2, 14),
      registers: [r],
    });
    const recent = this.recent;
    this.walFsync = {
      observe(seconds: number): void {
        walFsync.observe(seconds);
        recent.walFsyncSeconds.record(seconds);
      },
    };
    this.backendCommit = new Histogram({
      name: 'etcd_disk_backend_commit_duration_seconds',
      help: 'raftkv: time to apply one batch of committed entries to the in-memory store (etcd: the backend (bbolt) commit; raftkv has no backend file, its durability is the WAL).',
      buckets: exponentialBuckets(0.001, 2, 14),
      registers: [r],
    });

    // rafthttp's metrics, with its label names (To, From: the peer's member id in hex).
    const sent = new Counter({ name: 'etcd_network_peer_sent_bytes_total', help: 'The total number of bytes sent to peers.', labelNames: ['To'], registers: [r] });
    const received = new Counter({ name: 'etcd_network_peer_received_bytes_total', help: 'The total number of bytes received from peers.', labelNames: ['From'], registers: [r] });
    const sendFailures = new Counter({ name: 'etcd_network_peer_sent_failures_total', help: 'The total number of send failures from peers.', labelNames: ['To'], registers: [r] });
    const rtt = new Histogram({ name: 'etcd_network_peer_round_trip_time_seconds', help: 'Round-Trip-Time histogram between peers.', labelNames: ['To'], buckets: exponentialBuckets(0.0001, 2, 16), registers: [r] });
    // Counted per message batch: each peer's series is looked up once.
    const perPeer = <T>(make: (id: string) => T): ((id: bigint) => T) => {
      const m = new Map<bigint, T>();
      return (id) => {
        let x = m.get(id);
        if (x === undefined) {
          x = make(hex(id));
          m.set(id, x);
        }
        return x;
      };
    };
    const sentTo = perPeer((To) => sent.labels({ To }));
    const receivedFrom = perPeer((From) => received.labels({ From }));
    const rttTo = perPeer((To) => rtt.labels({ To }));
    this.peerTraffic = {
      sent: (to, bytes) => sentTo(to).inc(bytes),
      received: (from, bytes) => receivedFrom(from).inc(bytes),
      sendFailed: (to, n) => sendFailures.inc({ To: hex(to) }, n),
      roundTrip: (to, seconds) => rttTo(to).observe(seconds),
    };

    // go-grpc-prometheus' server metrics (src/api/grpc-metrics.ts reports each call).
    const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.grpcStarted = new Counter({ name: 'grpc_server_started_total', help: 'Total number of RPCs started on the server.', labelNames: grpcLabels, registers: [r] });
    this.grpcHandled = new Counter({ name: 'grpc_server_handled_total', help: 'Total number of RPCs completed on the server, regardless of success or failure.', labelNames: [...grpcLabels, 'grpc_code'], registers: [r] });
    this.grpcHandling = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames: grpcLabels,
      // go-grpc-prometheus' default buckets (prometheus.DefBuckets).
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [r],
    });
  }

  /**
   * One method's recorder. The labelled series are looked up here once (per code on first use),
   * not on every call. Like go-grpc-prometheus, a method's `started` series exists from the start.
   */
  method(call: GrpcCallLabels): GrpcMethodMetrics {
    const labels = { ...call };
    const started = this.grpcStarted.labels(labels);
    // As go-grpc-prometheus: the handling time of unary calls (a stream's is its lifetime).
    const handling = call.grpc_type === 'unary' ? this.grpcHandling.labels(labels) : undefined;
    const byCode = new Map<string, { inc(): void }>();
    const kv = call.grpc_service === 'etcdserverpb.KV';
    const isPut = kv && call.grpc_method === 'Put';
    const isRange = kv && call.grpc_method === 'Range';
    const recent = this.recent;
    return {
      started: () => started.inc(),
      handled: (code, seconds) => {
        let handled = byCode.get(code);
        if (!handled) {
          handled = this.grpcHandled.labels({ ...labels, grpc_code: code });
          byCode.set(code, handled);
        }
        handled.inc();
        handling?.observe(seconds);
        if (isPut) recent.putSeconds.record(seconds);
        else if (isRange) recent.reads++;
      },
    };
  }
}

const dashboards = new WeakMap<Metrics, Dashboard>();

/**
 * Serves /metrics, /health (etcd's JSON: {"health":"true"} when a leader is known) and the
 * dashboard (/ and /dashboard/...).
 */
export function serveMetrics(s: MetricsSource & DashboardSource, m: Metrics, host: string, port: number): Promise<Server> {
  // One dashboard per member, however many metrics URLs: it takes the recent values.
  let dashboard = dashboards.get(m);
  if (!dashboard) {
    dashboard = new Dashboard(s, m.recent);
    dashboards.set(m, dashboard);
  }
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
    } else if (!dashboard!.handle(req, res)) {
      res.writeHead(404);
      res.end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
