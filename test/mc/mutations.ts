// The deliberate bugs ("teeth") the model checker must find, as text patches of the COMPILED
// core (dist/src/raft/*.js). They are applied in memory while Node loads those files
// (mutation-hook.ts), never on disk: the source tree stays correct, other processes are not
// affected, and the same patch can be loaded under the model checker or the simulator.
// Each patch names the exact text it replaces, which must occur exactly once: if the core
// changes shape, the mutation fails loudly instead of silently testing nothing.

export interface Patch {
  /** File under dist/src/raft/. */
  file: string;
  find: string;
  replace: string;
}

export interface Mutation {
  name: string;
  bug: string;
  patches: Patch[];
  /** The scenario (scenarios.ts) in which the checker looks for it. */
  scenario: string;
  /**
   * What `node dist/test/mc/sim-check.js --mutation NAME` reported (the simulator's 1,000 seeds
   * of npm test against this bug): the first seed that finds it, or 'not found'. Unset: one of
   * the simulator's own teeth (README), not re-run here.
   */
  sim?: string;
}

export const MUTATIONS: readonly Mutation[] = [
  {
    name: 'no-uptodate-check',
    bug: 'a voter grants its vote without the election restriction (candidate log at least as up to date, §5.4.1)',
    patches: [{ file: 'raft.js', find: 'canVote && this.raftLog.isUpToDate(m.index, m.logTerm)', replace: 'canVote' }],
    scenario: 'crash-restart',
  },
  {
    name: 'old-term-commit',
    bug: "a leader counts replicas of an older term's entry toward commit (Figure 8)",
    patches: [{ file: 'log.js', find: 'maxIndex > this.committed && this.zeroTermOnErr(maxIndex) === term', replace: 'maxIndex > this.committed' }],
    scenario: 'figure-8',
  },
  {
    name: 'unpersisted-vote',
    bug: 'the vote is never written to the HardState, so a member that crashes and restarts forgets it',
    patches: [{ file: 'raft.js', find: 'return { term: this.term, vote: this.vote, commit: this.raftLog.committed };', replace: 'return { term: this.term, vote: 0n, commit: this.raftLog.committed };' }],
    scenario: 'crash-restart',
  },
  {
    name: 'readindex-no-quorum',
    bug: 'the leader answers ReadIndex from its commit index at once, without a heartbeat round confirming it still leads',
    patches: [{ file: 'raft.js', find: 'if (this.readOnly.option === ReadOnlyOption.Safe) {', replace: 'if (false) {' }],
    scenario: 'read-index',
  },
  {
    name: 'no-log-consistency-check',
    bug: 'a follower appends entries without checking that its log has the entry before them (prevLogIndex/prevLogTerm)',
    patches: [{ file: 'log.js', find: 'if (!this.matchTerm(index, logTerm))', replace: 'if (false)' }],
    scenario: 'crash-restart',
  },
  {
    name: 'readindex-stale-new-leader',
    bug: 'a new leader serves ReadIndex before an entry of its own term is committed (its commit index may lag the old leader’s)',
    patches: [{ file: 'raft.js', find: 'if (!this.committedEntryInCurrentTerm()) {', replace: 'if (false) {' }],
    scenario: 'read-index',
    sim: 'seed 30178 (schedule 179)',
  },
  {
    name: 'prevote-grant-counted-as-vote',
    bug: 'a candidate counts a late pre-vote grant as a real vote',
    patches: [
      {
        file: 'raft.js',
        find: 'const myVoteRespType = this.state === StateType.PreCandidate',
        replace: 'const myVoteRespType = (this.state === StateType.Candidate && m.type === MessageType.MsgPreVoteResp) || this.state === StateType.PreCandidate',
      },
    ],
    scenario: 'prevote-partition',
    sim: 'seed 30005 (schedule 6)',
  },
  {
    name: 'stale-vote-counted',
    bug: 'a candidate counts a vote granted in an earlier term of its (a vote response of a lower term is not ignored)',
    patches: [
      {
        file: 'raft.js',
        find: 'else if (m.term < this.term) {',
        replace: 'else if (m.term < this.term && !(m.type === MessageType.MsgVoteResp && this.state === StateType.Candidate)) {',
      },
    ],
    scenario: 'crash-restart',
    sim: 'not found (1,000 schedules, 210 s)',
  },
  {
    name: 'read-batch-released-early',
    bug: "a leader's heartbeat quorum for one ReadIndex request also releases the requests that arrived after that heartbeat round",
    patches: [{ file: 'read-only.js', find: 'const done = this.queue.slice(0, pos + 1);\n        this.queue = this.queue.slice(pos + 1);', replace: 'const done = this.queue.slice();\n        this.queue = [];' }],
    scenario: 'read-index',
    sim: 'not found (1,000 schedules, 368 s)',
  },
];

export function mutationByName(name: string): Mutation {
  const m = MUTATIONS.find((x) => x.name === name);
  if (!m) throw new Error(`unknown mutation ${name} (known: ${MUTATIONS.map((x) => x.name).join(', ')})`);
  return m;
}

/** The patched text of one compiled core file (unchanged if no patch is for it). */
export function applyPatches(file: string, text: string, patches: readonly Patch[]): string {
  let out = text;
  for (const p of patches) {
    if (p.file !== file) continue;
    const at = out.indexOf(p.find);
    if (at < 0 || out.indexOf(p.find, at + 1) >= 0) {
      throw new Error(`mutation patch for ${file} does not match exactly once: ${JSON.stringify(p.find)}`);
    }
    out = out.slice(0, at) + p.replace + out.slice(at + p.find.length);
  }
  return out;
}
