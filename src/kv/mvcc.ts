// The multi-version key-value store behind the etcd API.
//
// Every write transaction gets the next global revision (a Txn's writes share one); each key
// keeps its history of versions (create revision, mod revision, version, value, lease) until
// a compaction removes what is superseded. Reads at an old revision, watches from the past and
// prev_kv all come from these histories. Keys are bytes; the index is a B-tree keyed by the
// key's latin1 string, which sorts exactly like the bytes. Revisions are bigint, exact.
//
// Memory: keys and values are kept as latin1 strings (one char per byte, so any bytes round-trip
// exactly), not Buffers. A string is one flat heap object (16 B of header); a Buffer is a
// ~96 B typed-array object plus a slice of an 8 KiB pool that any one live slice keeps whole,
// and costs the garbage collector more to move. At a million keys that is ~190 MB less and a
// faster restart. Bytes are made when a key or value leaves the store (toKeyValue, events,
// snapshot images write the strings directly).

import { MvccStats } from './mvcc-stats.js';
import type { Event, KeyValue } from '../gen/etcd/kv.js';
import { Event_EventType } from '../gen/etcd/kv.js';
import { type SortedMap, newSortedMap } from '../util/btree.js';
import { crc32c } from './crc32c.js';
import { Errors } from './errors.js';
import { putVarint } from '../util/varint.js';
import { runSteps, sortIndexSteps } from '../util/sort-in-steps.js';
import { RevisionLog } from './revision-log.js';
import { putRevisionKey } from '../util/revision-key.js';
import { EventCache } from './event-cache.js';
import { SLICE_BYTES, SliceBudget } from '../util/yield.js';

/** One version of a key. version === 0n marks a deletion (tombstone). */
export interface Rev {
  mod: bigint;
  /** Order of the write within its revision (a Txn may write several keys). */
  sub: number;
  create: bigint;
  version: bigint;
  /** The value's bytes as a latin1 string (see the header); '' for a deletion. */
  value: string;
  lease: bigint;
}

/** Revision order (etcd's backend key order): main revision, then sub revision. */
export function compareRevs(a: Rev, b: Rev): number {
  return a.mod < b.mod ? -1 : a.mod > b.mod ? 1 : a.sub - b.sub;
}

/** A key (latin1, see the header) and its versions, oldest first (what a snapshot image holds per key). */
export interface KeyHistory {
  key: string;
  history: readonly Rev[];
}

/** Below this many versions a key's history is copied to grow (see KeyRecord.append). */
const SHORT_HISTORY = 8;

/** Revisions' writes looked at, at most, by one call of eventsBatch (a bounded catch-up step). */
const CATCH_UP_SCAN = 20_000;

/** Keys pruned between two yields after a compaction (MvccStore.pruneYield). */
const PRUNE_CHUNK = 5000;
/** Versions a prune looks at between two yields (about: a slice ends after the key that passes it). */
export const PRUNE_SLICE_VERSIONS = 16_384;
const PRUNE_VERSION_WEIGHT = SLICE_BYTES / PRUNE_SLICE_VERSIONS;

/** A record's versions when it has none (never mutated: append replaces it). */
const NO_VERSIONS: Rev[] = [];

/**
 * A key and its versions, oldest first. Most keys have one version between compactions, and a
 * one-slot array would be two more heap objects (56 B) per key for the collector to move at
 * every restart: a single version is held by itself, several (or none) in an array.
 * Invariant: `h` is an array exactly when the count is not 1.
 */
class KeyRecord {
  private h: Rev | Rev[] = NO_VERSIONS;
  /** `key`: the key's bytes as a latin1 string (also its index key). */
  constructor(readonly key: string) {}

  /** How many versions are kept. */
  get count(): number {
    const h = this.h;
    return Array.isArray(h) ? h.length : 1;
  }

  /** The versions, oldest first (a new one-slot array for a single version: not for hot paths). */
  versions(): readonly Rev[] {
    const h = this.h;
    return Array.isArray(h) ? h : [h];
  }

  /** Replaces the versions (oldest first); the record keeps `v` itself unless it has one. */
  setVersions(v: Rev[]): void {
    this.h = v.length === 1 ? v[0]! : v.length === 0 ? NO_VERSIONS : v;
  }

  /** The bytes of its versions' values together. */
  valueBytes(): number {
    const h = this.h;
    if (!Array.isArray(h)) return h.value.length;
    let n = 0;
    for (const r of h) n += r.value.length;
    return n;
  }

  /** The newest version (a deletion included), if any. */
  newest(): Rev | undefined {
    const h = this.h;
    return Array.isArray(h) ? h[h.length - 1] : h;
  }

  append(r: Rev): void {
    // Short histories grow exactly (a copy of a few slots): push() would reserve 16 more slots
    // (128 bytes) on a key's second version, and most keys have few versions between
    // compactions. Longer ones grow by push(), amortized.
    const h = this.h;
    if (!Array.isArray(h)) this.h = [h, r];
    else if (h.length === 0) this.h = r;
    else if (h.length < SHORT_HISTORY) this.h = h.concat(r);
    else h.push(r);
  }

  /** Removes and returns the newest version (undoing an append). */
  popNewest(): Rev | undefined {
    const h = this.h;
    if (!Array.isArray(h)) {
      this.h = NO_VERSIONS;
      return h;
    }
    if (h.length === 0) return undefined;
    const r = h[h.length - 1];
    this.setVersions(h.slice(0, -1));
    return r;
  }

  /** A right-sized copy of a history that compaction shortened (defragmentation). */
  compactArray(): void {
    const h = this.h;
    if (Array.isArray(h) && h.length > 0) this.h = h.slice();
  }

  latest(): Rev | undefined {
    const r = this.newest();
    return r && r.version !== 0n ? r : undefined;
  }

  /** The live version visible at revision `rev`, if any. */
  at(rev: bigint): Rev | undefined {
    const h = this.h;
    let r: Rev | undefined;
    if (!Array.isArray(h)) r = h.mod <= rev ? h : undefined;
    else {
      const found = lastAtOrBelow(h, rev);
      r = found < 0 ? undefined : h[found];
    }
    return r && r.version !== 0n ? r : undefined;
  }
}

/** Bytes as a latin1 string, one char per byte: how the store keeps keys and values. */
export const latin1 = (b: Uint8Array): string =>
  // A Buffer (every decoded key) converts in place; a plain Uint8Array needs a Buffer view first.
  Buffer.isBuffer(b) ? b.toString('latin1') : Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

/** A key's index string (its latin1 string, which sorts like the bytes). */
export const keyStr = latin1;

const NO_BYTES: Buffer = Buffer.alloc(0);

/** A latin1 string's bytes (a new Buffer; the shared empty one for ''). */
export const bytesOf = (s: string): Buffer => (s.length === 0 ? NO_BYTES : Buffer.from(s, 'latin1'));

/**
 * A key-value read by a client's Range (rangeAsync): the store's strings and version, its bytes
 * made only when a field is read (a small answer encoded by grpc-js, the JSON gateway). The Range
 * encoder writes the strings straight into the response (src/api/sliced-encoding.ts), so a Range
 * over a million keys makes one small object per key, not an object and two Buffers.
 */
export class StoredKeyValue implements KeyValue {
  constructor(
    /** The key's latin1 string. */
    readonly keyString: string,
    private readonly r: Rev,
    private readonly keysOnly: boolean,
  ) {}

  get key(): Buffer {
    return bytesOf(this.keyString);
  }
  get value(): Buffer {
    return bytesOf(this.valueString);
  }
  /** The value's latin1 string ('' with keys_only). */
  get valueString(): string {
    return this.keysOnly ? '' : this.r.value;
  }
  /** The stored value, also with keys_only: a Range sorted by value sorts by it (as etcd does). */
  get storedValueString(): string {
    return this.r.value;
  }
  get createRevision(): bigint {
    return this.r.create;
  }
  get modRevision(): bigint {
    return this.r.mod;
  }
  get version(): bigint {
    return this.r.version;
  }
  get lease(): bigint {
    return this.r.lease;
  }
}

