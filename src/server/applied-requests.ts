// Exactly-once application of requests that a member proposes more than once.
//
// A member re-proposes a request it is still waiting on when the leader changes: a proposal
// forwarded to a leader that was transferring leadership (or that lost it) may have been
// dropped, and without a second try its client would wait for the full request timeout. The
// first copy may however have made it into the log too, so both copies can be committed. This
// table, part of the replicated state (built only from the log, saved in snapshots), makes the
// state machine apply the first copy and skip the others on every member alike.
//
// Its size stays bounded in the way of the Raft thesis' client sessions (§6.3): each request
// carries the lowest request id its member was still waiting on when proposing it
// (`settledBelow`). Ids of that member below it are settled (answered or timed out) and are
// never proposed again, so they can be forgotten, and a late copy of one is skipped, not
// applied: its client has already been told the request timed out, which allows either outcome.

export type Admission = 'apply' | 'duplicate' | 'settled';

interface ProposerState {
  /** Every id of this proposer below this is settled. */
  settledBelow: bigint;
  /** Ids at or above `settledBelow` already applied. */
  applied: Set<bigint>;
}

export interface AppliedRequestsImage {
  [proposer: string]: { settledBelow: string; applied: string[] };
}

export class AppliedRequests {
  private byProposer = new Map<bigint, ProposerState>();

  /**
   * Decides whether a committed request is applied, and records it. `proposer` 0 means a request
   * from before this table existed (or from a tool): always applied.
   */
  admit(proposer: bigint, id: bigint, settledBelow: bigint): Admission {
    if (proposer === 0n) return 'apply';
    let s = this.byProposer.get(proposer);
    if (!s) {
      s = { settledBelow: 0n, applied: new Set() };
      this.byProposer.set(proposer, s);
    }
    if (settledBelow > s.settledBelow) {
      s.settledBelow = settledBelow;
      for (const a of s.applied) if (a < settledBelow) s.applied.delete(a);
    }
    if (id < s.settledBelow) return 'settled';
    if (s.applied.has(id)) return 'duplicate';
    s.applied.add(id);
    return 'apply';
  }

  /** Ids of this proposer below this are settled (a restarted member must not reuse them). */
  settledBelow(proposer: bigint): bigint {
    return this.byProposer.get(proposer)?.settledBelow ?? 0n;
  }

  /** How many applied ids are remembered in all (bounded by the members' in-flight requests). */
  get size(): number {
    let n = 0;
    for (const s of this.byProposer.values()) n += s.applied.size;
    return n;
  }

  toImage(): AppliedRequestsImage {
    const img: AppliedRequestsImage = {};
    for (const [p, s] of this.byProposer) {
      img[p.toString()] = { settledBelow: s.settledBelow.toString(), applied: [...s.applied].map(String) };
    }
    return img;
  }

  restore(img: AppliedRequestsImage | undefined): void {
    this.byProposer = new Map();
    for (const [p, s] of Object.entries(img ?? {})) {
      this.byProposer.set(BigInt(p), { settledBelow: BigInt(s.settledBelow), applied: new Set(s.applied.map(BigInt)) });
    }
  }
}
