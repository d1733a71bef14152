// Txn: all or nothing, etcd's evaluation order, and validation that stays linear in the request.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Compare, Compare_CompareResult, Compare_CompareTarget, type RequestOp, type TxnRequest } from '../../src/gen/etcd/rpc.js';
import { EtcdError } from '../../src/kv/errors.js';
import { applyTxn, checkTxn, readTxnAsync } from '../../src/kv/kv-ops.js';
import { type LeaseHooks, MvccStore } from '../../src/kv/mvcc.js';

const B = (s: string) => Buffer.from(s);

const put = (key: string, value: string, o: { lease?: bigint; ignoreValue?: boolean } = {}): RequestOp => ({
  requestPut: { key: B(key), value: B(o.ignoreValue ? '' : value), lease: o.lease ?? 0n, prevKv: false, ignoreValue: o.ignoreValue ?? false, ignoreLease: false },
});
const del = (key: string, rangeEnd?: string): RequestOp => ({
  requestDeleteRange: { key: B(key), rangeEnd: B(rangeEnd ?? ''), prevKv: false },
});
const get = (key: string, revision = 0n): RequestOp => ({
  requestRange: {
    key: B(key), rangeEnd: B(''), limit: 0n, revision, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false,
    countOnly: false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n,
  },
});
const valueIs = (key: string, value: string): Compare => ({
  key: B(key), rangeEnd: B(''), target: Compare_CompareTarget.VALUE, result: Compare_CompareResult.EQUAL, value: B(value),
});
const txn = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): TxnRequest => ({ compare, success, failure });
const nest = (compare: Compare[], success: RequestOp[], failure: RequestOp[] = []): RequestOp => ({ requestTxn: txn(compare, success, failure) });

/** A lessor stand-in: which keys each lease holds (lease 1 exists, others do not). */
class Leases implements LeaseHooks {
  readonly held = new Map<bigint, Set<string>>([[1n, new Set()]]);
  exists(l: bigint): boolean {
    return this.held.has(l);
  }
  attach(l: bigint, k: string): void {
    this.held.get(l)?.add(k);
  }
  detach(l: bigint, k: string): void {
    this.held.get(l)?.delete(k);
  }
  image(): string[] {
    return [...this.held].map(([l, ks]) => `${l}:${[...ks].sort().join(',')}`);
  }
}

function newStore(): { s: MvccStore; leases: Leases; events: string[] } {
  const s = new MvccStore();
  const leases = new Leases();
  const events: string[] = [];
  s.leases = leases;
  s.onEvents = (evs, rev) => events.push(...evs().map((e) => `${rev}:${e.kv!.key.toString()}`));
  return { s, leases, events };
}

const run = (s: MvccStore, t: TxnRequest) => s.write((w) => applyTxn(w, s, t));

/**
 * Everything a client or a replica could observe of the store, including what the next write
 * would see (a write transaction reads the live histories, where a half-applied write hides).
 */
function observe(s: MvccStore, leases: Leases): unknown {
  const all = s.write((w) => w.range(Buffer.from([0]), Buffer.from([0]))).kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.version, kv.createRevision, kv.modRevision, kv.lease]);
  return { rev: s.currentRev, compactRev: s.compactRev, all, leases: leases.image() };
}