export function toKeyValue(key: string, r: Rev, keysOnly = false): KeyValue {
  return {
    key: bytesOf(key),
    createRevision: r.create,
    modRevision: r.mod,
    version: r.version,
    value: keysOnly ? NO_BYTES : bytesOf(r.value),
    lease: r.lease,
  };
}

export interface RangeOptions {
  /** <= 0: the current revision. */
  revision?: bigint;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
}

/** What a Range keeps of the versions it visits: all are counted, up to `limit` are kept. */
class RangeCollector {
  readonly kvs: KeyValue[] = [];
  count = 0;
  private readonly limit: number;
  constructor(private readonly o: RangeOptions) {
    this.limit = o.limit && o.limit > 0 ? o.limit : Infinity;
  }
  take(rec: KeyRecord, r: Rev): void {
    this.count++;
    if (!this.o.countOnly && this.kvs.length < this.limit) this.kvs.push(new StoredKeyValue(rec.key, r, this.o.keysOnly === true));
  }
}

/** A batch of a watcher's history (MvccStore.eventsBatch): its events, whether more follow, and from where. */
export interface EventsBatch {
  events: Event[];
  more: boolean;
  nextRev: bigint;
  /** Set when `nextRev` is a large revision (isLargeRevision), left for revisionEventsAsync to read. */
  large?: true;
}

/**
 * A revision whose watch events are too many, or too large, to make, match and encode in the
 * turn that applies it (a DeleteRange or a revoked lease over many keys, a Txn of large values):
 * its watchers read it from the history in slices (revisionEventsAsync, WatchHub) instead of
 * being handed it live. With 200 k deletions and a prev_kv watcher, the events alone held every
 * member's loop for ~1.4 s, on top of the deletions' ~0.2 s.
 */
export const LARGE_REVISION_EVENTS = 1000;
export const LARGE_REVISION_BYTES = SLICE_BYTES;

/** Whether a revision of `count` events whose keys and values take `bytes()` is large (see above). */
export function isLargeRevision(count: number, bytes: () => number): boolean {
  return count > 1 && (count > LARGE_REVISION_EVENTS || bytes() > LARGE_REVISION_BYTES);
}

/** What the watch hub learns of a revision's writes before any of its events is made. */
export interface RevisionWrites {
  /** How many events it makes. */
  readonly count: number;
  /** About the bytes of its events' keys and values (previous values included). */
  eventBytes(): number;
  /** Its lowest and highest key written (index strings). */
  keySpan(): { lo: string; hi: string };
}

/** Reads at one pinned revision (MvccStore.pinnedRead). */
export interface PinnedRead {
  /** The revision every read sees (unless it names an older one). */
  readonly rev: bigint;
  /** Throws etcd's error for a revision this read cannot serve (after `rev`, or compacted before it began). */
  checkRev(rev: bigint): void;
  /** MvccStore.rangeAsync at `rev` (or at `o.revision`, checked as above); `rev` in the result is the pinned one. */
  rangeAsync(key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions, pause: () => Promise<void>, chunk?: number): Promise<RangeResult>;
  /** Ends the read: pruning held back meanwhile happens now. Idempotent. */
  release(): void;
}

export interface RangeResult {
  kvs: KeyValue[];
  count: number;
  rev: bigint;
}

/** Iteration bounds of an etcd range: [key, end), end '\0' = to the end, no end = one key. */
export function rangeBounds(key: Uint8Array, end: Uint8Array | undefined): { lo: string; hi: string | undefined; single: boolean } {
  const lo = keyStr(key);
  if (!end || end.length === 0) return { lo, hi: lo, single: true };
  if (end.length === 1 && end[0] === 0) return { lo, hi: undefined, single: false };
  return { lo, hi: keyStr(end), single: false };
}

/**
 * Told of every write revision: `events` builds its events (only when called: a write nobody
 * watches makes no Event objects, nor the key and value bytes in them); `writes` tells how many
 * and where, before any is made.
 */
export type WatchSink = (events: () => Event[], rev: bigint, writes: RevisionWrites) => void;

/**
 * What the store costs in memory, estimated per item so that the size is known in O(1) at any
 * time (Status, /metrics, the space quota). Measured on Node 20 (heap after GC, 200k keys of
 * 12 B with 100 B values): a new key with one version ~284 B, its second version ~280 B (the
 * history array starts there), each further one ~224 B. So a version costs its value plus
 * VERSION_OVERHEAD (the Rev object, the value string's header, its slot in the history), and a
 * key its bytes (the latin1 string, shared by the record and the index) plus KEY_OVERHEAD
 * (record, B-tree slot); both rounded so that one version is over-counted by ~8% and a few
 * versions under-counted by ~5%.
 */
export const VERSION_OVERHEAD = 125;
export const KEY_OVERHEAD = 70;
export const keyCost = (key: { length: number }): number => KEY_OVERHEAD + key.length;
export const versionCost = (value: { length: number }): number => VERSION_OVERHEAD + value.length;

/** The cost of a key's versions (a loop: this runs for every key of a snapshot loaded). */
function versionsCost(history: readonly Rev[]): number {
  let n = 0;
  for (const r of history) n += versionCost(r.value);
  return n;
}

/** Hooks into the lessor: which keys each lease holds. */
export interface LeaseHooks {
  exists(lease: bigint): boolean;
  attach(lease: bigint, key: string): void;
  detach(lease: bigint, key: string): void;
}

/** bbolt's page, and what an empty etcd 3.4 database's Status shows (MvccStore.shownSizes). */
const DB_PAGE = 4096;
const EMPTY_DB_SIZE = 5 * DB_PAGE;
const EMPTY_DB_SIZE_IN_USE = 4 * DB_PAGE;

export class MvccStore {
  /** The revision of the last completed write (etcd starts at 1). */
  currentRev = 1n;
  /** Revisions below this are compacted away (-1: never compacted). */
  compactRev = -1n;
  private index: SortedMap<string, KeyRecord> = newSortedMap();
  /** Which keys each revision wrote (the watch catch-up reads the history by revision). */
  private readonly revLog = new RevisionLog<KeyRecord>(2n);
  /** Watch events made lately for watchers catching up, shared by them (./event-cache.ts). */
  private readonly eventCache = new EventCache<Rev>();

  /** The event of version `r` of `key` (`prev`: the version before it), with prev_kv or without. */
  private eventOf(key: string, r: Rev, prev: Rev | undefined, prevKv: boolean): Event {
    return this.eventCache.get(r, () => makeEvent(key, r, prev), prevKv && this.prevReadable(r));
  }

  /**
   * Whether a watch event of version `r` may carry prev_kv. etcd reads an event's prev_kv when
   * it sends it, as a Range at mod-1, and a Range below the compact revision fails: the event at
   * the compact revision itself (a watch may start there) goes without one.
   */
  private prevReadable(r: Rev): boolean {
    return r.mod > this.compactRev;
  }
  /** Called after every write revision with its events (the watch hub). */
  onEvents: WatchSink | undefined;
  leases: LeaseHooks | undefined;
  /** What was asked of the store, as etcd counts it (carried over to a store restored from a snapshot). */
  stats = new MvccStats();

  keyCount(): number {
    return this.index.size;
  }

  /** Estimated bytes held now: every key and version kept (see VERSION_OVERHEAD). */
  private inUse = 0;
  /**
   * The most ever held since the last defragmentation: etcd's DB size, which compaction does
   * not lower (freed pages stay in bbolt's file) and defragmentation does. The space quota is
   * checked against it, as etcd's is, so the NOSPACE runbook (compact, defrag, disarm) is the
   * same.
   */
  private highWater = 0;

  /** etcd's `dbSizeInUse`: estimated bytes held by live keys and kept history. O(1). */
  sizeInUse(): number {
    return this.inUse;
  }

  /** etcd's `dbSize`: the high-water mark of sizeInUse since the last defragment. O(1). */
  size(): number {
    return this.highWater;
  }

