// A revision of many events (a DeleteRange or a revoked lease over many keys) is not handed to
// its watchers in the turn that applies it: making, matching and encoding 200 k events with
// prev_kv held every member's loop for ~1.4 s. Its watchers are moved behind to it and read it
// from the history in slices, then get it whole, in order, followed by what came after: the
// same events a live delivery would have given, with nothing lost, repeated or reordered.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Event } from '../../src/gen/etcd/kv.js';
import { LARGE_REVISION_EVENTS, MvccStore } from '../../src/kv/mvcc.js';
import { type Watcher, WatchHub } from '../../src/kv/watch-hub.js';

const B = (s: string) => Buffer.from(s);
const N = 3 * LARGE_REVISION_EVENTS + 7;
const key = (i: number) => B(`k/${String(i).padStart(5, '0')}`);

/** A pause the test releases step by step (each call waits for `step`). */
function stepped() {
  const waiting: Array<() => void> = [];
  let pauses = 0;
  return {
    pause: () => {
      pauses++;
      return new Promise<void>((r) => waiting.push(r));
    },
    /** Releases the pauses waiting now; false if there were none. */
    step: async (): Promise<boolean> => {
      const w = waiting.splice(0);
      w.forEach((f) => f());
      // Let what they release run (promise continuations) up to its next pause.
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      return w.length > 0;
    },
    pauses: () => pauses,
  };
}

type Got = { rev: bigint; events: Event[] };

function watcher(got: Got[], key: Buffer, rangeEnd: Buffer | undefined, opts: Partial<Watcher> = {}): Watcher {
  return { key, rangeEnd, startRevision: 0n, prevKv: false, noPut: false, noDelete: false, deliver: (events, rev) => void got.push({ rev, events }), ...opts };
}

const keysOf = (g: Got) => g.events.map((e) => Buffer.from(e.kv!.key).toString());

function filled(): { store: MvccStore; hub: WatchHub; p: ReturnType<typeof stepped> } {
  const store = new MvccStore();
  const p = stepped();
  const hub = new WatchHub(() => store, p.pause);
  store.onEvents = (ev, rev, writes) => hub.notify(ev, rev, writes);
  for (let i = 0; i < N; i++) store.write((w) => w.put(key(i), B(`v${i}`), 0n));
  return { store, hub, p };
}

async function drain(p: ReturnType<typeof stepped>): Promise<void> {
  for (let i = 0; i < 1000 && (await p.step()); i++);
}