describe('Txn is all or nothing', () => {
  it('a read at a future revision after a put fails the txn and leaves no trace (issue: PHANTOM)', () => {
    const { s, leases, events } = newStore();
    const before = observe(s, leases);
    assert.throws(() => run(s, txn([], [put('x', 'PHANTOM'), get('y', 99999n)])), /etcdserver: mvcc: required revision is a future revision/);
    assert.deepEqual(observe(s, leases), before);
    assert.deepEqual(events, [], 'no watch event for a failed txn');
  });

  it('a compacted read, a missing lease or a missing key in a nested txn fail it whole', () => {
    const { s, leases, events } = newStore();
    run(s, txn([], [put('a', '1', { lease: 1n })]));
    run(s, txn([], [put('a', '2', { lease: 1n })]));
    s.compact(3n);
    events.length = 0;
    const before = observe(s, leases);
    const cases: Array<[TxnRequest, RegExp]> = [
      [txn([], [put('b', '1'), get('a', 2n)]), /required revision has been compacted/],
      [txn([], [del('a'), put('b', '1'), nest([], [put('c', '1', { lease: 7n })])]), /requested lease not found/],
      [txn([], [put('a', '3', { lease: 1n }), nest([valueIs('a', 'nope')], [], [put('zz', '', { ignoreValue: true })])]), /etcdserver: key not found/],
    ];
    for (const [t, err] of cases) {
      assert.throws(() => run(s, t), err);
      assert.deepEqual(observe(s, leases), before);
    }
    assert.deepEqual(events, []);
  });

  it('undoing a failed txn keeps lease attachments as they were', () => {
    const { s, leases } = newStore();
    run(s, txn([], [put('k', 'v', { lease: 1n })]));
    // Put again under the same lease, then fail: the key must still belong to lease 1.
    assert.throws(() => run(s, txn([], [put('k', 'w', { lease: 1n }), get('q', 999n)])), /future revision/);
    assert.deepEqual(leases.image(), ['1:k']);
    // Delete (detaches), then fail: attached again.
    assert.throws(() => run(s, txn([], [del('k'), get('q', 999n)])), /future revision/);
    assert.deepEqual(leases.image(), ['1:k']);
  });

  it('nested compares see the state before the txn, as etcd evaluates them (compareToPath)', () => {
    const { s } = newStore();
    const r = run(s, txn([], [put('a', '1'), nest([valueIs('a', '1')], [put('b', 'then')], [put('b', 'else')])]));
    assert.equal(r.responses[1]!.responseTxn!.succeeded, false);
    assert.equal(s.range(B('b'), undefined).kvs[0]!.value.toString(), 'else');
    // Ranges, unlike compares, see the txn's earlier writes (as etcd's write txn does).
    const r2 = run(s, txn([], [put('c', 'new'), get('c')]));
    assert.equal(r2.responses[1]!.responseRange!.kvs[0]!.value.toString(), 'new');
  });
});

describe('Txn compares etcd does not know', () => {
  it('a target it does not know compares equal, a result it does not know holds (etcd\'s compareKV)', () => {
    const { s } = newStore();
    run(s, txn([], [put('a', '1')]));
    const odd = (target: number, result: number): Compare => ({ ...valueIs('a', '2'), target, result });
    assert.equal(run(s, txn([odd(9, Compare_CompareResult.EQUAL)], [])).succeeded, true);
    assert.equal(run(s, txn([odd(9, Compare_CompareResult.NOT_EQUAL)], [])).succeeded, false);
    assert.equal(run(s, txn([odd(Compare_CompareTarget.VALUE, 9)], [])).succeeded, true);
  });
});

describe('Txn responses', () => {
  it('carry etcd\'s headers inside: the revision each op saw or made, a nested txn\'s left empty', () => {
    const { s } = newStore();
    s.write((w) => applyTxn(w, s, txn([], [put('a', '1')]))); // revision 2
    const rangeOf = (from: string, to: string): RequestOp => ({ requestRange: { ...get(from).requestRange!, rangeEnd: B(to) } });
    // What etcd 3.4.23 answers to the same txn (etcdctl txn -w json): before the first change a
    // range sees revision 2, after it 3 (also one that asks for revision 2); a delete of nothing
    // before any change is at 2; a nested txn's header is empty.
    const r = s.write((w) =>
      applyTxn(w, s, txn([], [get('a'), del('none'), rangeOf('a', 'z'), put('b', '2'), get('a', 2n), del('zz'), nest([], [get('b')])])),
    );
    const revs = r.responses.map((op) => {
      const one = op.responseRange ?? op.responsePut ?? op.responseDeleteRange ?? op.responseTxn;
      return one?.header;
    });
    const only = (revision: bigint) => ({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0n });
    assert.deepEqual(revs, [only(2n), only(2n), only(2n), only(3n), only(3n), only(3n), only(0n)]);
    assert.deepEqual(r.responses[6]!.responseTxn!.responses[0]!.responseRange!.header, only(3n));
  });
});