  /**
   * size() and sizeInUse() as etcd shows its bbolt file's (Status, /metrics): whole 4 KiB pages,
   * and never below an empty etcd database's 20,480 bytes allocated and 16,384 in use. A fresh
   * member's size is then never 0, which the JSON gateway would leave out of a Status answer
   * (python3-etcd3gw's status() reads the field); the quota is checked against size() itself.
   */
  shownSizes(): { dbSize: number; dbSizeInUse: number } {
    const pages = (bytes: number, least: number): number => Math.max(least, Math.ceil(bytes / DB_PAGE) * DB_PAGE);
    return { dbSize: pages(this.highWater, EMPTY_DB_SIZE), dbSizeInUse: pages(this.inUse, EMPTY_DB_SIZE_IN_USE) };
  }

  /** @internal accounting of every key and version added or removed */
  account(delta: number): void {
    this.inUse += delta;
    if (this.inUse > this.highWater) this.highWater = this.inUse;
  }

  /**
   * etcd's defragmentation, for a heap: copies every history into a right-sized array, so
   * the room compaction left in them can be freed (the values are strings, which V8's
   * compacting collector packs itself), then lowers the DB size to what is in use.
   * Works through the keys in slices of `chunk` with a yield (`pause`) in between; writes may
   * go on meanwhile (each key is copied whole within a slice).
   */
  async defragment(pause: () => Promise<void>, chunk = 5000): Promise<number> {
    // What a compaction frees is given back only once it is pruned.
    await this.pruned();
    await this.walkInSlices('', undefined, chunk, pause, (batch) => {
      for (const rec of batch) rec.compactArray();
    });
    this.highWater = this.inUse;
    return this.highWater;
  }

  /**
   * Visits the records with keys in [from, hi) (hi undefined: to the end) in key order, `chunk`
   * at a time, with a yield (`pause`) between batches: the one way a long walk of the index
   * shares the event loop (defragment, rangeAsync, historiesAsync). Each batch is taken whole
   * before `f` runs; writes between batches are seen by the batches after them.
   */
  private async walkInSlices(
    from: string,
    hi: string | undefined,
    chunk: number,
    pause: () => Promise<void>,
    f: (batch: KeyRecord[]) => void,
    weigh?: (rec: KeyRecord) => number,
  ): Promise<void> {
    let after: string | undefined;
    for (;;) {
      // With `weigh` (the bytes `f` will touch per record), a batch also ends at SLICE_BYTES.
      const { batch, full } = this.batchAfter(from, hi, after, new SliceBudget(chunk), weigh);
      if (batch.length > 0) f(batch);
      if (!full) break;
      after = batch[batch.length - 1]!.key;
      await pause();
    }
  }

  /**
   * @internal The records with keys in [from, hi) (hi undefined: to the end) after the key
   * `after` (if any), in key order, until `budget` is spent (`full`: more may follow).
   */
  batchAfter(
    from: string,
    hi: string | undefined,
    after: string | undefined,
    budget: SliceBudget,
    weigh?: (rec: KeyRecord) => number,
  ): { batch: KeyRecord[]; full: boolean } {
    const batch: KeyRecord[] = [];
    let full = false;
    const take = (k: string, rec: KeyRecord): { break: true } | void => {
      if (after !== undefined && k === after) return;
      batch.push(rec);
      if (budget.spend(weigh ? weigh(rec) : 0)) {
        full = true;
        return { break: true };
      }
    };
    if (hi === undefined) {
      const top = this.index.maxKey();
      if (top !== undefined && top >= (after ?? from)) this.index.forRange(after ?? from, top, true, take);
    } else {
      this.index.forRange(after ?? from, hi, false, take);
    }
    return { batch, full };
  }

  /** @internal The revision a read at `rev` (0 or none: the current one) sees, or etcd's error. */
  checkReadRev(rev: bigint | undefined): bigint {
    if (rev === undefined || rev <= 0n) return this.currentRev;
    if (rev > this.currentRev) throw Errors.futureRev();
    if (rev < this.compactRev) throw Errors.compacted();
    return rev;
  }

  /** Visits the records with keys in etcd's range [key, end), in key order, until `f` returns false. */
  private records(key: Uint8Array, end: Uint8Array | undefined, f: (rec: KeyRecord) => boolean | void): void {
    const { lo, hi, single } = rangeBounds(key, end);
    if (single) {
      const rec = this.index.get(lo);
      if (rec) f(rec);
      return;
    }
    if (hi !== undefined && hi <= lo) return;
    const visit = (_k: string, rec: KeyRecord): { break: true } | void => {
      if (f(rec) === false) return { break: true };
    };
    if (hi === undefined) {
      const maxKey = this.index.maxKey();
      if (maxKey !== undefined && maxKey >= lo) this.index.forRange(lo, maxKey, true, visit);
    } else {
      this.index.forRange(lo, hi, false, visit);
    }
  }

  /** Visits the live versions in [key, end) at `rev`, in key order, until `f` returns false. */
  private scan(key: Uint8Array, end: Uint8Array | undefined, rev: bigint, f: (rec: KeyRecord, r: Rev) => boolean | void): void {
    this.records(key, end, (rec) => {
      const r = rec.at(rev);
      if (r && f(rec, r) === false) return false;
    });
  }

  range(key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions = {}): RangeResult {
    const c = new RangeCollector(o);
    this.scan(key, end, this.checkReadRev(o.revision), (rec, r) => c.take(rec, r));
    return { kvs: c.kvs, count: c.count, rev: this.currentRev };
  }

  /**
   * range() for a large store: the same answer, at the revision current when it started, built
   * in slices of `chunk` keys with a yield (`pause`) in between, so a Range over millions of
   * keys never stalls heartbeats. Writes may go on meanwhile (versions after the read revision
   * are ignored) and pruning by a compaction waits until the walk is done.
   */
  async rangeAsync(key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions, pause: () => Promise<void>, chunk = 10_000): Promise<RangeResult> {
    const rev = this.checkReadRev(o.revision);
    const headerRev = this.currentRev;
    this.pins++;
    try {
      return { ...(await this.collectAsync(key, end, rev, o, pause, chunk)), rev: headerRev };
    } finally {
      this.unpin();
    }
  }

  /**
   * Several reads at one revision, the current one, that may span turns of the event loop (a
   * read-only Txn's compares and ranges): until `release()`, pruning waits, so what was visible
   * at that revision stays readable even if a compaction passes it meanwhile.
   */
  pinnedRead(): PinnedRead {
    this.pins++;
    let released = false;
    const rev = this.currentRev;
    const compactRev = this.compactRev;
    const checkRev = (r: bigint): void => {
      // The bounds as they were when the read began (etcd's read transaction sees one state).
      if (r > rev) throw Errors.futureRev();
      if (r < compactRev) throw Errors.compacted();
    };
    return {
      rev,
      checkRev,
      rangeAsync: async (key, end, o, pause, chunk = 10_000) => {
        const at = o.revision !== undefined && o.revision > 0n ? (checkRev(o.revision), o.revision) : rev;
        return { ...(await this.collectAsync(key, end, at, o, pause, chunk)), rev };
      },
      release: () => {
        if (released) return;
        released = true;
        this.unpin();
      },
    };
  }

  /**
   * The live versions at `rev` in [key, end), collected in slices of `chunk` keys (a single key
   * at once). The caller has checked `rev` and holds a pin, so nothing visible at `rev` is
   * pruned while it waits.
   */
  private async collectAsync(
    key: Uint8Array,
    end: Uint8Array | undefined,
    rev: bigint,
    o: RangeOptions,
    pause: () => Promise<void>,
    chunk: number,
  ): Promise<{ kvs: KeyValue[]; count: number }> {
    const c = new RangeCollector(o);
    const { lo, hi, single } = rangeBounds(key, end);
    if (single || (hi !== undefined && hi <= lo)) {
      this.scan(key, end, rev, (rec, r) => c.take(rec, r));
    } else {
      await this.walkInSlices(lo, hi, chunk, pause, (batch) => {
        for (const rec of batch) {
          const r = rec.at(rev);
          if (r) c.take(rec, r);
        }
      });
    }
    return { kvs: c.kvs, count: c.count };
  }

