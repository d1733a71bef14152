// Watchers over the MVCC store. Every applied revision's events are matched against the
// registered watchers' ranges and delivered in revision order. A watcher created with a
// past start_revision first receives the history since then (in the same event-loop turn,
// so no revision can slip between catch-up and live delivery).
//
// Finding the watchers of an event is an index lookup, not a scan of every watcher: watchers
// of one key are found by the key; range watchers are grouped by identical range (the common
// case: many clients watching the same prefix), and the groups whose range holds a key are found
// in an interval tree over the ranges (src/kv/interval-index.ts), so an event costs about
// O(log ranges + matches), not one test per distinct range.
//
// Large revisions (a DeleteRange or a revoked lease over many keys: mvcc.ts, isLargeRevision)
// are not handed out in the turn that applies them: their events, matched and encoded, held
// every member's loop for seconds. The watchers whose range may hold one of its keys are moved
// behind, as slow ones are, to that revision; then each reads it from the history, made in
// slices that yield (MvccStore.revisionEventsAsync, one read shared by the watchers of the same
// range), and gets it as one response once it is whole, as it would have live (etcd does not
// split a revision either, unless the watcher asked for fragments). They go on from the
// history after it until current, so nothing is lost or reordered: a live delivery only ever
// goes to a watcher that is current.
//
// Slow consumers (etcd's unsynced/victim watchers): a watcher whose `deliver` answers false
// (its stream's buffer is full) stops receiving live events and remembers the next revision it
// needs; nothing is buffered for it. `resume` (called when its stream has room again) catches
// it up from the MVCC history, whole revisions per delivery, until it is current again — or, if that history
// was compacted meanwhile, tells it so (`onCompacted`) and drops it, as etcd cancels such a
// watcher with the compact revision. So a watcher that never reads costs a bounded buffer, not
// a copy of every write.

import type { Event } from '../gen/etcd/kv.js';
import { Event_EventType } from '../gen/etcd/kv.js';
import { EtcdError, Errors } from './errors.js';
import { eventSize, withoutPrevKv } from './event-cache.js';
import { type IntervalHandle, IntervalIndex } from './interval-index.js';
import { type EventsBatch, type MvccStore, type RevisionWrites, isLargeRevision, keyStr, rangeBounds } from './mvcc.js';
import { yieldToEventLoop } from '../util/yield.js';

export interface WatchSpec {
  key: Uint8Array;
  rangeEnd: Uint8Array | undefined;
  startRevision: bigint;
  prevKv: boolean;
  noPut: boolean;
  noDelete: boolean;
}

export interface Watcher extends WatchSpec {
  /**
   * Receives the events of one revision (already filtered). Returning false means "taken, but
   * send no more until I ask" (the stream is full): the watcher becomes unsynced. `rev`: the
   * response's revision — the events' own when live, the store's current one when catching up
   * from the history (etcd's watchableStore: notify vs syncWatchers).
   */
  deliver(events: Event[], rev: bigint): boolean | void;
  /** The history it still needed was compacted away (it is removed from the hub). */
  onCompacted?(compactRev: bigint): void;
}

/** A registered watcher and where it stands. */
interface Entry {
  w: Watcher;
  lo: string;
  hi: string | undefined;
  single: boolean;
  /** Unsynced: the first revision it has not received (0n: synced, gets live events). */
  nextRev: bigint;
  /** The first revision it may receive: its start_revision when that was still to come (etcd's minRev). */
  minRev: bigint;
  /** Waiting for a large revision (its nextRev) to be read (WatchHub.readLarge). */
  waiting?: boolean;
}

/** A large revision being read for the watchers of one range (WatchHub.readLarge). */
interface LargeRead {
  waiting: Set<Entry>;
}

/** Watchers of one identical range (its bounds are in its interval-index handle). */
interface RangeGroup {
  entries: Set<Entry>;
  /** Creation number: the groups a key falls in are offered its event in creation order. */
  order: number;
}

/**
 * Hands `events` (in revision order) to `f` whole revisions at a time, as a watcher receives them:
 * one revision per call, or with `groupBytes`, as many whole revisions as fit in about that many
 * bytes (at least one). `rev`: the last revision of the call's events. If `f` answers false while
 * events remain, stops and returns the last revision handed over.
 */
export function deliverByRevision(events: Event[], f: (events: Event[], rev: bigint) => boolean | void, groupBytes = 0): bigint | undefined {
  let i = 0;
  while (i < events.length) {
    let j = i;
    let bytes = 0;
    let rev: bigint;
    do {
      rev = events[j]!.kv!.modRevision;
      while (j < events.length && events[j]!.kv!.modRevision === rev) bytes += eventSize(events[j++]!);
    } while (j < events.length && bytes < groupBytes);
    const ok = f(events.slice(i, j), rev);
    i = j;
    if (ok === false && i < events.length) return rev;
  }
  return undefined;
}

