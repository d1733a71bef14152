// Quorum arithmetic against brute-force definitions.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { JointConfig } from '../../src/raft/quorum/joint.js';
import { VoteResult, majorityCommittedIndex, majorityVoteResult } from '../../src/raft/quorum/majority.js';

const idSet = fc.uniqueArray(fc.integer({ min: 1, max: 9 }), { maxLength: 7 }).map((xs) => new Set(xs.map(BigInt)));
const acks = fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.integer({ min: 0, max: 20 }));

function bruteCommitted(voters: Set<bigint>, acked: Record<string, number>): number {
  if (voters.size === 0) return Number.POSITIVE_INFINITY;
  // The largest index that more than half of the voters have reached.
  let best = 0;
  for (let idx = 0; idx <= 20; idx++) {
    const n = [...voters].filter((id) => (acked[String(id)] ?? 0) >= idx).length;
    if (n > voters.size / 2) best = idx;
  }
  return best;
}

it('majority committed index = largest index acked by more than half', () => {
  fc.assert(
    fc.property(idSet, acks, (voters, acked) => {
      const got = majorityCommittedIndex(voters, (id) => acked[String(id)]);
      assert.equal(got, bruteCommitted(voters, acked));
    }),
    { numRuns: 500 },
  );
});

it('joint committed index = min over both halves', () => {
  fc.assert(
    fc.property(idSet, idSet, acks, (a, b, acked) => {
      const j = new JointConfig(a, b);
      const want = Math.min(bruteCommitted(a, acked), bruteCommitted(b, acked));
      assert.equal(j.committedIndex((id) => acked[String(id)]), want);
    }),
    { numRuns: 500 },
  );
});

const votes = fc.dictionary(fc.integer({ min: 1, max: 9 }).map(String), fc.boolean());

function bruteVote(voters: Set<bigint>, v: Record<string, boolean>): VoteResult {
  if (voters.size === 0) return VoteResult.Won;
  const yes = [...voters].filter((id) => v[String(id)] === true).length;
  const missing = [...voters].filter((id) => v[String(id)] === undefined).length;
  if (yes > voters.size / 2) return VoteResult.Won;
  if (yes + missing > voters.size / 2) return VoteResult.Pending;
  return VoteResult.Lost;
}

it('vote results match the definition, and joint needs both halves', () => {
  fc.assert(
    fc.property(idSet, idSet, votes, (a, b, v) => {
      const m = new Map(Object.entries(v).map(([k, x]) => [BigInt(k), x]));
      assert.equal(majorityVoteResult(a, m), bruteVote(a, v));
      const ra = bruteVote(a, v);
      const rb = bruteVote(b, v);
      const want =
        ra === VoteResult.Won && rb === VoteResult.Won
          ? VoteResult.Won
          : ra === VoteResult.Lost || rb === VoteResult.Lost
            ? VoteResult.Lost
            : VoteResult.Pending;
      assert.equal(new JointConfig(a, b).voteResult(m), want);
    }),
    { numRuns: 500 },
  );
});

it('any two majorities of the same voter set intersect', () => {
  fc.assert(
    fc.property(idSet.filter((s) => s.size > 0), fc.array(fc.boolean(), { minLength: 9, maxLength: 9 }), (voters, bits) => {
      // A set Q is a quorum iff the vote with exactly Q granting wins.
      const ids = [...voters];
      const q1 = new Map(ids.map((id, i) => [id, bits[i]!]));
      const q2 = new Map(ids.map((id, i) => [id, !bits[i]!]));
      // Complementary sets can't both win.
      assert.ok(!(majorityVoteResult(voters, q1) === VoteResult.Won && majorityVoteResult(voters, q2) === VoteResult.Won));
    }),
    { numRuns: 300 },
  );
});
