// src/server/metrics.ts on its own, fed by a stand-in member: counters that follow counts kept
// on the hot path move by what those grew between scrapes, and the labels clients choose
// (client-api-version) are bounded.

import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { it } from 'node:test';
import { CODE_NAMES } from '../../src/api/grpc-status.js';
import { Lessor } from '../../src/kv/lessor.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { Metrics, type MetricsSource } from '../../src/server/metrics.js';
import { find, parseMetrics, total } from '../support/prometheus-text.js';

function member(): MetricsSource {
  const store = new MvccStore();
  return {
    id: 0xabcn,
    leader: () => 0xabcn,
    isLeader: () => true,
    isLearner: () => false,
    isStopped: () => false,
    term: () => 2,
    committedIndex: () => 10,
    pendingProposals: () => 0,
    quotaBytes: 1 << 30,
    sm: { appliedIndex: 10, store, auth: { revision: 1n }, lessor: new Lessor(2n, () => 0) } as unknown as MetricsSource['sm'],
    loopDelay: monitorEventLoopDelay(),
    watchHub: { size: 0, streams: 0, eventsSent: 0, slowWatchers: 0 },
    walBytesWritten: () => 0,
    lateHeartbeats: () => 0,
    applyingSnapshot: () => false,
    slowReadIndexes: () => 0,
    promotions: () => ({ successes: 0, failures: new Map() }),
  };
}

it('counters follow the counts kept on the hot path, and client-chosen labels are bounded', async () => {
  const s = member();
  const m = new Metrics(s);
  const scrape = async () => parseMetrics(await m.registry.metrics());
  const range = m.method({ grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range' }, CODE_NAMES);
  let samples = await scrape();
  // go-grpc-prometheus shows a method's series before its first call, handled ones for every code.
  assert.equal(find(samples, 'grpc_server_started_total', { grpc_method: 'Range' })[0]?.value, 0);
  assert.deepEqual(
    find(samples, 'grpc_server_handled_total', { grpc_method: 'Range' }).map((x) => [x.labels.grpc_code, x.value]),
    CODE_NAMES.map((c) => [c, 0]),
  );
  assert.equal(find(samples, 'grpc_server_handling_seconds_count').length, 0, 'the histogram needs --metrics extensive');

  for (let i = 0; i < 3; i++) {
    range.started('3.4');
    range.received(10);
    range.sent(100);
    range.handled('OK', 0.001);
  }
  s.sm.store.stats.record(2, 1, 0);
  samples = await scrape();
  assert.equal(total(samples, 'grpc_server_started_total', { grpc_method: 'Range' }), 3);
  assert.equal(total(samples, 'grpc_server_handled_total', { grpc_method: 'Range', grpc_code: 'OK' }), 3);
  assert.equal(total(samples, 'etcd_network_client_grpc_received_bytes_total'), 30);
  assert.equal(total(samples, 'etcd_network_client_grpc_sent_bytes_total'), 300);
  assert.equal(total(samples, 'etcd_mvcc_range_total'), 2);
  assert.equal(total(samples, 'etcd_mvcc_txn_total'), 1);
  // Scrapes counted as promhttp counts them (one sees itself in flight), and Go's address-space limit.
  const viaHandler = async () => parseMetrics(await m.scrape());
  const first = await viaHandler();
  assert.equal(total(first, 'promhttp_metric_handler_requests_in_flight'), 1);
  assert.deepEqual(find(first, 'promhttp_metric_handler_requests_total').map((x) => [x.labels.code, x.value]), [['200', 0], ['500', 0], ['503', 0]]);
  assert.equal(total(await viaHandler(), 'promhttp_metric_handler_requests_total', { code: '200' }), 1);
  assert.ok(total(first, 'process_virtual_memory_max_bytes') > 0);
  // Scraped again without calls: nothing counted twice.
  samples = await scrape();
  assert.equal(total(samples, 'grpc_server_started_total', { grpc_method: 'Range' }), 3);
  assert.equal(total(samples, 'etcd_mvcc_range_total'), 2);

  // A client choosing a new version per call makes no more than a bounded number of series.
  for (let i = 0; i < 100; i++) range.started(`v${i}`);
  samples = await scrape();
  const series = find(samples, 'etcd_server_client_requests_total');
  assert.ok(series.length <= 17, `${series.length} series`);
  assert.equal(total(samples, 'etcd_server_client_requests_total'), 103);
  assert.ok(total(samples, 'etcd_server_client_requests_total', { client_api_version: 'unknown' }) >= 100 - 16);

  // --metrics extensive: unary calls are timed.
  const extensive = new Metrics(member(), { extensive: true });
  const put = extensive.method({ grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' }, CODE_NAMES);
  put.started(undefined);
  put.handled('OK', 0.002);
  assert.equal(total(parseMetrics(await extensive.registry.metrics()), 'grpc_server_handling_seconds_count', { grpc_method: 'Put' }), 1);
});
