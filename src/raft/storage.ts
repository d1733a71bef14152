// The log storage the core reads from. It is read-only to the core: the driver writes to it
// (after making the writes durable elsewhere, e.g. the WAL) and the core only reads back
// stable entries, terms and the latest snapshot.

import {
  ErrCompacted,
  ErrSnapOutOfDate,
  ErrUnavailable,
} from './errors.js';
import {
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  emptyHardState,
  emptySnapshot,
  EntryType,
  limitSize,
} from './types.js';

export interface InitialState {
  hardState: HardState;
  confState: ConfState;
}

export interface Storage {
  /** Persisted HardState and ConfState, read once at start-up. */
  initialState(): InitialState;
  /**
   * Entries in [lo, hi), at most maxSize bytes (but at least one entry if any).
   * Throws ErrCompacted if lo is below firstIndex, ErrUnavailable if hi is past lastIndex + 1.
   */
  entries(lo: number, hi: number, maxSize: number): Entry[];
  /** Term of entry i, for i in [firstIndex - 1, lastIndex]. Throws ErrCompacted / ErrUnavailable. */
  term(i: number): number;
  lastIndex(): number;
  /** Index of the first entry still available (older ones are in the snapshot). */
  firstIndex(): number;
  /** The most recent snapshot; may throw ErrSnapshotTemporarilyUnavailable. */
  snapshot(): Snapshot;
}

/**
 * An in-memory Storage. The server uses it as the in-memory mirror of its WAL (as etcd does):
 * everything since the last snapshot lives in memory, durability comes from the WAL.
 */
export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = emptySnapshot();
  // ents[0] is a dummy entry holding the index and term of the last compaction point: its term
  // answers term(firstIndex-1), which the consistency check of the first MsgApp after the
  // compaction point needs. Invariant: ents[i].index === ents[0].index + i.
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }];

  initialState(): InitialState {
    return { hardState: { ...this.hardState }, confState: this.snap.metadata.confState };
  }

  /** Sets the initial configuration of a brand-new cluster member (before any entry exists). */
  bootstrap(cs: ConfState): void {
    if (this.lastIndex() !== 0 || this.snap.metadata.index !== 0) throw new Error('can only bootstrap an empty storage');
    this.snap = { ...this.snap, metadata: { ...this.snap.metadata, confState: cs } };
  }

  setHardState(hs: HardState): void {
    this.hardState = { ...hs };
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.ents[0]!.index;
    if (lo <= offset) throw new ErrCompacted();
    if (hi > this.lastIndex() + 1) {
      throw new Error(`entries' hi(${hi}) is out of bound lastindex(${this.lastIndex()})`);
    }
    // Only the dummy entry: nothing available.
    if (this.ents.length === 1) throw new ErrUnavailable();
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.ents[0]!.index;
    if (i < offset) throw new ErrCompacted();
    if (i - offset >= this.ents.length) throw new ErrUnavailable();
    return this.ents[i - offset]!.term;
  }

  lastIndex(): number {
    return this.ents[0]!.index + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.ents[0]!.index + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the contents with a snapshot (a follower installing the leader's snapshot). */
  applySnapshot(snap: Snapshot): void {
    const idx = this.snap.metadata.index;
    if (idx >= snap.metadata.index) throw new ErrSnapOutOfDate();
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: new Uint8Array(0) }];
  }

  /**
   * Records a snapshot of the state machine at index i (which must be applied) so that it can
   * be sent to slow followers; the caller then usually compacts the log up to some index.
   */
  createSnapshot(i: number, cs: ConfState | undefined, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) throw new ErrSnapOutOfDate();
    const offset = this.ents[0]!.index;
    if (i > this.lastIndex()) {
      throw new Error(`snapshot ${i} is out of bound lastindex(${this.lastIndex()})`);
    }
    this.snap = {
      data,
      metadata: {
        index: i,
        term: this.ents[i - offset]!.term,
        confState: cs ?? this.snap.metadata.confState,
      },
    };
    return this.snap;
  }

  /**
   * Discards all entries up to compactIndex, which becomes the dummy entry (firstIndex is then
   * compactIndex + 1). The caller must not compact past the applied index: the core reads the
   * committed entries it hands out for applying from here.
   */
  compact(compactIndex: number): void {
    const offset = this.ents[0]!.index;
    if (compactIndex <= offset) throw new ErrCompacted();
    if (compactIndex > this.lastIndex()) {
      throw new Error(`compact ${compactIndex} is out of bound lastindex(${this.lastIndex()})`);
    }
    const i = compactIndex - offset;
    const head = this.ents[i]!;
    const rest = this.ents.slice(i + 1);
    this.ents = [{ term: head.term, index: head.index, type: EntryType.Normal, data: new Uint8Array(0) }, ...rest];
  }

  /**
   * Appends entries, truncating any conflicting suffix. Entries must be contiguous and must
   * not leave a gap after the current last index.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return; // all already compacted
    let ents = entries as Entry[];
    if (first > ents[0]!.index) ents = ents.slice(first - ents[0]!.index);
    const offset = ents[0]!.index - this.ents[0]!.index;
    if (this.ents.length > offset) {
      this.ents = this.ents.slice(0, offset);
      for (const e of ents) this.ents.push(e);
    } else if (this.ents.length === offset) {
      for (const e of ents) this.ents.push(e);
    } else {
      throw new Error(`missing log entry [last: ${this.lastIndex()}, append at: ${ents[0]!.index}]`);
    }
  }

  /** Number of entries held in memory (for tests and metrics). */
  entryCount(): number {
    return this.ents.length - 1;
  }
}
