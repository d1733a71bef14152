// The watch hub: its index finds exactly the watchers a naive scan would, and a watcher that
// stops taking events (unsynced) gets nothing buffered, then catches up from the history in
// order — or is told its history was compacted.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Event } from '../../src/gen/etcd/kv.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { CATCH_UP_BATCH, type Watcher, WatchHub, deliverByRevision } from '../../src/kv/watch-hub.js';
import { recordHistoryBatches } from '../support/history-batches.js';

const B = (s: string) => Buffer.from(s);
const key = (k: number) => B(`k${String(k).padStart(2, '0')}`);

/** A watcher that records what it got, and can be made to refuse more (a full stream). */
function recorder(lo: number, n: number | undefined, full = () => false) {
  const got: Array<{ rev: bigint; keys: string[] }> = [];
  let compacted: bigint | undefined;
  const w: Watcher = {
    key: key(lo),
    rangeEnd: n === undefined ? undefined : n === 0 ? Buffer.from([0]) : key(lo + n),
    startRevision: 0n,
    prevKv: false,
    noPut: false,
    noDelete: false,
    // A catching-up watcher may get several revisions in one delivery: recorded per revision.
    deliver: (events: Event[]) => {
      deliverByRevision(events, (evs, rev) => void got.push({ rev, keys: evs.map((e) => Buffer.from(e.kv!.key).toString()) }));
      return !full();
    },
    onCompacted: (rev) => (compacted = rev),
  };
  return { w, got, compacted: () => compacted };
}

/** What a watcher of [lo, lo+n) (n undefined: one key; 0: to the end) should get for these writes. */
function expected(writes: Array<{ rev: bigint; keys: number[] }>, lo: number, n: number | undefined) {
  const inRange = (k: number) => (n === undefined ? k === lo : n === 0 ? k >= lo : k >= lo && k < lo + n);
  return writes
    .map((w) => ({ rev: w.rev, keys: w.keys.filter(inRange).map((k) => key(k).toString()) }))
    .filter((w) => w.keys.length > 0);
}

