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
const MAX_EVENTS = 16_384;
const MAX_BYTES = 4 * 1024 * 1024;

interface Entry {
  ev: Event;
  /** `ev` without prev_kv (made when first asked for). */
  bare: Event | undefined;
  bytes: number;
}

export class EventCache<V extends object> {
  /** Insertion order is age: the first entry is evicted first. */
  private readonly byVersion = new Map<V, Entry>();
  private bytes = 0;

  constructor(
    private readonly maxEvents = MAX_EVENTS,
    private readonly maxBytes = MAX_BYTES,
  ) {}

  /** The event of `version` (made by `make` if it is not cached), with its prev_kv or without. */
  get(version: V, make: () => Event, prevKv = true): Event {
    let e = this.byVersion.get(version);
    if (!e) {
      const ev = make();
      e = { ev, bare: undefined, bytes: eventSize(ev) };
      // An event larger than the whole budget is used, not kept.
      if (e.bytes <= this.maxBytes) this.keep(version, e);
    }
    if (prevKv || !e.ev.prevKv) return e.ev;
    return (e.bare ??= { ...e.ev, prevKv: undefined });
  }

  private keep(version: V, e: Entry): void {
    this.byVersion.set(version, e);
    this.bytes += e.bytes;
    while (this.byVersion.size > this.maxEvents || this.bytes > this.maxBytes) {
      const [oldest, entry] = this.byVersion.entries().next().value as [V, Entry];
      this.byVersion.delete(oldest);
      this.bytes -= entry.bytes;
    }
  }

  get size(): number {
    return this.byVersion.size;
  }
}

/** About the bytes an event holds (its keys and values, and a little for the rest). */
export function eventSize(ev: Event): number {
  return 48 + (ev.kv ? ev.kv.key.length + ev.kv.value.length : 0) + (ev.prevKv ? ev.prevKv.key.length + ev.prevKv.value.length : 0);
}

/**
 * `events` for watchers that did not ask for prev_kv: each event's copy without it, made once
 * for all of them (a write's live events, handed to every watcher of their keys).
 */
export function withoutPrevKv(events: readonly Event[]): Event[] {
  return events.map((ev) => (ev.prevKv ? { ...ev, prevKv: undefined } : ev));
}
