// A DeleteRange or a lease revoke over many keys is applied in slices that yield to the event
// loop (StateMachine.applyNormal, MvccStore.writeInSlices), as etcd's apply goroutine leaves its
// raft loop free: a DeleteRange of 200 k keys held every member's loop for 0.2-1.7 s in one
// turn. While it is under way:
// - nobody sees part of it: reads are of the revision before it, the entry does not count as
//   applied, the lease is still there with its keys, and a snapshot image waits for it;
// - the Raft loop waits for it (the apply is serial), but a leader's heartbeats go on, so
//   followers whose own apply of it is as long do not campaign.
// Checked on a state machine alone, and on three in-process members on a manual clock, with the
// slices held open by the test (nothing depends on wall-clock time).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import type { RequestOp } from '../../src/gen/etcd/rpc.js';
import { WRITE_SLICE } from '../../src/kv/mvcc.js';
import { settled } from '../../src/kv/kv-ops.js';
import { EntryType } from '../../src/raft/index.js';
import type { StateMachine } from '../../src/server/state-machine.js';
import { parts, withCluster } from '../support/inproc-cluster.js';
import { applyNow, newStateMachine } from '../support/state-machine.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const N = 2 * WRITE_SLICE + 17;
const key = (i: number) => B(`big/${String(i).padStart(6, '0')}`);
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A pause that holds every slice until `open` (and counts the slices held). */
function gate() {
  let release!: () => void;
  let opened = new Promise<void>((r) => (release = r));
  let held = 0;
  return {
    pause: () => {
      held++;
      return opened;
    },
    open: () => {
      release();
      opened = Promise.resolve();
    },
    held: () => held,
  };
}

let index = 0;
function entry(req: Partial<InternalRequest>) {
  index++;
  return { term: 1, index, type: EntryType.Normal, data: InternalRequest.encode(InternalRequest.fromPartial({ ...req, id: BigInt(index), proposer: 1n })).finish() };
}

function filled(lease = 0n): StateMachine {
  const sm = newStateMachine();
  if (lease !== 0n) applyNow(sm, entry({ leaseGrant: { ID: lease, TTL: 100n } }));
  for (let i = 0; i < N; i += 1000) {
    const success: RequestOp[] = [];
    for (let k = i; k < Math.min(N, i + 1000); k++) success.push({ requestPut: { key: key(k), value: B(`v${k}`), lease, prevKv: false, ignoreValue: false, ignoreLease: false } });
    assert.ok(applyNow(sm, entry({ txn: { compare: [], success, failure: [] } })).outcome.ok);
  }
  return sm;
}

const count = (sm: StateMachine) => sm.store.range(B('big/'), B('big0'), { countOnly: true }).count;

