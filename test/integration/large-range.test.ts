// A Range over a million keys on the leader of 3 real members: answered whole and exact, while
// heartbeats and other clients' puts go on — no leader change (before the Range was collected
// and encoded in slices, the leader stalled for seconds and lost its leadership).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type RequestOp } from '../../src/gen/etcd/rpc.js';
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

  it('answers every key while puts are acknowledged and the leader keeps its term', async (t) => {
    const leader = await c.waitForLeader();
    // Long deadlines: this test process itself is busy for seconds decoding the big answer.
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
    const { raftTerm: termBefore, leader: leaderId } = await client.status();
    const t1 = Date.now();

    const reader = new TestClient(c.endpoint(leader), 180_000);
    let rangeDone = false;
    let ackedDuringRange = 0;
    const puts = (async () => {
      for (let i = 0; !rangeDone && i < 100_000; i++) {
        await client.put(`probe/${i}`, 'x');
        if (!rangeDone) ackedDuringRange++;
      }
    })();
    const all = await reader.range('key/', { rangeEnd: Buffer.from('key0') });
    rangeDone = true;
    await puts;
    reader.close();
    client.close();
    t.diagnostic(`loaded ${KEYS} keys in ${t1 - t0} ms, Range answered in ${Date.now() - t1} ms, ${ackedDuringRange} puts acknowledged meanwhile`);

    assert.equal(all.kvs.length, KEYS);
    assert.equal(all.count, BigInt(KEYS));
    assert.equal(Buffer.from(all.kvs[0]!.key).toString(), 'key/0000000');
    assert.equal(Buffer.from(all.kvs[KEYS - 1]!.key).toString(), `key/${String(KEYS - 1).padStart(7, '0')}`);
    assert.ok(ackedDuringRange > 0, 'puts were acknowledged while the Range was served');
    for (let i = 0; i < 3; i++) {
      const st = await c.client(i).status();
      assert.equal(st.raftTerm, termBefore, `member ${i}: no election during the Range`);
      assert.equal(st.leader, leaderId, `member ${i}: same leader`);
    }
  });
});