  /** Ends a walk that deferred pruning (rangeAsync, historiesAsync, hashByRev). */
  private unpin(): void {
    if (--this.pins === 0) this.startPrune();
  }

  /**
   * Runs a write transaction; all its writes share one new revision (if it writes at all). All
   * or nothing: if `f` throws, every write it made is undone before the error goes on, so the
   * store, the lessor and the watchers see no trace of it (and every replica agrees).
   */
  write<T>(f: (w: WriteTxn) => T): T {
    const w = this.begin();
    let out: T;
    try {
      out = f(w);
    } catch (e) {
      w.rollback();
      throw e;
    }
    this.publish(w);
    return out;
  }

  /**
   * write() for work over many keys (a DeleteRange, a revoked lease's keys, a Txn), given as steps
   * that yield between slices: the first slice runs now, and if more remain, the rest in later
   * turns, after `pause` (the answer is then a Promise). All or nothing as write() is, and
   * invisible until whole: its versions are appended at the next revision, and every reader
   * reads at `currentRev` (KeyRecord.at), which moves, with the revision log and the watchers,
   * only once it is done. Pruning waits meanwhile. Nothing else may write until it is done (the
   * apply is serial: the Raft loop waits for it).
   */
  writeInSlices<T>(steps: (w: WriteTxn) => Generator<void, T>, pause: () => Promise<void>): T | Promise<T> {
    const w = this.begin();
    const it = steps(w);
    let step: IteratorResult<void, T>;
    try {
      step = it.next();
    } catch (e) {
      w.rollback();
      throw e;
    }
    if (step.done) {
      this.publish(w);
      return step.value;
    }
    this.writing = true;
    this.pins++;
    return (async () => {
      try {
        try {
          while (!step.done) {
            await pause();
            step = it.next();
          }
        } catch (e) {
          w.rollback();
          throw e;
        }
        this.publish(w);
        return step.value;
      } finally {
        this.writing = false;
        this.unpin();
      }
    })();
  }

  /** A write in slices is under way (writeInSlices): no other may start. */
  private writing = false;

  private begin(): WriteTxn {
    // The apply is serial; a second writer would interleave its versions with the first's.
    if (this.writing) throw new Error('a write began while a write in slices was under way');
    return new WriteTxn(this, this.currentRev + 1n);
  }

  /** Makes a write's revision the current one, and tells the revision log and the watchers. */
  private publish(w: WriteTxn): void {
    if (!w.changed) return;
    this.currentRev = w.rev;
    this.revLog.append(w.rev, w.changedRecords(), this.compactRev > 1n ? this.compactRev : 1n);
    this.onEvents?.(() => w.events(), w.rev, w);
  }

  /** @internal used by WriteTxn to undo the creation of a key's record */
  dropRecord(k: string): void {
    if (this.index.delete(k)) this.account(-keyCost(k));
  }

  /** @internal used by WriteTxn: the record of the key whose index string is `k`. */
  record(k: string, create: boolean): KeyRecord | undefined {
    let rec = this.index.get(k);
    if (!rec && create) {
      rec = new KeyRecord(k);
      this.index.set(k, rec);
      this.account(keyCost(k));
    }
    return rec;
  }

  /**
   * Compacts history below `rev`: each key keeps its latest version at or below `rev` (unless
   * deleted) and everything after. Reads and watches below `rev` then get ErrCompacted.
   */
  compact(rev: bigint): void {
    if (rev <= this.compactRev) throw Errors.compacted();
    if (rev > this.currentRev) throw Errors.futureRev();
    // Logically compacted at once (reads and watches below `rev` fail from now on); the
    // physical pruning follows (see pruneYield) and waits while a walk that must see the
    // history at an older revision is running (pins).
    const t0 = performance.now();
    this.compactRev = rev;
    this.revLog.trimBelow(rev);
    this.stats.compactionTimings?.index(performance.now() - t0);
    this.pruneTo = rev;
    this.startPrune();
  }

  /**
   * How the physical pruning after a compaction yields between slices of keys: pruning is a walk
   * of every key, and every member applies a compaction at the same time, so on a store of
   * millions of keys one walk would stall them all at once (etcd prunes in batches too). The
   * server sets a yield to the event loop; unset (tests, tools), pruning happens at once.
   */
  pruneYield: (() => Promise<void>) | undefined;
  /** Keys pruned between two yields. */
  pruneChunk = PRUNE_CHUNK;

  /** Walks that need versions a compaction would prune (rangeAsync, snapshots, hashes). */
  private pins = 0;
  /** The latest compaction not yet pruned (-1: none). */
  private pruneTo = -1n;
  /** The running sliced prune, if any. */
  private pruning: Promise<void> | undefined;

  /**
   * Starts pruning to `pruneTo` unless a pinned walk or a prune is running (it starts again when
   * they end). A prune already running when a walk pins is harmless to it: the walk reads at or
   * above the compact revision, and pruning to it keeps everything visible there.
   */
  private startPrune(): void {
    if (this.pins > 0 || this.pruning || this.pruneTo < 0n) return;
    const rev = this.pruneTo;
    this.pruneTo = -1n;
    const timings = this.stats.compactionTimings;
    const started = performance.now();
    if (!this.pruneYield) {
      // The index is not changed while it is walked: emptied keys are dropped after.
      const dead: KeyRecord[] = [];
      this.index.forEach((rec) => {
        if (this.pruneVersions(rec, rev)) dead.push(rec);
      });
      for (const rec of dead) this.dropEmptied(rec);
      timings?.total(performance.now() - started);
      return;
    }
    // Marked as running before the walk starts: its first slice and its first yield run now,
    // and a compaction made meanwhile must find a prune under way (and wait for it), or it
    // would start a second one that `pruned()` no longer tracks.
    let adopt!: (walk: Promise<void>) => void;
    this.pruning = new Promise<void>((resolve) => (adopt = resolve));
    // A slice ends at pruneChunk keys or at about PRUNE_SLICE_VERSIONS versions, whichever comes
    // first: counting keys alone put a thousand keys of 500 versions each in one slice (a
    // probe: turns of 128-256 ms, and 408 ms puts).
    const walk = this.walkInSlices(
      '',
      undefined,
      this.pruneChunk,
      this.pruneYield,
      (batch) => {
        const t0 = performance.now();
        for (const rec of batch) if (this.pruneVersions(rec, rev)) this.dropEmptied(rec);
        timings?.slice(performance.now() - t0);
      },
      (rec) => rec.count * PRUNE_VERSION_WEIGHT,
    );
    adopt(
      walk.finally(() => {
        timings?.total(performance.now() - started);
        this.pruning = undefined;
        this.startPrune();
      }),
    );
  }

  /** Resolves when no prune is running (one deferred by a pinned walk is not waited for). */
  async pruned(): Promise<void> {
    while (this.pruning) await this.pruning;
  }

  /** Drops what a compaction at `rev` no longer keeps of one key; whether nothing is left of it. */
  private pruneVersions(rec: KeyRecord, rev: bigint): boolean {
    let keepFrom = 0;
    if (rec.count === 1) {
      const r = rec.newest()!;
      // A lone version is kept unless it is a deletion at or below the compaction.
      if (r.version === 0n && r.mod <= rev) keepFrom = 1;
    } else {
      const h = rec.versions();
      for (let i = h.length - 1; i >= 0; i--) {
        if (h[i]!.mod <= rev) {
          keepFrom = h[i]!.version === 0n ? i + 1 : i;
          break;
        }
      }
    }
    if (keepFrom > 0) {
      const h = rec.versions();
      for (let i = 0; i < keepFrom; i++) this.account(-versionCost(h[i]!.value));
      rec.setVersions(h.slice(keepFrom));
      this.stats.compactedVersions += keepFrom;
    }
    return rec.count === 0;
  }

  /** Removes a key that pruning emptied from the index. */
  private dropEmptied(rec: KeyRecord): void {
    if (this.index.get(rec.key) === rec) this.dropRecord(rec.key);
  }