describe('Txn validation', () => {
  it('an empty op is refused as etcd does ("key not found")', () => {
    assert.throws(() => checkTxn(txn([], [{}])), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: key not found');
  });

  it('puts and deletes overlapping on one path are duplicates; across exclusive branches they are not', () => {
    const dup = /duplicate key given in txn request/;
    assert.throws(() => checkTxn(txn([], [put('a', '1'), nest([], [put('a', '2')])])), dup);
    assert.throws(() => checkTxn(txn([], [del('a', 'c'), nest([], [], [put('b', '2')])])), dup);
    assert.throws(() => checkTxn(txn([], [del('a'), put('a', '1')])), dup);
    // etcd compares a delete's range end as the bytes it is, so "\0" (to the end, when the
    // delete runs) covers no key here: etcd 3.4 takes this txn (found by test/compat).
    checkTxn(txn([], [del('a', '\0'), put('zzz', '1')]));
    checkTxn(txn([], [del('a', '\0'), nest([], [put('b', '1')])]));
    assert.throws(() => checkTxn(txn([], [nest([], [put('a', '1')]), nest([], [], [put('a', '2')])])), dup);
    checkTxn(txn([], [nest([], [put('a', '1')], [put('a', '2')])]));
    checkTxn(txn([], [put('a', '1')], [put('a', '2')]));
    checkTxn(txn([], [del('a', 'b'), put('b', '1'), del('c'), put('c\0', '1')]));
  });

  it("checks a range's negative revision as etcd's checkRequestRange does, in write and read-only txns", async () => {
    const { s } = newStore();
    run(s, txn([], [put('a', '1')])); // rev 2
    run(s, txn([], [put('a', '2')])); // rev 3
    const noPause = async (): Promise<void> => undefined;
    const hdr = (revision: bigint) => ({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0n });
    // Before any compaction (compact revision -1): -1 reads the current revision, -2 is compacted.
    assert.equal(run(s, txn([], [get('a', -1n), put('b', '1')])).responses[0]!.responseRange!.kvs[0]!.value.toString(), '2');
    assert.equal((await readTxnAsync(s, txn([], [get('a', -1n)]), hdr, noPause)).responses[0]!.responseRange!.kvs[0]!.value.toString(), '2');
    assert.throws(() => run(s, txn([], [get('a', -2n), put('b', '2')])), /required revision has been compacted/);
    await assert.rejects(readTxnAsync(s, txn([], [get('a', -2n)]), hdr, noPause), /required revision has been compacted/);
    s.compact(3n);
    // After one, any negative revision is below it. A Range of its own still reads the current one.
    assert.throws(() => run(s, txn([], [get('a', -1n), put('b', '3')])), /required revision has been compacted/);
    await assert.rejects(readTxnAsync(s, txn([], [get('a', -1n)]), hdr, noPause), /required revision has been compacted/);
    assert.equal(s.range(B('b'), undefined).kvs[0]!.value.toString(), '1', 'the refused txns wrote nothing');
  });

  it('a nested txn gets what its parent leaves of the op budget (etcd: maxTxnOps - opc)', () => {
    const many = (n: number, p: string) => Array.from({ length: n }, (_, i) => put(`${p}${i}`, 'v'));
    checkTxn(txn([], [...many(63, 'a'), nest([], many(64, 'b'))]));
    assert.throws(() => checkTxn(txn([], [...many(63, 'a'), nest([], many(65, 'b'))])), /too many operations in txn request/);
  });

  it('validation visits each level once: a txn nested 60 deep is checked without an exponential walk', () => {
    // Every read of an op's fields is counted; an exponential walk (2^60 visits) runs out of
    // the budget at once and fails the test instead of hanging it.
    const DEPTH = 60;
    const budget = 100_000;
    let reads = 0;
    const counted = (o: RequestOp): RequestOp =>
      new Proxy(o, {
        get(target, p, r) {
          if (++reads > budget) throw new Error(`validation read ${budget} fields of a ${DEPTH}-deep txn: not linear`);
          return Reflect.get(target, p, r);
        },
      });
    let t: TxnRequest = txn([valueIs('k0', 'x')], [put('leaf-a', '1')], [put('leaf-b', '1')]);
    for (let d = 1; d < DEPTH; d++) {
      t = txn([valueIs(`k${d}`, 'x')], [counted({ requestTxn: t }), counted(put(`s${d}`, '1'))], [counted(put(`f${d}`, '1'))]);
    }
    checkTxn(t);
    assert.ok(reads < budget);
  });
});

// ------------------------------------------------------------------ a model where an error means no change

type Op =
  | { t: 'put'; key: string; value: string; lease: bigint; ignoreValue: boolean }
  | { t: 'del'; key: string }
  | { t: 'get'; key: string; rev: 'cur' | 'future' | 'compacted' | 'old' }
  | { t: 'txn'; cmpKey: string; cmpValue: string; success: Op[]; failure: Op[] };

interface ModelKv {
  value: string;
  version: bigint;
  create: bigint;
  mod: bigint;
  lease: bigint;
}

const KEYS = ['a', 'b', 'c', 'd'];
const arbOp: fc.Memo<Op> = fc.memo((n) =>
  fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({
      t: fc.constant('put' as const),
      key: fc.constantFrom(...KEYS),
      value: fc.constantFrom('1', '2', '3'),
      lease: fc.constantFrom(0n, 0n, 0n, 1n, 2n),
      ignoreValue: fc.constantFrom(false, false, false, true),
    }),
    fc.record({ t: fc.constant('del' as const), key: fc.constantFrom(...KEYS) }),
    fc.record({ t: fc.constant('get' as const), key: fc.constantFrom(...KEYS), rev: fc.constantFrom('cur' as const, 'cur' as const, 'future' as const, 'compacted' as const, 'old' as const) }),
    n > 1
      ? fc.record({
          t: fc.constant('txn' as const),
          cmpKey: fc.constantFrom(...KEYS),
          cmpValue: fc.constantFrom('1', '2', '3'),
          success: fc.array(arbOp(n - 1), { maxLength: 3 }),
          failure: fc.array(arbOp(n - 1), { maxLength: 3 }),
        })
      : fc.record({ t: fc.constant('del' as const), key: fc.constantFrom(...KEYS) }),
  ),
);

