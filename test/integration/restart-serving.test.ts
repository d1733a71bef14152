// A restarted member answers nothing from a half-replayed state: its client port holds the
// connections that come while it replays its log (etcd serves clients only after its
// ReadyNotify), so even a serializable read made as soon as the port is open sees every write
// the member had acknowledged before it was killed.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RequestOp } from '../../src/gen/etcd/rpc.js';
import { TestClient } from '../support/client.js';
import { ProcCluster, sleep } from '../support/proc-cluster.js';

/**
 * Enough bytes that the replay takes many more event-loop turns (one per ~1 MiB of entries)
 * than a client's connection and request take to be read: 40 MiB.
 */
const KEYS = 20_000;
const PER_TXN = 100;
const VALUE_BYTES = 2048;
const key = (i: number) => Buffer.from(`replay/${String(i).padStart(6, '0')}`);

describe('restart: the client port waits for the replay', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 1 });
  });
  after(async () => {
    await c.destroy();
  });

  it('reads made while the log is replayed are answered from the whole state', async () => {
    await c.waitForLeader();
    const cl = c.client(0);
    const value = Buffer.alloc(VALUE_BYTES, 'v');
    for (let from = 0; from < KEYS; from += PER_TXN) {
      const success: RequestOp[] = [];
      for (let i = from; i < from + PER_TXN; i++) success.push({ requestPut: { key: key(i), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
      await cl.txn({ compare: [], success, failure: [] });
    }
    const before = (await cl.range(key(KEYS - 1))).header!.revision;
    cl.close();

    await c.kill(0);
    c.startMember(0);
    // Read as soon as the port takes a connection, and again after each answer, until the
    // member is up: every answer must come from the state after the whole replay.
    const answers: bigint[] = [];
    const deadline = Date.now() + 60_000;
    while (answers.length < 5) {
      assert.ok(Date.now() < deadline, `the restarted member answered ${answers.length} reads in 60 s`);
      const t = new TestClient(c.endpoint(0), 20_000);
      try {
        const r = await t.range(key(KEYS - 1), { serializable: true });
        answers.push(r.header!.revision);
        assert.equal(r.kvs.length, 1, `an answer at revision ${r.header!.revision} lacks the last key written before the kill`);
      } catch (e) {
        if (!/UNAVAILABLE/.test(String(e))) throw e;
        await sleep(2); // not listening yet
      } finally {
        t.close();
      }
    }
    for (const rev of answers) assert.ok(rev >= before, `an answer at revision ${rev}, before the kill ${before}`);
  });
});
