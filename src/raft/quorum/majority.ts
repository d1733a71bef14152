// Majority quorums: the committed index acknowledged by a majority, and election outcomes.

import type { NodeId } from '../types.js';

export enum VoteResult {
  /** Not enough votes yet, but a win is still possible. */
  Pending = 1,
  /** A majority rejected (or can no longer be reached). */
  Lost = 2,
  Won = 3,
}

/** Returns the acked (durably matched) index of a voter, or undefined if it has not reported. */
export type AckedIndexer = (id: NodeId) => number | undefined;

/**
 * The largest index that a majority of `voters` has acknowledged. An empty configuration
 * returns +Infinity so that it never constrains the other half of a joint configuration.
 * A voter that has not reported counts as 0. Raising any voter's acked index never lowers the
 * result, and any two majorities of the same set share a voter: that overlap is why an index
 * acknowledged by a majority survives every later election (the winner needs a majority too).
 */
export function majorityCommittedIndex(voters: ReadonlySet<NodeId>, acked: AckedIndexer): number {
  const n = voters.size;
  if (n === 0) return Number.POSITIVE_INFINITY;
  const srt: number[] = [];
  for (const id of voters) srt.push(acked(id) ?? 0);
  srt.sort((a, b) => a - b);
  // From the top, n/2+1 voters have at least this index.
  return srt[n - (Math.floor(n / 2) + 1)]!;
}

/**
 * Tallies `votes` (true = granted) over `voters`. By convention an empty configuration wins, so
 * that a joint configuration with one empty half behaves like the other half alone. Won needs
 * n/2+1 grants; Lost as soon as the grants plus the voters not yet heard from cannot reach
 * that; Pending otherwise. Votes from non-voters are ignored.
 */
export function majorityVoteResult(voters: ReadonlySet<NodeId>, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.size / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

export function sortedIds(s: ReadonlySet<NodeId>): NodeId[] {
  return [...s].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