  /**
   * Every key's history as of the current revision, in key order, handed to `onBatch` in
   * batches of `chunk` keys with a yield to the event loop (`pause`) in between, so that a large
   * snapshot never stalls heartbeats. Writes may continue meanwhile: only versions up to the
   * revision captured at the start are handed out, and pruning is deferred until the walk is
   * done, so it is exactly the state at that revision. The snapshot image is built from it (its
   * format: src/server/snapshot-image.ts). `onBatch` must use the histories before it returns
   * (later writes change them) and must not modify them.
   */
  async historiesAsync(
    onBatch: (keys: KeyHistory[]) => void,
    pause: () => Promise<void>,
    chunk = 2000,
  ): Promise<{ currentRev: bigint; compactRev: bigint }> {
    const rev = this.currentRev;
    const compactRev = this.compactRev;
    this.pins++;
    try {
      await this.walkInSlices('', undefined, chunk, pause, (batch) => {
        const keys: KeyHistory[] = [];
        for (const rec of batch) {
          const all = rec.versions();
          const last = all[all.length - 1];
          const history = last && last.mod <= rev ? all : all.filter((r) => r.mod <= rev);
          if (history.length > 0) keys.push({ key: rec.key, history });
        }
        onBatch(keys);
      }, historyBytes);
      return { currentRev: rev, compactRev };
    } finally {
      this.unpin();
    }
  }

  /** Sets a key's whole history (loading a snapshot image into a new store; see historiesAsync). */
  loadHistory(key: string, history: Rev[]): void {
    const rec = new KeyRecord(key);
    rec.setVersions(history);
    const old = this.index.get(key);
    if (old) {
      this.account(-keyCost(old.key) - versionsCost(old.versions()));
      // A key loaded twice: its earlier record is in the loaded pairs, so the log is walked instead.
      this.revLog.invalidate();
    } else {
      this.revLog.loaded(rec, history);
    }
    this.index.set(key, rec);
    this.account(keyCost(key) + versionsCost(history));
  }

  /**
   * The first events in [key, end) with revision >= fromRev, in revision order: whole revisions
   * (a batch never ends inside one) until there are at least `limit` events or the writes of
   * CATCH_UP_SCAN keys were looked at, whether more follow and the revision to go on from. The
   * history is read by revision (./revision-log.ts), so a batch costs the revisions it reads,
   * not a walk of every key in the range; only the events handed out are built.
   */
  eventsBatch(key: Uint8Array, end: Uint8Array | undefined, fromRev: bigint, prevKv: boolean, limit: number): EventsBatch {
    if (fromRev < this.compactRev) throw Errors.compacted();
    const { lo, hi, single } = rangeBounds(key, end);
    const inRange = (k: string): boolean => (single ? k === lo : k >= lo && (hi === undefined || k < hi));
    const events: Event[] = [];
    const first = this.compactRev > 1n ? this.compactRev : 1n;
    // Bounded work per call even when the range matches little of what was written.
    const scanLimit = Math.max(CATCH_UP_SCAN, limit);
    let scanned = 0;
    let rev = fromRev > first ? fromRev : first;
    const rebuild = (add: (rec: KeyRecord, rev: bigint) => void): void => this.allVersions(first, add);
    /** The event of version h[i] for this watcher (prev_kv: eventPrev's, if it asked). */
    const eventAt = (rec: KeyRecord, h: readonly Rev[], i: number): Event =>
      this.eventOf(rec.key, h[i]!, eventPrev(h, i), prevKv);
    for (; rev <= this.currentRev; rev++) {
      if (events.length >= limit || scanned >= scanLimit) return { events, more: true, nextRev: rev };
      const slot = this.revLog.at(rev, first, this.currentRev, rebuild);
      if (slot === undefined) continue;
      if (!Array.isArray(slot)) {
        // One key written (the common case): its version(s) at this revision, in sub order.
        scanned++;
        if (!inRange(slot.key)) continue;
        const h = slot.versions();
        const [from, to] = versionsAt(h, rev);
        for (let i = from; i < to; i++) events.push(eventAt(slot, h, i));
        continue;
      }
      // A large revision is read alone, in slices, by revisionEventsAsync: the batch ends before it.
      if (largeSlot(slot, rev)) return events.length > 0 ? { events, more: true, nextRev: rev } : { events, more: true, nextRev: rev, large: true };
      // Several keys: this revision's versions in the range, in write order (sub revision), each key once.
      scanned += slot.length;
      const here: Array<{ rec: KeyRecord; i: number; h: readonly Rev[] }> = [];
      const seen = new Set<KeyRecord>();
      for (const rec of slot) {
        if (seen.has(rec) || !inRange(rec.key)) continue;
        seen.add(rec);
        const h = rec.versions();
        const [from, to] = versionsAt(h, rev);
        for (let i = from; i < to; i++) here.push({ rec, i, h });
      }
      here.sort((x, y) => x.h[x.i]!.sub - y.h[y.i]!.sub);
      for (const { rec, i, h } of here) events.push(eventAt(rec, h, i));
    }
    return { events, more: false, nextRev: rev };
  }

  /** Hands every (record, revision) pair held at or above `first` to `add` (a revision log rebuild). */
  private allVersions(first: bigint, add: (rec: KeyRecord, rev: bigint) => void): void {
    this.index.forEach((rec) => {
      for (const r of rec.versions()) if (r.mod >= first) add(rec, r.mod);
    });
  }

  /**
   * The events in [key, end) of revision `rev` alone, for a large revision (an EventsBatch
   * marked `large`): made in slices of about SLICE_BYTES or LARGE_REVISION_EVENTS that yield
   * (`pause`) between them, in sub-revision order, each handed to `made` as it is made (the
   * watch service encodes it then, so that only putting the response together is left for the
   * end). Throws ErrCompacted if `rev` is compacted. Pruning waits meanwhile (a pin), so the
   * versions read stay; writes go on, above `rev`.
   */
  async revisionEventsAsync(
    key: Uint8Array,
    end: Uint8Array | undefined,
    rev: bigint,
    prevKv: boolean,
    pause: () => Promise<void>,
    made?: (ev: Event) => void,
  ): Promise<Event[]> {
    this.checkReadRev(rev);
    const first = this.compactRev > 1n ? this.compactRev : 1n;
    const slot = this.revLog.at(rev, first, this.currentRev, (add) => this.allVersions(first, add));
    const recs = slot === undefined ? [] : Array.isArray(slot) ? slot : [slot];
    const { lo, hi, single } = rangeBounds(key, end);
    const events: Event[] = [];
    const subs: number[] = [];
    let inOrder = true;
    const seen = new Set<KeyRecord>();
    const budget = new SliceBudget(LARGE_REVISION_EVENTS);
    this.pins++;
    try {
      for (const rec of recs) {
        let bytes = 0;
        const k = rec.key;
        if (!seen.has(rec) && (single ? k === lo : k >= lo && (hi === undefined || k < hi))) {
          seen.add(rec);
          const h = rec.versions();
          const [from, to] = versionsAt(h, rev);
          for (let i = from; i < to; i++) {
            const prev = prevKv && this.prevReadable(h[i]!) ? eventPrev(h, i) : undefined;
            const ev = makeEvent(k, h[i]!, prev);
            made?.(ev);
            events.push(ev);
            const sub = h[i]!.sub;
            if (subs.length > 0 && sub < subs[subs.length - 1]!) inOrder = false;
            subs.push(sub);
            bytes += eventWeight(k, h[i]!, prev);
          }
        }
        if (budget.spend(bytes)) await pause();
      }
    } finally {
      this.unpin();
    }
    // Out of write order only when the log was rebuilt from the keys (after a snapshot load).
    if (!inOrder) {
      const order = events.map((_, i) => i).sort((a, b) => subs[a]! - subs[b]!);
      return order.map((i) => events[i]!);
    }
    return events;
  }

  /**
   * etcd's hash of the key space at `rev` (0: the current revision): CRC-32C (Castagnoli) of
   * "key" and then, in revision order, every stored (revision key, mvccpb.KeyValue) pair as
   * etcd's backend holds them, exactly as etcd 3.4's `HashByRev` computes it (the same value
   * as etcd for the same writes). Versions in (compactRev, rev] count; versions at or below the
   * compact revision count only if compaction keeps them and they are still live at `rev` (so a
   * compaction not yet pruned, e.g. while a snapshot is being built, does not change it). It
   * depends only on replicated state, so every member gives the same value at a revision.
   * Synchronous: prefer hashByRev on a large store.
   */
  hash(rev: bigint): number {
    const job = new HashJob(this.index, rev === 0n ? this.currentRev : rev, this.compactRev);
    while (!job.step(Infinity));
    return job.crc;
  }

