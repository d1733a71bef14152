// The leader's bookkeeping for the whole configuration: voters (possibly joint), learners,
// each member's Progress, and the votes of the current election.

import { JointConfig } from '../quorum/joint.js';
import { VoteResult, sortedIds } from '../quorum/majority.js';
import type { ConfState, NodeId } from '../types.js';
import { Progress } from './progress.js';

/**
 * Invariants (checked by confchange/changer.ts checkInvariants after every change):
 * - learners and the voters of either half are disjoint: a member is a voter or a learner,
 *   never both, so its role never depends on which half of a joint config one looks at;
 * - learnersNext is a subset of the outgoing voters, disjoint from learners, and empty (with
 *   autoLeave false) unless the config is joint;
 * - every voter, learner and learnerNext has a Progress (checked); the changer drops the
 *   Progress of a member that is none of these, so the progress map is exactly the members.
 */
export class TrackerConfig {
  voters = new JointConfig();
  /** Non-voting members: they receive the log but are not counted in any quorum. */
  learners = new Set<NodeId>();
  /**
   * Voters of the outgoing config that become learners when the joint config is left. They
   * can't be learners yet since a node can't be a voter and a learner at the same time.
   */
  learnersNext = new Set<NodeId>();
  /** Leave the joint config automatically once it is committed (etcd's ConfChangeTransitionAuto). */
  autoLeave = false;

  clone(): TrackerConfig {
    const c = new TrackerConfig();
    c.voters = this.voters.clone();
    c.learners = new Set(this.learners);
    c.learnersNext = new Set(this.learnersNext);
    c.autoLeave = this.autoLeave;
    return c;
  }

  toString(): string {
    let s = `voters=(${sortedIds(this.voters.incoming).map(String).join(' ')})`;
    if (this.voters.isJoint()) s += `&&(${sortedIds(this.voters.outgoing).map(String).join(' ')})`;
    if (this.learners.size > 0) s += ` learners=(${sortedIds(this.learners).map(String).join(' ')})`;
    if (this.learnersNext.size > 0) s += ` learners_next=(${sortedIds(this.learnersNext).map(String).join(' ')})`;
    if (this.autoLeave) s += ' autoleave';
    return s;
  }
}

export type ProgressMap = Map<NodeId, Progress>;

export class ProgressTracker {
  config = new TrackerConfig();
  progress: ProgressMap = new Map();
  votes = new Map<NodeId, boolean>();

  constructor(
    readonly maxInflight: number,
    readonly maxInflightBytes: number,
  ) {}

  confState(): ConfState {
    return {
      voters: sortedIds(this.config.voters.incoming),
      votersOutgoing: sortedIds(this.config.voters.outgoing),
      learners: sortedIds(this.config.learners),
      learnersNext: sortedIds(this.config.learnersNext),
      autoLeave: this.config.autoLeave,
    };
  }

  /** True if the configuration has exactly one voter (and it is not joint). */
  isSingleton(): boolean {
    return this.config.voters.incoming.size === 1 && !this.config.voters.isJoint();
  }

  /**
   * The largest log index known to be durably replicated on a quorum: on a majority of each
   * half of a joint config. Learners never count. Whether it may become the commit index is
   * the leader's decision (only entries of its own term: RaftLog.maybeCommit).
   */
  committed(): number {
    return this.config.voters.committedIndex((id) => this.progress.get(id)?.match);
  }

  /** Visits the progress of every member in ascending id order (deterministic output). */
  visit(f: (id: NodeId, pr: Progress) => void): void {
    const ids = [...this.progress.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const id of ids) f(id, this.progress.get(id)!);
  }

  /**
   * Whether a quorum of voters has been active since the last CheckQuorum (the leader's own
   * Progress is always active, so it counts itself).
   */
  quorumActive(): boolean {
    const votes = new Map<NodeId, boolean>();
    for (const [id, pr] of this.progress) {
      if (!pr.isLearner) votes.set(id, pr.recentActive);
    }
    return this.config.voters.voteResult(votes) === VoteResult.Won;
  }

  voterNodes(): NodeId[] {
    return sortedIds(this.config.voters.ids());
  }

  learnerNodes(): NodeId[] {
    return sortedIds(this.config.learners);
  }

  resetVotes(): void {
    this.votes = new Map();
  }

  /**
   * Records a vote; a repeated vote from the same node is ignored: the first answer counts,
   * so a duplicated message can never count twice.
   */
  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  tallyVotes(): { granted: number; rejected: number; result: VoteResult } {
    let granted = 0;
    let rejected = 0;
    for (const [id, pr] of this.progress) {
      if (pr.isLearner) continue;
      const v = this.votes.get(id);
      if (v === undefined) continue;
      if (v) granted++;
      else rejected++;
    }
    return { granted, rejected, result: this.config.voters.voteResult(this.votes) };
  }
}
