// The scenarios the model checker explores: who is in the cluster, which Raft options are on,
// how many events of each kind a trace may contain (the bound), which member ids are
// interchangeable (symmetry), and the goals to search for (DSLabs style: a state that must be
// reachable, or one that must not be).

import { ConfChangeTransition, ConfChangeType, type ConfChangeV2, type NodeId } from '../../src/raft/index.js';
import type { McState } from './model.js';
import { committedEntries, isLeader } from './views.js';

/** How many events of each kind one trace may contain. */
export interface Budget {
  timeouts: number;
  heartbeats: number;
  proposals: number;
  reads: number;
  drops: number;
  duplicates: number;
  crashes: number;
  partitions: number;
  confChanges: number;
}

export const BUDGET_KINDS = ['timeouts', 'heartbeats', 'proposals', 'reads', 'drops', 'duplicates', 'crashes', 'partitions', 'confChanges'] as const;

/** One membership change, proposed by the leader (which it may name, e.g. to remove itself). */
export interface PlannedChange {
  text: string;
  make(leader: NodeId): ConfChangeV2;
}

export interface Goal {
  name: string;
  /** reachable: the search must find such a state; unreachable: it must not. */
  kind: 'reachable' | 'unreachable';
  holds(s: McState): boolean;
}

export interface Scenario {
  name: string;
  about: string;
  /** Members 1..voters form the initial configuration. */
  voters: number;
  /** Ids of members that start empty, outside the configuration (added by a planned change). */
  joiners: NodeId[];
  preVote: boolean;
  checkQuorum: boolean;
  budget: Budget;
  /** The default bound on the number of events in a trace. */
  depth: number;
  changes: PlannedChange[];
  /**
   * Member ids that play the same role, so that renaming them maps a state onto an equivalent
   * one: initial voters with the same options, the same budgets, and no event that names one
   * of them in particular (a planned change names the leader, whoever it is).
   */
  symmetric: NodeId[];
  goals: Goal[];
  /** Append messages carry one entry each (default: the whole tail). */
  oneEntryPerMessage?: boolean;
  /** Append messages in flight per follower (default 256; the members' own is 1: src/server/bootstrap.ts). */
  maxInflight?: number;
  /**
   * Events (as trace commands) that lead from the initial state to where the search starts, as
   * DSLabs tests search from a state set up by hand; they use up their budgets.
   */
  prefix?: string[];
}

const none: Budget = { timeouts: 0, heartbeats: 0, proposals: 0, reads: 0, drops: 0, duplicates: 0, crashes: 0, partitions: 0, confChanges: 0 };
const ids = (n: number): NodeId[] => Array.from({ length: n }, (_, i) => BigInt(i + 1));
const joint = (changes: ConfChangeV2['changes']): ConfChangeV2 => ({ transition: ConfChangeTransition.JointImplicit, changes, context: new Uint8Array(0) });
const simple = (changes: ConfChangeV2['changes']): ConfChangeV2 => ({ transition: ConfChangeTransition.Auto, changes, context: new Uint8Array(0) });

/** A value proposed by a client is committed (some member applied it). */
const valueCommitted: Goal = {
  name: 'a proposed value is committed',
  kind: 'reachable',
  holds: (s) => s.ghost.committed.some((c) => c.value),
};

/** Two members disagree on the entry at a committed index (state machine safety, as a goal). */
const committedDisagreement: Goal = {
  name: 'two members disagree on a committed index',
  kind: 'unreachable',
  holds: (s) => {
    const logs = s.nodes.map((n) => committedEntries(n));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const x = logs[a]!;
        const y = logs[b]!;
        for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return true;
      }
    }
    return false;
  },
};

