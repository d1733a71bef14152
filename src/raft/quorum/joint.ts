// Joint quorums (Raft paper §6): while a configuration change is in flight, every decision
// needs a majority of the incoming AND of the outgoing voter set. That is what makes an
// arbitrary change safe: every joint decision overlaps every majority of the old config (so no
// leader of the old config alone can exist beside it) and of the new one (so the new config,
// once alone, inherits it). A simple change of one voter needs no joint state, since majorities
// of two sets that differ by one member always intersect.

import type { NodeId } from '../types.js';
import { type AckedIndexer, VoteResult, majorityCommittedIndex, majorityVoteResult } from './majority.js';

export class JointConfig {
  /** incoming (or the only) voters, outgoing voters (empty unless joint). */
  constructor(
    public incoming: Set<NodeId> = new Set(),
    public outgoing: Set<NodeId> = new Set(),
  ) {}

  isJoint(): boolean {
    return this.outgoing.size > 0;
  }

  /** All voters of both halves. */
  ids(): Set<NodeId> {
    const s = new Set(this.incoming);
    for (const id of this.outgoing) s.add(id);
    return s;
  }

  has(id: NodeId): boolean {
    return this.incoming.has(id) || this.outgoing.has(id);
  }

  /** Committed in the joint config = committed in both halves: the smaller of the two. */
  committedIndex(acked: AckedIndexer): number {
    return Math.min(majorityCommittedIndex(this.incoming, acked), majorityCommittedIndex(this.outgoing, acked));
  }

  /** Won only if both halves won; Lost if either lost. */
  voteResult(votes: ReadonlyMap<NodeId, boolean>): VoteResult {
    const r1 = majorityVoteResult(this.incoming, votes);
    const r2 = majorityVoteResult(this.outgoing, votes);
    if (r1 === r2) return r1; // both won, both lost, or both pending
    if (r1 === VoteResult.Lost || r2 === VoteResult.Lost) return VoteResult.Lost;
    return VoteResult.Pending; // one won, the other pending
  }

  clone(): JointConfig {
    return new JointConfig(new Set(this.incoming), new Set(this.outgoing));
  }
}