/**
 * A watcher catching up gets several revisions per response, up to about this many bytes (etcd
 * sends a catching-up watcher up to 1,000 revisions in one response): a watcher far behind is
 * not sent one response per revision, which cost the member and the client per response.
 */
export const CATCH_UP_RESPONSE_BYTES = 256 * 1024;

/** Events a catch-up reads from the history at a time (see WatchHub.resume). */
export const CATCH_UP_BATCH = 1000;

/**
 * A range's id: its bounds, told apart whatever bytes they hold (keys are any bytes, so joining
 * them with a separator could make two ranges one: "a\0b"+"c" and "a"+"b\0c").
 */
function rangeId(e: { lo: string; hi: string | undefined }): string {
  return `${e.lo.length}:${e.lo}${e.hi === undefined ? '' : `:${e.hi}`}`;
}

/** Whether `w`'s filters let `ev` through. */
const wants = (w: WatchSpec, ev: Event): boolean => !(w.noPut && ev.type === Event_EventType.PUT) && !(w.noDelete && ev.type === Event_EventType.DELETE);

/** The events `w`'s filters let through (the same array when it has none: a large revision is not copied per watcher). */
const filtered = (w: WatchSpec, events: Event[]): Event[] => (w.noPut || w.noDelete ? events.filter((ev) => wants(w, ev)) : events);

export class WatchHub {
  private readonly entries = new Map<Watcher, Entry>();
  /** Single-key watchers by key. */
  private readonly byKey = new Map<string, Set<Entry>>();
  /** Range watchers by range (rangeId): each group's place in the interval index. */
  private readonly byRange = new Map<string, IntervalHandle<RangeGroup>>();
  /** The same groups by the keys they cover: which ranges hold a key. */
  private readonly rangeIndex = new IntervalIndex<RangeGroup>();
  private groupsCreated = 0;
  /** Watchers behind (unsynced, catching up from the history): etcd_debugging_mvcc_slow_watcher_total. */
  private behind = 0;
  /** Open watch streams (the gRPC service counts them: etcd_debugging_mvcc_watch_stream_total). */
  streams = 0;
  /** Events handed to the watch streams (etcd_debugging_mvcc_events_total). */
  eventsSent = 0;

  /** Large revisions being read, by range, revision and prev_kv (readLarge). */
  private readonly largeReads = new Map<string, LargeRead>();
  /** Watchers moved behind by a large revision, to be caught up at the next turn. */
  private readonly toResume = new Set<Entry>();
  /** Each event of a large revision as it is made (the watch service encodes it then). */
  prepare: ((ev: Event) => void) | undefined;

  constructor(
    private readonly getStore: () => MvccStore,
    /** Between slices of a large revision, and before catching up the watchers it moved behind. */
    private readonly pause: () => Promise<void> = yieldToEventLoop,
  ) {}

  /** How many watchers are behind, waiting to catch up from the history. */
  get slowWatchers(): number {
    return this.behind;
  }

  /** Sets where `e` reads next (0: live), keeping the count of watchers behind. */
  private setNextRev(e: Entry, rev: bigint): void {
    if ((e.nextRev === 0n) !== (rev === 0n)) this.behind += rev === 0n ? -1 : 1;
    e.nextRev = rev;
  }

  /**
   * Called by the store after each write revision (its WatchSink), with what makes its events
   * and what it wrote: a large revision is not delivered now (see the top).
   */
  notify(made: () => Event[], rev: bigint, writes: RevisionWrites): void {
    if (this.entries.size === 0) return;
    if (isLargeRevision(writes.count, () => writes.eventBytes())) {
      this.moveBehind(rev, writes.keySpan());
      return;
    }
    const events = made();
    // The events without prev_kv, shared by the watchers that did not ask for it.
    const bare = withoutPrevKv(events);
    if (events.length === 1) {
      this.notifyOne(events, bare, rev);
      return;
    }
    const batches = new Map<Entry, Event[]>();
    for (let n = 0; n < events.length; n++) {
      const ev = events[n]!;
      this.forEachWatcherOf(keyStr(ev.kv!.key), (e) => {
        if (e.nextRev !== 0n || rev < e.minRev || !wants(e.w, ev)) return; // unsynced: catches up from the history later
        let b = batches.get(e);
        if (!b) batches.set(e, (b = []));
        b.push(e.w.prevKv ? ev : bare[n]!);
      });
    }
    for (const [e, out] of batches) {
      if (e.w.deliver(out, rev) === false) this.setNextRev(e, rev + 1n);
    }
  }

