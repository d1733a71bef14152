// Pruning after a compaction in slices (MvccStore.pruneYield): a store that prunes in slices,
// with writes, deletions, compactions and pinned reads between its slices, reads, hashes and
// ends up holding exactly what a twin that prunes at once holds; and it does yield.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type KeyHistory, MvccStore, PRUNE_SLICE_VERSIONS } from '../../src/kv/mvcc.js';

const key = (k: number) => Buffer.from(`k/${String(k).padStart(3, '0')}`);
const ALL = [Buffer.from([0]), Buffer.from([0])] as const;

type Op = { t: 'put'; k: number; v: string } | { t: 'del'; k: number; n: number } | { t: 'compact'; back: number } | { t: 'pin' };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ t: fc.constant('put' as const), k: fc.integer({ min: 0, max: 40 }), v: fc.string({ maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 40 }), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 5 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'pin' as const }) },
);

async function histories(s: MvccStore): Promise<KeyHistory[]> {
  const out: KeyHistory[] = [];
  await s.historiesAsync((keys) => out.push(...keys.map((k) => ({ key: k.key, history: [...k.history] }))), async () => {});
  return out;
}

const view = (s: MvccStore, rev: bigint) =>
  s.range(...ALL, { revision: rev }).kvs.map((kv) => [kv.key.toString(), kv.modRevision, kv.version, kv.value.toString()]);

describe('pruning in slices', () => {
  it('reads, hashes and ends up as a store pruned at once, whatever happens between slices (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 60 }), fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 7 }), async (first, during, chunk) => {
        const once = new MvccStore();
        const sliced = new MvccStore();
        sliced.pruneChunk = chunk;
        // Pinned reads on the sliced store and what each must see: the state when it began.
        const pinned: Array<{ read: ReturnType<MvccStore['pinnedRead']>; want: ReturnType<typeof view> }> = [];
        const release = async (p: (typeof pinned)[number] | undefined): Promise<void> => {
          if (!p) return;
          const got = await p.read.rangeAsync(...ALL, {}, async () => {});
          assert.deepEqual(got.kvs.map((kv) => [kv.key.toString(), kv.modRevision, kv.version, kv.value.toString()]), p.want);
          p.read.release();
        };
        const apply = (o: Op): void => {
          for (const s of [once, sliced]) {
            if (o.t === 'put') s.write((w) => w.put(key(o.k), Buffer.from(o.v), 0n));
            else if (o.t === 'del') s.write((w) => w.deleteRange(key(o.k), key(o.k + o.n)));
            else if (o.t === 'compact') {
              const rev = s.currentRev - BigInt(o.back);
              if (rev > s.compactRev) s.compact(rev);
            }
          }
          // A pinned read on the sliced store, read and released a few slices later.
          if (o.t === 'pin') pinned.push({ read: sliced.pinnedRead(), want: view(once, once.currentRev) });
        };
        const pending = [...during];
        let pauses = 0;
        sliced.pruneYield = async () => {
          pauses++;
          // Between slices: what is visible at every revision not compacted is the same.
          for (let rev = sliced.compactRev < 1n ? 1n : sliced.compactRev; rev <= sliced.currentRev; rev++) assert.deepEqual(view(sliced, rev), view(once, rev), `at ${rev}`);
          if (pauses % 3 === 0) await release(pinned.shift());
          for (let i = 0; i < 2 && pending.length; i++) apply(pending.shift()!);
        };
        first.forEach(apply);
        await sliced.pruned();
        pending.forEach(apply);
        pending.length = 0;
        for (const p of pinned.splice(0)) await release(p);
        await sliced.pruned();
        assert.deepEqual(await histories(sliced), await histories(once));
        assert.equal(sliced.sizeInUse(), once.sizeInUse());
        assert.equal(sliced.keyCount(), once.keyCount());
        assert.deepEqual(await sliced.hashByRev(0n, async () => {}), await once.hashByRev(0n, async () => {}));
      }),
      {
        numRuns: 300,
        // Found by a clean-clone CI run (seed 734059958): the pruning was marked as running only
        // after its first slice and yield, so the compaction made there (by the ops applied in
        // the yield) started a second prune that pruned() no longer waited for.
        examples: [
          [
            [{ t: 'put', k: 0, v: '' }, { t: 'put', k: 4, v: '' }, { t: 'compact', back: 0 }, { t: 'put', k: 2, v: '' }, { t: 'put', k: 3, v: '' }],
            [
              { t: 'put', k: 1, v: '' }, { t: 'compact', back: 0 }, { t: 'put', k: 0, v: '' }, { t: 'del', k: 0, n: 5 }, { t: 'compact', back: 0 },
              { t: 'put', k: 0, v: '' }, { t: 'pin' }, { t: 'put', k: 5, v: '' },
            ],
            2,
          ],
        ],
      },
    );
  });

  it('a compaction of many keys is pruned in slices, not at once', async () => {
    const s = new MvccStore();
    for (let i = 0; i < 1000; i++) s.write((w) => w.put(Buffer.from(`a/${i}`), Buffer.from('x'), 0n));
    s.write((w) => w.deleteRange(Buffer.from('a/'), Buffer.from('a0')));
    let pauses = 0;
    s.pruneYield = async () => void pauses++;
    s.pruneChunk = 100;
    s.compact(s.currentRev);
    assert.equal(s.keyCount(), 900, 'one slice pruned at once, the rest after yields');
    await s.pruned();
    assert.equal(s.keyCount(), 0);
    assert.ok(pauses >= 9, `${pauses} pauses`);
  });

  it('a compaction of few keys with many versions each is pruned in slices too (by versions, not only by keys)', async () => {
    const s = new MvccStore();
    const keys = 16;
    const versions = (4 * PRUNE_SLICE_VERSIONS) / keys;
    for (let v = 0; v < versions; v++) s.write((w) => { for (let k = 0; k < keys; k++) w.put(Buffer.from(`m/${k}`), Buffer.from(`${v}`), 0n); });
    let pauses = 0;
    s.pruneYield = async () => void pauses++;
    s.compact(s.currentRev);
    await s.pruned();
    // 16 keys × 4,096 versions, about 16,384 a slice: 4 slices or so (all 16 keys were one before).
    assert.ok(pauses >= 3, `${pauses} pauses`);
    assert.equal(s.stats.compactedVersions, keys * (versions - 1));
    assert.equal(s.range(Buffer.from('m/'), Buffer.from('m0')).kvs.length, keys);
  });
});