describe('large revisions reach their watchers in slices', () => {
  it('delivers nothing in the applying turn, then the revision whole and in order, then what followed', async () => {
    const { store, hub, p } = filled();
    const ranged: Got[] = [];
    const bare: Got[] = [];
    const one: Got[] = [];
    const noDelete: Got[] = [];
    const elsewhere: Got[] = [];
    hub.add(watcher(ranged, B('k/'), B('k0'), { prevKv: true }));
    hub.add(watcher(bare, B('k/'), B('k0')));
    hub.add(watcher(one, key(17), undefined));
    hub.add(watcher(noDelete, B('k/'), B('k0'), { noDelete: true }));
    hub.add(watcher(elsewhere, B('z/'), B('z0')));
    store.write((w) => w.deleteRange(B('k/'), B('k0')));
    const deletedAt = store.currentRev;
    store.write((w) => w.put(key(3), B('again'), 0n));
    store.write((w) => w.put(B('z/1'), B('z'), 0n));
    // Nothing yet: the revision is read in later turns, and what followed waits behind it.
    assert.deepEqual([ranged, bare, one, noDelete].map((g) => g.length), [0, 0, 0, 0]);
    // A watcher elsewhere is not held back.
    assert.deepEqual(elsewhere.map(keysOf), [['z/1']]);
    await drain(p);
    assert.ok(p.pauses() >= 3, `read in slices: ${p.pauses()} pauses`);
    // The deletion as one response, every key in order with its previous value, then the put.
    assert.deepEqual(ranged.map((g) => g.events.length), [N, 1]);
    assert.deepEqual(keysOf(ranged[0]!), Array.from({ length: N }, (_, i) => key(i).toString()));
    assert.ok(ranged[0]!.events.every((e, i) => e.type === 1 && e.kv!.modRevision === deletedAt && e.prevKv?.value.toString() === `v${i}`));
    assert.equal(ranged[0]!.rev, store.currentRev, "a catching-up response carries the store's revision");
    assert.deepEqual(keysOf(ranged[1]!), ['k/00003']);
    assert.ok(bare[0]!.events.every((e) => e.prevKv === undefined));
    assert.deepEqual(bare.map((g) => g.events.length), [N, 1]);
    assert.deepEqual(one.map(keysOf), [['k/00017']]);
    assert.deepEqual(noDelete.map(keysOf), [['k/00003']]);
    assert.deepEqual(elsewhere.map(keysOf), [['z/1']]);
    assert.equal(hub.slowWatchers, 0, 'all current again');
    // Live again: the next write is delivered in its own turn.
    store.write((w) => w.put(key(4), B('live'), 0n));
    assert.deepEqual(keysOf(ranged[2]!), ['k/00004']);
  });

  it('gives a watcher created after the revision was applied none of it, and one started before it all of it', async () => {
    const { store, hub, p } = filled();
    const before = store.currentRev;
    store.write((w) => w.deleteRange(B('k/'), B('k0')));
    const after: Got[] = [];
    const fromBefore: Got[] = [];
    hub.add(watcher(after, B('k/'), B('k0')));
    const w2 = watcher(fromBefore, B('k/'), B('k0'), { startRevision: before });
    hub.add(w2);
    assert.equal(hub.resume(w2), false, 'behind: the large revision is being read');
    store.write((w) => w.put(key(1), B('x'), 0n));
    assert.deepEqual(after.map(keysOf), [['k/00001']]);
    await drain(p);
    // From `before`: the last put (one event), the deletion, then the put after it.
    assert.deepEqual(fromBefore.map((g) => g.events.length), [1, N, 1]);
    assert.deepEqual(after.length, 1);
  });

  it('cancels a watcher whose large revision is compacted while it is read, with the compact revision', async () => {
    const { store, hub, p } = filled();
    let compacted: bigint | undefined;
    const got: Got[] = [];
    hub.add(watcher(got, B('k/'), B('k0'), { onCompacted: (r) => (compacted = r) }));
    store.write((w) => w.deleteRange(B('k/'), B('k0')));
    store.write((w) => w.put(key(1), B('x'), 0n));
    await p.step(); // the watcher starts reading the revision
    await p.step(); // one slice read
    store.write((w) => w.put(key(2), B('y'), 0n));
    store.compact(store.currentRev); // the put after the deletion is compacted away
    await drain(p);
    assert.equal(got.length <= 1, true);
    // Either it got the revision whole before the compaction caught it, or nothing of it; then
    // it is told what was compacted, and dropped.
    if (got.length === 1) assert.equal(got[0]!.events.length, N);
    assert.equal(compacted, store.compactRev);
    assert.equal(hub.size, 0);
  });

  it('shares one read between the watchers of the same range, and drops a watcher removed meanwhile', async () => {
    const { store, hub, p } = filled();
    const a: Got[] = [];
    const b: Got[] = [];
    const gone: Got[] = [];
    const wGone = watcher(gone, B('k/'), B('k0'));
    hub.add(watcher(a, B('k/'), B('k0')));
    hub.add(watcher(b, B('k/'), B('k0')));
    hub.add(wGone);
    store.write((w) => w.deleteRange(B('k/'), B('k0')));
    await p.step();
    hub.remove(wGone);
    await drain(p);
    assert.equal(a[0]!.events.length, N);
    assert.equal(a[0]!.events[5], b[0]!.events[5], 'the same event objects: read once');
    assert.equal(gone.length, 0);
  });
});
