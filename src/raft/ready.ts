// The Ready value: the only output channel of the core.
//
// THE CONTRACT (what the driver must do with a Ready, in this order):
//   1. `messages` may be sent at once, before anything is persisted (the leader's appends and
//      heartbeats: thesis §10.2.1 lets the leader write its log in parallel with replication).
//   2. Persist `snapshot` (if any), then `entries` (appending, truncating any conflicting
//      suffix), then `hardState` (if any); fsync when `mustSync` is true.
//   3. Only then send `messagesAfterPersist`: they acknowledge entries or votes (MsgAppResp,
//      MsgVoteResp), or ask for votes in a term that must not be forgotten (MsgVote).
//   4. Apply `snapshot` then `committedEntries` to the state machine; answer `readStates` once
//      the applied index reaches each one's index. Committed entries below the first of
//      `entries` were persisted by an earlier Ready and may be applied (and, once all are,
//      `readStates` answered) while step 2 is still under way, if there is no `snapshot`.
//   5. Call advance(rd). Until then, ready() is not called again (step/tick/propose are fine).

import type { Entry, HardState, Message, ReadState, Snapshot, SoftState } from './types.js';

export interface Ready {
  /** Set when the leader or role changed since the last Ready. */
  softState?: SoftState;
  /** Set when term, vote or commit changed since the last Ready. */
  hardState?: HardState;
  readStates: ReadState[];
  /** Entries to append to stable storage. */
  entries: Entry[];
  /** A snapshot from the leader to persist and restore the state machine from. */
  snapshot?: Snapshot;
  /** Committed entries to apply, in order. Already durable once step 2 is done. */
  committedEntries: Entry[];
  /** Messages that may be sent before the persist of step 2. */
  messages: Message[];
  /** Messages that must wait until step 2 is durable. */
  messagesAfterPersist: Message[];
  /** Whether step 2 needs an fsync (new entries, or a changed term or vote). */
  mustSync: boolean;
}

export function isEmptyReady(rd: Ready): boolean {
  return (
    rd.softState === undefined &&
    rd.hardState === undefined &&
    rd.snapshot === undefined &&
    rd.entries.length === 0 &&
    rd.committedEntries.length === 0 &&
    rd.messages.length === 0 &&
    rd.messagesAfterPersist.length === 0 &&
    rd.readStates.length === 0
  );
}

/** The index the state machine has reached once this Ready is applied (0 if unchanged). */
export function appliedCursor(rd: Ready): number {
  const n = rd.committedEntries.length;
  if (n > 0) return rd.committedEntries[n - 1]!.index;
  if (rd.snapshot && rd.snapshot.metadata.index > 0) return rd.snapshot.metadata.index;
  return 0;
}