function toRequest(op: Op, revs: { cur: bigint; compact: bigint }): RequestOp {
  switch (op.t) {
    case 'put':
      return put(op.key, op.value, { lease: op.lease, ignoreValue: op.ignoreValue });
    case 'del':
      return del(op.key);
    case 'get': {
      const rev = { cur: 0n, future: revs.cur + 5n, compacted: revs.compact - 1n, old: revs.compact }[op.rev];
      return get(op.key, rev);
    }
    case 'txn':
      return { requestTxn: toTxn(op, revs) };
  }
}
const toTxn = (op: Extract<Op, { t: 'txn' }>, revs: { cur: bigint; compact: bigint }): TxnRequest =>
  txn([valueIs(op.cmpKey, op.cmpValue)], op.success.map((o) => toRequest(o, revs)), op.failure.map((o) => toRequest(o, revs)));

/** The model: a map of live keys. Returns the error text, or the new map and revision. */
function modelApply(state: Map<string, ModelKv>, root: Extract<Op, { t: 'txn' }>, revs: { cur: bigint; compact: bigint }): { error: string } | { state: Map<string, ModelKv>; rev: bigint } {
  // Compares are all decided on the state before the txn; collect the ops on the path.
  const path: Op[] = [];
  const walk = (t: Extract<Op, { t: 'txn' }>): void => {
    for (const op of state.get(t.cmpKey)?.value === t.cmpValue ? t.success : t.failure) {
      if (op.t === 'txn') walk(op);
      else path.push(op);
    }
  };
  walk(root);
  for (const op of path) {
    if (op.t === 'put' && op.ignoreValue && !state.has(op.key)) return { error: 'etcdserver: key not found' };
    if (op.t === 'put' && op.lease !== 0n && op.lease !== 1n) return { error: 'etcdserver: requested lease not found' };
  }
  for (const op of path) {
    if (op.t === 'get' && op.rev === 'future') return { error: 'etcdserver: mvcc: required revision is a future revision' };
    if (op.t === 'get' && op.rev === 'compacted' && revs.compact - 1n > 0n) return { error: 'etcdserver: mvcc: required revision has been compacted' };
  }
  const next = new Map([...state].map(([k, v]) => [k, { ...v }]));
  const rev = revs.cur + 1n;
  let wrote = false;
  for (const op of path) {
    if (op.t === 'put') {
      const prev = next.get(op.key);
      const value = op.ignoreValue ? prev!.value : op.value;
      next.set(op.key, { value, version: (prev?.version ?? 0n) + 1n, create: prev?.create ?? rev, mod: rev, lease: op.lease });
      wrote = true;
    } else if (op.t === 'del' && next.has(op.key)) {
      next.delete(op.key);
      wrote = true;
    }
  }
  return { state: next, rev: wrote ? rev : revs.cur };
}

