// A member applying a request nobody waits on for (another member's, or one whose caller gave
// up) builds no response (StateMachine.applyNormal's `wanted`): it must reach the same state,
// revision and success or failure as the member that builds it, for every kind of write,
// including txns with ranges, nested txns, and txns that fail validation.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Compare_CompareResult, Compare_CompareTarget, RangeRequest, type RequestOp, type TxnRequest } from '../../src/gen/etcd/rpc.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { EntryType } from '../../src/raft/index.js';
import type { ApplyOutcome, StateMachine } from '../../src/server/state-machine.js';
import { newStateMachine, applyNow } from '../support/state-machine.js';
import { settled } from '../../src/kv/kv-ops.js';
import { WriteTxn } from '../../src/kv/mvcc.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const noPause = async (): Promise<void> => {};

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Req = Omit<Partial<InternalRequest>, 'id' | 'proposer'>;

function randomRequests(seed: number, n: number): Req[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const key = (): Buffer => B(`k${Math.floor(r() * 12)}`);
  const put = () => ({
    key: key(),
    value: B(`v${Math.floor(r() * 1000)}`),
    // Sometimes a lease that does not exist (fails), sometimes the granted one.
    lease: pick([0n, 0n, 0n, 0x1000n, 0x2000n]),
    prevKv: r() < 0.5,
    // ignore_value on a missing key fails: both members must fail alike.
    ignoreValue: r() < 0.1,
    ignoreLease: false,
  });
  const del = () => ({ key: key(), rangeEnd: r() < 0.3 ? B('k9') : B(''), prevKv: r() < 0.5 });
  // Sometimes a revision in the future or below the compaction (the txn fails).
  const range = () => ({ ...rangeReq(key()), revision: pick([0n, 0n, 0n, 1n, 100000n]) });
  const op = (depth: number): RequestOp => {
    const x = r();
    if (x < 0.3) return { requestPut: put() };
    if (x < 0.5) return { requestDeleteRange: del() };
    if (x < 0.85 || depth > 1) return { requestRange: range() };
    return { requestTxn: txn(depth + 1) };
  };
  // Keys may repeat within a txn here: the state machine does not check that (the API does),
  // and applies such a txn the same way on every member.
  const txn = (depth: number): TxnRequest => ({
    compare: Array.from({ length: Math.floor(r() * 3) }, () => ({
      key: key(),
      rangeEnd: B(''),
      target: pick([Compare_CompareTarget.VERSION, Compare_CompareTarget.MOD, Compare_CompareTarget.VALUE]),
      result: pick([Compare_CompareResult.EQUAL, Compare_CompareResult.GREATER, Compare_CompareResult.LESS, Compare_CompareResult.NOT_EQUAL]),
      version: BigInt(Math.floor(r() * 3)),
      modRevision: BigInt(Math.floor(r() * 20)),
      value: B(`v${Math.floor(r() * 1000)}`),
    })),
    success: Array.from({ length: Math.floor(r() * 4) }, () => op(depth)),
    failure: Array.from({ length: Math.floor(r() * 4) }, () => op(depth)),
  });
  const out: Req[] = [{ leaseGrant: { TTL: 1000n, ID: 0x1000n } }];
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.3) out.push({ put: put() });
    else if (x < 0.4) out.push({ deleteRange: del() });
    else if (x < 0.97) out.push({ txn: txn(0) });
    else out.push({ compaction: { revision: BigInt(Math.floor(r() * 10)), physical: false } });
  }
  return out;
}

const rangeReq = (key: Buffer): RangeRequest => RangeRequest.fromPartial({ key, rangeEnd: B('k9') });

function applyAll(sm: StateMachine, reqs: Req[], wanted: boolean): ApplyOutcome[] {
  return reqs.map((req, i) => {
    const id = BigInt(i + 1);
    const data = InternalRequest.encode(InternalRequest.fromPartial({ ...req, id, proposer: 0xabcn, settledBelow: id } as InternalRequest)).finish();
    return applyNow(sm, { term: 1, index: i + 1, type: EntryType.Normal, data }, () => wanted).outcome;
  });
}