describe('watch hub', () => {
  it('delivers to exactly the watchers whose range holds the key, once per revision, in order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ lo: fc.integer({ min: 0, max: 30 }), n: fc.option(fc.integer({ min: 0, max: 10 }), { nil: undefined }) }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }), { maxLength: 30 }),
        (specs, txns) => {
          const store = new MvccStore();
          const hub = new WatchHub(() => store);
          store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
          const ws = specs.map((sp) => ({ sp, r: recorder(sp.lo, sp.n) }));
          for (const { r } of ws) hub.add(r.w);
          const writes: Array<{ rev: bigint; keys: number[] }> = [];
          for (const t of txns) {
            const ks = [...new Set(t)];
            store.write((x) => ks.forEach((k) => x.put(key(k), B('v'), 0n)));
            writes.push({ rev: store.currentRev, keys: ks });
          }
          for (const { sp, r } of ws) assert.deepEqual(r.got, expected(writes, sp.lo, sp.n));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('finds the watchers of each write as a scan of every range would, in the same order, as watchers come and go', () => {
    // The model is the scan the interval index replaced: single-key watchers by key, then the
    // range groups in the order they were created (a group ends with its last watcher).
    type Spec = { lo: number; n: number | undefined }; // n: undefined one key, 0 to the end, < 0 empty
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ lo: fc.integer({ min: 0, max: 30 }), n: fc.option(fc.integer({ min: -3, max: 10 }), { nil: undefined }) }).map((sp) => ({ t: 'add' as const, sp })) },
      { weight: 1, arbitrary: fc.nat().map((i) => ({ t: 'dup' as const, i })) }, // another watcher of a live watcher's range
      { weight: 2, arbitrary: fc.nat().map((i) => ({ t: 'remove' as const, i })) },
      { weight: 3, arbitrary: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 4 }).map((ks) => ({ t: 'write' as const, ks })) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const store = new MvccStore();
        const hub = new WatchHub(() => store);
        store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
        const log: string[] = [];
        const live: Array<{ id: number; sp: Spec; w: Watcher }> = [];
        // The model.
        const singles = new Map<string, Set<number>>();
        const groups = new Map<string, { lo: string; hi: string | undefined; ids: Set<number> }>();
        const want: string[] = [];
        const bounds = (sp: Spec) => ({ lo: key(sp.lo).toString(), hi: sp.n === undefined ? key(sp.lo).toString() : sp.n === 0 ? undefined : key(sp.lo + sp.n).toString() });
        let nextId = 0;
        const add = (sp: Spec): void => {
          const id = nextId++;
          const w: Watcher = {
            key: key(sp.lo),
            rangeEnd: sp.n === undefined ? undefined : sp.n === 0 ? Buffer.from([0]) : key(sp.lo + sp.n),
            startRevision: 0n,
            prevKv: false,
            noPut: false,
            noDelete: false,
            deliver: (events: Event[], rev: bigint) => void log.push(`${id}@${rev}:${events.map((e) => Buffer.from(e.kv!.key).toString()).join(',')}`),
          };
          hub.add(w);
          live.push({ id, sp, w });
          const { lo, hi } = bounds(sp);
          if (sp.n === undefined) singles.set(lo, (singles.get(lo) ?? new Set()).add(id));
          else {
            const gid = `${lo}\0${hi ?? ''}`;
            const g = groups.get(gid) ?? { lo, hi, ids: new Set<number>() };
            groups.set(gid, g);
            g.ids.add(id);
          }
        };
        for (const o of ops) {
          if (o.t === 'add') add(o.sp);
          else if (o.t === 'dup') {
            if (live.length) add(live[o.i % live.length]!.sp);
          } else if (o.t === 'remove') {
            if (!live.length) continue;
            const [x] = live.splice(o.i % live.length, 1);
            hub.remove(x!.w);
            const { lo, hi } = bounds(x!.sp);
            if (x!.sp.n === undefined) {
              singles.get(lo)!.delete(x!.id);
              if (singles.get(lo)!.size === 0) singles.delete(lo);
            } else {
              const gid = `${lo}\0${hi ?? ''}`;
              groups.get(gid)!.ids.delete(x!.id);
              if (groups.get(gid)!.ids.size === 0) groups.delete(gid);
            }
          } else {
            const ks = [...new Set(o.ks)];
            store.write((x) => ks.forEach((k) => x.put(key(k), B('v'), 0n)));
            const batches = new Map<number, string[]>();
            const offer = (id: number, k: string) => batches.set(id, [...(batches.get(id) ?? []), k]);
            for (const k of ks.map((k) => key(k).toString())) {
              for (const id of singles.get(k) ?? []) offer(id, k);
              for (const g of groups.values()) if (k >= g.lo && (g.hi === undefined || k < g.hi)) for (const id of g.ids) offer(id, k);
            }
            for (const [id, keys] of batches) want.push(`${id}@${store.currentRev}:${keys.join(',')}`);
          }
        }
        assert.deepEqual(log, want);
        assert.equal(hub.size, live.length);
      }),
      { numRuns: 300 },
    );
  });

  it('buffers nothing for a full watcher and catches it up from the history, in order', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    let full = false;
    const slow = recorder(0, 0, () => full);
    const fast = recorder(0, 0);
    hub.add(slow.w);
    hub.add(fast.w);
    store.write((x) => x.put(key(1), B('a'), 0n)); // rev 2
    full = true;
    store.write((x) => x.put(key(2), B('b'), 0n)); // rev 3: taken, then full
    // 64 KiB values: a catch-up response holds about four of these revisions (CATCH_UP_RESPONSE_BYTES).
    for (let i = 0; i < 50; i++) store.write((x) => x.put(key(3), B(`c${i}`.padEnd(65536)), 0n)); // revs 4..53
    assert.equal(slow.got.length, 2, 'nothing delivered (or kept) while unsynced');
    assert.ok(hub.isUnsynced(slow.w));
    assert.equal(fast.got.length, 52);
    // Drains, but only takes 3 more responses (12 revisions) before it is full again.
    let budget = 3;
    full = false;
    const w2 = slow.w;
    w2.deliver = ((orig) => (ev: Event[], rev: bigint) => {
      orig(ev, rev);
      return --budget > 0;
    })(slow.w.deliver);
    assert.equal(hub.resume(w2), false);
    assert.equal(slow.got.length, 14);
    budget = Infinity;
    assert.equal(hub.resume(w2), true);
    assert.deepEqual(slow.got.map((g) => g.rev), fast.got.map((g) => g.rev), 'every revision, in order, once');
    // Synced again: live events flow.
    store.write((x) => x.put(key(4), B('d'), 0n));
    assert.equal(slow.got.at(-1)!.rev, store.currentRev);
  });

  it('catches a watcher far behind up in batches of whole revisions, never building its whole backlog at once', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 600, maxLength: 900 }),
        fc.array(fc.oneof(fc.integer({ min: 20, max: 400 }), fc.integer({ min: 401, max: 2000 })), { minLength: 1, maxLength: 20 }),
        (txnSizes, budgets) => {
          const store = new MvccStore();
          const hub = new WatchHub(() => store);
          store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
          let full = true;
          const slow = recorder(0, 0, () => full);
          const fast = recorder(0, 0);
          hub.add(slow.w);
          hub.add(fast.w);
          // The slow watcher takes one revision and is full; then ~1,500 revisions go by.
          for (const [t, n] of txnSizes.entries()) store.write((x) => Array.from({ length: n }, (_, k) => x.put(key((t + k) % 40), B(`v${t}`), 0n)));
          const sizes = recordHistoryBatches(store);
          // Each drain, the consumer takes a budget of revisions before it is full again.
          let budget = 0;
          slow.w.deliver = ((orig) => (ev: Event[], rev: bigint) => {
            orig(ev, rev);
            return --budget > 0;
          })(slow.w.deliver);
          full = false;
          for (let i = 0; hub.isUnsynced(slow.w); i++) {
            budget = budgets[i % budgets.length]!;
            hub.resume(slow.w);
          }
          assert.deepEqual(slow.got, fast.got, 'every revision once, in order, with all its keys');
          // At most a batch (and the rest of its last revision) built per read of the history.
          // (Before: the whole backlog, ~1,500 revisions of 1-4 events, at every drain.)
          assert.ok(Math.max(...sizes) < CATCH_UP_BATCH + 4, `batch sizes ${Math.max(...sizes)}`);
        },
      ),
      { numRuns: 10 },
    );
  });

  it('two ranges whose bounds joined with a NUL byte read alike are told apart', () => {
    // [a\0b, c) and [a, b\0c): keys are any bytes, so a range id made by joining the bounds
    // with a NUL put both watchers in one group (seen failing: the second got the first's events).
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    const got: Record<string, string[]> = { first: [], second: [] };
    const watcher = (name: string, key: string, end: string): Watcher => ({
      key: Buffer.from(key, 'latin1'),
      rangeEnd: Buffer.from(end, 'latin1'),
      startRevision: 0n,
      prevKv: false,
      noPut: false,
      noDelete: false,
      deliver: (events: Event[]) => void got[name]!.push(...events.map((e) => Buffer.from(e.kv!.key).toString('latin1'))),
    });
    hub.add(watcher('first', 'a\0b', 'c'));
    hub.add(watcher('second', 'a', 'b\0c'));
    for (const k of ['a', 'a\0a', 'a\0c', 'b', 'b\0d', 'bz']) store.write((x) => x.put(Buffer.from(k, 'latin1'), B('v'), 0n));
    assert.deepEqual(got.first, ['a\0c', 'b', 'b\0d', 'bz']);
    assert.deepEqual(got.second, ['a', 'a\0a', 'a\0c', 'b']);
  });

  it('tells a watcher that fell behind past a compaction, and drops it', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    const slow = recorder(0, 0, () => true);
    hub.add(slow.w);
    store.write((x) => x.put(key(1), B('a'), 0n)); // delivered, now unsynced from rev 3
    for (let i = 0; i < 5; i++) store.write((x) => x.put(key(1), B(`b${i}`), 0n));
    store.compact(store.currentRev);
    assert.equal(hub.resume(slow.w), true);
    assert.equal(slow.compacted(), store.compactRev);
    assert.equal(hub.size, 0);
  });

  it('gives a watcher whose start revision is still to come nothing before it (etcd\'s minRev)', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    store.write((x) => x.put(key(1), B('v0'), 0n));
    const start = store.currentRev + 3n;
    const one = recorder(1, undefined);
    const many = recorder(0, 5);
    one.w.startRevision = start;
    many.w.startRevision = start;
    hub.add(one.w);
    hub.add(many.w);
    for (let i = 1; i <= 4; i++) store.write((x) => x.put(key(1), B(`v${i}`), 0n)); // one event per revision
    store.write((x) => [1, 2].forEach((k) => x.put(key(k), B('both'), 0n))); // two: notify's other path
    const revs = (r: typeof one) => r.got.map((g) => g.rev);
    assert.deepEqual(revs(one), [start, start + 1n, start + 2n]);
    assert.deepEqual(revs(many), [start, start + 1n, start + 2n]);
  });

  it("answers a catching-up watcher with the store's revision in its header, a live one with the event's", () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    for (let i = 0; i < 3; i++) store.write((x) => x.put(key(i), B('v'), 0n));
    const headers: bigint[] = [];
    // One key, written at revision 2 only; the store is at 4.
    const w: Watcher = { ...recorder(0, undefined).w, startRevision: 2n, deliver: (_events, rev) => void headers.push(rev) };
    hub.add(w);
    assert.equal(hub.resume(w), true);
    assert.deepEqual(headers, [4n]);
    store.write((x) => x.put(key(0), B('v'), 0n));
    assert.deepEqual(headers, [4n, 5n]);
  });

  it('takes a negative start as etcd 3.4 does: from now on before any compaction, compacted after one', () => {
    // etcd's watcher starts unsynced at the negative revision; its first sync reads no history
    // (a negative revision's bytes sort last) and makes it current, unless the revision is below
    // the compact revision (-1 until the first compaction): then it is canceled as compacted.
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    store.write((x) => x.put(key(1), B('before'), 0n)); // rev 2
    const minusOne = recorder(1, undefined);
    minusOne.w.startRevision = -1n;
    hub.add(minusOne.w);
    const minusFive = recorder(1, undefined);
    minusFive.w.startRevision = -5n;
    assert.throws(() => hub.add(minusFive.w), /required revision has been compacted/, 'below -1, the compact revision before any compaction');
    store.write((x) => x.put(key(1), B('after'), 0n)); // rev 3
    assert.deepEqual(minusOne.got, [{ rev: 3n, keys: [key(1).toString()] }]);
    store.compact(2n);
    const later = recorder(1, undefined);
    later.w.startRevision = -1n;
    assert.throws(() => hub.add(later.w), /required revision has been compacted/);
  });

  it('gives a catching-up event at the compact revision no prev_kv (etcd reads it at mod-1, compacted)', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    store.write((x) => x.put(key(1), B('v1'), 0n)); // rev 2
    store.write((x) => x.put(key(1), B('v2'), 0n)); // rev 3
    store.write((x) => x.put(key(1), B('v3'), 0n)); // rev 4
    // A read in progress holds the compaction's pruning back, as on a member, where pruning
    // runs in slices after the compaction: the version at 2 is still in the history.
    const reading = store.pinnedRead();
    store.compact(3n);
    const prevs: Array<string | undefined> = [];
    const w: Watcher = {
      ...recorder(1, undefined).w,
      startRevision: 3n,
      prevKv: true,
      deliver: (events: Event[]) => {
        for (const e of events) prevs.push(e.prevKv ? Buffer.from(e.prevKv.value).toString() : undefined);
        return true;
      },
    };
    hub.add(w);
    hub.resume(w);
    // rev 3: its prev (at 2) is compacted; rev 4: its prev is the version at 3.
    assert.deepEqual(prevs, [undefined, 'v2']);
    reading.release();
  });

  it("gives a revision's events the key as it was before the revision as prev_kv, live and catching up (etcd reads it at mod-1)", () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    const prevsOf = (startRevision: bigint) => {
      const prevs: string[] = [];
      const w: Watcher = {
        ...recorder(1, undefined).w,
        startRevision,
        prevKv: true,
        deliver: (events: Event[]) => {
          for (const e of events) prevs.push(`${e.type}:${e.prevKv ? Buffer.from(e.prevKv.value).toString() : '-'}`);
          return true;
        },
      };
      hub.add(w);
      return { w, prevs };
    };
    const live = prevsOf(0n);
    store.write((x) => x.put(key(1), B('old'), 0n)); // rev 2
    // One txn (rev 3) that puts the key, then deletes it (etcd takes this with a range end "\0").
    store.write((x) => {
      x.put(key(1), B('new'), 0n);
      x.deleteRange(key(1), Buffer.from([0]));
    });
    // One txn (rev 4) that creates the key again and deletes it: nothing before it, nothing to show.
    store.write((x) => {
      x.put(key(1), B('again'), 0n);
      x.deleteRange(key(1), Buffer.from([0]));
    });
    // 0 is a put, 1 a delete: the put at 3 shows 'old'; so does the delete at 3 (not 'new').
    const want = ['0:-', '0:old', '1:old', '0:-', '1:-'];
    assert.deepEqual(live.prevs, want);
    const behind = prevsOf(2n);
    hub.resume(behind.w);
    assert.deepEqual(behind.prevs, want);
  });
});
