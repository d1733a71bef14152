// 100 watchers that stop reading while 40 MiB are written: the member's memory grows by about
// what it stores, not by a copy of every write per watcher (the watch streams honour
// backpressure; a watcher that falls behind catches up from the MVCC history later). When they
// read again, each gets every event in order — or, if its history was compacted meanwhile,
// an explicit cancel with the compact revision (etcd's unsynced/victim watchers).

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type RequestOp, type WatchResponse, WatchClient } from '../../src/gen/etcd/rpc.js';
import { WatchRequest } from '../../src/gen/etcd/rpc.js';
import { TestClient } from '../support/client.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const STREAMS = 10;
const WATCHERS_PER_STREAM = 10;
const VALUE = 1024;
const PUTS_PER_TXN = 100;
const TXNS = 400; // 400 x 100 x 1 KiB = 40 MiB
/**
 * The bound we state: the member's RSS may grow by at most this much. What it stores for the
 * 40 MiB (the history and the Raft log kept for followers) is about 100-150 MiB (measured: 130 MiB); without
 * backpressure the streams buffered copies of the events (measured: 365 MiB).
 */
const RSS_GROWTH_BOUND = 250 * 1024 * 1024;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) * 1024;
}

interface Stream {
  call: grpc.ClientDuplexStream<WatchRequest, WatchResponse>;
  client: InstanceType<typeof WatchClient>;
  /** Per watch id: revisions received, and how it ended. */
  revs: Map<bigint, bigint[]>;
  canceled: Map<bigint, bigint>;
}

describe('slow watchers', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 1 });
  });
  after(async () => c?.destroy());

  it('stalled watchers cost bounded memory, then get every event in order or a compaction cancel', async (t) => {
    const streams: Stream[] = [];
    for (let s = 0; s < STREAMS; s++) {
      // One channel (connection) per stream, so that a paused stream does not hold up another.
      const client = new WatchClient(c.endpoint(0), grpc.credentials.createInsecure(), { 'test.channel': s, 'grpc.max_receive_message_length': -1 });
      const st: Stream = { call: client.watch(), client, revs: new Map(), canceled: new Map() };
      let created = 0;
      st.call.on('data', (r: WatchResponse) => {
        if (r.created) created++;
        else if (r.canceled) st.canceled.set(r.watchId, r.compactRevision);
        else {
          // Whole revisions, each holding its txn's 100 puts: one per response when live,
          // several in one response for a watcher catching up (as etcd sends them).
          const perRev = new Map<bigint, number>();
          for (const e of r.events) perRev.set(e.kv!.modRevision, (perRev.get(e.kv!.modRevision) ?? 0) + 1);
          for (const [rev, n] of perRev) {
            assert.equal(n, PUTS_PER_TXN);
            st.revs.get(r.watchId)!.push(rev);
          }
        }
      });
      st.call.on('error', () => undefined);
      for (let w = 0; w < WATCHERS_PER_STREAM; w++) {
        st.revs.set(BigInt(w), []);
        st.call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('w/'), rangeEnd: Buffer.from('w0'), watchId: BigInt(w) } }));
      }
      await eventually(async () => assert.equal(created, WATCHERS_PER_STREAM));
      st.call.pause(); // reads nothing more: the member's writes to it back up
      streams.push(st);
    }

    const pid = c.members[0]!.proc!.pid!;
    const rssBefore = rssOf(pid);
    const writer = new TestClient(c.endpoint(0), 60_000);
    const value = Buffer.alloc(VALUE, 'x');
    const firstRev = (await writer.status()).header!.revision + 1n;
    for (let i = 0; i < TXNS; i++) {
      const success: RequestOp[] = [];
      for (let j = 0; j < PUTS_PER_TXN; j++) {
        success.push({ requestPut: { key: Buffer.from(`w/${j}`), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
      }
      await writer.txn({ compare: [], success, failure: [] });
    }
    const lastRev = (await writer.status()).header!.revision;
    const growth = rssOf(pid) - rssBefore;
    t.diagnostic(`RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB for 40 MiB written with ${STREAMS * WATCHERS_PER_STREAM} stalled watchers`);
    assert.ok(growth < RSS_GROWTH_BOUND, `RSS grew by ${growth} bytes (bound ${RSS_GROWTH_BOUND})`);

    // The first stream reads again: every watcher gets every revision, in order.
    const reader = streams[0]!;
    reader.call.resume();
    await eventually(async () => {
      for (const revs of reader.revs.values()) assert.equal(revs.at(-1), lastRev);
    }, 120_000);
    const all = Array.from({ length: Number(lastRev - firstRev) + 1 }, (_, i) => firstRev + BigInt(i));
    for (const [id, revs] of reader.revs) assert.deepEqual(revs, all, `watcher ${id}: every revision once, in order`);

    // Compact; the second stream reads again: its watchers fell behind past the compaction.
    await new Promise<void>((res, rej) => writer.kv.compact({ revision: lastRev, physical: true }, (e) => (e ? rej(e) : res())));
    const late = streams[1]!;
    late.call.resume();
    await eventually(async () => assert.equal(late.canceled.size, WATCHERS_PER_STREAM), 120_000);
    for (const [id, revs] of late.revs) {
      assert.equal(late.canceled.get(id), lastRev, `watcher ${id} canceled with the compact revision`);
      assert.deepEqual(revs, all.slice(0, revs.length), `watcher ${id}: what it got before the cancel is in order`);
    }
    writer.close();
    for (const st of streams) {
      st.call.cancel();
      st.client.close();
    }
  });
});
