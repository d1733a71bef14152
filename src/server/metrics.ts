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
import type { Server as TlsServer } from 'node:tls';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { GrpcCallLabels, GrpcMethodMetrics, GrpcServerMetrics } from '../api/grpc-metrics.js';
import type { PeerTrafficObserver } from '../transport/grpc-transport.js';
import type { SnapshotSaveTimings } from '../storage/snap/snapshotter.js';
import { addressSpaceLimit, fileDescriptorLimit, openFileDescriptors } from '../util/file-descriptors.js';
import { hex } from '../util/ids.js';
import { sendText } from '../api/gateway/replies.js';
import { type RejectedConnection, createTlsListener } from '../util/tls-server.js';
import { type TlsSide, isHttps } from '../util/tls.js';
import { listenAt } from '../util/listen.js';
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
  readonly sm: Pick<StateMachine, 'appliedIndex' | 'store' | 'auth' | 'lessor'>;
  readonly loopDelay: IntervalHistogram;
  /** The watchers served (etcd_debugging_mvcc_watcher_total), the streams, the events sent and the watchers behind. */
  readonly watchHub: { readonly size: number; readonly streams: number; readonly eventsSent: number; readonly slowWatchers: number };
  /** Heartbeats sent late as leader (etcd_server_heartbeat_send_failures_total). */
  lateHeartbeats(): number;
  /** Bytes this process wrote to its WAL (etcd_disk_wal_write_bytes_total). */
  walBytesWritten(): number;
  /** This member's id (etcd_server_id). */
  readonly id: bigint;
  /** Whether a snapshot from the leader is being applied (etcd_server_snapshot_apply_in_progress_total). */
  applyingSnapshot(): boolean;
  /** Read index rounds answered for an older round, or timed out (etcd_server_slow_read_indexes_total). */
  slowReadIndexes(): number;
  /** Learner promotions this member made as leader, and the ones it refused by reason. */
  promotions(): { successes: number; failures: ReadonlyMap<string, number> };
}

