// The Raft log as the core sees it: stable entries (in Storage) followed by the unstable tail,
// plus the committed and applied cursors.
//
//   firstIndex-1 (snapshot)   firstIndex ........ unstable.offset-1   unstable.offset ... lastIndex
//   term kept, entry gone     stable: in Storage, durable             unstable: handed out, not durable
//
// Invariants:
// - applied <= applying <= committed <= lastIndex, always;
// - firstIndex-1 <= applied, except while a snapshot from the leader is pending in the unstable
//   part: restore() moves firstIndex past applied at once, and applying that snapshot is what
//   brings applied up to it. The driver never compacts Storage past applied, so compaction
//   keeps it;
// - committed never decreases (commitTo ignores lower values) and entries at or below it are
//   never truncated: a conflict there means a corrupted log, and the core throws;
// - the unstable part may start at or below Storage's last index: its entries replace that
//   suffix of Storage when the driver persists them (a follower's log truncated by the leader).

import { ErrCompacted, ErrUnavailable } from './errors.js';
import type { Logger } from './logger.js';
import { Unstable } from './log-unstable.js';
import type { Storage } from './storage.js';
import { type Entry, type Snapshot, NO_LIMIT, entrySize, limitSize } from './types.js';

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be stored on a quorum. */
  committed: number;
  /** Highest index the application has applied. Invariant: applied <= committed. */
  applied: number;
  /**
   * Highest index handed to the application in a Ready (applied <= applying <= committed).
   * With one Ready outstanding at a time it differs from applied only between ready() and
   * advance().
   */
  applying: number;

  constructor(
    readonly storage: Storage,
    readonly logger: Logger,
    /** Upper bound on the size of committed entries handed out in one Ready. */
    readonly maxApplyingEntsSize: number = NO_LIMIT,
  ) {
    const firstIndex = storage.firstIndex();
    const lastIndex = storage.lastIndex();
    this.unstable = new Unstable(lastIndex + 1);
    this.committed = firstIndex - 1;
    this.applied = firstIndex - 1;
    this.applying = firstIndex - 1;
  }

  toString(): string {
    return `committed=${this.committed}, applied=${this.applied}, unstable.offset=${this.unstable.offset}, len(unstable.Entries)=${this.unstable.entries.length}`;
  }

  /**
   * The follower side of AppendEntries: if our log has (index, logTerm), append `ents` after it
   * (truncating any conflicting suffix) and advance commit. Returns the index of the last new
   * entry, or undefined if the consistency check failed.
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNewIndex = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new Error(`entry ${ci} conflict with committed entry [committed(${this.committed})]`);
      }
      const offset = index + 1;
      if (ci - offset > ents.length) throw new Error(`index ${ci - offset} is out of range [${ents.length}]`);
      this.append(ents.slice(ci - offset));
    }
    this.commitTo(Math.min(committed, lastNewIndex));
    return lastNewIndex;
  }

  append(ents: readonly Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    const after = ents[0]!.index - 1;
    if (after < this.committed) {
      throw new Error(`after(${after}) is out of range [committed(${this.committed})]`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry in `ents` that is new or conflicts (same index, other term)
   * with our log, or 0 if all of them are already present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) {
        if (e.index <= this.lastIndex()) {
          this.logger.info(
            `found conflict at index ${e.index} [existing term: ${this.zeroTermOnErr(e.index)}, conflicting term: ${e.term}]`,
          );
        }
        return e.index;
      }
    }
    return 0;
  }

  /**
   * The largest (index, term) at or below `index` whose term is <= `term`: where our log could
   * still match a log whose entry at `index` has term `term`. Used for fast backtracking.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (; index > 0; index--) {
      const ourTerm = this.termOrUndefined(index);
      // Unknown (compacted or unavailable): it may match, let the leader decide.
      if (ourTerm === undefined) return { index, term: 0 };
      if (ourTerm <= term) return { index, term: ourTerm };
    }
    return { index: 0, term: 0 };
  }

  unstableEntries(): Entry[] {
    return this.unstable.entries.slice();
  }

  /**
   * Committed entries not yet applied (at most maxApplyingEntsSize bytes). Nothing is returned
   * while a snapshot is pending: the state machine must be restored from it first.
   *
   * They may still be in the unstable part (a follower learns the commit index in the same
   * MsgApp that brings the entries): that is safe because the same Ready carries them in
   * `entries`, and the contract persists them (step 2) before applying (step 4).
   */
  nextCommittedEnts(): Entry[] {
    if (this.unstable.snapshot) return [];
    const off = Math.max(this.applied + 1, this.firstIndex());
    if (this.committed + 1 > off) {
      return this.slice(off, this.committed + 1, this.maxApplyingEntsSize);
    }
    return [];
  }

  hasNextCommittedEnts(): boolean {
    if (this.unstable.snapshot) return false;
    const off = Math.max(this.applied + 1, this.firstIndex());
    return this.committed + 1 > off;
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== undefined;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /**
   * The last index known to be durable (persisted by the driver and confirmed in advance()):
   * what the leader may count itself for towards a commit.
   */
  lastStableIndex(): number {
    if (this.unstable.snapshot) return 0; // nothing is stable until the snapshot is
    return this.unstable.offset - 1;
  }

  /** Raises the commit index (never lowers it); committing past lastIndex is a corrupted log. */
  commitTo(toCommit: number): void {
    // Never decrease commit.
    if (this.committed < toCommit) {
      if (this.lastIndex() < toCommit) {
        throw new Error(
          `tocommit(${toCommit}) is out of range [lastIndex(${this.lastIndex()})]. Was the raft log corrupted, truncated, or lost?`,
        );
      }
      this.committed = toCommit;
    }
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (this.committed < i || i < this.applied) {
      throw new Error(`applied(${i}) is out of range [prevApplied(${this.applied}), committed(${this.committed})]`);
    }
    this.applied = i;
    if (this.applying < i) this.applying = i;
  }

  stableTo(i: number, t: number): void {
    this.unstable.stableTo(i, t);
  }

  stableSnapTo(i: number): void {
    this.unstable.stableSnapTo(i);
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term of entry i. Throws ErrCompacted / ErrUnavailable outside [firstIndex-1, lastIndex]. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    // The entry just before firstIndex is compacted, but its term is kept for matching.
    if (i + 1 < this.firstIndex()) throw new ErrCompacted();
    if (i > this.lastIndex()) throw new ErrUnavailable();
    return this.storage.term(i);
  }

  /** The term of entry i, or undefined outside the available range (never throws: hot path). */
  termOrUndefined(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i + 1 < this.firstIndex() || i > this.lastIndex()) return undefined;
    try {
      return this.storage.term(i);
    } catch {
      return undefined; // raced with compaction
    }
  }

  zeroTermOnErr(i: number): number {
    return this.termOrUndefined(i) ?? 0;
  }

  /** Entries from i to the end, at most maxSize bytes. Throws ErrCompacted. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  allEntries(): Entry[] {
    for (;;) {
      try {
        return this.entries(this.firstIndex(), NO_LIMIT);
      } catch (e) {
        if (e instanceof ErrCompacted) continue; // racing with compaction
        throw e;
      }
    }
  }

  /**
   * Election restriction (§5.4.1): a candidate whose last entry is (lasti, term) is at least as
   * up to date as us if its last term is higher, or equal with an index at least ours.
   */
  isUpToDate(lasti: number, term: number): boolean {
    const ourTerm = this.lastTerm();
    return term > ourTerm || (term === ourTerm && lasti >= this.lastIndex());
  }

  matchTerm(i: number, term: number): boolean {
    return this.termOrUndefined(i) === term;
  }

  /**
   * Commit up to maxIndex only if that entry is of the leader's current term (paper §5.4.2,
   * Figure 8): counting replicas of an older-term entry does not make it committed.
   */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (term !== 0 && maxIndex > this.committed && this.zeroTermOnErr(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  /**
   * Replaces the log by a snapshot (the caller checked it is newer than committed): the log
   * becomes empty after it, committed jumps to its index, applied stays behind until the
   * driver applies the snapshot (see the invariants at the top).
   */
  restore(s: Snapshot): void {
    this.logger.info(`log [${this.toString()}] starts to restore snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`);
    this.committed = s.metadata.index;
    this.applying = Math.min(this.applying, s.metadata.index);
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi) from storage and the unstable tail, at most maxSize bytes (>= 1 entry). */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    let ents: Entry[] = [];
    if (lo < this.unstable.offset) {
      const stored = this.storage.entries(lo, Math.min(hi, this.unstable.offset), maxSize);
      // Storage returned fewer entries than asked for because of the size limit.
      if (stored.length < Math.min(hi, this.unstable.offset) - lo) return stored;
      ents = stored;
    }
    if (hi > this.unstable.offset) {
      const unstable = this.unstable.slice(Math.max(lo, this.unstable.offset), hi);
      ents = ents.length > 0 ? ents.concat(unstable) : unstable;
    }
    return maxSize >= NO_LIMIT ? ents : limitSize(ents, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw new Error(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted();
    const length = this.lastIndex() + 1 - fi;
    if (hi > fi + length) throw new Error(`slice[${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
  }
}

export { entrySize };