  /**
   * notify for a revision of one event (a put or a one-key delete: the common case, and the one
   * a fan-out to thousands of watchers multiplies): each watcher that wants it is handed the same
   * one-event array (with or without prev_kv) at once, with no per-watcher batch.
   */
  private notifyOne(events: Event[], bare: Event[], rev: bigint): void {
    const ev = events[0]!;
    this.forEachWatcherOf(keyStr(ev.kv!.key), (e) => {
      if (e.nextRev !== 0n || rev < e.minRev || !wants(e.w, ev)) return; // unsynced: catches up from the history later
      if (e.w.deliver(e.w.prevKv ? events : bare, rev) === false) this.setNextRev(e, rev + 1n);
    });
  }

  /**
   * A large revision `rev` with keys in [span.lo, span.hi]: every current watcher whose range
   * meets that span (more than need it: those that get nothing from it catch up at no cost to
   * their client) is moved behind, to read it from the history at the next turn. Nothing is
   * matched or made here.
   */
  private moveBehind(rev: bigint, span: { lo: string; hi: string }): void {
    for (const e of this.entries.values()) {
      if (e.nextRev !== 0n || rev < e.minRev) continue;
      if (e.single ? e.lo < span.lo || e.lo > span.hi : e.lo > span.hi || (e.hi !== undefined && e.hi <= span.lo)) continue;
      this.setNextRev(e, rev);
      this.toResume.add(e);
    }
    if (this.toResume.size === 0) return;
    void this.pause().then(() => {
      const due = [...this.toResume];
      this.toResume.clear();
      for (const e of due) if (this.entries.get(e.w) === e) this.resume(e.w);
    });
  }

  /**
   * Reads the large revision `e.nextRev` for `e` (with the other watchers of its range waiting
   * on the same one), then hands each its events and catches it up from there.
   */
  private readLarge(e: Entry): void {
    const rev = e.nextRev;
    const id = `${e.single ? 's' : 'r'}${rangeId(e)}@${rev}${e.w.prevKv ? '+' : ''}`;
    e.waiting = true;
    const running = this.largeReads.get(id);
    if (running) {
      running.waiting.add(e);
      return;
    }
    const read: LargeRead = { waiting: new Set([e]) };
    this.largeReads.set(id, read);
    const done = (events: Event[] | undefined): void => {
      this.largeReads.delete(id);
      const current = this.getStore().currentRev;
      for (const x of read.waiting) {
        x.waiting = false;
        // Canceled meanwhile, or moved (only a restore could): nothing to hand it here.
        if (this.entries.get(x.w) !== x || x.nextRev !== rev) continue;
        // Compacted meanwhile: resume tells it so.
        if (!events) {
          this.resume(x.w);
          continue;
        }
        const mine = filtered(x.w, events);
        // A catching-up response's revision is the store's (as resume's).
        const ok = mine.length === 0 || x.w.deliver(mine, current) !== false;
        this.setNextRev(x, rev + 1n);
        if (ok) this.resume(x.w);
      }
    };
    this.getStore().revisionEventsAsync(e.w.key, e.w.rangeEnd, rev, e.w.prevKv, this.pause, this.prepare).then(done, (err: unknown) => {
      if (!(err instanceof EtcdError)) throw err;
      done(undefined);
    });
  }

  /** Visits the watchers of key `k` (its index string): single-key ones, then range groups in creation order. */
  private forEachWatcherOf(k: string, f: (e: Entry) => void): void {
    const singles = this.byKey.get(k);
    if (singles) for (const e of singles) f(e);
    const hits: RangeGroup[] = [];
    this.rangeIndex.stab(k, (g) => hits.push(g));
    // The index answers in lo order; visit in group creation order, as a scan of byRange did.
    if (hits.length > 1) hits.sort((a, b) => a.order - b.order);
    for (const g of hits) for (const e of g.entries) f(e);
  }

  /**
   * Registers a watcher. With start_revision in the past it starts behind (unsynced): its events
   * since then come from the history through `resume`, in batches, as its consumer takes them
   * (never the whole backlog at once). With start_revision still to come, it gets live events
   * from that revision on, none before. Throws ErrCompacted if start_revision was compacted away.
   */
  add(w: Watcher): void {
    const store = this.getStore();
    let nextRev = 0n;
    // A negative start, as etcd's watchable store takes it: the watcher starts unsynced at that
    // revision, and its first sync cancels it as compacted if it is below the compact revision
    // (which is -1 until the first compaction); otherwise that sync reads no history (the bytes
    // of a negative revision sort after every other) and makes it current: it then gets the
    // events from now on, as a start of 0 does.
    if (w.startRevision < 0n && w.startRevision < store.compactRev) throw Errors.compacted();
    if (w.startRevision > 0n && w.startRevision <= store.currentRev) {
      if (w.startRevision < store.compactRev) throw Errors.compacted();
      nextRev = w.startRevision;
    }
    const minRev = w.startRevision > store.currentRev ? w.startRevision : 0n;
    const b = rangeBounds(w.key, w.rangeEnd);
    const e: Entry = { w, lo: b.lo, hi: b.hi, single: b.single, nextRev: 0n, minRev };
    this.setNextRev(e, nextRev);
    this.entries.set(w, e);
    if (e.single) {
      let s = this.byKey.get(e.lo);
      if (!s) this.byKey.set(e.lo, (s = new Set()));
      s.add(e);
    } else {
      const id = rangeId(e);
      let slot = this.byRange.get(id);
      if (!slot) {
        const g: RangeGroup = { entries: new Set(), order: this.groupsCreated++ };
        this.byRange.set(id, (slot = this.rangeIndex.add(e.lo, e.hi, g)));
      }
      slot.value.entries.add(e);
    }
  }

