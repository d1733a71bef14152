// /metrics of a real 3-member cluster, read as Prometheus would: etcd's metric names and labels
// as etcd's Grafana dashboard and its alerts query them (server, disk, mvcc, rafthttp's peer
// metrics with To/From, go-grpc-prometheus' grpc_server_* by type, service, method and code),
// Node's process metrics unprefixed, and counters that move under a small write load.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcd/rpc.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';
import { type Sample, find, scrape, total } from '../support/prometheus-text.js';

const PUTS = 30;
const GETS = 10;

/** A watch stream opened, answered and then cancelled by the client (a bidi stream that ends Canceled). */
async function watchAndCancel(endpoint: string): Promise<void> {
  const client = new WatchClient(endpoint, grpc.credentials.createInsecure());
  try {
    const call = client.watch();
    call.on('error', () => {
      /* the cancel below */
    });
    const created = new Promise<WatchResponse>((resolve) => call.once('data', resolve));
    call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('w') } }));
    assert.equal((await created).created, true);
    call.cancel();
  } finally {
    client.close();
  }
}

/**
 * Maintenance.Snapshot read to its end (a server stream the server ends: OK), checked to be
 * framed as etcd 3.4 frames it: the database in 32 KiB messages counting remaining_bytes down to
 * 0, then its sha256 alone, and no header in any message.
 */
async function readSnapshot(c: ProcCluster, i: number): Promise<number> {
  const msgs = await new Promise<Array<{ header?: unknown; remainingBytes: bigint; blob: Buffer }>>((resolve, reject) => {
    const got: Array<{ header?: unknown; remainingBytes: bigint; blob: Buffer }> = [];
    const call = c.client(i).maint.snapshot({});
    call.on('data', (r: { header?: unknown; remainingBytes: bigint; blob: Buffer }) => got.push(r));
    call.on('end', () => resolve(got));
    call.on('error', reject);
  });
  const sha = msgs.pop()!;
  const db = Buffer.concat(msgs.map((m) => m.blob));
  assert.ok(msgs.length >= 1);
  assert.deepEqual(sha.blob, createHash('sha256').update(db).digest());
  assert.equal(sha.remainingBytes, 0n);
  let sent = 0;
  for (const [n, m] of msgs.entries()) {
    assert.equal(m.header, undefined);
    if (n < msgs.length - 1) assert.equal(m.blob.length, 32 * 1024);
    sent += m.blob.length;
    assert.equal(m.remainingBytes, BigInt(db.length - sent));
  }
  return db.length + sha.blob.length;
}