describe('Txn against a model (property)', () => {
  it('random nested txns: an error changes nothing; success matches the model', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom('1', '2', '3')), { minLength: 1, maxLength: 8 }),
        fc.array(arbOp(3).filter((o): o is Extract<Op, { t: 'txn' }> => o.t === 'txn'), { minLength: 1, maxLength: 6 }),
        (history, txns) => {
          const { s, leases, events } = newStore();
          const model = new Map<string, ModelKv>();
          for (const [k, v] of history) {
            s.write((w) => w.put(B(k), B(v), 0n));
            const prev = model.get(k);
            model.set(k, { value: v, version: (prev?.version ?? 0n) + 1n, create: prev?.create ?? s.currentRev, mod: s.currentRev, lease: 0n });
          }
          s.compact(s.currentRev);
          let state = model;
          for (const t of txns) {
            const revs = { cur: s.currentRev, compact: s.compactRev };
            const req = toTxn(t, revs);
            try {
              checkTxn(req);
            } catch {
              continue; // refused before proposing: never applied
            }
            const before = observe(s, leases);
            const nEvents = events.length;
            const want = modelApply(state, t, revs);
            let got: string | undefined;
            try {
              run(s, req);
            } catch (e) {
              got = (e as Error).message;
            }
            if ('error' in want) {
              assert.equal(got, want.error);
              assert.deepEqual(observe(s, leases), before, 'a failed txn changed the store');
              assert.equal(events.length, nEvents, 'a failed txn sent watch events');
              continue;
            }
            assert.equal(got, undefined);
            state = want.state;
            assert.equal(s.currentRev, want.rev);
            const live = s.range(Buffer.from([0]), Buffer.from([0])).kvs.map((kv) => [kv.key.toString(), kv.value.toString(), kv.version, kv.createRevision, kv.modRevision, kv.lease]);
            const expect = [...state].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [k, v.value, v.version, v.create, v.mod, v.lease]);
            assert.deepEqual(live, expect);
            const held = [...state].filter(([, v]) => v.lease === 1n).map(([k]) => k).sort();
            assert.deepEqual(leases.image(), [`1:${held.join(',')}`]);
          }
        },
      ),
      { numRuns: 400, seed: 11 },
    );
  });
});
