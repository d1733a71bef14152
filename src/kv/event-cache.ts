// Watch events made once and shared between watchers. Ten thousand watchers of one prefix each
// need every put's event; made per watcher (two Buffers per key-value, then encoded per
// watcher) that was most of a member's work at such a fan-out. The live watchers of a write
// share the events made for it (WriteTxn.events, once per revision); watchers behind, caught up
// from the history, share them through this cache, bounded in count and bytes and keyed by the
// version. (Live events are not put in it: with watchers that do not read, caching every write's
// events kept ~45 MiB more of a 40 MiB write burst in the heap — measured by
// test/integration/slow-watchers.test.ts — for no gain in throughput within this machine's
// noise.) The watch service encodes a shared event once (src/api/watch-encoding.ts).

import type { Event } from '../gen/etcd/kv.js';

/** The cache's bounds: events kept, and the bytes of their keys and values. */
const MAX_EVENTS = 2048;
const MAX_BYTES = 4 * 1024 * 1024;

export class EventCache<V extends object> {
  /** Insertion order is age: the first entry is evicted first. */
  private readonly byVersion = new Map<V, { ev: Event; bytes: number }>();
  private bytes = 0;

  constructor(
    private readonly maxEvents = MAX_EVENTS,
    private readonly maxBytes = MAX_BYTES,
  ) {}

  /** The event of `version`, made by `make` if it is not cached. */
  get(version: V, make: () => Event): Event {
    const hit = this.byVersion.get(version);
    if (hit) return hit.ev;
    const ev = make();
    const bytes = eventSize(ev);
    // An event larger than the whole budget is used, not kept.
    if (bytes > this.maxBytes) return ev;
    this.byVersion.set(version, { ev, bytes });
    this.bytes += bytes;
    while (this.byVersion.size > this.maxEvents || this.bytes > this.maxBytes) {
      const [oldest, entry] = this.byVersion.entries().next().value as [V, { bytes: number }];
      this.byVersion.delete(oldest);
      this.bytes -= entry.bytes;
    }
    return ev;
  }

  get size(): number {
    return this.byVersion.size;
  }
}

/** About the bytes an event holds (its keys and values, and a little for the rest). */
export function eventSize(ev: Event): number {
  return 48 + (ev.kv ? ev.kv.key.length + ev.kv.value.length : 0) + (ev.prevKv ? ev.prevKv.key.length + ev.prevKv.value.length : 0);
}

/** Each event's copy without prev_kv, made once (the watchers that did not ask for it share it). */
const withoutPrev = new WeakMap<Event, Event>();

/** `ev` for a watcher that did not ask for prev_kv. */
export function withoutPrevKv(ev: Event): Event {
  if (!ev.prevKv) return ev;
  let bare = withoutPrev.get(ev);
  if (!bare) withoutPrev.set(ev, (bare = { ...ev, prevKv: undefined }));
  return bare;
}
