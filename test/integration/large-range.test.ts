// A Range over a million keys on the leader of 3 real members: answered whole and exact, while
// heartbeats and other clients' puts go on — no leader change (before the Range was collected
// and encoded in slices, the leader stalled for seconds and lost its leadership). The same for a
// read-only Txn reading them all (before it was read in slices, it was applied in one go), or a
// Txn that writes and reads them all (its ranges were read while it was applied, in one go).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RangeRequest, type RequestOp } from '../../src/gen/etcd/rpc.js';
import { TestClient } from '../support/client.js';
import { ProcCluster } from '../support/proc-cluster.js';

const KEYS = 1_000_000;
const PER_TXN = 10_000;

describe('a 1M-key Range on the leader', () => {
  let c: ProcCluster;
  before(async () => {
    // A 1.5 s election timeout (3x the other tests'): a loaded CI machine (two test files at once on 2 cores, a GC of a
    // heap holding a million keys) must not flap, while the stall this test guards against —
    // the whole Range collected and encoded in one turn — lasted seconds at 1 M keys (2.6 s measured
    // on one member for the issue, more with three on two cores).
    c = await ProcCluster.start({ size: 3, electionMs: 1500, extraArgs: ['--max-txn-ops', String(PER_TXN), '--max-request-bytes', String(4 * 1024 * 1024)] });
  });
  after(async () => c?.destroy());

  /** Loads the keys once (both tests read them); the time it took. */
  let loaded: Promise<number> | undefined;
  const load = (): Promise<number> =>
    (loaded ??= (async () => {
      const leader = await c.waitForLeader();
      const client = new TestClient(c.endpoint(leader), 120_000);
      const t0 = Date.now();
      const value = Buffer.from('0123456789');
      for (let t = 0; t < KEYS / PER_TXN; t++) {
        const success: RequestOp[] = [];
        for (let i = 0; i < PER_TXN; i++) {
          const k = t * PER_TXN + i;
          success.push({ requestPut: { key: Buffer.from(`key/${String(k).padStart(7, '0')}`), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
        }
        await client.txn({ compare: [], success, failure: [] });
      }
      client.close();
      return Date.now() - t0;
    })());

  /** Runs `read` on the leader while another client puts; checks that no election happened. */
  async function whilePutting<T>(read: (reader: TestClient) => Promise<T>): Promise<{ answer: T; acked: number; ms: number }> {
    const leader = await c.waitForLeader();
    const client = new TestClient(c.endpoint(leader), 120_000);
    const { raftTerm: termBefore, leader: leaderId } = await client.status();
    // Long deadlines: this test process itself is busy for seconds decoding the big answer.
    const reader = new TestClient(c.endpoint(leader), 180_000);
    const t1 = Date.now();
    let done = false;
    let acked = 0;
    const puts = (async () => {
      for (let i = 0; !done && i < 100_000; i++) {
        await client.put(`probe/${i}`, 'x');
        if (!done) acked++;
      }
    })();
    try {
      const answer = await read(reader);
      return { answer, acked, ms: Date.now() - t1 };
    } finally {
      done = true;
      await puts;
      reader.close();
      client.close();
      for (let i = 0; i < 3; i++) {
        const st = await c.client(i).status();
        assert.equal(st.raftTerm, termBefore, `member ${i}: no election during the read`);
        assert.equal(st.leader, leaderId, `member ${i}: same leader`);
      }
    }
  }

  it('answers every key while puts are acknowledged and the leader keeps its term', async (t) => {
    const loadMs = await load();
    const { answer: all, acked, ms } = await whilePutting((reader) => reader.range('key/', { rangeEnd: Buffer.from('key0') }));
    t.diagnostic(`loaded ${KEYS} keys in ${loadMs} ms, Range answered in ${ms} ms, ${acked} puts acknowledged meanwhile`);
    assert.equal(all.kvs.length, KEYS);
    assert.equal(all.count, BigInt(KEYS));
    assert.equal(Buffer.from(all.kvs[0]!.key).toString(), 'key/0000000');
    assert.equal(Buffer.from(all.kvs[KEYS - 1]!.key).toString(), `key/${String(KEYS - 1).padStart(7, '0')}`);
    assert.ok(acked > 0, 'puts were acknowledged while the Range was served');
  });

  it('a read-only Txn reading every key: answered while puts are acknowledged, the leader keeps its term', async (t) => {
    await load();
    const rangeAll = RangeRequest.fromPartial({ key: Buffer.from('key/'), rangeEnd: Buffer.from('key0') });
    const { answer: res, acked, ms } = await whilePutting((reader) =>
      reader.txn({
        compare: [{ key: Buffer.from('key/0000000'), rangeEnd: Buffer.alloc(0), target: 0, result: 0, version: 1n, createRevision: 0n, modRevision: 0n, value: Buffer.alloc(0) }],
        success: [{ requestRange: rangeAll }, { requestRange: { ...rangeAll, countOnly: true } }],
        failure: [],
      }),
    );
    t.diagnostic(`read-only Txn over ${KEYS} keys answered in ${ms} ms, ${acked} puts acknowledged meanwhile`);
    assert.equal(res.succeeded, true);
    const kvs = res.responses[0]!.responseRange!.kvs;
    assert.equal(kvs.length, KEYS);
    assert.equal(Buffer.from(kvs[KEYS - 1]!.key).toString(), `key/${String(KEYS - 1).padStart(7, '0')}`);
    assert.equal(res.responses[1]!.responseRange!.count, BigInt(KEYS));
    assert.ok(acked > 0, 'puts were acknowledged while the Txn was served');
  });

  it('a Txn that writes and reads every key before and after its write: answered while puts are acknowledged, the leader keeps its term', async (t) => {
    // Runs last: it adds a key under key/.
    await load();
    const rangeAll = RangeRequest.fromPartial({ key: Buffer.from('key/'), rangeEnd: Buffer.from('key0') });
    const added = Buffer.from('key/zzz');
    const { answer: res, acked, ms } = await whilePutting((reader) =>
      reader.txn({
        compare: [],
        success: [
          { requestRange: rangeAll },
          { requestPut: { key: added, value: Buffer.from('x'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
          { requestRange: { ...rangeAll, countOnly: true } },
        ],
        failure: [],
      }),
    );
    t.diagnostic(`Txn writing one key and reading ${KEYS} keys answered in ${ms} ms, ${acked} puts acknowledged meanwhile`);
    const before = res.responses[0]!.responseRange!;
    // The range before the write sees the store before the txn, the one after it the store after.
    assert.equal(before.kvs.length, KEYS);
    assert.equal(Buffer.from(before.kvs[KEYS - 1]!.key).toString(), `key/${String(KEYS - 1).padStart(7, '0')}`);
    assert.equal(res.responses[2]!.responseRange!.count, BigInt(KEYS + 1));
    assert.ok(acked > 0, 'puts were acknowledged while the Txn was served');
  });
});
