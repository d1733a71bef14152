// The cluster as one member sees it, for the dashboard's table: every member of the member
// list with its role, term, commit and applied index, lag behind the leader, data size and
// whether it answered. This member answers from its own state; the others through
// Maintenance.Status (peer-status.ts).
//
// Owns: turning statuses into rows. Never: polls more than once at a time (a slow round is
// shared by everyone who asks meanwhile).

import type { MemberInfo } from '../../gen/raftkv/member.js';
import { alarmTypeToJSON } from '../../gen/etcd/rpc.js';
import { type BasicStatus, StateType } from '../../raft/index.js';
import { hex } from '../../util/ids.js';
import type { StateMachine } from '../state-machine.js';
import type { PeerStatus, PeerStatusClient } from './peer-status.js';

export type Role = 'leader' | 'follower' | 'learner' | 'candidate';

export interface MemberRow {
  id: string;
  name: string;
  clientUrl: string;
  self: boolean;
  reachable: boolean;
  /** Why it is unreachable (or not started). */
  error?: string;
  role?: Role;
  term?: number;
  commit?: number;
  applied?: number;
  /** The leader's commit index minus this member's applied index. */
  lag?: number;
  dbSize?: number;
}

export interface ClusterView {
  /** Wall-clock ms when the view was made. */
  at: number;
  self: string;
  /** The leader's id (hex) as this member knows it, or a reachable member reports it. */
  leader: string | null;
  term: number;
  members: MemberRow[];
  alarms: Array<{ member: string; alarm: string }>;
}

/** What the view reads of the member. */
export interface ViewSource {
  readonly id: bigint;
  readonly sm: Pick<StateMachine, 'appliedIndex' | 'store' | 'membership' | 'alarms'>;
  raftStatus(): BasicStatus;
}

function ownRole(st: BasicStatus): Role {
  if (st.raftState === StateType.Leader) return 'leader';
  if (st.raftState === StateType.Candidate || st.raftState === StateType.PreCandidate) return 'candidate';
  return st.isLearner ? 'learner' : 'follower';
}

/** Status has no role: a member that names itself leader leads; one that knows no leader is campaigning. */
function reportedRole(id: bigint, st: PeerStatus & { ok: true }): Role {
  if (st.status.leader === id) return 'leader';
  if (st.status.isLearner) return 'learner';
  return st.status.leader === 0n ? 'candidate' : 'follower';
}

export class ClusterViewer {
  private inFlight: Promise<ClusterView> | undefined;

  constructor(
    private readonly s: ViewSource,
    private readonly peers: PeerStatusClient,
    private readonly wallNow: () => number,
  ) {}

  /** A fresh view (joins a round in progress). */
  view(): Promise<ClusterView> {
    this.inFlight ??= this.build().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async build(): Promise<ClusterView> {
    const self = this.s.id;
    const own = this.s.raftStatus();
    const members = [...this.s.sm.membership.members.values()].sort((a, b) => (a.name || '~').localeCompare(b.name || '~') || (a.id < b.id ? -1 : 1));
    this.peers.retain(new Set(members.filter((m) => m.id !== self && m.clientUrls[0]).map((m) => m.clientUrls[0]!)));
    const answers = await Promise.all(
      members.map((m): Promise<PeerStatus | undefined> => (m.id === self || !m.clientUrls[0] ? Promise.resolve(undefined) : this.peers.ask(m.clientUrls[0]))),
    );
    // Whom to measure lag against: the leader this member knows, else one a reachable member names.
    let leader = own.lead;
    let term = own.term;
    if (leader === 0n) {
      for (const a of answers) {
        if (a?.ok && a.status.leader !== 0n && Number(a.status.raftTerm) >= term) {
          leader = a.status.leader;
          term = Number(a.status.raftTerm);
        }
      }
    }
    const rows = members.map((m, i) => this.row(m, self, own, answers[i]));
    const leaderCommit = rows.find((r) => r.id === hex(leader) && r.reachable)?.commit;
    for (const r of rows) if (leaderCommit !== undefined && r.applied !== undefined) r.lag = Math.max(0, leaderCommit - r.applied);
    return {
      at: this.wallNow(),
      self: hex(self),
      leader: leader === 0n ? null : hex(leader),
      term,
      members: rows,
      alarms: this.s.sm.alarms.get().map((a) => ({ member: hex(a.memberID), alarm: alarmTypeToJSON(a.alarm) })),
    };
  }

  private row(m: MemberInfo, self: bigint, own: BasicStatus, answer: PeerStatus | undefined): MemberRow {
    const base = { id: hex(m.id), name: m.name, clientUrl: m.clientUrls[0] ?? '', self: m.id === self };
    if (m.id === self) {
      return {
        ...base,
        reachable: true,
        role: ownRole(own),
        term: own.term,
        commit: own.commit,
        applied: this.s.sm.appliedIndex,
        dbSize: this.s.sm.store.size(),
      };
    }
    if (!answer) return { ...base, reachable: false, error: 'not started (no client URL published yet)', role: m.isLearner ? 'learner' : undefined };
    if (!answer.ok) return { ...base, reachable: false, error: answer.error, role: m.isLearner ? 'learner' : undefined };
    const st = answer.status;
    return {
      ...base,
      reachable: true,
      role: reportedRole(m.id, answer),
      term: Number(st.raftTerm),
      commit: Number(st.raftIndex),
      applied: Number(st.raftAppliedIndex),
      dbSize: Number(st.dbSize),
    };
  }
}
