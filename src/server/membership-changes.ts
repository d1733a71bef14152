// Membership changes as etcd makes them: one member at a time, checked before they reach Raft.
//
// Owns: etcd's validation of member add/remove/update/promote (URLs, duplicates, ids) and its
// strict reconfiguration checks (--strict-reconfig-check, on by default; off, they are skipped,
// as in etcd, and only what the apply itself refuses is refused): a change must not
// leave the new configuration without a quorum of started members (a member is started once
// it has published its name), and the member that takes the request must count on the voters
// being up: the leader by having heard from them, any other member by its own links to them
// (etcd's isConnectedSince, asked on whichever member the client reached).
// Never: changes the member list itself (that happens when the conf change is applied, on
// every member alike).

import { createHash } from 'node:crypto';
import type { Member } from '../gen/etcd/rpc.js';
import { MemberInfo } from '../gen/raftkv/member.js';
import { Errors } from '../kv/errors.js';
import { ConfChangeType, type ConfChangeV1 } from '../raft/index.js';
import type { Membership } from './membership.js';
import { dialable, etcdUrlProblem } from '../util/url.js';

/** Learners a cluster may have at once (etcd 3.4's maxLearners). */
const MAX_LEARNERS = 1;

/** A learner may be promoted once its log is within 90% of the leader's (etcd's rule). */
const LEARNER_READY_PERCENT = 0.9;

const quorum = (n: number): number => Math.floor(n / 2) + 1;

/** What the checks need to know of the server. */
export interface ClusterView {
  readonly id: bigint;
  readonly membership: Membership;
  /** Whether the member counts as up (see EtcdServer.recentlyActive); undefined: cannot tell. */
  recentlyActive(id: bigint): boolean | undefined;
  /** Leader only: the member's match index. */
  matchOf(id: bigint): number | undefined;
  wallNow(): number;
  proposeConfChange(cc: ConfChangeV1): Promise<void>;
  /** etcd's --strict-reconfig-check (default true): false skips the quorum checks below, as etcd's. */
  readonly strictReconfigCheck: boolean;
}

/**
 * A member's peer URLs as etcd keeps them (types.NewURLs: trimmed, the scheme lower-cased,
 * sorted), or undefined if etcd would refuse one — or if it is no address a member could dial
 * (a port over 65535, an empty or malformed host: Go's parser lets those through, and etcd 3.4
 * then panics in its transport on every member). etcd 3.4 checks only an added member's URLs
 * and takes an update's as given: raftkv checks both.
 */
function memberUrls(urls: string[]): string[] | undefined {
  if (urls.length === 0) return undefined;
  const out: string[] = [];
  for (const raw of urls) {
    if (etcdUrlProblem(raw) !== undefined) return undefined;
    const u = raw.trim();
    const colon = u.indexOf(':');
    const url = `${u.slice(0, colon).toLowerCase()}${u.slice(colon)}`;
    if (!dialable(url)) return undefined;
    out.push(url);
  }
  return out.sort();
}

export class MembershipChanges {
  constructor(private readonly c: ClusterView) {}

  /** etcd's MemberAdd: a new id from the URLs and the time; returns the new member. */
  async add(requested: string[], isLearner: boolean): Promise<Member | undefined> {
    const ms = this.c.membership;
    const peerURLs = memberUrls(requested);
    if (!peerURLs) throw Errors.memberBadURLs();
    // etcd's order: its strict checks (mayAddMember), then what the apply would refuse, in the
    // apply's order (ValidateConfigurationChange: a removed id, an id in use, a URL in use, learners).
    this.checkReadyToAdd(isLearner);
    // etcd's MemberAdd id: sha1 of the sorted URLs and the time in seconds (no cluster name), so
    // the same URLs added twice within a second are the same member id, as with etcd.
    const h = createHash('sha1').update(peerURLs.join('') + String(Math.floor(this.c.wallNow() / 1000))).digest();
    const id = h.readBigUInt64BE(0);
    if (ms.removed.has(id)) throw Errors.memberNotFound();
    if (ms.get(id)) throw Errors.memberExist();
    this.checkPeerUrlsFree(peerURLs);
    // etcd 3.4 allows one learner at a time (membership.maxLearners).
    if (isLearner && [...ms.members.values()].filter((m) => m.isLearner).length >= MAX_LEARNERS) throw Errors.tooManyLearners();
    const info: MemberInfo = { id, name: '', peerUrls: peerURLs, clientUrls: [], isLearner };
    await this.c.proposeConfChange({
      type: isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
      nodeId: id,
      context: MemberInfo.encode(info).finish(),
    });
    return ms.list().find((m) => m.ID === id);
  }