/** Distinct client-api-version values counted (each is a series: clients choose them). */
const MAX_CLIENT_API_VERSIONS = 16;

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
  private readonly scrapes: Counter;
  private readonly scrapesInFlight: Gauge;
  private readonly grpcStarted: FollowingCounter;
  private readonly grpcHandled: FollowingCounter;
  /** Only with --metrics extensive, as etcd (go-grpc-prometheus' EnableHandlingTimeHistogram). */
  private readonly grpcHandling: Histogram | undefined;
  /** Batches of committed entries that took longer than --experimental-warning-apply-duration to apply (etcd_server_slow_apply_total). */
  readonly slowApplies: Counter;
  /** Saving a snapshot file, as etcd's snapshotter times it (give it to Snapshotter.timings). */
  readonly snapshotSave: SnapshotSaveTimings;
  /** Maintenance's work, timed as etcd times it: Hash, HashKV, Defragment and Snapshot (whole stream). */
  readonly hashDuration: Histogram;
  readonly hashRevDuration: Histogram;
  readonly defragDuration: Histogram;
  readonly defragInflight: Gauge;
  readonly snapshotDuration: Histogram;
  private readonly healthSuccess: Counter;
  private readonly healthFailures: Counter;
  /** Client requests by type and client-api-version (shared by every method: one series each). */
  private readonly clientRequests: Record<'unary' | 'stream', (apiVersion: string) => { n: number }>;
  /** The client-api-version values counted so far, at most MAX_CLIENT_API_VERSIONS. */
  private readonly clientApiVersions = new Set<string>();
  private readonly grpcMsgReceived: FollowingCounter;
  private readonly grpcMsgSent: FollowingCounter;
  /** The protobuf bytes of every gRPC message received and sent (etcd's codec counts them). */
  private readonly clientBytes = { received: 0, sent: 0 };

  constructor(s: MetricsSource, opts: { extensive?: boolean } = {}) {
    const r = this.registry;
    // process_* and nodejs_*, unprefixed as every Prometheus client library names them.
    collectDefaultMetrics({ register: r });
    // What Go's process collector and promhttp add to etcd's /metrics beside prom-client's defaults.
    new Gauge({ name: 'process_virtual_memory_max_bytes', help: 'Maximum amount of virtual memory available in bytes.', registers: [r], collect() { this.set(addressSpaceLimit()); } });
    this.scrapes = new Counter({ name: 'promhttp_metric_handler_requests_total', help: 'Total number of scrapes by HTTP status code.', labelNames: ['code'], registers: [r] });
    for (const code of ['200', '500', '503']) this.scrapes.inc({ code }, 0);
    this.scrapesInFlight = new Gauge({ name: 'promhttp_metric_handler_requests_in_flight', help: 'Current number of scrapes being served.', registers: [r] });
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
    // As Status shows them (whole pages, never below an empty etcd database's): the size (the
    // high-water mark since the last defragment, also under the 3.4 debugging name that etcd
    // 3.4's Grafana dashboard plots) and the size in use.
    const dbSize = function (this: Gauge) {
      this.set(s.sm.store.shownSizes().dbSize);
    };
    new Gauge({ name: 'etcd_mvcc_db_total_size_in_bytes', help: 'Total size of the underlying database physically allocated in bytes (raftkv: estimated size of the key-value state).', registers: [r], collect: dbSize });
    new Gauge({ name: 'etcd_mvcc_db_total_size_in_use_in_bytes', help: 'Total size of the underlying database logically in use in bytes.', registers: [r], collect() { this.set(s.sm.store.shownSizes().dbSizeInUse); } });
    new Gauge({ name: 'etcd_debugging_mvcc_db_total_size_in_bytes', help: 'Total size of the underlying database in bytes (etcd 3.4 name).', registers: [r], collect: dbSize });
    new Gauge({ name: 'etcd_debugging_mvcc_keys_total', help: 'Total number of keys.', registers: [r], collect() { this.set(s.sm.store.keyCount()); } });
    new Gauge({ name: 'etcd_debugging_mvcc_watcher_total', help: 'Total number of watchers.', registers: [r], collect() { this.set(s.watchHub.size); } });
    new Gauge({ name: 'etcd_server_id', help: "Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.", labelNames: ['server_id'], registers: [r], collect() { this.reset(); this.set({ server_id: hex(s.id) }, 1); } });
    // The cluster version is the members' API version: raftkv's members all speak the same one.
    new Gauge({ name: 'etcd_cluster_version', help: "Which version is running. 1 for 'cluster_version' label with current cluster version", labelNames: ['cluster_version'], registers: [r] }).set({ cluster_version: API_VERSION.replace(/^(\d+\.\d+)\..*$/, '$1') }, 1);
    new Gauge({ name: 'etcd_server_snapshot_apply_in_progress_total', help: '1 if the server is applying the incoming snapshot. 0 if none.', registers: [r], collect() { this.set(s.applyingSnapshot() ? 1 : 0); } });
    counterOf(r, 'etcd_server_slow_read_indexes_total', "The total number of pending read indexes not in sync with leader's or timed out read index requests.", () => s.slowReadIndexes());
    // raftkv's read index rounds are asked again until answered, never failed (a read fails only by its own timeout, counted above).
    new Counter({ name: 'etcd_server_read_indexes_failed_total', help: 'The total number of failed read indexes seen.', registers: [r] });
    counterOf(r, 'etcd_server_learner_promote_successes', 'The total number of successful learner promotions while this member is leader.', () => s.promotions().successes);
    const promoteFailuresSeen = new Map<string, number>();
    new Counter({
      name: 'etcd_server_learner_promote_failures',
      help: 'The total number of failed learner promotions (likely learner not ready) while this member is leader.',
      labelNames: ['Reason'],
      registers: [r],
      collect() {
        for (const [reason, n] of s.promotions().failures) {
          const seen = promoteFailuresSeen.get(reason) ?? 0;
          if (n > seen) this.inc({ Reason: reason }, n - seen);
          promoteFailuresSeen.set(reason, n);
        }
      },
    });
    // A gauge, as etcd declares it despite its name.
    new Gauge({ name: 'etcd_disk_wal_write_bytes_total', help: 'Total number of bytes written in WAL.', registers: [r], collect() { this.set(s.walBytesWritten()); } });
    this.hashDuration = new Histogram({ name: 'etcd_mvcc_hash_duration_seconds', help: 'The latency distribution of storage hash operation.', buckets: exponentialBuckets(0.01, 2, 15), registers: [r] });
    this.hashRevDuration = new Histogram({ name: 'etcd_mvcc_hash_rev_duration_seconds', help: 'The latency distribution of storage hash by revision operation.', buckets: exponentialBuckets(0.01, 2, 15), registers: [r] });
    this.defragDuration = new Histogram({ name: 'etcd_disk_backend_defrag_duration_seconds', help: 'The latency distribution of backend defragmentation.', buckets: exponentialBuckets(0.1, 2, 13), registers: [r] });
    this.defragInflight = new Gauge({ name: 'etcd_disk_defrag_inflight', help: 'Whether or not defrag is active on the member. 1 means active, 0 means not.', registers: [r] });
    this.snapshotDuration = new Histogram({ name: 'etcd_disk_backend_snapshot_duration_seconds', help: 'The latency distribution of backend snapshots.', buckets: exponentialBuckets(0.01, 2, 17), registers: [r] });
    const snapBuckets = exponentialBuckets(0.001, 2, 14);
    const snapMarshal = new Histogram({ name: 'etcd_debugging_snap_save_marshalling_duration_seconds', help: 'The marshalling cost distributions of save called by snapshot.', buckets: snapBuckets, registers: [r] });
    const snapFsync = new Histogram({ name: 'etcd_snap_fsync_duration_seconds', help: 'The latency distributions of fsync called by snap.', buckets: snapBuckets, registers: [r] });
    const snapTotal = new Histogram({ name: 'etcd_debugging_snap_save_total_duration_seconds', help: 'The total latency distributions of save called by snapshot.', buckets: snapBuckets, registers: [r] });
    this.snapshotSave = {
      marshalled: (x) => snapMarshal.observe(x),
      synced: (x) => snapFsync.observe(x),
      saved: (x) => snapTotal.observe(x),
    };
    counterOf(r, 'etcd_server_heartbeat_send_failures_total', 'The total number of leader heartbeat send failures (likely overloaded from slow disk).', () => s.lateHeartbeats());
    this.slowApplies = new Counter({ name: 'etcd_server_slow_apply_total', help: 'The total number of slow apply requests (likely overloaded from slow disk).', registers: [r] });
    this.healthSuccess = new Counter({ name: 'etcd_server_health_success', help: 'The total number of successful health checks', registers: [r] });
    this.healthFailures = new Counter({ name: 'etcd_server_health_failures', help: 'The total number of failed health checks', registers: [r] });
    const clientRequests = followingCounter(r, 'etcd_server_client_requests_total', 'The total number of client requests per client version.', ['type', 'client_api_version']);
    this.clientRequests = {
      unary: countsOf(clientRequests, (v: string) => ({ type: 'unary', client_api_version: v })),
      stream: countsOf(clientRequests, (v: string) => ({ type: 'stream', client_api_version: v })),
    };

    // mvcc (etcd counts each op on its mvcc transactions: src/kv/mvcc-stats.ts) and its debugging twins.
    const stats = () => s.sm.store.stats;
    for (const [name, what, read] of [
      ['put', 'puts', () => stats().puts],
      ['delete', 'deletes', () => stats().deletes],
      ['range', 'ranges', () => stats().ranges],
      ['txn', 'txns', () => stats().txns],
    ] as const) {
      counterOf(r, `etcd_mvcc_${name}_total`, `Total number of ${what} seen by this member.`, read);
      counterOf(r, `etcd_debugging_mvcc_${name}_total`, `Total number of ${what} seen by this member.`, read);
    }
    // Compaction: versions pruned, and its steps' times in whole milliseconds, as etcd's (raftkv's
    // pruning in slices stands for bbolt's batches of deletes; the compaction's synchronous step
    // for its index compaction).
    counterOf(r, 'etcd_debugging_mvcc_db_compaction_keys_total', 'Total number of db keys compacted.', () => stats().compactedVersions);
    const msHistogram = (name: string, help: string, buckets: number[]) => new Histogram({ name, help, buckets, registers: [r] });
    const indexPause = msHistogram('etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds', 'Bucketed histogram of index compaction pause duration.', exponentialBuckets(0.5, 2, 14));
    const dbPause = msHistogram('etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds', 'Bucketed histogram of db compaction pause duration.', exponentialBuckets(1, 2, 13));
    const dbTotal = msHistogram('etcd_debugging_mvcc_db_compaction_total_duration_milliseconds', 'Bucketed histogram of db compaction total duration.', exponentialBuckets(100, 2, 14));
    s.sm.store.stats.compactionTimings = {
      index: (ms) => indexPause.observe(Math.trunc(ms)),
      slice: (ms) => dbPause.observe(Math.trunc(ms)),
      total: (ms) => dbTotal.observe(Math.trunc(ms)),
    };
    new Gauge({ name: 'etcd_debugging_mvcc_total_put_size_in_bytes', help: 'The total size of put kv pairs seen by this member.', registers: [r], collect() { this.set(stats().putBytes); } });
    new Gauge({ name: 'etcd_debugging_mvcc_current_revision', help: 'The current revision of store.', registers: [r], collect() { this.set(Number(s.sm.store.currentRev)); } });
    new Gauge({ name: 'etcd_debugging_mvcc_compact_revision', help: 'The revision of the last compaction in store.', registers: [r], collect() { this.set(Number(s.sm.store.compactRev)); } });
    new Gauge({ name: 'etcd_debugging_mvcc_watch_stream_total', help: 'Total number of watch streams.', registers: [r], collect() { this.set(s.watchHub.streams); } });
    new Gauge({ name: 'etcd_debugging_mvcc_slow_watcher_total', help: 'Total number of unsynced slow watchers.', registers: [r], collect() { this.set(s.watchHub.slowWatchers); } });
    counterOf(r, 'etcd_debugging_mvcc_events_total', 'Total number of events sent by this member.', () => s.watchHub.eventsSent);
    new Gauge({ name: 'etcd_debugging_auth_revision', help: 'The current revision of auth store.', registers: [r], collect() { this.set(Number(s.sm.auth.revision)); } });

    // The lessor's (grants and revokes on every member; renewals and expiries on the leader).
    const leases = s.sm.lessor.stats;
    counterOf(r, 'etcd_debugging_lease_granted_total', 'The total number of granted leases.', () => leases.granted);
    counterOf(r, 'etcd_debugging_lease_revoked_total', 'The total number of revoked leases.', () => leases.revoked);
    counterOf(r, 'etcd_debugging_lease_renewed_total', 'The number of renewed leases seen by the leader.', () => leases.renewed);
    counterOf(r, 'etcd_debugging_server_lease_expired_total', 'The total number of expired leases.', () => leases.expired);
    const leaseTtl = new Histogram({ name: 'etcd_debugging_lease_ttl_total', help: 'Bucketed histogram of lease TTLs.', buckets: exponentialBuckets(1, 2, 24), registers: [r] });
    leases.onGrant = (ttl) => leaseTtl.observe(ttl);

    // The process's file descriptors, as etcd reports them (prom-client's process_open_fds/process_max_fds are the same numbers).
    new Gauge({ name: 'os_fd_used', help: 'The number of used file descriptors.', registers: [r], collect() { this.set(openFileDescriptors()); } });
    new Gauge({ name: 'os_fd_limit', help: 'The file descriptor limit.', registers: [r], collect() { this.set(fileDescriptorLimit()); } });
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

    // rafthttp's metrics, with its label names (To, From: the peer's member id in hex). Bytes are
    // counted per message batch in plain numbers per peer, which the counters follow.
    const sent = followingCounter(r, 'etcd_network_peer_sent_bytes_total', 'The total number of bytes sent to peers.', ['To']);
    const received = followingCounter(r, 'etcd_network_peer_received_bytes_total', 'The total number of bytes received from peers.', ['From']);
    const sendFailures = new Counter({ name: 'etcd_network_peer_sent_failures_total', help: 'The total number of send failures from peers.', labelNames: ['To'], registers: [r] });
    const rtt = new Histogram({ name: 'etcd_network_peer_round_trip_time_seconds', help: 'Round-Trip-Time histogram between peers.', labelNames: ['To'], buckets: exponentialBuckets(0.0001, 2, 16), registers: [r] });
    const sentTo = countsOf(sent, (id: bigint) => ({ To: hex(id) }));
    const receivedFrom = countsOf(received, (id: bigint) => ({ From: hex(id) }));
    const receiveFailures = new Counter({ name: 'etcd_network_peer_received_failures_total', help: 'The total number of receive failures from peers.', labelNames: ['From'], registers: [r] });
    const activePeers = new Gauge({ name: 'etcd_network_active_peers', help: 'The current number of active peer connections.', labelNames: ['Local', 'Remote'], registers: [r] });
    const disconnectedPeers = new Counter({ name: 'etcd_network_disconnected_peers_total', help: 'The total number of disconnected peers.', labelNames: ['Local', 'Remote'], registers: [r] });
    // Snapshot transfers, as rafthttp's snapshot sender and receiver count them.
    const snapshotMetrics = (dir: 'send' | 'receive', label: 'To' | 'From', what: string) => ({
      success: new Counter({ name: `etcd_network_snapshot_${dir}_success`, help: `Total number of successful snapshot ${what}s`, labelNames: [label], registers: [r] }),
      failures: new Counter({ name: `etcd_network_snapshot_${dir}_failures`, help: `Total number of snapshot ${what} failures`, labelNames: [label], registers: [r] }),
      inflights: new Gauge({ name: `etcd_network_snapshot_${dir}_inflights_total`, help: `Total number of inflight snapshot ${what}s`, labelNames: [label], registers: [r] }),
      seconds: new Histogram({ name: `etcd_network_snapshot_${dir}_total_duration_seconds`, help: `Total latency distributions of v3 snapshot ${what}s`, labelNames: [label], buckets: exponentialBuckets(0.1, 2, 10), registers: [r] }),
      report(peer: bigint, outcome: 'started' | 'ok' | 'failed', seconds: number): void {
        const l = { [label]: hex(peer) };
        if (outcome === 'started') return void this.inflights.inc(l);
        this.inflights.dec(l);
        if (outcome === 'failed') return void this.failures.inc(l);
        this.success.inc(l);
        this.seconds.observe(l, seconds);
      },
    });
    const snapshotSend = snapshotMetrics('send', 'To', 'send');
    const snapshotReceive = snapshotMetrics('receive', 'From', 'receive');
    this.peerTraffic = {
      sent: (to, bytes) => void (sentTo(to).n += bytes),
      received: (from, bytes) => void (receivedFrom(from).n += bytes),
      sendFailed: (to, n) => sendFailures.inc({ To: hex(to) }, n),
      roundTrip: (to, seconds) => rtt.observe({ To: hex(to) }, seconds),
      peerActive: (to, active, stopped) => {
        const l = { Local: hex(s.id), Remote: hex(to) };
        if (active) return void activePeers.inc(l);
        activePeers.dec(l);
        // As rafthttp: a stream that failed is a disconnection, a link closed on purpose is not.
        if (!stopped) disconnectedPeers.inc(l);
      },
      receiveFailed: (from) => receiveFailures.inc({ From: hex(from) }),
      snapshotSend: (to, outcome, seconds) => {
        snapshotSend.report(to, outcome, seconds);
        // rafthttp counts a failed snapshot among the peer's send failures too.
        if (outcome === 'failed') sendFailures.inc({ To: hex(to) });
      },
      snapshotReceive: (from, outcome, seconds) => snapshotReceive.report(from, outcome, seconds),
    };

    // go-grpc-prometheus' server metrics (src/api/grpc-metrics.ts reports each call).
    const grpcLabels = ['grpc_type', 'grpc_service', 'grpc_method'];
    this.grpcStarted = followingCounter(r, 'grpc_server_started_total', 'Total number of RPCs started on the server.', grpcLabels);
    this.grpcHandled = followingCounter(r, 'grpc_server_handled_total', 'Total number of RPCs completed on the server, regardless of success or failure.', [...grpcLabels, 'grpc_code']);
    this.grpcHandling = opts.extensive
      ? new Histogram({
          name: 'grpc_server_handling_seconds',
          help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
          labelNames: grpcLabels,
          // go-grpc-prometheus' default buckets (prometheus.DefBuckets).
          buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
          registers: [r],
        })
      : undefined;
    this.grpcMsgReceived = followingCounter(r, 'grpc_server_msg_received_total', 'Total number of RPC stream messages received on the server.', grpcLabels);
    this.grpcMsgSent = followingCounter(r, 'grpc_server_msg_sent_total', 'Total number of gRPC stream messages sent by the server.', grpcLabels);
    // etcd's gRPC codec counts every message's protobuf bytes (etcd's Grafana dashboard plots them).
    const bytes = this.clientBytes;
    counterOf(r, 'etcd_network_client_grpc_received_bytes_total', 'The total number of bytes received from grpc clients.', () => bytes.received);
    counterOf(r, 'etcd_network_client_grpc_sent_bytes_total', 'The total number of bytes sent to grpc clients.', () => bytes.sent);
  }

  /**
   * The text of one scrape of /metrics, counted as promhttp counts its handler's: in flight while
   * collected (a scrape sees itself), then by status once answered.
   */
  async scrape(): Promise<string> {
    this.scrapesInFlight.inc();
    try {
      const text = await this.registry.metrics();
      this.scrapes.inc({ code: '200' });
      return text;
    } catch (e) {
      this.scrapes.inc({ code: '500' });
      throw e;
    } finally {
      this.scrapesInFlight.dec();
    }
  }

  /**
   * A /health check's outcome, counted as etcd counts it: a member with an alarm raised answers
   * unhealthy without counting either way.
   */
  healthChecked(healthy: boolean, alarm: boolean): void {
    if (healthy) this.healthSuccess.inc();
    else if (!alarm) this.healthFailures.inc();
  }

  /**
   * One method's recorder. The labelled series are looked up here once, not on every call. Like
   * go-grpc-prometheus, a method's series exist from the start, its handled ones for every code.
   */
  method(call: GrpcCallLabels, codes: readonly string[]): GrpcMethodMetrics {
    const labels = { ...call };
    // Counted in plain numbers on the call's path; the counters follow them when scraped (a
    // labelled prom-client increment hashes its labels, and a call makes half a dozen).
    const n = { started: 0, received: 0, sent: 0 };
    this.grpcStarted.follow(labels, () => n.started);
    this.grpcMsgReceived.follow(labels, () => n.received);
    this.grpcMsgSent.follow(labels, () => n.sent);
    // As go-grpc-prometheus: the handling time of unary calls (a stream's is its lifetime).
    const handling = call.grpc_type === 'unary' ? this.grpcHandling?.labels(labels) : undefined;
    const byCode = countsOf(this.grpcHandled, (code: string) => ({ ...labels, grpc_code: code }));
    for (const code of codes) byCode(code);
    const kv = call.grpc_service === 'etcdserverpb.KV';
    const isPut = kv && call.grpc_method === 'Put';
    const isRange = kv && call.grpc_method === 'Range';
    const recent = this.recent;
    // etcd_server_client_requests_total by the client's API version.
    const byVersion = this.clientRequests[call.grpc_type === 'unary' ? 'unary' : 'stream'];
    const versions = this.clientApiVersions;
    const bytes = this.clientBytes;
    return {
      received: (size) => {
        n.received++;
        bytes.received += size;
      },
      sent: (size) => {
        n.sent++;
        bytes.sent += size;
      },
      started: (apiVersion) => {
        n.started++;
        // The label comes from the client: a bounded number of values (later ones count as unknown).
        if (apiVersion !== undefined && !versions.has(apiVersion) && versions.size < MAX_CLIENT_API_VERSIONS) versions.add(apiVersion);
        byVersion(apiVersion !== undefined && versions.has(apiVersion) ? apiVersion : 'unknown').n++;
      },
      handled: (code, seconds) => {
        byCode(code).n++;
        handling?.observe(seconds);
        if (isPut) recent.putSeconds.record(seconds);
        else if (isRange) recent.reads++;
      },
    };
  }
}

