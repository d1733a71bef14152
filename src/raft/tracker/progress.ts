// The leader's view of one follower's log: what it has (match), what to send next (next), and
// how to send it (probe one message at a time, replicate optimistically, or wait for a snapshot).
//
// Progress is a small state machine whose transitions are driven from raft.ts (stepLeader,
// maybeSendAppend). What each state allows:
//
//   Probe      next is a guess (match+1 or a hint); at most one MsgApp with entries is in flight,
//              then sending pauses until a response or the next heartbeat response. A rejection
//              moves next back, never below match+1. inflights is empty.
//   Replicate  next runs ahead of match optimistically: every sent MsgApp advances next past
//              its entries and is recorded in inflights, so (match, next) is what is in flight.
//              Sending pauses only while inflights is full. A rejection means a message was
//              lost or the follower's log diverged: back to Probe from match+1.
//   Snapshot   nothing but the snapshot is sent (isPaused is always true). Left when an
//              MsgAppResp shows the follower reconnected to our log (match+1 >= firstIndex),
//              or when the driver reports the transfer's outcome (MsgSnapStatus).

import { Inflights } from './inflights.js';

export enum ProgressState {
  /** We don't know where the follower's log ends: send one MsgApp per heartbeat until acked. */
  Probe = 'StateProbe',
  /** Steady state: stream entries optimistically, bounded by the inflight window. */
  Replicate = 'StateReplicate',
  /** The follower needs a snapshot; nothing is sent until it reports success or failure. */
  Snapshot = 'StateSnapshot',
}

export class Progress {
  /**
   * The index up to which the follower's log is known to match ours (it acknowledged it after
   * persisting it). Only ever raised, except when the whole Progress is replaced (new term).
   */
  match = 0;
  /**
   * The next index to send. Entries in (match, next) are in flight or were lost.
   * Invariant: 0 <= match < next (so next >= 1). becomeSnapshot sets it to pendingSnapshot + 1.
   */
  next = 1;
  state: ProgressState = ProgressState.Probe;
  /**
   * Index of the snapshot being sent: non-zero only in StateSnapshot. If the driver reports
   * success, the next probe starts past it. An MsgAppResp that reconnects the follower to our
   * log ends StateSnapshot whatever this index: the driver may have sent another snapshot
   * (raftkv's server sends a newer, merged one).
   */
  pendingSnapshot = 0;
  /**
   * Heard from the follower since the last CheckQuorum round. Always true for the leader's own
   * Progress (set in becomeLeader; CheckQuorum clears only the others).
   */
  recentActive = false;
  /**
   * Sending is throttled until a response: a probe is in flight (StateProbe) or the inflight
   * window is full (StateReplicate). A heartbeat response clears it, so that one MsgApp per
   * heartbeat interval still goes out and a lost message cannot stall the follower forever.
   */
  msgAppFlowPaused = false;
  /**
   * The highest commit index sent to the follower (to avoid re-sending it eagerly, see
   * canBumpCommit). Not monotonic: it follows next back (becomeProbe, rejections), as a commit
   * index sent past the follower's log was of no use to it, and every heartbeat sets it to the
   * heartbeat's min(match, committed).
   */
  sentCommit = 0;
  isLearner = false;
  /** MsgApps in flight; non-empty only in StateReplicate (every state change resets it). */
  inflights: Inflights;

  constructor(maxInflight: number, maxInflightBytes: number, init: Partial<Pick<Progress, 'match' | 'next' | 'isLearner' | 'recentActive'>> = {}) {
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
    Object.assign(this, init);
  }

  clone(): Progress {
    const p = new Progress(this.inflights.size, this.inflights.maxBytes);
    p.match = this.match;
    p.next = this.next;
    p.state = this.state;
    p.pendingSnapshot = this.pendingSnapshot;
    p.recentActive = this.recentActive;
    p.msgAppFlowPaused = this.msgAppFlowPaused;
    p.sentCommit = this.sentCommit;
    p.isLearner = this.isLearner;
    p.inflights = this.inflights.clone();
    return p;
  }

  private resetState(state: ProgressState): void {
    this.msgAppFlowPaused = false;
    this.pendingSnapshot = 0;
    this.state = state;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, probe from just past it: the follower has (at least) the snapshot.
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.resetState(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState(ProgressState.Probe);
      this.next = this.match + 1;
    }
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
  }

  becomeReplicate(): void {
    this.resetState(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState(ProgressState.Snapshot);
    this.pendingSnapshot = snapshotIndex;
    this.next = snapshotIndex + 1;
    this.sentCommit = snapshotIndex;
  }

  /** Updates flow control after sending a MsgApp with `entries` entries of `bytes` payload. */
  sentEntries(entries: number, bytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        if (entries > 0) {
          this.next += entries;
          this.inflights.add(this.next - 1, bytes);
        }
        this.msgAppFlowPaused = this.inflights.full();
        break;
      case ProgressState.Probe:
        if (entries > 0) this.msgAppFlowPaused = true;
        break;
      default:
        throw new Error(`sending append in unhandled state ${this.state}`);
    }
  }

  /** Whether sending `index` as the commit index could move the follower's commit forward. */
  canBumpCommit(index: number): boolean {
    return index > this.sentCommit && this.sentCommit < this.next - 1;
  }

  sentCommitIndex(commit: number): void {
    this.sentCommit = commit;
  }

  /** The follower acknowledged index n. Returns false if the ack is stale. Keeps match < next. */
  maybeUpdate(n: number): boolean {
    if (n <= this.match) return false;
    this.match = n;
    this.next = Math.max(this.next, n + 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  /**
   * The follower rejected a MsgApp at index `rejected`; `matchHint` is where the logs may match.
   * Returns false if the rejection is stale and must be ignored (messages can be reordered or
   * duplicated). A genuine rejection lowers next, but never to match or below: entries up to
   * match were acknowledged, so they cannot be the reason.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      // Stale if we already know the follower matched past the rejected index.
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      this.sentCommit = Math.min(this.sentCommit, this.next - 1);
      return true;
    }
    // In probe state we send one message at a time, so a rejection must be for next-1.
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.sentCommit = Math.min(this.sentCommit, this.next - 1);
    this.msgAppFlowPaused = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
      case ProgressState.Replicate:
        return this.msgAppFlowPaused;
      case ProgressState.Snapshot:
        return true;
    }
  }

  toString(): string {
    let s = `${this.state} match=${this.match} next=${this.next}`;
    if (this.isLearner) s += ' learner';
    if (this.isPaused()) s += ' paused';
    if (this.pendingSnapshot > 0) s += ` pendingSnap=${this.pendingSnapshot}`;
    if (!this.recentActive) s += ' inactive';
    if (this.inflights.len() > 0) s += ` inflight=${this.inflights.len()}`;
    if (this.inflights.full()) s += '[full]';
    return s;
  }
}