  /**
   * HashKV: the hash at `rev` (<= 0: the current revision) with the current and compact
   * revisions when it started, computed in slices of about `chunk` versions that yield to the
   * event loop (`pause`) in between. Writes may go on meanwhile: the hash is that of the state
   * when it started (pruning is deferred until it is done, as for a snapshot image).
   */
  async hashByRev(rev: bigint, pause: () => Promise<void>, chunk = 5000): Promise<{ hash: number; currentRev: bigint; compactRev: bigint }> {
    const currentRev = this.currentRev;
    const compactRev = this.compactRev;
    // etcd's HashByRev: the compact revision itself is compacted here (a Range may read it), and
    // a negative revision hashes no version at all (only 0 means the current revision).
    if (rev > 0n && rev <= compactRev) throw Errors.compacted();
    if (rev > currentRev) throw Errors.futureRev();
    this.pins++;
    try {
      const job = new HashJob(this.index, rev === 0n ? currentRev : rev, compactRev);
      while (!job.step(chunk)) await pause();
      return { hash: job.crc, currentRev, compactRev };
    } finally {
      this.unpin();
    }
  }

  // ---- snapshot restore

  /** Every live key attached to a lease (to rebuild the lessor after a snapshot restore). */
  forEachLeasedKey(f: (lease: bigint, key: string) => void): void {
    this.index.forEach((rec, k) => {
      const r = rec.latest();
      if (r && r.lease !== 0n) f(r.lease, k);
    });
  }
}

/** The bytes of a key's versions (what encoding its history copies). */
function historyBytes(rec: KeyRecord): number {
  return rec.key.length * (rec.count + 1) + rec.valueBytes();
}

/** etcd's backend bucket of key versions: its name starts the HashKV hash. */
const KEY_BUCKET = Buffer.from('key');
const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The indexes [from, to) of `h`'s versions at exactly revision `rev` (a key written more than once
 * in a revision has several, in sub order; none if it was not written then, or was pruned since).
 */
function versionsAt(h: readonly Rev[], rev: bigint): [number, number] {
  const to = lastAtOrBelow(h, rev) + 1;
  let from = to;
  while (from > 0 && h[from - 1]!.mod === rev) from--;
  return [from, to];
}

/**
 * The prev_kv of a watch event of version h[i], as etcd makes it when it sends the event: the key
 * as a Range at the revision before the event's reads it — not a version written earlier in the
 * same revision (a txn that puts a key and then deletes it: the delete's prev_kv is the key
 * before the txn), nothing if the key did not exist then — and none at all for an event that
 * creates the key (etcd's isCreateEvent: a put whose create revision is its mod revision).
 * Found by test/compat's differential run against etcd 3.4.
 */
function eventPrev(h: readonly Rev[], i: number): Rev | undefined {
  const r = h[i]!;
  if (r.version !== 0n && r.create === r.mod) return undefined;
  for (let j = i - 1; j >= 0; j--) {
    const p = h[j]!;
    if (p.mod < r.mod) return p.version !== 0n ? p : undefined;
  }
  return undefined;
}

/** About the bytes of the watch event of version `r` of `key` (`prev`: the version before it, for prev_kv). */
function eventWeight(key: string, r: Rev, prev: Rev | undefined): number {
  return 2 * key.length + r.value.length + (prev ? prev.value.length : 0);
}

/** Whether the revision `rev` that wrote the records `slot` is large (isLargeRevision). */
function largeSlot(slot: readonly KeyRecord[], rev: bigint): boolean {
  return isLargeRevision(slot.length, () => {
    let n = 0;
    for (const rec of slot) {
      const h = rec.versions();
      const [from, to] = versionsAt(h, rev);
      for (let i = from; i < to; i++) n += eventWeight(rec.key, h[i]!, i > 0 ? h[i - 1] : undefined);
    }
    return n;
  });
}