/**
 * A counter that follows a count kept elsewhere (a plain number the member increments on its
 * hot path): read when scraped, and moved by what it grew since the last scrape (all of it at
 * the first: what was counted before the metrics existed counts too).
 */
function counterOf(r: Registry, name: string, help: string, read: () => number): void {
  followingCounter(r, name, help, []).follow({}, read, 0);
}

/** A labelled counter whose series follow counts kept elsewhere (see counterOf). */
interface FollowingCounter {
  /**
   * Adds a series (shown at 0 at once, as go-grpc-prometheus shows a method's before its first
   * call) that counts what `read` grows from `from` on (default: its value now).
   */
  follow(labels: Record<string, string>, read: () => number, from?: number): void;
}

/**
 * Counts by key (a peer, a code, a version), each a plain number made at its key's first use
 * and followed by its series of `counter` from 0 on.
 */
function countsOf<K>(counter: FollowingCounter, labelsOf: (key: K) => Record<string, string>): (key: K) => { n: number } {
  const counts = new Map<K, { n: number }>();
  return (key) => {
    let c = counts.get(key);
    if (c === undefined) {
      const made = (c = { n: 0 });
      counts.set(key, made);
      counter.follow(labelsOf(key), () => made.n);
    }
    return c;
  };
}

function followingCounter(r: Registry, name: string, help: string, labelNames: string[]): FollowingCounter {
  const series: Array<{ labels: Record<string, string>; read: () => number; seen: number }> = [];
  const counter = new Counter({
    name,
    help,
    labelNames,
    registers: [r],
    collect() {
      for (const x of series) {
        const n = x.read();
        if (n > x.seen) this.inc(x.labels, n - x.seen);
        x.seen = n;
      }
    },
  });
  return {
    follow(labels, read, from = read()) {
      counter.inc(labels, 0);
      series.push({ labels, read, seen: from });
    },
  };
}