it('serves etcd-named metrics that move under load', async () => {
  const metricsPorts = await freePorts(3);
  // --metrics extensive: the handling-time histogram too (etcd's default, basic, leaves it out).
  const c = await ProcCluster.start({ size: 3, memberArgs: (i) => ['--listen-metrics-urls', `http://127.0.0.1:${metricsPorts[i]}`, '--metrics', 'extensive'] });
  const url = (i: number): string => `http://127.0.0.1:${metricsPorts[i]}/metrics`;
  try {
    // A member answers clients a moment before it listens on its metrics URL.
    for (let i = 0; i < 3; i++) await eventually(() => scrape(url(i)));
    const leader = await c.waitForLeader();
    const ids = await Promise.all([0, 1, 2].map(async (i) => (await c.client(i).status()).header!.memberId.toString(16)));
    const before = await scrape(url(leader));

    for (let i = 0; i < PUTS; i++) await c.client(leader).put(`k${i}`, `value-${i}`);
    for (let i = 0; i < GETS; i++) await c.client(leader).range(`k${i}`);
    await assert.rejects(c.client(leader).put('', 'empty key'), /key is not provided/);
    await watchAndCancel(c.endpoint(leader));
    assert.ok((await readSnapshot(c, leader)) > 0);

    // Peers' round trips are probed a second after start and then every few seconds.
    const after: Sample[] = await eventually(async () => {
      const s = await scrape(url(leader));
      for (const i of [0, 1, 2].filter((j) => j !== leader)) {
        assert.ok(total(s, 'etcd_network_peer_round_trip_time_seconds_count', { To: ids[i]! }) >= 1, `no round trip to ${ids[i]}`);
      }
      // The watch's end is reported once the server sees the cancel (no active stream left).
      assert.equal(total(s, 'grpc_server_handled_total', { grpc_service: 'etcdserverpb.Watch', grpc_type: 'bidi_stream' }), 1);
      return s;
    }, 20_000);

    // etcd's server, disk and mvcc metrics.
    assert.equal(total(after, 'etcd_server_has_leader'), 1);
    assert.equal(total(after, 'etcd_server_is_leader'), 1);
    assert.ok(total(after, 'etcd_server_leader_changes_seen_total') >= 1);
    assert.equal(find(after, 'etcd_server_proposals_pending').length, 1);
    assert.equal(find(after, 'etcd_server_proposals_failed_total').length, 1);
    const moved = (name: string, labels: Record<string, string> = {}): number => total(after, name, labels) - total(before, name, labels);
    assert.ok(moved('etcd_server_proposals_committed_total') >= PUTS, 'committed proposals did not move');
    assert.ok(moved('etcd_server_proposals_applied_total') >= PUTS, 'applied proposals did not move');
    assert.ok(moved('etcd_disk_wal_fsync_duration_seconds_count') >= 1, 'no WAL fsync observed');
    assert.ok(find(after, 'etcd_disk_wal_fsync_duration_seconds_bucket', { le: '0.001' }).length === 1, 'etcd fsync buckets (1 ms, doubling)');
    assert.ok(moved('etcd_disk_backend_commit_duration_seconds_count') >= 1, 'no backend commit observed');
    assert.ok(total(after, 'etcd_mvcc_db_total_size_in_bytes') > 0);
    assert.ok(total(after, 'etcd_server_quota_backend_bytes') > 0);

    // rafthttp's peer metrics: the leader sent to and heard from each follower, by member id.
    for (const i of [0, 1, 2].filter((j) => j !== leader)) {
      assert.ok(moved('etcd_network_peer_sent_bytes_total', { To: ids[i]! }) > 0, `no bytes sent to ${ids[i]}`);
      assert.ok(total(after, 'etcd_network_peer_received_bytes_total', { From: ids[i]! }) > 0, `no bytes received from ${ids[i]}`);
    }
    assert.equal(find(after, 'etcd_network_peer_sent_bytes_total', { To: ids[leader]! }).length, 0, 'a member does not send to itself');

    // go-grpc-prometheus' metrics with its label names and Go's code names.
    const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
    assert.equal(moved('grpc_server_started_total', put), PUTS + 1);
    assert.equal(moved('grpc_server_handled_total', { ...put, grpc_code: 'OK' }), PUTS);
    assert.equal(moved('grpc_server_handled_total', { ...put, grpc_code: 'InvalidArgument' }), 1);
    assert.equal(moved('grpc_server_handling_seconds_count', put), PUTS + 1);
    assert.ok(moved('grpc_server_handled_total', { grpc_service: 'etcdserverpb.KV', grpc_method: 'Range', grpc_code: 'OK' }) >= GETS);
    assert.equal(total(after, 'grpc_server_started_total', { grpc_service: 'etcdserverpb.Watch', grpc_type: 'bidi_stream' }), 1);
    const snapshot = { grpc_type: 'server_stream', grpc_service: 'etcdserverpb.Maintenance', grpc_method: 'Snapshot' };
    assert.equal(total(after, 'grpc_server_handled_total', { ...snapshot, grpc_code: 'OK' }), 1);
    assert.equal(total(after, 'grpc_server_handled_total', snapshot), 1);

    // Node's process metrics under their standard names, not prefixed with raftkv_.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.equal(find(after, name).length, 1, name);
    }
    assert.deepEqual(after.filter((s) => /^raftkv_(process|nodejs)_/.test(s.name)).map((s) => s.name), []);

    // Every member serves them, followers too.
    for (const i of [0, 1, 2].filter((j) => j !== leader)) {
      const s = await scrape(url(i));
      assert.equal(total(s, 'etcd_server_has_leader'), 1);
      assert.equal(total(s, 'etcd_server_is_leader'), 0);
      assert.ok(total(s, 'etcd_network_peer_received_bytes_total', { From: ids[leader]! }) > 0);
    }
  } finally {
    await c.destroy();
  }
});