/** Index of the last version in `h[0..upTo]` with a main revision at or below `rev` (-1: none). */
function lastAtOrBelow(h: readonly Rev[], rev: bigint, upTo = h.length - 1): number {
  let lo = 0;
  let hi = upTo;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (h[mid]!.mod <= rev) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

/**
 * One HashKV computation (MvccStore.hash), in steps of bounded work so that it can yield to
 * the event loop in between: collect the versions etcd's backend would hash, sort them into
 * revision order (util/sort-in-steps.ts, an index sort whose steps are taken here a budget at
 * a time), then CRC them.
 */
class HashJob {
  crc = crc32c(KEY_BUCKET);
  private phase: 'collect' | 'sort' | 'hash' | 'done' = 'collect';
  // collect
  private after: string | undefined;
  /** A key whose versions did not fit in one step: the next index of its history to take, up to `top`. */
  private cur: { key: string; rec: KeyRecord; next: number; top: number } | undefined;
  private readonly keys: string[] = [];
  private readonly revs: Rev[] = [];
  /** Number(revs[i].mod), taken while the version is at hand (a BigInt's value is one more memory load). */
  private readonly mods: number[] = [];
  private readonly spareKeys: string[] = [];
  private readonly spareRevs: Rev[] = [];
  private anyLive = false;
  // sort, then hash in that order
  private sorting: Generator<void, Uint32Array> | undefined;
  private order: Uint32Array = new Uint32Array(0);
  private pos = 0;
  private readonly exact: boolean;
  private readonly scratch = Buffer.alloc(8192);

  constructor(
    private readonly index: SortedMap<string, KeyRecord>,
    private readonly rev: bigint,
    private readonly compactRev: bigint,
  ) {
    this.exact = rev <= SAFE;
  }

  /** Does about `budget` versions' worth of work; true when the hash is done. */
  step(budget: number): boolean {
    switch (this.phase) {
      case 'collect':
        if (this.collect(budget)) this.startSort();
        return false;
      case 'sort':
        this.sortSome(budget);
        return false;
      case 'hash':
        return this.hashSome(budget);
      case 'done':
        return true;
    }
  }

  /**
   * The versions etcd's backend would hold at or below `rev`, key by key. At or below the
   * compact revision it holds only what compaction keeps (each key's latest version there,
   * unless a deletion); of those, etcd hashes only the ones still live at `rev` (its "keep"
   * set), or all of them if no key at all is live at `rev`. True when every key is visited.
   * A key's history longer than the budget is taken over several steps (while the hash runs,
   * histories only grow at their end, beyond `rev`: pruning waits).
   */
  private collect(budget: number): boolean {
    let visited = 0;
    if (this.cur) {
      visited += this.take(this.cur, budget);
      if (this.cur.next <= this.cur.top) return false;
      this.after = this.cur.key;
      this.cur = undefined;
    }
    const maxKey = this.index.maxKey();
    if (maxKey === undefined) return true;
    const after = this.after;
    const { rev, compactRev } = this;
    let last: string | undefined;
    this.index.forRange(after ?? '', maxKey, true, (k, rec) => {
      if (after !== undefined && k === after) return;
      const h = rec.versions();
      const top = lastAtOrBelow(h, rev);
      if (top >= 0) {
        const kept = lastAtOrBelow(h, compactRev, top);
        if (h[top]!.version !== 0n) this.anyLive = true;
        if (kept >= 0 && h[kept]!.version !== 0n) {
          if (kept === top) this.push(rec.key, h[kept]!);
          else {
            this.spareKeys.push(rec.key);
            this.spareRevs.push(h[kept]!);
          }
        }
        const cur = { key: k, rec, next: kept + 1, top };
        visited += this.take(cur, Math.max(1, budget - visited));
        if (cur.next <= top) {
          this.cur = cur;
          return { break: true };
        }
      }
      last = k;
      if (++visited >= budget) return { break: true };
    });
    if (this.cur) return false;
    if (last === undefined) return true;
    this.after = last;
    return false;
  }

  /** Takes up to `n` of a key's versions in (compactRev, rev]; returns how many. */
  private take(cur: { rec: KeyRecord; next: number; top: number }, n: number): number {
    const h = cur.rec.versions();
    const end = Math.min(cur.top, cur.next + n - 1);
    const from = cur.next;
    for (let i = from; i <= end; i++) this.push(cur.rec.key, h[i]!);
    cur.next = end + 1;
    return end - from + 1;
  }

  private push(key: string, r: Rev): void {
    this.keys.push(key);
    this.revs.push(r);
    this.mods.push(Number(r.mod));
  }

  private startSort(): void {
    if (!this.anyLive) {
      for (let i = 0; i < this.spareRevs.length; i++) this.push(this.spareKeys[i]!, this.spareRevs[i]!);
    }
    this.sorting = sortIndexSteps(this.revs.length, this.cmp, HashJob.RUN);
    this.phase = 'sort';
  }

  /** Revision order (etcd's backend key order): main revision, then sub revision. */
  private readonly cmp = (i: number, j: number): number =>
    this.exact ? this.mods[i]! - this.mods[j]! || this.revs[i]!.sub - this.revs[j]!.sub : compareRevs(this.revs[i]!, this.revs[j]!);

  /** Indexes sorted between two yields of the sort. */
  private static readonly RUN = 2048;

  /** Takes the sort's steps until about `budget` indexes are handled, or it is done. */
  private sortSome(budget: number): void {
    for (let done = 0; done < budget; done += HashJob.RUN) {
      const r = this.sorting!.next();
      if (r.done) {
        this.order = r.value;
        this.sorting = undefined;
        this.phase = 'hash';
        this.pos = 0;
        return;
      }
    }
  }

  /**
   * CRC-32C of each version's revision key and value, in revision order: `budget` versions, or
   * fewer once SLICE_BYTES of keys and values are hashed (the CRC's time goes by bytes:
   * a step over a few large values would otherwise hold the loop for a whole hash).
   */
  private hashSome(budget: number): boolean {
    const n = this.order.length;
    const slice = new SliceBudget(budget);
    let crc = this.crc;
    let o = this.pos;
    while (o < n) {
      const i = this.order[o++]!;
      const key = this.keys[i]!;
      const r = this.revs[i]!;
      crc = hashVersion(crc, key, r, this.scratch);
      if (slice.spend(key.length + r.value.length)) break;
    }
    this.crc = crc;
    this.pos = o;
    if (o < n) return false;
    this.phase = 'done';
    return true;
  }
}

/**
 * Continues `crc` over one version as etcd's backend stores it: the revision key (main
 * revision, '_', sub revision, both int64 big-endian, and 't' for a deletion), then the
 * marshalled mvccpb.KeyValue (fields in order, zero values left out; a deletion stores the
 * key alone). Small versions are laid out in `scratch` and hashed in one call; a key or value
 * that does not fit is hashed where it is.
 */
function hashVersion(crc: number, key: string, r: Rev, scratch: Buffer): number {
  const tomb = r.version === 0n;
  let o = putRevisionKey(scratch, 0, r.mod, r.sub, tomb);
  // Room for the fixed fields: tags and varints take at most 5 * 11 bytes.
  const bytes = (b: string): void => {
    if (b.length === 0) return;
    o = putVarint(scratch, o, b.length);
    if (o + b.length + 64 <= scratch.length) {
      o += scratch.write(b, o, 'latin1');
    } else {
      crc = crc32c(bytesOf(b), crc32c(scratch.subarray(0, o), crc));
      o = 0;
    }
  };
  const int = (tag: number, v: bigint): void => {
    if (v === 0n) return;
    scratch[o++] = tag;
    o = putVarint(scratch, o, v);
  };
  if (key.length > 0) scratch[o++] = 0x0a;
  bytes(key);
  if (!tomb) {
    int(0x10, r.create);
    int(0x18, r.mod);
    int(0x20, r.version);
    if (r.value.length > 0) scratch[o++] = 0x2a;
    bytes(r.value);
    int(0x30, r.lease);
  }
  return crc32c(scratch.subarray(0, o), crc);
}

function makeEvent(key: string, r: Rev, prev: Rev | undefined): Event {
  if (r.version === 0n) {
    return {
      type: Event_EventType.DELETE,
      kv: { key: bytesOf(key), createRevision: 0n, modRevision: r.mod, version: 0n, value: NO_BYTES, lease: 0n },
      prevKv: prev ? toKeyValue(key, prev) : undefined,
    };
  }
  return { type: Event_EventType.PUT, kv: toKeyValue(key, r), prevKv: prev ? toKeyValue(key, prev) : undefined };
}

/** How to take back one step of a write transaction (see WriteTxn.rollback). */
type Undo = { pop: KeyRecord; drop: boolean } | { attach: bigint; key: string } | { detach: bigint; key: string };

/** The writes of one revision. */
export class WriteTxn implements RevisionWrites {
  /** What this transaction wrote, in order: the events are made from it only when asked. */
  private readonly changes: Array<{ rec: KeyRecord; r: Rev; prev: Rev | undefined }> = [];
  private sub = 0;
  /** Every change made so far, in order, so that a failed transaction can be taken back. */
  private readonly undo: Undo[] = [];

  constructor(
    private readonly store: MvccStore,
    readonly rev: bigint,
  ) {}

  /** The store's op counters (etcd's mvcc metrics). */
  get stats(): MvccStats {
    return this.store.stats;
  }

  /** Whether this transaction has written anything (then it takes a new revision). */
  get changed(): boolean {
    return this.changes.length > 0;
  }

  get count(): number {
    return this.changes.length;
  }

  eventBytes(): number {
    let n = 0;
    for (const c of this.changes) n += eventWeight(c.rec.key, c.r, c.prev);
    return n;
  }

  keySpan(): { lo: string; hi: string } {
    let lo = this.changes[0]!.rec.key;
    let hi = lo;
    for (const c of this.changes) {
      const k = c.rec.key;
      if (k < lo) lo = k;
      else if (k > hi) hi = k;
    }
    return { lo, hi };
  }

  /** The records this transaction wrote, in write order. */
  changedRecords(): KeyRecord[] {
    return this.changes.map((c) => c.rec);
  }

  /** The watch events of this transaction's writes, in order. */
  events(): Event[] {
    return this.changes.map((c) => makeEvent(c.rec.key, c.r, c.prev));
  }

  /**
   * Reads the live state, including this transaction's earlier writes (or the store at
   * `o.revision`), in steps: `slice` keys of the index per step (a Txn applied in slices).
   */
  *rangeInSlices(key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions = {}, slice = WRITE_SLICE): Generator<void, RangeResult> {
    const c = new RangeCollector(o);
    if (o.revision !== undefined && o.revision > 0n) {
      const rev = this.store.checkReadRev(o.revision);
      yield* this.recordsInSlices(key, end, slice, (rec) => {
        const r = rec.at(rev);
        if (r) c.take(rec, r);
      });
      return { kvs: c.kvs, count: c.count, rev: this.store.currentRev };
    }
    yield* this.liveInSlices(key, end, slice, (rec, r) => c.take(rec, r));
    return { kvs: c.kvs, count: c.count, rev: this.changed ? this.rev : this.store.currentRev };
  }

  /** rangeInSlices in one go. */
  range(key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions = {}): RangeResult {
    return runSteps(this.rangeInSlices(key, end, o));
  }

  /**
   * Whether `holds` is true of every live key-value in [key, end) (this transaction's writes
   * included), asked in key order until the first that it is not; undefined if there is none.
   * A compare over a range of many keys: no list of them first, and no more once one fails;
   * `slice` keys of the index visited per step (MvccStore.writeInSlices).
   */
  *everyInSlices(key: Uint8Array, end: Uint8Array | undefined, holds: (kv: StoredKeyValue) => boolean, slice = WRITE_SLICE): Generator<void, boolean | undefined> {
    let any = false;
    const all = yield* this.liveInSlices(key, end, slice, (rec, r) => {
      any = true;
      return holds(new StoredKeyValue(rec.key, r, false));
    });
    return any ? all : undefined;
  }

  /**
   * Visits the live keys in etcd's range [key, end) in key order, `slice` keys of the index per
   * step, until `f` answers false (then false). `f` may delete the key it is given: a version
   * appended to a key changes no record of the index.
   */
  private liveInSlices(key: Uint8Array, end: Uint8Array | undefined, slice: number, f: (rec: KeyRecord, r: Rev) => boolean | void): Generator<void, boolean> {
    return this.recordsInSlices(key, end, slice, (rec) => {
      const r = rec.latest();
      return r ? f(rec, r) : undefined;
    });
  }

  /** Visits the records of the index in [key, end) as liveInSlices does, whatever versions they hold. */
  private *recordsInSlices(key: Uint8Array, end: Uint8Array | undefined, slice: number, f: (rec: KeyRecord) => boolean | void): Generator<void, boolean> {
    const { lo, hi, single } = rangeBounds(key, end);
    if (single) {
      const rec = this.store.record(lo, false);
      return !rec || f(rec) !== false;
    }
    if (hi !== undefined && hi <= lo) return true;
    let after: string | undefined;
    for (;;) {
      const { batch, full } = this.store.batchAfter(lo, hi, after, new SliceBudget(slice));
      for (const rec of batch) if (f(rec) === false) return false;
      if (!full) return true;
      after = batch[batch.length - 1]!.key;
      yield;
    }
  }

  get(key: Uint8Array): KeyValue | undefined {
    const rec = this.store.record(keyStr(key), false);
    const r = rec?.latest();
    return rec && r ? new StoredKeyValue(rec.key, r, false) : undefined;
  }

  /** Undoes every write of this transaction, newest first. */
  rollback(): void {
    for (let i = this.undo.length - 1; i >= 0; i--) {
      const u = this.undo[i]!;
      if ('pop' in u) {
        const r = u.pop.popNewest();
        if (r) this.store.account(-versionCost(r.value));
        if (u.drop) this.store.dropRecord(u.pop.key);
      } else if ('attach' in u) this.store.leases?.detach(u.attach, u.key);
      else this.store.leases?.attach(u.detach, u.key);
    }
    this.undo.length = 0;
    this.changes.length = 0;
  }

  put(key: Buffer, value: Buffer, lease: bigint): KeyValue | undefined {
    const k = keyStr(key);
    const rec = this.store.record(k, true)!;
    // Only a record made just now has no versions: prune and rollback drop emptied ones.
    const fresh = rec.count === 0;
    const prev = rec.latest();
    const r: Rev = {
      mod: this.rev,
      sub: this.sub++,
      create: prev ? prev.create : this.rev,
      version: prev ? prev.version + 1n : 1n,
      // A copy (a string): `value` may be a view of a request or a log entry.
      value: latin1(value),
      lease,
    };
    rec.append(r);
    this.store.account(versionCost(r.value));
    this.undo.push({ pop: rec, drop: fresh });
    if (prev && prev.lease !== 0n && prev.lease !== lease) {
      this.store.leases?.detach(prev.lease, k);
      this.undo.push({ detach: prev.lease, key: k });
    }
    if (lease !== 0n && prev?.lease !== lease) {
      // Not when the key already belongs to it: undoing that attach would wrongly detach it.
      this.store.leases?.attach(lease, k);
      this.undo.push({ attach: lease, key: k });
    }
    // The watch event's prev_kv (eventPrev): a created key has none; a put's live version is
    // from an earlier revision (a txn puts a key at most once).
    this.changes.push({ rec, r, prev: r.create === r.mod ? undefined : prev });
    return prev ? new StoredKeyValue(rec.key, prev, false) : undefined;
  }

  /** Deletes every live key in the range (deleteRangeInSlices in one go); returns the deleted key-values. */
  deleteRange(key: Uint8Array, end: Uint8Array | undefined): KeyValue[] {
    return runSteps(this.deleteRangeInSlices(key, end, true)).prevKvs;
  }

  /**
   * Deletes every live key in the range, in steps for MvccStore.writeInSlices (`slice` keys of
   * the index visited per step); returns how many, and the deleted key-values with `keepPrev`
   * (without, a DeleteRange over many keys makes no object per key). Whatever is visible outside
   * the store waits for the last step: the keys' leases are detached then (the versions
   * themselves are invisible until the revision is published).
   */
  *deleteRangeInSlices(key: Uint8Array, end: Uint8Array | undefined, keepPrev: boolean, slice = WRITE_SLICE): Generator<void, { deleted: number; prevKvs: KeyValue[] }> {
    const prevKvs: KeyValue[] = [];
    let deleted = 0;
    const detach = this.detachLater();
    yield* this.liveInSlices(key, end, slice, (rec, prev) => {
      this.tombstone(rec, prev);
      deleted++;
      if (keepPrev) prevKvs.push(new StoredKeyValue(rec.key, prev, false));
    });
    detach();
    return { deleted, prevKvs };
  }

  /**
   * Deletes the keys named (index strings, in the order given) that are live, `slice` of them
   * per step (see deleteRangeInSlices); returns how many were. A revoked lease's keys: no range
   * to walk, nor key bytes to make; `revoking` names that lease, whose keys are then not
   * detached from it (it is revoked whole after the write: detachLater).
   */
  *deleteKeysInSlices(keys: readonly string[], slice = WRITE_SLICE, revoking?: bigint): Generator<void, number> {
    const detach = this.detachLater(revoking);
    let n = 0;
    for (let i = 0; i < keys.length; i++) {
      if (i > 0 && i % slice === 0) yield;
      const rec = this.store.record(keys[i]!, false);
      const prev = rec?.latest();
      if (!rec || !prev) continue;
      this.tombstone(rec, prev);
      n++;
    }
    detach();
    return n;
  }

  /** Leases to detach keys from, held back until the write in slices is whole (deleteRangeInSlices). */
  private pendingDetach: Array<{ lease: bigint; key: string }> | undefined;
  /** The lease being revoked by the write in slices: its keys are not detached (detachLater). */
  private revoking: bigint | undefined;

  /**
   * Holds back lease detaches from now on; the function returned makes them (and stops holding
   * back). Keys of the lease being revoked (`revoking`) are not detached at all: the lease goes
   * whole once its keys are deleted (Lessor.revoke), and detaching 200,000 keys one by one at
   * the end was a turn of ~0.1 s on its own.
   */
  private detachLater(revoking?: bigint): () => void {
    const held: Array<{ lease: bigint; key: string }> = [];
    this.pendingDetach = held;
    this.revoking = revoking;
    return () => {
      this.pendingDetach = undefined;
      this.revoking = undefined;
      for (const d of held) this.detach(d.lease, d.key);
    };
  }

  private detach(lease: bigint, key: string): void {
    this.store.leases?.detach(lease, key);
    this.undo.push({ detach: lease, key });
  }

  /** Deletes the live key of `rec`, whose live version is `prev`. */
  private tombstone(rec: KeyRecord, prev: Rev): void {
    const r: Rev = { mod: this.rev, sub: this.sub++, create: 0n, version: 0n, value: '', lease: 0n };
    rec.append(r);
    this.store.account(versionCost(r.value));
    this.undo.push({ pop: rec, drop: false });
    if (prev.lease !== 0n && prev.lease !== this.revoking) {
      if (this.pendingDetach) this.pendingDetach.push({ lease: prev.lease, key: rec.key });
      else this.detach(prev.lease, rec.key);
    }
    // The watch event's prev_kv (eventPrev): the key before this revision, which is not `prev`
    // when this txn put the key before deleting it.
    const h = rec.versions();
    this.changes.push({ rec, r, prev: prev.mod < r.mod ? prev : eventPrev(h, h.length - 1) });
  }
}

/**
 * Keys of the index a write in slices (MvccStore.writeInSlices: a DeleteRange, a revoked lease's
 * keys, a Txn's compares and the ranges it reads) visits per step (~a few ms each).
 */
export const WRITE_SLICE = 5000;
