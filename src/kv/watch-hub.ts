// Watchers over the MVCC store. Every applied revision's events are matched against the
// registered watchers' ranges and delivered in revision order. A watcher created with a
// past start_revision first receives the history since then (in the same event-loop turn,
// so no revision can slip between catch-up and live delivery).

import type { Event } from '../gen/etcd/kv.js';
import { Event_EventType } from '../gen/etcd/kv.js';
import { type MvccStore, keyStr, rangeBounds } from './mvcc.js';

export interface WatchSpec {
  key: Uint8Array;
  rangeEnd: Uint8Array | undefined;
  startRevision: bigint;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
}

export interface Watcher extends WatchSpec {
  /** Receives the events of one revision (already filtered). */
  deliver(events: Event[], rev: bigint): void;
}

export class WatchHub {
  private watchers = new Set<Watcher & { lo: string; hi: string | undefined; single: boolean }>();

  constructor(private readonly getStore: () => MvccStore) {}

  /** Called by the store after each write revision. */
  notify(events: Event[], rev: bigint): void {
    if (this.watchers.size === 0) return;
    for (const w of this.watchers) {
      const out: Event[] = [];
      for (const ev of events) {
        const k = keyStr(ev.kv!.key);
        const inRange = w.single ? k === w.lo : k >= w.lo && (w.hi === undefined || k < w.hi);
        if (!inRange) continue;
        if (w.noPut && ev.type === Event_EventType.PUT) continue;
        if (w.noDelete && ev.type === Event_EventType.DELETE) continue;
        out.push(w.prevKv ? ev : { ...ev, prevKv: undefined });
      }
      if (out.length > 0) w.deliver(out, rev);
    }
  }

  /**
   * Registers a watcher. Returns the catch-up events (start_revision in the past); throws
   * ErrCompacted if start_revision was compacted away.
   */
  add(w: Watcher): Event[] {
    const store = this.getStore();
    let backlog: Event[] = [];
    if (w.startRevision > 0n && w.startRevision <= store.currentRev) {
      backlog = store
        .eventsSince(w.key, w.rangeEnd, w.startRevision, w.prevKv)
        .filter((ev) => !(w.noPut && ev.type === Event_EventType.PUT) && !(w.noDelete && ev.type === Event_EventType.DELETE));
    }
    const b = rangeBounds(w.key, w.rangeEnd);
    this.watchers.add(Object.assign(w, b));
    return backlog;
  }

  remove(w: Watcher): void {
    for (const x of this.watchers) if (x === w) this.watchers.delete(x);
  }

  get size(): number {
    return this.watchers.size;
  }
}
