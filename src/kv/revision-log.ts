// Which keys each revision wrote: the history read by revision. A watcher that is behind (a
// slow consumer, or a watch created with an old start revision) must get every event after a
// revision in revision order; the store is indexed by key, so without this log each batch of
// its catch-up walked every key of its range (at a million keys, 40–370 ms per batch of 1,000
// events, a stall of the member each time). With it a batch costs the revisions it reads.
//
// Memory: one slot (a pointer) per revision, plus an array for a revision that wrote several
// keys; slots below the compact revision are dropped as compactions come (they are never read:
// reads below it fail with ErrCompacted).
//
// Invariant (when not stale): slots[i] holds the records revision `base + i` wrote (a record
// may appear more than once; readers dedupe), and base + slots.length = the store's current
// revision + 1. The log turns stale when a snapshot is loaded into the store (it is then made
// from the loaded versions, in one pass over them, at the first write or read after the load)
// or when the store's revision is set from outside otherwise (then it is rebuilt by a walk of
// the store when next read).

export class RevisionLog<R> {
  private slots: Array<R | R[] | undefined> = [];
  /** The revision of slots[0]. */
  private base: bigint;
  private stale = false;
  /**
   * While stale after a load (a snapshot image into a new store): every (record, revision) pair
   * loaded, to rebuild from without walking the store. Undefined: rebuilt by a walk.
   */
  private loadedPairs: { recs: R[]; revs: number[] } | undefined;

  /** `next`: the revision the next write will have. */
  constructor(next: bigint) {
    this.base = next;
  }

  /**
   * Records what revision `rev` wrote (once per write revision, in order; keeps `records`).
   * `first`: the store's oldest readable revision (its compact revision, or 1).
   */
  append(rev: bigint, records: readonly R[], first: bigint): void {
    // The first write after a load: the log is made from what was loaded (its pairs are
    // dropped, so they cannot grow), in one pass over them.
    if (this.stale && this.loadedPairs) this.rebuild(first, rev - 1n, undefined);
    if (this.stale) return;
    if (this.base + BigInt(this.slots.length) !== rev) {
      // Not the revision after the last: the store's revision was set from outside.
      this.invalidate();
      return;
    }
    this.slots.push(records.length === 1 ? records[0]! : (records as R[]));
  }

  /** A key's versions loaded into the store: remembered, so the log is rebuilt from them. */
  loaded(rec: R, versions: ReadonlyArray<{ readonly mod: bigint }>): void {
    if (!this.stale) {
      this.stale = true;
      // What is loaded from here on is the whole log only if it held nothing before.
      this.loadedPairs = this.slots.length === 0 ? { recs: [], revs: [] } : undefined;
      this.slots = [];
    }
    const p = this.loadedPairs;
    if (!p) return;
    for (const v of versions) {
      p.recs.push(rec);
      p.revs.push(Number(v.mod));
    }
  }

  /** Forgets what it holds; rebuilt by a walk of the store when next read. */
  invalidate(): void {
    this.stale = true;
    this.slots = [];
    this.loadedPairs = undefined;
  }

  /**
   * Drops the revisions below `rev` (compacted). Amortized: the array is cut only once the part
   * to drop is at least half of it (reads skip the rest: they start at or above `rev`).
   */
  trimBelow(rev: bigint): void {
    if (this.stale || rev <= this.base) return;
    const drop = Number(rev - this.base);
    if (drop < this.slots.length / 2) return;
    this.slots = drop >= this.slots.length ? [] : this.slots.slice(drop);
    this.base += BigInt(drop);
  }

  /**
   * The records revision `rev` wrote (one, several, or none). If the log is stale it is rebuilt
   * first, for the revisions `from` (the store's compact revision) to `to` (its current one): from
   * the pairs loaded, or by `walk`, which is asked for every (record, revision) pair the store holds.
   */
  at(rev: bigint, from: bigint, to: bigint, walk: (add: (rec: R, rev: bigint) => void) => void): R | R[] | undefined {
    if (this.stale) this.rebuild(from, to, walk);
    if (rev < this.base) return undefined;
    return this.slots[Number(rev - this.base)];
  }

  private rebuild(from: bigint, to: bigint, walk: ((add: (rec: R, rev: bigint) => void) => void) | undefined): void {
    this.stale = false;
    this.base = from;
    this.slots = new Array<R | R[] | undefined>(Math.max(0, Number(to - from + 1n)));
    const p = this.loadedPairs;
    this.loadedPairs = undefined;
    if (!p) {
      walk?.((rec, r) => {
        if (r >= from && r <= to) this.place(Number(r - from), rec);
      });
      return;
    }
    // Revisions as numbers here (exact below 2^53): one pass with no bigint per pair.
    const lo = Number(from);
    const n = this.slots.length;
    for (let k = 0; k < p.recs.length; k++) {
      const i = p.revs[k]! - lo;
      if (i >= 0 && i < n) this.place(i, p.recs[k]!);
    }
  }

  /** Adds `rec` to slot `i` (while rebuilding). */
  private place(i: number, rec: R): void {
    const s = this.slots[i];
    if (s === undefined) this.slots[i] = rec;
    else if (Array.isArray(s)) s.push(rec);
    else this.slots[i] = [s, rec];
  }
}
