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
// revision + 1. The log turns stale when a store's revision is set from outside (a snapshot
// loaded into it) and is rebuilt from the records' own versions when next read.

export class RevisionLog<R> {
  private slots: Array<R | R[] | undefined> = [];
  /** The revision of slots[0]. */
  private base: bigint;
  private stale = false;

  /** `next`: the revision the next write will have. */
  constructor(next: bigint) {
    this.base = next;
  }

  /** Records what revision `rev` wrote (once per write revision, in order; keeps `records`). */
  append(rev: bigint, records: readonly R[]): void {
    if (this.stale) return;
    if (this.base + BigInt(this.slots.length) !== rev) {
      // Not the revision after the last: the store's revision was set from outside.
      this.invalidate();
      return;
    }
    this.slots.push(records.length === 1 ? records[0]! : (records as R[]));
  }

  /** Forgets what it holds; rebuilt when next read. */
  invalidate(): void {
    this.stale = true;
    this.slots = [];
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
   * The records revision `rev` wrote (one, several, or none). Before the first read after the log
   * turned stale, `rebuild` is asked for every (record, revision) pair the store holds from `from`
   * (its compact revision) to `to` (its current revision).
   */
  at(rev: bigint, from: bigint, to: bigint, rebuild: (add: (rec: R, rev: bigint) => void) => void): R | R[] | undefined {
    if (this.stale) {
      this.stale = false;
      this.base = from;
      this.slots = new Array<R | R[] | undefined>(Math.max(0, Number(to - from + 1n)));
      rebuild((rec, r) => {
        if (r < from || r > to) return;
        const i = Number(r - from);
        const s = this.slots[i];
        if (s === undefined) this.slots[i] = rec;
        else if (Array.isArray(s)) s.push(rec);
        else this.slots[i] = [s, rec];
      });
    }
    if (rev < this.base) return undefined;
    return this.slots[Number(rev - this.base)];
  }
}