export const SCENARIOS: readonly Scenario[] = [
  {
    name: 'elections',
    about: '3 members: elections (two timeouts), two proposals, a ReadIndex read, a heartbeat',
    voters: 3,
    joiners: [],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 2, proposals: 2, reads: 1, heartbeats: 1 },
    depth: 14,
    changes: [],
    symmetric: ids(3),
    goals: [valueCommitted, committedDisagreement],
  },
  {
    name: 'read-index',
    about: '3 members, ReadIndex reads: 1 leads term 2 and has committed its no-op (2 and 3 do not know it yet); then an election and two reads',
    voters: 3,
    joiners: [],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 2, reads: 2 },
    depth: 10,
    changes: [],
    // The set-up treats 2 and 3 alike.
    symmetric: [2n, 3n],
    goals: [
      committedDisagreement,
      {
        name: 'a read is answered',
        kind: 'reachable',
        holds: (s) => s.ghost.readsIssued > 0 && s.ghost.reads.length === 0 && s.nodes.every((n) => n.raw),
      },
    ],
    prefix: [
      'campaign 1',
      'deliver-msg 1->2 MsgVote Term:2 Log:1/3',
      'deliver-msg 2->1 MsgVoteResp Term:2 Log:0/0',
      'deliver-msg 1->2 MsgApp Term:2 Log:1/3 Commit:3 Entries:[2/4 EntryNormal ""]',
      'deliver-msg 1->3 MsgApp Term:2 Log:1/3 Commit:3 Entries:[2/4 EntryNormal ""]',
      'deliver-msg 2->1 MsgAppResp Term:2 Log:0/4',
    ],
  },
  {
    name: 'crash-restart',
    about: '3 members: elections, a proposal, a member crashes (losing what it did not persist) and restarts',
    voters: 3,
    joiners: [],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 3, proposals: 1, crashes: 1 },
    depth: 16,
    changes: [],
    symmetric: ids(3),
    goals: [valueCommitted, committedDisagreement],
  },
  {
    name: 'prevote-partition',
    about: '3 members with PreVote and CheckQuorum: one member is cut off and later rejoins; elections, a proposal',
    voters: 3,
    joiners: [],
    preVote: true,
    checkQuorum: true,
    budget: { ...none, timeouts: 3, proposals: 1, partitions: 1 },
    depth: 14,
    changes: [],
    symmetric: ids(3),
    goals: [
      valueCommitted,
      committedDisagreement,
      {
        // With PreVote, a member that cannot reach a quorum never raises its term.
        name: 'a cut-off member raised its term while cut off',
        kind: 'unreachable',
        holds: (s) => s.isolated !== 0n && (s.nodes.find((n) => n.id === s.isolated)?.raw?.inspect().term ?? 0) > s.isolatedAtTerm,
      },
      {
        // CheckQuorum: a leader that is cut off steps down.
        name: 'a cut-off leader stepped down',
        kind: 'reachable',
        holds: (s) => s.isolated !== 0n && s.ghost.leaders.some(([, id]) => id === s.isolated) && !isLeader(s.nodes.find((n) => n.id === s.isolated)!),
      },
    ],
  },
  {
    name: 'joint-add-remove-leader',
    about: '3 members grow to 4 by a joint-consensus change (implicit leave), then the leader removes itself',
    voters: 3,
    joiners: [4n],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 2, confChanges: 2 },
    depth: 22,
    changes: [
      { text: 'v4 (joint)', make: () => joint([{ type: ConfChangeType.AddNode, nodeId: 4n }]) },
      { text: 'r<leader>', make: (leader) => simple([{ type: ConfChangeType.RemoveNode, nodeId: leader }]) },
    ],
    symmetric: ids(3),
    goals: [
      committedDisagreement,
      {
        name: 'the cluster is {2,3,4} or another 3 of 4 with the old leader removed',
        kind: 'reachable',
        holds: (s) => s.nodes.some((n) => n.raw && isLeader(n) && n.raw.inspect().trk.config.voters.incoming.size === 3 && n.raw.inspect().trk.config.voters.incoming.has(4n)),
      },
    ],
  },
  {
    name: 'learner-promotion',
    about: '3 members add member 4 as a learner, then promote it to voter',
    voters: 3,
    joiners: [4n],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 2, confChanges: 2 },
    depth: 20,
    changes: [
      { text: 'l4', make: () => simple([{ type: ConfChangeType.AddLearnerNode, nodeId: 4n }]) },
      { text: 'v4', make: () => simple([{ type: ConfChangeType.AddNode, nodeId: 4n }]) },
    ],
    symmetric: ids(3),
    goals: [
      committedDisagreement,
      {
        name: 'member 4 is a voter on the leader',
        kind: 'reachable',
        holds: (s) => s.nodes.some((n) => n.raw && isLeader(n) && n.raw.inspect().trk.config.voters.incoming.has(4n)),
      },
    ],
  },
  {
    name: 'figure-8',
    about: "3 members, one entry per append: the paper's Figure 8 (a)-(c) as a set-up (1 led term 2 and logged an entry of it alone; 2 led term 3 with its own; 1 leads term 4 and has copied its term-2 entry to 3), then every interleaving",
    voters: 3,
    joiners: [],
    preVote: false,
    checkQuorum: false,
    budget: { ...none, timeouts: 5 },
    depth: 10,
    changes: [],
    // The set-up gives each member its own part: no renaming maps the state onto another.
    symmetric: [],
    goals: [committedDisagreement],
    oneEntryPerMessage: true,
    prefix: [
      'campaign 1',
      'deliver-msg 1->2 MsgVote Term:2 Log:1/3',
      'deliver-msg 2->1 MsgVoteResp Term:2 Log:0/0',
      'campaign 2',
      'deliver-msg 2->3 MsgVote Term:3 Log:1/3',
      'deliver-msg 3->2 MsgVoteResp Term:3 Log:0/0',
      'deliver-msg 2->1 MsgVote Term:3 Log:1/3',
      'campaign 1',
      'deliver-msg 1->3 MsgVote Term:4 Log:2/4',
      'deliver-msg 3->1 MsgVoteResp Term:4 Log:0/0',
      'deliver-msg 1->3 MsgApp Term:4 Log:2/4 Commit:3 Entries:[4/5 EntryNormal ""]',
      'deliver-msg 3->1 MsgAppResp Term:4 Log:1/4 Rejected (Hint: 3)',
      // 3 now holds 1's entry of term 2 (and not yet its term-4 entry): Figure 8 (c).
      'deliver-msg 1->3 MsgApp Term:4 Log:1/3 Commit:3 Entries:[2/4 EntryNormal ""]',
    ],
  },
];

export function scenarioByName(name: string): Scenario {
  const s = SCENARIOS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario ${name} (known: ${SCENARIOS.map((x) => x.name).join(', ')})`);
  return s;
}