const dashboards = new WeakMap<Metrics, Dashboard>();

/**
 * Serves /metrics, /health (etcd's JSON: {"health":"true"} when a leader is known) and the
 * dashboard (/ and /dashboard/...).
 */
export function serveMetrics(
  s: MetricsSource & DashboardSource,
  m: Metrics,
  url: string,
  /** For an https URL: the client side's TLS (etcd serves metrics URLs with ClientTLSInfo), and who hears of refused connections. */
  tls?: { side: TlsSide | undefined; rejected?: (r: RejectedConnection) => void },
): Promise<Server | TlsServer> {
  // One dashboard per member, however many metrics URLs: it takes the recent values.
  let dashboard = dashboards.get(m);
  if (!dashboard) {
    dashboard = new Dashboard(s, m.recent);
    dashboards.set(m, dashboard);
  }
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      m.scrape().then(
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
      m.healthChecked(ok, false);
      res.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ health: String(ok) }));
    } else if (!dashboard!.handle(req, res)) {
      sendText(res, 404, '404 page not found'); // Go's NotFound, as etcd's metrics mux answers
    }
  });
  let listener: Server | TlsServer = server;
  if (isHttps(url)) {
    if (!tls?.side) return Promise.reject(new Error(`cannot listen on TLS for ${new URL(url).host}: KeyFile and CertFile are not presented`));
    // etcd's transport.NewListener with ClientTLSInfo: its checkSAN included.
    listener = createTlsListener(tls.side, {
      alpn: (offered) => (offered.includes('http/1.1') ? 'http/1.1' : undefined),
      checkSan: true,
      accept: (sock) => server.emit('connection', sock),
      rejected: tls.rejected,
    }).server;
  }
  return listenAt(listener, url).then(() => listener);
}
