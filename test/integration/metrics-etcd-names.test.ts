// The rest of etcd 3.4's metrics, as a real 3-member cluster serves them on its client port:
// the gRPC codec's bytes and go-grpc-prometheus' message counts (exactly the protobuf bytes of
// what was sent, a large answer sent in slices included), the mvcc op counters as etcd counts
// them (every member applies the same ops), the lessor's, the watch streams', the server's id
// and cluster version, health checks, client requests by API version, the WAL's bytes and
// /debug/vars with etcd-io/raft's status, rafthttp's peer status and snapshot transfers. The
// JSON gateway's calls count as gRPC's, as etcd's. test/integration/metrics.test.ts covers the first ones.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { PutRequest, type PutResponse, RangeRequest, RangeResponse, TxnRequest, WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcd/rpc.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';
import { type Sample, find, scrape, total } from '../support/prometheus-text.js';

/** More key-values than the server encodes in one go (SLICED_ENCODING_MIN_KVS). */
const MANY = 2100;

it("serves etcd 3.4's mvcc, lease, watch, server and codec metrics with etcd's meaning", async () => {
  // Snapshots often and few entries kept after one: a follower that misses 600 writes gets a snapshot.
  const c = await ProcCluster.start({ size: 3, snapshotCount: 500, extraArgs: ['--snapshot-catchup-entries', '20'] });
  const url = (i: number): string => `http://${c.endpoint(i)}/metrics`;
  const others = (leader: number): number[] => [0, 1, 2].filter((j) => j !== leader);
  try {
    const leader = await c.waitForLeader();
    const id = (await c.client(leader).status()).header!.memberId;
    const client = c.client(leader);
    for (let i = 0; i < MANY; i += 100) {
      const success = Array.from({ length: 100 }, (_, j) => ({ requestPut: { key: Buffer.from(`m/${String(i + j).padStart(5, '0')}`), value: Buffer.from('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }));
      await client.txn(TxnRequest.fromPartial({ success }));
    }
    // Every member has applied them before the counters are read.
    await eventually(async () => {
      for (let i = 0; i < 3; i++) assert.equal(total(await scrape(url(i)), 'etcd_debugging_mvcc_put_total'), MANY);
    });

    // The codec's bytes: exactly the protobuf bytes of the request read and of the answer sent,
    // here a Range sent in slices by the lean path (and counted there); one message each way.
    let before = await scrape(url(leader));
    const req = RangeRequest.fromPartial({ key: Buffer.from('m/'), rangeEnd: Buffer.from('m0') });
    const res = await client.range('m/', { rangeEnd: Buffer.from('m0') });
    assert.equal(res.kvs.length, MANY);
    let after = await scrape(url(leader));
    const moved = (name: string, labels: Record<string, string> = {}, a: Sample[] = after, b: Sample[] = before): number => total(a, name, labels) - total(b, name, labels);
    const range = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Range' };
    assert.equal(moved('etcd_network_client_grpc_received_bytes_total'), RangeRequest.encode(req).finish().length);
    assert.equal(moved('etcd_network_client_grpc_sent_bytes_total'), RangeResponse.encode(res).finish().length);
    assert.equal(moved('grpc_server_msg_received_total', range), 1);
    assert.equal(moved('grpc_server_msg_sent_total', range), 1);
    assert.equal(moved('etcd_mvcc_range_total'), 1);
    assert.equal(moved('etcd_mvcc_txn_total'), 0, 'a Range alone is no txn');
    assert.equal(find(after, 'grpc_server_handling_seconds_count').length, 0, 'the handling histogram needs --metrics extensive, as in etcd');

    // A put with prev_kv and the client's API version: a range and a put in one mvcc txn, on
    // every member; the request counted by version; a failed put sends no message.
    const befores = await Promise.all([0, 1, 2].map((i) => scrape(url(i))));
    const md = new grpc.Metadata();
    md.set('client-api-version', '3.4');
    await new Promise<PutResponse>((resolve, reject) =>
      client.kv.put({ key: Buffer.from('m/00000'), value: Buffer.from('new'), lease: 0n, prevKv: true, ignoreValue: false, ignoreLease: false }, md, (e, r) => (e ? reject(e) : resolve(r!))),
    );
    await assert.rejects(client.put('', 'x'), /key is not provided/);
    const afters = await eventually(async () => {
      const s = await Promise.all([0, 1, 2].map((i) => scrape(url(i))));
      for (const x of s) assert.equal(total(x, 'etcd_mvcc_put_total'), MANY + 1);
      return s;
    });
    for (let i = 0; i < 3; i++) {
      assert.equal(moved('etcd_mvcc_put_total', {}, afters[i], befores[i]), 1, `member ${i}`);
      assert.equal(moved('etcd_mvcc_range_total', {}, afters[i], befores[i]), 1, `member ${i}: prev_kv reads the key`);
      assert.equal(moved('etcd_mvcc_txn_total', {}, afters[i], befores[i]), 1, `member ${i}: a range and a put`);
      assert.equal(moved('etcd_debugging_mvcc_total_put_size_in_bytes', {}, afters[i], befores[i]), 'm/00000new'.length);
      assert.equal(total(afters[i]!, 'etcd_debugging_mvcc_current_revision'), total(afters[i]!, 'etcd_debugging_mvcc_current_revision'));
    }
    const put = { grpc_type: 'unary', grpc_service: 'etcdserverpb.KV', grpc_method: 'Put' };
    assert.equal(moved('grpc_server_msg_received_total', put, afters[leader], befores[leader]), 2);
    assert.equal(moved('grpc_server_msg_sent_total', put, afters[leader], befores[leader]), 1, 'no message for the refused put');
    assert.equal(moved('etcd_server_client_requests_total', { type: 'unary', client_api_version: '3.4' }, afters[leader], befores[leader]), 1);
    assert.equal(moved('etcd_server_client_requests_total', { type: 'unary', client_api_version: 'unknown' }, afters[leader], befores[leader]), 1);
    assert.equal(total(afters[leader]!, 'etcd_debugging_mvcc_current_revision'), Number((await client.range('x')).header!.revision));
    assert.equal(total(afters[leader]!, 'etcd_debugging_mvcc_compact_revision'), -1);

    // The JSON gateway's calls count as gRPC calls, as etcd's (a gRPC client of its member):
    // the request by its protobuf size, one message each way.
    before = await scrape(url(leader));
    const gwPut = PutRequest.fromPartial({ key: Buffer.from('gw'), value: Buffer.from('json') });
    const answer = await fetch(`http://${c.endpoint(leader)}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: 'Z3c=', value: 'anNvbg==' }) });
    assert.equal(answer.status, 200);
    after = await scrape(url(leader));
    assert.equal(moved('etcd_network_client_grpc_received_bytes_total'), PutRequest.encode(gwPut).finish().length);
    assert.ok(moved('etcd_network_client_grpc_sent_bytes_total') > 0);
    assert.equal(moved('grpc_server_msg_received_total', put), 1);
    assert.equal(moved('grpc_server_msg_sent_total', put), 1);

    // Leases: granted on every member, renewed on the leader.
    const grant = await new Promise<{ ID: bigint }>((resolve, reject) => client.lease.leaseGrant({ TTL: 60n, ID: 0n }, (e, r) => (e ? reject(e) : resolve(r!))));
    await eventually(async () => {
      for (let i = 0; i < 3; i++) {
        const s = await scrape(url(i));
        assert.equal(total(s, 'etcd_debugging_lease_granted_total'), 1);
        assert.equal(total(s, 'etcd_debugging_lease_ttl_total_count'), 1);
        assert.equal(find(s, 'etcd_debugging_lease_ttl_total_bucket', { le: '64' })[0]?.value, 1);
        assert.equal(find(s, 'etcd_debugging_lease_ttl_total_bucket', { le: '32' })[0]?.value, 0);
      }
    });
    assert.ok(grant.ID > 0n);

    // A watch stream: counted while open, its events counted as sent.
    before = await scrape(url(leader));
    const watch = new WatchClient(c.endpoint(leader), grpc.credentials.createInsecure());
    const call = watch.watch();
    call.on('error', () => {});
    const responses: WatchResponse[] = [];
    call.on('data', (r: WatchResponse) => responses.push(r));
    call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('w') } }));
    await eventually(async () => assert.equal(responses.length, 1));
    await client.put('w', '1');
    await eventually(async () => assert.equal(responses.length, 2));
    after = await scrape(url(leader));
    assert.equal(total(after, 'etcd_debugging_mvcc_watch_stream_total'), 1);
    assert.equal(total(after, 'etcd_debugging_mvcc_watcher_total'), 1);
    assert.equal(moved('etcd_debugging_mvcc_events_total'), 1);
    call.cancel();
    watch.close();
    await eventually(async () => assert.equal(total(await scrape(url(leader)), 'etcd_debugging_mvcc_watch_stream_total'), 0));

    // A compaction: the versions it pruned (m/00000's first), its steps timed in milliseconds.
    const rev = (await client.range('x')).header!.revision;
    await new Promise((resolve, reject) => client.kv.compact({ revision: rev, physical: false }, (e, r) => (e ? reject(e) : resolve(r))));
    await eventually(async () => {
      const x = await scrape(url(leader));
      assert.equal(total(x, 'etcd_debugging_mvcc_compact_revision'), Number(rev));
      assert.equal(total(x, 'etcd_debugging_mvcc_db_compaction_keys_total'), 1, "m/00000's first version");
      assert.equal(total(x, 'etcd_debugging_mvcc_index_compaction_pause_duration_milliseconds_count'), 1);
      assert.equal(total(x, 'etcd_debugging_mvcc_db_compaction_total_duration_milliseconds_count'), 1);
      assert.ok(total(x, 'etcd_debugging_mvcc_db_compaction_pause_duration_milliseconds_count') >= 1);
    });

    // The server: its id in unpadded hex, the cluster version, health checks, the WAL's bytes.
    assert.deepEqual(find(after, 'etcd_server_id').map((x) => x.labels), [{ server_id: id.toString(16) }]);
    assert.equal(find(after, 'etcd_cluster_version', { cluster_version: '3.4' })[0]?.value, 1);
    before = after;
    assert.equal((await fetch(`http://${c.endpoint(leader)}/health`)).status, 200);
    after = await scrape(url(leader));
    assert.equal(moved('etcd_server_health_success'), 1);
    assert.equal(moved('etcd_server_health_failures'), 0);
    assert.ok(total(after, 'etcd_disk_wal_write_bytes_total') > 0);
    assert.ok(total(after, 'os_fd_used') > 0);
    assert.ok(total(after, 'os_fd_limit') > 0);

    // /debug/vars: etcd-io/raft's status, each member's progress on the leader only.
    const vars = (await (await fetch(`http://${c.endpoint(leader)}/debug/vars`)).json()) as { 'raft.status': Record<string, unknown>; cmdline: string[] };
    const st = vars['raft.status'];
    assert.deepEqual(Object.keys(st), ['id', 'term', 'vote', 'commit', 'lead', 'raftState', 'applied', 'progress', 'leadtransferee']);
    assert.equal(st.id, id.toString(16));
    assert.equal(st.lead, id.toString(16));
    assert.equal(st.raftState, 'StateLeader');
    assert.equal(Object.keys(st.progress as object).length, 3);
    assert.ok(vars.cmdline.includes('--name'));
    const follower = others(leader)[0]!;
    const fst = ((await (await fetch(`http://${c.endpoint(follower)}/debug/vars`)).json()) as { 'raft.status': Record<string, unknown> })['raft.status'];
    assert.equal(fst.raftState, 'StateFollower');
    assert.equal(fst.lead, id.toString(16));
    assert.deepEqual(fst.progress, {});
    assert.equal((await fetch(`http://${c.endpoint(leader)}/debug/vars`, { method: 'POST' })).status, 405);

    // rafthttp's peer status and snapshot transfers: a follower is active, goes away
    // (disconnected), misses enough to need a snapshot, comes back and receives one.
    const fid = (await c.client(follower).status()).header!.memberId.toString(16);
    const peer = { Local: id.toString(16), Remote: fid };
    assert.equal(find(await scrape(url(leader)), 'etcd_network_active_peers', peer)[0]?.value, 1);
    await c.kill(follower);
    await eventually(async () => {
      const x = await scrape(url(leader));
      assert.equal(find(x, 'etcd_network_active_peers', peer)[0]?.value, 0);
      assert.equal(total(x, 'etcd_network_disconnected_peers_total', peer), 1);
    });
    for (let i = 0; i < 600; i++) await client.put(`s${i}`, 'x');
    c.startMember(follower);
    await eventually(async () => {
      assert.equal(total(await scrape(url(leader)), 'etcd_network_snapshot_send_success', { To: fid }), 1);
      const x = await scrape(url(follower));
      assert.equal(total(x, 'etcd_network_snapshot_receive_success', { From: id.toString(16) }), 1);
      assert.equal(total(x, 'etcd_network_snapshot_receive_total_duration_seconds_count', { From: id.toString(16) }), 1);
    }, 30_000);
    const atEnd = await scrape(url(leader));
    assert.equal(find(atEnd, 'etcd_network_active_peers', peer)[0]?.value, 1, 'active again');
    // The leader saved snapshots (every 500 entries), timed as etcd's snapshotter.
    for (const h of ['etcd_snap_fsync_duration_seconds_count', 'etcd_debugging_snap_save_total_duration_seconds_count', 'etcd_debugging_snap_save_marshalling_duration_seconds_count']) {
      assert.ok(total(atEnd, h) >= 1, h);
    }
    assert.equal(find(atEnd, 'etcd_server_heartbeat_send_failures_total').length, 1);

    // A restart replays its log without counting again what it applied before (as etcd, whose
    // state is on disk): the other follower, restarted with nothing written since, counts no put.
    const other = others(leader)[1]!;
    const revNow = total(atEnd, 'etcd_debugging_mvcc_current_revision');
    await c.kill(other);
    c.startMember(other);
    const restarted = await eventually(async () => {
      const x = await scrape(url(other));
      assert.equal(total(x, 'etcd_debugging_mvcc_current_revision'), revNow);
      return x;
    }, 30_000);
    assert.equal(total(restarted, 'etcd_mvcc_put_total'), 0);
    assert.equal(total(restarted, 'etcd_debugging_lease_granted_total'), 0);
  } finally {
    await c.destroy();
  }
});