  async remove(id: bigint): Promise<void> {
    const m = this.c.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    // Removing a learner never endangers the quorum.
    if (!m.isLearner) this.checkReadyToRemoveVoter(id);
    await this.c.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: id, context: new Uint8Array(0) });
  }

  async update(id: bigint, requested: string[]): Promise<void> {
    const m = this.c.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    const peerURLs = memberUrls(requested);
    if (!peerURLs) throw Errors.memberBadURLs();
    this.checkPeerUrlsFree(peerURLs, id);
    const info: MemberInfo = { ...m, peerUrls: peerURLs };
    await this.c.proposeConfChange({ type: ConfChangeType.UpdateNode, nodeId: id, context: MemberInfo.encode(info).finish() });
  }

  /** etcd's check at apply time of a promotion: `id` must name a learner. */
  private checkPromotable(id: bigint): void {
    const m = this.c.membership.get(id);
    if (!m) throw Errors.memberNotFound();
    if (!m.isLearner) throw Errors.memberNotLearner();
  }

  /** Promotions made here as leader, and the ones refused, by error (etcd_server_learner_promote_*). */
  readonly promotions = { successes: 0, failures: new Map<string, number>() };

  /** Leader only: promotes a learner that has caught up. */
  async promote(id: bigint): Promise<void> {
    try {
      await this.promoteCaughtUp(id);
      this.promotions.successes++;
    } catch (e) {
      const reason = (e as Error).message;
      this.promotions.failures.set(reason, (this.promotions.failures.get(reason) ?? 0) + 1);
      throw e;
    }
  }

  /**
   * etcd's order (mayPromoteMember, then the apply's checks): first whether the member, if the
   * leader tracks its progress, is within 90% of the leader's log — also a voter that is behind
   * gets `can only promote a learner member which is in sync with leader` — then the quorum of
   * started voters once it votes, then whether it is a learner at all.
   */
  private async promoteCaughtUp(id: bigint): Promise<void> {
    // Only a leader tracks progress (etcd's isLearnerReady: ErrNotLeader otherwise; the caller
    // asks the new leader then).
    const lead = this.c.matchOf(this.c.id);
    if (lead === undefined) throw Errors.notLeader();
    const match = this.c.matchOf(id);
    if (match !== undefined && match < lead * LEARNER_READY_PERCENT) throw Errors.learnerNotReady();
    // The learner counts as started: it has just proven so by catching up.
    const { voters, started } = this.voterCounts();
    if (this.c.strictReconfigCheck && started + 1 < quorum(voters + 1)) throw Errors.memberNotEnoughStarted();
    this.checkPromotable(id);
    await this.c.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: id, context: new Uint8Array(0) });
  }

  /**
   * The voters (all but `except`): how many, how many have started, and how many this member
   * counts as up (itself included); `active` is undefined where it cannot tell.
   */
  private voterCounts(except?: bigint): { voters: number; started: number; active: number | undefined } {
    let voters = 0;
    let started = 0;
    let active = 0;
    let known = true;
    for (const m of this.c.membership.members.values()) {
      if (m.isLearner || m.id === except) continue;
      voters++;
      if (m.name !== '') started++;
      const up = m.id === this.c.id || this.c.recentlyActive(m.id);
      if (up === undefined) known = false;
      else if (up) active++;
    }
    return { voters, started, active: known ? active : undefined };
  }

  /** No other member (but `except`, the one being updated) may use one of `peerURLs`. */
  private checkPeerUrlsFree(peerURLs: string[], except?: bigint): void {
    for (const m of this.c.membership.members.values()) {
      if (m.id !== except && m.peerUrls.some((u) => peerURLs.includes(u))) throw Errors.peerURLExist();
    }
  }

  /** etcd's mayAddMember: a voter needs a quorum of started members; any new member, every voter up. */
  private checkReadyToAdd(isLearner: boolean): void {
    if (!this.c.strictReconfigCheck) return;
    const { voters, started, active } = this.voterCounts();
    // etcd's exception: a second member may join a 1-member cluster (restoring from a backup).
    const restoring = started === 1 && voters + 1 === 2;
    if (!isLearner && !restoring && started < quorum(voters + 1)) throw Errors.memberNotEnoughStarted();
    if (active !== undefined && active < voters) throw Errors.unhealthy();
  }

  /**
   * Removing a voter must leave a quorum of started, and of active, voters — unless the voter is
   * down itself: it is not part of the active quorum (etcd's mayRemoveMember).
   */
  private checkReadyToRemoveVoter(id: bigint): void {
    if (!this.c.strictReconfigCheck) return;
    const { voters, started, active } = this.voterCounts(id);
    if (started < quorum(voters)) throw Errors.memberNotEnoughStarted();
    if (id !== this.c.id && this.c.recentlyActive(id) === false) return;
    if (active !== undefined && active < quorum(voters)) throw Errors.unhealthy();
  }
}
