// The MVCC store and etcd's KV semantics.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { EtcdError } from '../../src/kv/errors.js';
import { checkTxn, doRange } from '../../src/kv/kv-ops.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { loadStoreImageAsync, storeImageAsync } from '../../src/server/snapshot-image.js';
import { RangeRequest } from '../../src/gen/etcd/rpc.js';

const B = (s: string) => Buffer.from(s);
const rr = (key: string, extra: Partial<RangeRequest> = {}): RangeRequest => RangeRequest.fromPartial({ key: B(key), ...extra });

/** A copy of the store through its binary snapshot image. */
async function copyOf(s: MvccStore): Promise<MvccStore> {
  const img = await storeImageAsync(s, async () => {});
  const c = new MvccStore();
  c.currentRev = BigInt(img.currentRev);
  c.compactRev = BigInt(img.compactRev);
  await loadStoreImageAsync(c, Buffer.concat(img.chunks), 0, async () => {});
  return c;
}

describe('MVCC store', () => {
  it('assigns one revision per write txn; versions and create revisions as etcd', () => {
    const s = new MvccStore();
    assert.equal(s.currentRev, 1n);
    s.write((w) => w.put(B('a'), B('1'), 0n));
    s.write((w) => w.put(B('a'), B('2'), 0n));
    s.write((w) => {
      w.put(B('b'), B('x'), 0n);
      w.put(B('c'), B('y'), 0n);
    });
    assert.equal(s.currentRev, 4n);
    const a = s.range(B('a'), undefined).kvs[0]!;
    assert.equal(a.createRevision, 2n);
    assert.equal(a.modRevision, 3n);
    assert.equal(a.version, 2n);
    assert.equal(s.range(B('c'), undefined).kvs[0]!.modRevision, 4n);
    // A delete of nothing does not bump the revision.
    s.write((w) => w.deleteRange(B('zzz'), undefined));
    assert.equal(s.currentRev, 4n);
  });

  it('reads at past revisions, and compaction makes them unavailable', () => {
    const s = new MvccStore();
    s.write((w) => w.put(B('k'), B('v1'), 0n)); // rev 2
    s.write((w) => w.put(B('k'), B('v2'), 0n)); // rev 3
    s.write((w) => w.deleteRange(B('k'), undefined)); // rev 4
    assert.equal(s.range(B('k'), undefined, { revision: 2n }).kvs[0]!.value.toString(), 'v1');
    assert.equal(s.range(B('k'), undefined, { revision: 3n }).kvs[0]!.value.toString(), 'v2');
    assert.equal(s.range(B('k'), undefined).kvs.length, 0);
    assert.throws(() => s.range(B('k'), undefined, { revision: 9n }), /future revision/);
    s.compact(3n);
    assert.throws(() => s.range(B('k'), undefined, { revision: 2n }), /compacted/);
    assert.equal(s.range(B('k'), undefined, { revision: 3n }).kvs[0]!.value.toString(), 'v2');
    assert.throws(() => s.compact(3n), /compacted/);
    // After deleting and re-creating, the version starts again at 1.
    s.write((w) => w.put(B('k'), B('v3'), 0n));
    assert.equal(s.range(B('k'), undefined).kvs[0]!.version, 1n);
  });

  it('ranges: prefix, from-key, all keys, limits, counts and sorting', () => {
    const s = new MvccStore();
    for (const k of ['a', 'b/1', 'b/2', 'b/3', 'c']) s.write((w) => w.put(B(k), B(k.toUpperCase()), 0n));
    const keys = (r: { kvs: Array<{ key: Buffer }> }) => r.kvs.map((kv) => kv.key.toString());
    assert.deepEqual(keys(s.range(B('b/'), B('b0'))), ['b/1', 'b/2', 'b/3']);
    assert.deepEqual(keys(s.range(B('b/2'), Buffer.from([0]))), ['b/2', 'b/3', 'c']);
    assert.deepEqual(keys(s.range(Buffer.from([0]), Buffer.from([0]))), ['a', 'b/1', 'b/2', 'b/3', 'c']);
    const lim = doRange(s, rr('b/', { rangeEnd: B('b0'), limit: 2n }));
    assert.deepEqual(keys(lim), ['b/1', 'b/2']);
    assert.equal(lim.more, true);
    assert.equal(lim.count, 3n);
    const desc = doRange(s, rr('a', { rangeEnd: Buffer.from([0]), sortOrder: 2, sortTarget: 0, limit: 2n }));
    assert.deepEqual(keys(desc), ['c', 'b/3']);
    const byMod = doRange(s, rr('a', { rangeEnd: Buffer.from([0]), sortOrder: 2, sortTarget: 3 }));
    assert.deepEqual(keys(byMod), ['c', 'b/3', 'b/2', 'b/1', 'a']);
    // Revision filters apply whenever they are not 0, as etcd's: a negative max keeps nothing,
    // a negative min everything.
    const all = { rangeEnd: Buffer.from([0]) };
    assert.deepEqual(keys(doRange(s, rr('a', { ...all, maxModRevision: -1n }))), []);
    assert.deepEqual(keys(doRange(s, rr('a', { ...all, maxCreateRevision: -1n }))), []);
    assert.deepEqual(keys(doRange(s, rr('a', { ...all, minModRevision: -1n }))), ['a', 'b/1', 'b/2', 'b/3', 'c']);
    assert.deepEqual(keys(doRange(s, rr('a', { ...all, maxModRevision: 3n }))), ['a', 'b/1']);
  });

  it('txn validation: duplicate keys and too many ops are refused as etcd does', () => {
    const put = (k: string) => ({ requestPut: { key: B(k), value: B('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    assert.throws(() => checkTxn({ compare: [], success: [put('a'), put('a')], failure: [] }), (e: unknown) => e instanceof EtcdError && e.message === 'etcdserver: duplicate key given in txn request');
    assert.throws(
      () => checkTxn({ compare: [], success: Array.from({ length: 129 }, (_, i) => put(`k${i}`)), failure: [] }),
      /too many operations in txn request/,
    );
    checkTxn({ compare: [], success: [put('a')], failure: [put('a')] });
  });

  it('history events since a revision come back in revision order with prev_kv', () => {
    const s = new MvccStore();
    s.write((w) => w.put(B('x'), B('1'), 0n));
    s.write((w) => w.put(B('y'), B('1'), 0n));
    s.write((w) => w.put(B('x'), B('2'), 0n));
    s.write((w) => w.deleteRange(B('y'), undefined));
    const evs = s.eventsBatch(Buffer.from([0]), Buffer.from([0]), 3n, true, Infinity).events;
    assert.deepEqual(
      evs.map((e) => [e.type, e.kv!.key.toString(), e.kv!.modRevision, e.prevKv?.value.toString()]),
      [
        [0, 'y', 3n, undefined],
        [0, 'x', 4n, '1'],
        [1, 'y', 5n, '1'],
      ],
    );
  });

  it('matches a simple map model under random puts and deletes; snapshots round-trip (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.boolean(), fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.string({ maxLength: 4 })), { maxLength: 60 }),
        async (ops) => {
          const s = new MvccStore();
          const model = new Map<string, string>();
          for (const [isPut, k, v] of ops) {
            if (isPut) {
              s.write((w) => w.put(B(k), B(v), 0n));
              model.set(k, v);
            } else {
              s.write((w) => w.deleteRange(B(k), undefined));
              model.delete(k);
            }
          }
          const all = s.range(Buffer.from([0]), Buffer.from([0]));
          assert.deepEqual(
            all.kvs.map((kv) => [kv.key.toString(), kv.value.toString()]),
            [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)),
          );
          const copy = await copyOf(s);
          assert.deepEqual(copy.range(Buffer.from([0]), Buffer.from([0]), { revision: 0n }), s.range(Buffer.from([0]), Buffer.from([0])));
          assert.equal(copy.hash(copy.currentRev), s.hash(s.currentRev));
          assert.equal(copy.currentRev, s.currentRev);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('an async snapshot image is exactly the state at its start, despite writes and compaction meanwhile', async () => {
    const s = new MvccStore();
    for (let i = 0; i < 500; i++) s.write((w) => w.put(B(`k${i % 120}`), B(`v${i}`), 0n));
    s.write((w) => w.deleteRange(B('k7'), undefined));
    const before = await storeImageAsync(s, async () => {});
    const hash = s.hash(s.currentRev);
    let n = 0;
    const img = await storeImageAsync(s, async () => {
      // Meanwhile: more writes, deletes, new keys, and a compaction past the image's revision.
      s.write((w) => w.put(B(`k${n % 150}`), B(`later${n}`), 0n));
      s.write((w) => w.deleteRange(B(`k${(n * 7) % 120}`), undefined));
      if (n === 2) s.compact(s.currentRev - 1n);
      n++;
    }, 16);
    assert.ok(n > 3, 'the build yielded several times');
    assert.equal(img.currentRev, before.currentRev);
    assert.ok(Buffer.concat(img.chunks).equals(Buffer.concat(before.chunks)), 'the image is the state at its start');
    const copy = new MvccStore();
    copy.currentRev = BigInt(img.currentRev);
    await loadStoreImageAsync(copy, Buffer.concat(img.chunks), 0, async () => {});
    assert.equal(copy.hash(copy.currentRev), hash);
    // The deferred pruning happened once the image was done.
    assert.throws(() => s.range(B('k1'), undefined, { revision: 3n }), /compacted/);
  });
});