  remove(w: Watcher): void {
    const e = this.entries.get(w);
    if (!e) return;
    this.entries.delete(w);
    this.setNextRev(e, 0n);
    if (e.single) {
      const s = this.byKey.get(e.lo);
      s?.delete(e);
      if (s?.size === 0) this.byKey.delete(e.lo);
    } else {
      const id = rangeId(e);
      const slot = this.byRange.get(id);
      slot?.value.entries.delete(e);
      if (slot?.value.entries.size === 0) {
        this.byRange.delete(id);
        this.rangeIndex.delete(slot);
      }
    }
  }

  /**
   * The last batch of history read, for the next watcher behind at the same point: the watchers
   * of one range on one stream fall behind together and catch up together when it drains, and
   * each would read the same batch. Valid while the store and its revisions are the same.
   */
  private lastBatch: { store: MvccStore; range: string; from: bigint; prevKv: boolean; rev: bigint; compactRev: bigint; batch: EventsBatch } | undefined;

  /** The next batch of `e`'s history (MvccStore.eventsBatch), shared with the watcher before it if it read the same. */
  private historyBatch(e: Entry): EventsBatch {
    const store = this.getStore();
    const range = (e.single ? 's' : 'r') + rangeId(e);
    const m = this.lastBatch;
    if (m && m.store === store && m.range === range && m.from === e.nextRev && m.prevKv === e.w.prevKv && m.rev === store.currentRev && m.compactRev === store.compactRev) return m.batch;
    const batch = store.eventsBatch(e.w.key, e.w.rangeEnd, e.nextRev, e.w.prevKv, CATCH_UP_BATCH);
    this.lastBatch = { store, range, from: e.nextRev, prevKv: e.w.prevKv, rev: store.currentRev, compactRev: store.compactRev, batch };
    return batch;
  }

  /** Whether `w` is behind (waiting for `resume`). */
  isUnsynced(w: Watcher): boolean {
    return (this.entries.get(w)?.nextRev ?? 0n) !== 0n;
  }

  /**
   * Catches an unsynced watcher up from the history, whole revisions per delivery (up to about
   * CATCH_UP_RESPONSE_BYTES), until it is
   * current (synced again: live events follow, in the same turn, so none can slip between) or
   * its consumer is full again. Returns false if it is still behind. The history is read in
   * batches of about CATCH_UP_BATCH events, so a watcher far behind does not have its whole
   * backlog built at every drain. A watcher whose history was compacted is told (`onCompacted`)
   * and removed.
   */
  resume(w: Watcher): boolean {
    const e = this.entries.get(w);
    if (!e) return true;
    while (e.nextRev !== 0n) {
      if (e.waiting) return false;
      let batch: EventsBatch;
      try {
        batch = this.historyBatch(e);
      } catch (err) {
        if (!(err instanceof EtcdError)) throw err;
        this.remove(w);
        w.onCompacted?.(this.getStore().compactRev);
        return true;
      }
      if (batch.large) {
        this.readLarge(e);
        return false;
      }
      const events = filtered(w, batch.events);
      let full = false;
      // A catching-up response's revision is the store's, not its last event's (etcd's syncWatchers).
      const current = this.getStore().currentRev;
      const stoppedAt = deliverByRevision(
        events,
        (evs) => {
          const ok = w.deliver(evs, current);
          if (ok === false) full = true;
          return ok;
        },
        CATCH_UP_RESPONSE_BYTES,
      );
      if (stoppedAt !== undefined) {
        this.setNextRev(e, stoppedAt + 1n);
        return false;
      }
      if (!batch.more) {
        this.setNextRev(e, 0n);
        return true;
      }
      // More history follows this batch: go on from where it stopped.
      this.setNextRev(e, batch.nextRev);
      if (full) return false;
    }
    return true;
  }

  get size(): number {
    return this.entries.size;
  }
}
