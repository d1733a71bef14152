// The tail of the log that is not yet durable: entries (and possibly a snapshot) the driver
// has been handed in a Ready but has not yet confirmed as persisted.
//
// Invariants:
// - entries[i] has index offset + i, and the entries are contiguous;
// - with a snapshot, offset > snapshot index: restore() sets offset to index + 1, and later
//   appends start past the committed index, which the snapshot set to its own;
// - without a snapshot, offset - 1 is the last index of our log known to be durable
//   (RaftLog.lastStableIndex); Storage may hold more, a suffix that `entries` replaced and that
//   their first persist truncates;
// - entries leave only through stableTo, and only if the entry at that index still has the
//   term that was persisted (it may have been overwritten by a new leader's entries since).
//
// TODO(raftkv): no offsetInProgress/snapshotInProgress as in etcd-io/raft: every Ready hands
// out the whole unstable tail, which is right only because the previous Ready was advanced
// first (one outstanding Ready, see RawNode.ready); asynchronous storage writes need them.

import type { Entry, Snapshot } from './types.js';

export class Unstable {
  /** An incoming snapshot, if any, to be persisted before the entries. */
  snapshot: Snapshot | undefined;
  /** entries[i] has index offset + i. */
  entries: Entry[] = [];
  offset: number;

  constructor(offset: number) {
    this.offset = offset;
  }

  /** First index, if the unstable part starts with a snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot ? this.snapshot.metadata.index + 1 : undefined;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    if (this.snapshot) return this.snapshot.metadata.index;
    return undefined;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    const last = this.maybeLastIndex();
    if (last === undefined || i > last) return undefined;
    return this.entries[i - this.offset]!.term;
  }

  /** Entries up to (i, t) are durable: drop them from the unstable tail. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    // Only if the entry is still the one we handed out (it may have been overwritten since).
    if (gt === undefined || gt !== t || i < this.offset) return;
    this.entries = this.entries.slice(i + 1 - this.offset);
    this.offset = i + 1;
  }

  stableSnapTo(i: number): void {
    if (this.snapshot && this.snapshot.metadata.index === i) this.snapshot = undefined;
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.entries = [];
    this.snapshot = s;
  }

  truncateAndAppend(ents: readonly Entry[]): void {
    const fromIndex = ents[0]!.index;
    if (fromIndex === this.offset + this.entries.length) {
      // The common case: a contiguous append.
      for (const e of ents) this.entries.push(e);
    } else if (fromIndex <= this.offset) {
      // Replace the whole unstable tail (the stable part's conflicting suffix is truncated
      // by the driver when it persists these entries).
      this.offset = fromIndex;
      this.entries = ents.slice();
    } else {
      // Truncate to fromIndex (exclusive), then append.
      this.entries = this.entries.slice(0, fromIndex - this.offset);
      for (const e of ents) this.entries.push(e);
    }
  }

  slice(lo: number, hi: number): Entry[] {
    if (lo > hi) throw new Error(`invalid unstable.slice ${lo} > ${hi}`);
    const upper = this.offset + this.entries.length;
    if (lo < this.offset || hi > upper) {
      throw new Error(`unstable.slice[${lo},${hi}) out of bound [${this.offset},${upper}]`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