describe('applying requests nobody waits on', () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    it(`reaches the same state, revisions and failures as with responses (seed ${seed})`, async () => {
      const reqs = randomRequests(seed, 400);
      const proposer = newStateMachine();
      const other = newStateMachine();
      const a = applyAll(proposer, reqs, true);
      const b = applyAll(other, reqs, false);
      // The proposer reads its txns' ranges over many keys after applying them (kv-ops.ts), with
      // the store pinned meanwhile; a compaction's pruning waits for them.
      for (const o of a) if (o.ok) await settled(o.value);
      await proposer.store.pruned();
      let failures = 0;
      let txns = 0;
      for (let i = 0; i < reqs.length; i++) {
        assert.equal(b[i]!.ok, a[i]!.ok, `request ${i}: ${JSON.stringify(Object.keys(reqs[i]!))}`);
        const [x, y] = [a[i]!, b[i]!];
        if (!x.ok && !y.ok) {
          failures++;
          assert.equal(y.error.message, x.error.message);
        }
        if (reqs[i]!.txn && a[i]!.ok) txns++;
      }
      assert.ok(failures > 5 && txns > 100, `the run covers failures (${failures}) and txns (${txns})`);
      assert.equal(other.store.currentRev, proposer.store.currentRev);
      assert.equal(other.store.compactRev, proposer.store.compactRev);
      // What is held (not the high-water DB size: the proposer's pruning waited for its reads).
      assert.equal(other.store.sizeInUse(), proposer.store.sizeInUse());
      assert.deepEqual(await other.store.hashByRev(0n, noPause, 3), await proposer.store.hashByRev(0n, noPause, 3));
      assert.deepEqual(other.lessor.toImage(), proposer.lessor.toImage());
      // Every key's whole history: the same revisions, sub-revisions and values.
      for (let rev = proposer.store.compactRev + 1n; rev <= proposer.store.currentRev; rev++) {
        assert.deepEqual(other.store.range(B('\0'), B('\0'), { revision: rev }), proposer.store.range(B('\0'), B('\0'), { revision: rev }));
      }
    });
  }

  it('answers with the full response when wanted, with none otherwise', () => {
    const reqs: Req[] = [
      { put: { key: B('a'), value: B('1'), lease: 0n, prevKv: true, ignoreValue: false, ignoreLease: false } },
      { txn: { compare: [], success: [{ requestRange: rangeReq(B('a')) }, { requestPut: { key: B('b'), value: B('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }], failure: [] } },
    ];
    const a = applyAll(newStateMachine(), reqs, true);
    const b = applyAll(newStateMachine(), reqs, false);
    assert.ok(a[0]!.ok && 'header' in a[0]!.value && a[0]!.value.header?.revision === 2n);
    assert.ok(a[1]!.ok && 'responses' in a[1]!.value && a[1]!.value.responses.length === 2);
    assert.deepEqual(b.map((o) => o.ok && o.value), [{}, {}]);
  });

  it("makes no deleted key-values for a DeleteRange (or a txn's) with prev_kv that nobody waits on (500,000 on every member, for one answer)", () => {
    const seen: boolean[] = [];
    const original = WriteTxn.prototype.deleteRangeInSlices;
    WriteTxn.prototype.deleteRangeInSlices = function (this: WriteTxn, key, end, keepPrev, slice) {
      seen.push(keepPrev);
      return original.call(this, key, end, keepPrev, slice);
    };
    try {
      const reqs: Req[] = [
        { put: { key: B('d1'), value: B('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
        { deleteRange: { key: B('d'), rangeEnd: B('e'), prevKv: true } },
        { put: { key: B('d2'), value: B('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } },
        { txn: { compare: [], success: [{ requestDeleteRange: { key: B('d'), rangeEnd: B('e'), prevKv: true } }], failure: [] } },
      ];
      const wanted = applyAll(newStateMachine(), reqs, true);
      assert.ok(wanted[1]!.ok && 'prevKvs' in wanted[1]!.value && wanted[1]!.value.prevKvs.length === 1);
      applyAll(newStateMachine(), reqs, false);
      assert.deepEqual(seen, [true, true, false, false], 'a DeleteRange, then one in a txn');
    } finally {
      WriteTxn.prototype.deleteRangeInSlices = original;
    }
  });
});