describe('a deletion over many keys is applied in slices', () => {
  it('a DeleteRange: invisible until whole, then all of it at one revision', async () => {
    const sm = filled();
    const g = gate();
    sm.readPause = g.pause;
    const before = { applied: sm.appliedIndex, rev: sm.store.currentRev };
    const e = entry({ deleteRange: { key: B('big/'), rangeEnd: B('big0'), prevKv: true } });
    const r = sm.applyNormal(e);
    assert.ok(r instanceof Promise, 'goes on in slices');
    let image = false;
    const imaging = sm.imageAsync(async () => {}).then((x) => ((image = true), x));
    for (let i = 0; i < 5; i++) await nextTurn();
    assert.equal(g.held(), 1, 'held after its first slice');
    assert.deepEqual({ applied: sm.appliedIndex, rev: sm.store.currentRev }, before);
    assert.equal(count(sm), N, 'reads see every key');
    assert.equal(image, false, 'a snapshot image waits for it');
    g.open();
    const done = await r;
    assert.ok(done.outcome.ok);
    const res = done.outcome.value as { deleted: bigint; prevKvs: unknown[]; header: { revision: bigint } };
    assert.equal(res.deleted, BigInt(N));
    assert.equal(res.prevKvs.length, N);
    assert.equal(res.header.revision, before.rev + 1n);
    assert.equal(sm.appliedIndex, e.index);
    assert.equal(count(sm), 0);
    assert.equal((await imaging).index, e.index, 'the image is of the state after it');
    assert.ok(g.held() >= 2, `${g.held()} slices held`);
  });

  it('a lease revoke: the lease keeps its keys until they are all gone, then goes', async () => {
    const sm = filled(7n);
    const g = gate();
    sm.readPause = g.pause;
    const r = sm.applyNormal(entry({ leaseRevoke: { ID: 7n } }));
    assert.ok(r instanceof Promise);
    for (let i = 0; i < 5; i++) await nextTurn();
    assert.equal(sm.lessor.keysOf(7n).length, N);
    assert.equal(count(sm), N);
    g.open();
    assert.ok((await r).outcome.ok);
    assert.equal(sm.lessor.exists(7n), false);
    assert.equal(count(sm), 0);
  });

  it("a lease revoke does not detach the lease's keys one by one at its end: the lease goes whole", async () => {
    const sm = filled(7n);
    // Detaching every key in the write's last step was a turn of ~0.1 s at 200,000 keys.
    let detached = 0;
    const detach = sm.lessor.detach.bind(sm.lessor);
    sm.lessor.detach = (id, k) => {
      detached++;
      detach(id, k);
    };
    sm.readPause = nextTurn;
    assert.ok((await sm.applyNormal(entry({ leaseRevoke: { ID: 7n } }))).outcome.ok);
    assert.equal(detached, 0);
    assert.equal(sm.lessor.exists(7n), false);
    assert.equal(count(sm), 0);
  });

  it("a lease revoke over keys attached out of order sorts them in steps too, and deletes them in key order", async () => {
    const sm = newStateMachine();
    applyNow(sm, entry({ leaseGrant: { ID: 9n, TTL: 100n } }));
    // Attached from the last key to the first: the lease's key set is in reverse order.
    for (let i = N; i > 0; i -= 1000) {
      const success: RequestOp[] = [];
      for (let k = i - 1; k >= Math.max(0, i - 1000); k--) success.push({ requestPut: { key: key(k), value: B(`v${k}`), lease: 9n, prevKv: false, ignoreValue: false, ignoreLease: false } });
      assert.ok(applyNow(sm, entry({ txn: { compare: [], success, failure: [] } })).outcome.ok);
    }
    const deleted: string[] = [];
    sm.store.onEvents = (events) => {
      for (const ev of events()) deleted.push(Buffer.from(ev.kv!.key).toString('latin1'));
    };
    let pauses = 0;
    sm.readPause = async () => {
      pauses++;
      await nextTurn();
    };
    const r = sm.applyNormal(entry({ leaseRevoke: { ID: 9n } }));
    assert.ok((await r).outcome.ok);
    assert.equal(deleted.length, N);
    assert.deepEqual(deleted, [...deleted].sort(), 'deleted in key order');
    // The deletions alone pause every WRITE_SLICE keys; the sort adds its own steps (it was one turn).
    assert.ok(pauses > Math.floor(N / WRITE_SLICE) + 2, `${pauses} pauses`);
  });

  it('a Txn: its compares, DeleteRanges and ranges between its writes over many keys go in slices, invisible until whole', async () => {
    const sm = filled();
    const g = gate();
    sm.readPause = g.pause;
    const before = { applied: sm.appliedIndex, rev: sm.store.currentRev };
    const all = { key: B('big/'), rangeEnd: B('big0') };
    // Holds for every key (version 1), so every key is visited; then the keys go and one is put.
    const compare = [{ ...all, target: 0, result: 2, version: 2n }];
    const range = (o: { revision?: bigint } = {}): RequestOp => ({ requestRange: { ...all, limit: 0n, revision: 0n, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false, countOnly: true, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n, ...o } });
    const success: RequestOp[] = [
      { requestDeleteRange: { ...all, prevKv: false } },
      // Between two writes: read in the apply, in slices too; the second at the revision before the txn.
      range(),
      range({ revision: before.rev }),
      { requestPut: { key: B('big/after'), value: B('x'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
      range(),
    ];
    const e = entry({ txn: { compare, success, failure: [] } });
    const r = sm.applyNormal(e);
    assert.ok(r instanceof Promise, 'goes on in slices');
    for (let i = 0; i < 5; i++) await nextTurn();
    // Still comparing (or deleting): nothing of it shows.
    assert.deepEqual({ applied: sm.appliedIndex, rev: sm.store.currentRev }, before);
    assert.equal(count(sm), N);
    g.open();
    const done = await r;
    assert.ok(done.outcome.ok);
    const res = done.outcome.value as { succeeded: boolean; header: { revision: bigint }; responses: Array<{ responseDeleteRange?: { deleted: bigint }; responseRange?: { count: bigint } }> };
    // A range after the writes is read once it is applied, in slices of its own (kv-ops.ts).
    await settled(res);
    assert.equal(res.succeeded, true);
    assert.equal(res.responses[0]!.responseDeleteRange!.deleted, BigInt(N));
    assert.equal(res.responses[1]!.responseRange!.count, 0n, 'the range after the deletion sees it');
    assert.equal(res.responses[2]!.responseRange!.count, BigInt(N), 'the range at the revision before sees every key');
    assert.equal(res.responses[4]!.responseRange!.count, 1n, 'the range after them sees the txn\'s own writes');
    assert.equal(res.header.revision, before.rev + 1n);
    assert.equal(count(sm), 1);
    assert.ok(g.held() >= 8, `${g.held()} slices (the compare's, the deletion's and the ranges')`);
  });

  it('a small one is applied at once, as before', () => {
    const sm = newStateMachine();
    applyNow(sm, entry({ put: { key: B('a'), value: B('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }));
    const r = applyNow(sm, entry({ deleteRange: { key: B('a'), rangeEnd: B('b'), prevKv: false } }));
    assert.equal((r.outcome as { ok: true; value: { deleted: bigint } }).value.deleted, 1n);
  });

  it('on three members: while every member is in the middle of it, the leader keeps its followers (no campaign), then all apply it', async () => {
    for (const seed of [1, 2, 3]) {
      await withCluster({ size: 3, seed }, async (c) => {
        const L = await c.waitIdle();
        for (let i = 0; i < N; i += 1000) {
          const success: RequestOp[] = [];
          for (let k = i; k < Math.min(N, i + 1000); k++) success.push({ requestPut: { key: key(k), value: B('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
          await c.run(L.server.propose('txn', { compare: [], success, failure: [] }));
        }
        await c.waitIdle();
        const g = gate();
        const holding = new Set<string>();
        for (const m of c.running()) {
          m.server.sm.readPause = () => {
            holding.add(m.name);
            return g.pause();
          };
        }
        // Each member's term and role (a pre-vote campaign does not change the term; a leader
        // that hears from nobody steps down in its term: CheckQuorum).
        const states = () => c.running().map((m) => {
          const st = parts(m.server).node.raw.basicStatus();
          return `${m.name}:${st.term}:${st.raftState}`;
        });
        const before = states();
        const del = L.server.propose('deleteRange', { key: B('big/'), rangeEnd: B('big0'), prevKv: false });
        del.catch(() => {});
        // Until every member is in the middle of applying it (messages delivered by hand: the
        // members are not quiet, so settle() would wait for ever).
        for (let i = 0; i < 10_000 && holding.size < 3; i++) {
          c.net.deliver();
          await nextTurn();
        }
        assert.equal(holding.size, 3, 'every member applying it');
        let during: string[];
        try {
          // Three election timeouts pass.
          for (let t = 0; t < 3 * c.electionTicks; t++) {
            c.clock.advance(c.heartbeatMs);
            for (let i = 0; i < 20; i++) {
              c.net.deliver();
              await nextTurn();
            }
          }
          during = states();
        } finally {
          // Also on failure: a member stopped in the middle of an apply waits for it.
          g.open();
        }
        assert.deepEqual(during, before, 'no member campaigned or stepped down');
        const res = await c.run(del);
        assert.equal(res.deleted, BigInt(N));
        await c.waitIdle();
        for (const m of c.running()) assert.equal(count(m.server.sm), 0);
        assert.deepEqual(states(), before);
      });
    }
  });
});
