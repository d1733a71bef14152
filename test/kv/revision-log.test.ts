// The history read by revision (MvccStore.eventsBatch over src/kv/revision-log.ts): batch after
// batch, exactly the events a walk of every key finds (all versions in the range from a
// revision on, in revision and write order, prev_kv the version before unless a deletion) —
// with txns of several keys, deletions, compactions, and a store loaded from another's
// histories (a snapshot: the log is rebuilt); each call bounded; and a watch created with an
// old start revision gets its history in batches through resume, never all at once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Event } from '../../src/gen/etcd/kv.js';
import { type KeyHistory, MvccStore } from '../../src/kv/mvcc.js';
import { CATCH_UP_BATCH, type Watcher, WatchHub } from '../../src/kv/watch-hub.js';
import { recordHistoryBatches } from '../support/history-batches.js';

const key = (k: number) => Buffer.from(`k${String(k).padStart(2, '0')}`);

type Op = { t: 'txn'; puts: number[]; v: string } | { t: 'del'; k: number; n: number } | { t: 'compact'; back: number } | { t: 'reload' };
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('txn' as const), puts: fc.uniqueArray(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 4 }), v: fc.string({ maxLength: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('del' as const), k: fc.integer({ min: 0, max: 30 }), n: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('compact' as const), back: fc.integer({ min: 0, max: 8 }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'reload' as const }) },
);

/** A new store holding `s`'s histories and revisions (what loading a snapshot image does). */
async function reload(s: MvccStore): Promise<MvccStore> {
  const keys: KeyHistory[] = [];
  const { currentRev, compactRev } = await s.historiesAsync((b) => keys.push(...b.map((k) => ({ key: k.key, history: [...k.history] }))), async () => {});
  const t = new MvccStore();
  for (const k of keys) t.loadHistory(k.key, [...k.history]);
  t.currentRev = currentRev;
  t.compactRev = compactRev;
  return t;
}

/** The reference: every version in range with mod >= fromRev, by walking every key. */
function reference(s: MvccStore, lo: number, n: number, fromRev: bigint): string[] {
  const out: Array<{ mod: bigint; sub: number; text: string }> = [];
  const hist: KeyHistory[] = [];
  // historiesAsync with a no-op pause runs its walk synchronously up to its first await.
  void s.historiesAsync((b) => hist.push(...b), async () => {});
  for (const { key: k, history } of hist) {
    const num = Number(k.slice(1));
    if (num < lo || num >= lo + n) continue;
    history.forEach((r, i) => {
      if (r.mod < fromRev) return;
      const prev = i > 0 && history[i - 1]!.version !== 0n ? history[i - 1]!.value : '-';
      out.push({ mod: r.mod, sub: r.sub, text: `${r.mod}/${k}/${r.version === 0n ? 'DEL' : r.value}/${prev}` });
    });
  }
  return out.sort((a, b) => (a.mod < b.mod ? -1 : a.mod > b.mod ? 1 : a.sub - b.sub)).map((e) => e.text);
}

const text = (e: Event): string =>
  `${e.kv!.modRevision}/${Buffer.from(e.kv!.key).toString('latin1')}/${e.type === 1 ? 'DEL' : Buffer.from(e.kv!.value).toString('latin1')}/${e.prevKv ? Buffer.from(e.prevKv.value).toString('latin1') : '-'}`;

describe('history by revision', () => {
  it('batch after batch, the events a walk of every key finds (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 50 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 1, max: 32 }), fc.oneof({ weight: 2, arbitrary: fc.integer({ min: -2, max: -1 }) }, { weight: 3, arbitrary: fc.nat(60) }), fc.integer({ min: 1, max: 5 }), async (ops, lo, n, from, limit) => {
        let s = new MvccStore();
        for (const o of ops) {
          if (o.t === 'txn') s.write((w) => o.puts.forEach((k) => w.put(key(k), Buffer.from(o.v), 0n)));
          else if (o.t === 'del') s.write((w) => w.deleteRange(key(o.k), key(o.k + o.n)));
          else if (o.t === 'compact') {
            const rev = s.currentRev - BigInt(o.back);
            if (rev > s.compactRev && rev >= 1n) s.compact(rev);
          } else s = await reload(s);
        }
        // -2, -1: from the compact revision itself or the one after it (the edge of what is kept).
        const fromRev = from < 0 && s.compactRev > 0n ? s.compactRev + BigInt(from + 2) : BigInt(Math.max(0, from));
        const want = fromRev < s.compactRev ? 'compacted' : reference(s, lo, n, fromRev);
        let got: string[] | string = [];
        try {
          let rev = fromRev;
          for (let calls = 0; ; calls++) {
            assert.ok(calls < 1000, 'ends');
            const b = s.eventsBatch(key(lo), key(lo + n), rev, true, limit);
            got.push(...b.events.map(text));
            if (!b.more) break;
            assert.ok(b.nextRev > rev, 'makes progress');
            rev = b.nextRev;
          }
        } catch (e) {
          got = (e as Error).message.includes('compacted') ? 'compacted' : String(e);
        }
        assert.deepEqual(got, want);
      }),
      { numRuns: 1500 },
    );
  });

  it('looks at a bounded number of writes per call when its range matches none of them', () => {
    const s = new MvccStore();
    for (let i = 0; i < 30_000; i++) s.write((w) => w.put(Buffer.from(`busy/${i % 100}`), Buffer.from('x'), 0n));
    const b = s.eventsBatch(Buffer.from('quiet'), undefined, 2n, false, CATCH_UP_BATCH);
    assert.equal(b.events.length, 0);
    assert.equal(b.more, true);
    assert.ok(b.nextRev > 2n && b.nextRev < s.currentRev, `stopped at ${b.nextRev}`);
  });

  it('a watch created with an old start revision gets its history in batches as its consumer takes it', () => {
    const store = new MvccStore();
    const hub = new WatchHub(() => store);
    store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
    for (let i = 0; i < 5000; i++) store.write((w) => w.put(Buffer.from(`h/${i % 50}`), Buffer.from(`v${i}`), 0n));
    const built = recordHistoryBatches(store);
    const got: bigint[] = [];
    let room = 3;
    const w: Watcher = {
      key: Buffer.from('h/'),
      rangeEnd: Buffer.from('h0'),
      startRevision: 2n,
      prevKv: false,
      noPut: false,
      noDelete: false,
      deliver: (events: Event[]) => {
        got.push(...events.map((e) => e.kv!.modRevision));
        return --room > 0;
      },
    };
    hub.add(w);
    // Nothing is built or delivered until the service resumes it (after its "created" answer).
    assert.deepEqual(built, []);
    assert.equal(hub.isUnsynced(w), true);
    assert.equal(hub.resume(w), false, 'still behind: its consumer is full');
    assert.ok(got.length > 3 && got.length < 5000, `${got.length} events in 3 responses`);
    // At most a batch per response it took, never the whole backlog.
    assert.ok(built.length <= 3 && built.reduce((a, b) => a + b, 0) < 5000, `built ${built}`);
    // Drained: the rest, in order, then live events.
    room = Infinity;
    assert.equal(hub.resume(w), true);
    store.write((x) => x.put(Buffer.from('h/1'), Buffer.from('live'), 0n));
    assert.deepEqual(got, Array.from({ length: 5001 }, (_, i) => BigInt(i + 2)));
    assert.ok(Math.max(...built) <= CATCH_UP_BATCH, `batches ${Math.max(...built)}`);
  });
});
