// The Raft protocol state machine (Ongaro & Ousterhout, and Ongaro's thesis).
//
// It is a pure, synchronous object: inputs are step(message) and tick(); outputs accumulate
// in `msgs`, `msgsAfterPersist`, `readStates` and the log's unstable tail, and RawNode hands
// them to the driver as a Ready. It never reads a clock, performs I/O or draws randomness of
// its own (the election-timeout jitter comes from an injected Rand).

import { Changer, type ChangeResult } from './confchange/changer.js';
import { restoreConfig } from './confchange/restore.js';
import { type ConfChangeV2, decodeConfChangeEntry, enterJoint, isLeaveJoint } from './confchange/types.js';
import { ErrConfig, ErrProposalDropped } from './errors.js';
import { RaftLog } from './log.js';
import { type Logger, hexId, silentLogger } from './logger.js';
import { VoteResult } from './quorum/majority.js';
import type { Rand } from './rand.js';
import { ReadOnly, ReadOnlyOption } from './read-only.js';
import type { Storage } from './storage.js';
import { Progress, ProgressState } from './tracker/progress.js';
import { ProgressTracker } from './tracker/tracker.js';
import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  NO_LIMIT,
  type ReadState,
  type Snapshot,
  type SoftState,
  StateType,
  isEmptyHardState,
  newMessage,
  payloadsSize,
  voteRespMsgType,
} from './types.js';

export interface Config {
  /** This node's id; never 0. */
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTick: number;
  /** Ticks between leader heartbeats. Must be < electionTick. */
  heartbeatTick: number;
  storage: Storage;
  /** Last applied index (on restart); entries <= applied are not handed out again. */
  applied?: number;
  /** Max bytes of entries per MsgApp (at least one entry is always sent). */
  maxSizePerMsg?: number;
  /** Max bytes of committed entries handed to the application in one Ready. */
  maxCommittedSizePerReady?: number;
  /** Max bytes of uncommitted entries the leader accepts before dropping proposals. */
  maxUncommittedEntriesSize?: number;
  /** Max in-flight MsgApp per follower in StateReplicate (pipelining window). */
  maxInflightMsgs?: number;
  /** Max in-flight payload bytes per follower (0 = unlimited). */
  maxInflightBytes?: number;
  /** Leader steps down when it has not heard from a quorum for an election timeout. */
  checkQuorum?: boolean;
  /** Run a pre-election (thesis §9.6) so that a partitioned node cannot inflate terms. */
  preVote?: boolean;
  readOnlyOption?: ReadOnlyOption;
  /** Drop proposals on followers instead of forwarding them to the leader. */
  disableProposalForwarding?: boolean;
  /** A leader removed from the configuration steps down (instead of leading without voting). */
  stepDownOnRemoval?: boolean;
  rand: Rand;
  logger?: Logger;
}

export enum CampaignType {
  PreElection = 'CampaignPreElection',
  Election = 'CampaignElection',
  /** Forced election after MsgTimeoutNow: bypasses leases and pre-vote. */
  Transfer = 'CampaignTransfer',
}

const CAMPAIGN_TRANSFER_CTX = new TextEncoder().encode(CampaignType.Transfer);

function bytesEqual(a: Uint8Array | undefined, b: Uint8Array): boolean {
  if (!a || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Which messages may leave before the state they depend on is durable. Responses that
 * acknowledge appended entries or a granted vote, and vote requests (which carry a term and
 * self-vote not yet on disk), wait for the persist; everything else may be sent at once.
 */
function needsPersistBeforeSend(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgPreVoteResp ||
    t === MessageType.MsgVote ||
    t === MessageType.MsgPreVote
  );
}

export class Raft {
  readonly id: NodeId;
  /**
   * Persisted (HardState). Never decreases. Election safety rests on term and vote together:
   * vote changes only from NONE within a term (or with the term, in reset), so a node grants
   * at most one candidate per term, and the grant leaves only after it is durable.
   */
  term = 0;
  vote: NodeId = NONE;
  readStates: ReadState[] = [];
  raftLog: RaftLog;
  trk: ProgressTracker;
  state: StateType = StateType.Follower;
  isLearner = false;

  /** Messages that may be sent immediately. */
  msgs: Message[] = [];
  /** Messages that may be sent only once the current unstable state is persisted. */
  msgsAfterPersist: Message[] = [];

  /** The leader of the current term as far as we know, or NONE; never persisted. */
  lead: NodeId = NONE;
  /**
   * Target of an in-progress leadership transfer (thesis §3.10), or NONE. While set the leader
   * drops proposals; the transfer is abandoned after an election timeout.
   */
  leadTransferee: NodeId = NONE;
  /**
   * Only one conf change may be pending (in the log, unapplied). The leader keeps this >= the
   * index of the latest conf change it appended, and accepts a new one only once applied has
   * reached it: one change at a time is what makes simple (non-joint) changes safe.
   */
  pendingConfIndex = 0;
  /**
   * Bytes of uncommitted entry payloads in the leader's log (for the proposal limit). An
   * estimate: 0 after reset() (a new leader does not count the tail it inherited), raised by
   * appends, lowered as entries are applied (saturating at 0). Undercounting only makes the
   * limit looser; it exists to bound memory, not for safety.
   */
  uncommittedSize = 0;
  readOnly: ReadOnly;

  /**
   * Followers and candidates: ticks since the last election timeout or the last message from
   * the current leader. Leaders: ticks since the last CheckQuorum point (or the start of a
   * transfer). A node that knows a leader and has electionElapsed < electionTimeout is "in
   * lease" and, with checkQuorum, ignores vote requests (see step).
   */
  electionElapsed = 0;
  /** Leaders only: ticks since the last heartbeat broadcast. */
  heartbeatElapsed = 0;
  readonly checkQuorum: boolean;
  readonly preVote: boolean;
  readonly heartbeatTimeout: number;
  readonly electionTimeout: number;
  /** In [electionTimeout, 2*electionTimeout-1], drawn again in every reset(). */
  randomizedElectionTimeout = 0;
  readonly disableProposalForwarding: boolean;
  readonly stepDownOnRemoval: boolean;
  readonly maxMsgSize: number;
  readonly maxUncommittedSize: number;
  /**
   * ReadIndex requests that arrived before the leader committed an entry of its term: its
   * commit index may still be behind the previous leader's, so it cannot serve them yet.
   */
  pendingReadIndexMessages: Message[] = [];

  private readonly rand: Rand;
  readonly logger: Logger;

  constructor(c: Config) {
    validateConfig(c);
    this.id = c.id;
    this.logger = c.logger ?? silentLogger;
    this.rand = c.rand;
    this.raftLog = new RaftLog(c.storage, this.logger, c.maxCommittedSizePerReady ?? NO_LIMIT);
    const { hardState, confState } = c.storage.initialState();
    this.maxMsgSize = c.maxSizePerMsg ?? 1024 * 1024;
    this.maxUncommittedSize = c.maxUncommittedEntriesSize ?? NO_LIMIT;
    this.trk = new ProgressTracker(c.maxInflightMsgs ?? 256, c.maxInflightBytes ?? 0);
    this.electionTimeout = c.electionTick;
    this.heartbeatTimeout = c.heartbeatTick;
    this.checkQuorum = c.checkQuorum ?? false;
    this.preVote = c.preVote ?? false;
    this.readOnly = new ReadOnly(c.readOnlyOption ?? ReadOnlyOption.Safe);
    this.disableProposalForwarding = c.disableProposalForwarding ?? false;
    this.stepDownOnRemoval = c.stepDownOnRemoval ?? false;

    const restored = restoreConfig(this.trk, this.raftLog.lastIndex(), confState);
    this.switchToConfig(restored);

    if (!isEmptyHardState(hardState)) this.loadState(hardState);
    if (c.applied !== undefined && c.applied > 0) this.raftLog.appliedTo(c.applied);
    this.becomeFollower(this.term, NONE);

    this.logger.info(
      `newRaft ${hexId(this.id)} [peers: [${this.trk.voterNodes().map(hexId).join(',')}], term: ${this.term}, commit: ${this.raftLog.committed}, applied: ${this.raftLog.applied}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}]`,
    );
  }

  hasLeader(): boolean {
    return this.lead !== NONE;
  }

  softState(): SoftState {
    return { lead: this.lead, raftState: this.state };
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.raftLog.committed };
  }

  // ---------------------------------------------------------------- sending

  private send(m: Message): void {
    if (m.from === NONE) m.from = this.id;
    if (
      m.type === MessageType.MsgVote ||
      m.type === MessageType.MsgVoteResp ||
      m.type === MessageType.MsgPreVote ||
      m.type === MessageType.MsgPreVoteResp
    ) {
      // Vote messages carry the term of the campaign, which may not be ours (pre-vote).
      if (m.term === 0) throw new Error(`term should be set when sending ${MessageType[m.type]}`);
    } else {
      if (m.term !== 0) throw new Error(`term should not be set when sending ${MessageType[m.type]} (was ${m.term})`);
      // Proposals and read requests forwarded to the leader are term-less, like local messages.
      if (m.type !== MessageType.MsgProp && m.type !== MessageType.MsgReadIndex) m.term = this.term;
    }
    if (needsPersistBeforeSend(m.type)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  /** Sends an append (or a snapshot) to `to`, even an empty one to carry the commit index. */
  sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /**
   * Sends the entries from the follower's `next` on, if flow control allows. Returns whether a
   * message was sent. With sendIfEmpty=false, nothing is sent when there is nothing new.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;

    const prevIndex = pr.next - 1;
    const prevTerm = this.raftLog.termOrUndefined(prevIndex);
    // The log was compacted past what the follower needs: it must get a snapshot.
    if (prevTerm === undefined) return this.maybeSendSnapshot(to);
    let ents: Entry[] = [];
    // A throttled follower (full window) gets only empty appends: they still carry the commit
    // index and, once answered, reopen the window if every inflight message was lost.
    if (pr.state !== ProgressState.Replicate || !pr.inflights.full()) {
      try {
        ents = this.raftLog.entries(pr.next, this.maxMsgSize);
      } catch {
        // TODO(raftkv): any storage error, not only ErrCompacted, turns into a snapshot here
        // (and into "unknown term" in termOrUndefined); etcd-io/raft panics on the others.
        return this.maybeSendSnapshot(to);
      }
    }
    if (ents.length === 0 && !sendIfEmpty) return false;

    this.send(
      newMessage(MessageType.MsgApp, {
        to,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.raftLog.committed,
      }),
    );
    pr.sentEntries(ents.length, payloadsSize(ents));
    pr.sentCommitIndex(this.raftLog.committed);
    return true;
  }

  private maybeSendSnapshot(to: NodeId): boolean {
    const pr = this.trk.progress.get(to)!;
    if (!pr.recentActive) {
      this.logger.debug(`ignore sending snapshot to ${hexId(to)} since it is not recently active`);
      return false;
    }
    let snap: Snapshot;
    try {
      snap = this.raftLog.snapshot();
    } catch (e) {
      if (e instanceof Error && e.name === 'ErrSnapshotTemporarilyUnavailable') {
        this.logger.debug(`${hexId(this.id)} failed to send snapshot to ${hexId(to)} because snapshot is temporarily unavailable`);
        return false;
      }
      throw e;
    }
    if (snap.metadata.index === 0) throw new Error('need non-empty snapshot');
    this.logger.debug(
      `${hexId(this.id)} [firstindex: ${this.raftLog.firstIndex()}, commit: ${this.raftLog.committed}] sent snapshot[index: ${snap.metadata.index}, term: ${snap.metadata.term}] to ${hexId(to)} [${pr}]`,
    );
    pr.becomeSnapshot(snap.metadata.index);
    this.send(newMessage(MessageType.MsgSnap, { to, snapshot: snap }));
    return true;
  }

  private sendHeartbeat(to: NodeId, ctx: Uint8Array | undefined): void {
    const pr = this.trk.progress.get(to)!;
    // Never tell a follower to commit past what it is known to have: its log may diverge there.
    // (A heartbeat carries no log position, so the follower could not check; MsgApp can.)
    const commit = Math.min(pr.match, this.raftLog.committed);
    this.send(newMessage(MessageType.MsgHeartbeat, { to, commit, context: ctx }));
    pr.sentCommitIndex(commit);
  }

  bcastAppend(): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendAppend(id);
    });
  }

  private bcastHeartbeat(): void {
    this.bcastHeartbeatWithCtx(this.readOnly.lastPendingRequestCtx());
  }

  private bcastHeartbeatWithCtx(ctx: Uint8Array | undefined): void {
    this.trk.visit((id) => {
      if (id !== this.id) this.sendHeartbeat(id, ctx);
    });
  }

  // ---------------------------------------------------------------- commit and persistence

  /**
   * Advances the commit index to what a quorum has durably acked, if it is of our term. Leader
   * only; the leader counts its own match, which is its last *durable* index (onPersisted).
   */
  maybeCommit(): boolean {
    return this.raftLog.maybeCommit(this.trk.committed(), this.term);
  }

  /**
   * Called by RawNode.advance once the driver has persisted the log up to `index`. The leader
   * counts itself towards the commit quorum only for durable entries, so a leader crash can
   * never lose an entry that was reported committed.
   */
  onPersisted(): void {
    if (this.state !== StateType.Leader) return;
    const pr = this.trk.progress.get(this.id);
    if (!pr) return;
    if (pr.maybeUpdate(this.raftLog.lastStableIndex()) && this.maybeCommit()) {
      this.releasePendingReadIndexMessages();
      this.bcastAppend();
    }
  }

  reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetRandomizedElectionTimeout();
    this.abortLeaderTransfer();
    this.trk.resetVotes();
    const last = this.raftLog.lastIndex();
    this.trk.visit((id, pr) => {
      const isLearner = pr.isLearner;
      const fresh = new Progress(this.trk.maxInflight, this.trk.maxInflightBytes, { match: 0, next: last + 1, isLearner });
      if (id === this.id) fresh.match = this.raftLog.lastStableIndex();
      this.trk.progress.set(id, fresh);
    });
    this.pendingConfIndex = 0;
    this.uncommittedSize = 0;
    this.readOnly = new ReadOnly(this.readOnly.option);
  }

  /** Appends entries proposed to the leader. Returns false if the uncommitted limit drops them. */
  appendEntry(es: Entry[]): boolean {
    const li = this.raftLog.lastIndex();
    for (let i = 0; i < es.length; i++) {
      es[i]!.term = this.term;
      es[i]!.index = li + 1 + i;
    }
    if (!this.increaseUncommittedSize(es)) {
      this.logger.warn(`${hexId(this.id)} appending new entries to log would exceed uncommitted entry size limit; dropping proposal`);
      return false;
    }
    this.raftLog.append(es);
    return true;
  }

  // ---------------------------------------------------------------- ticks

  /**
   * The role decides what a tick and a message do. Dispatched on `state` (not on closures kept
   * in fields), so a node's whole state is plain data: the model checker copies it to branch.
   */
  tick(): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection();
  }

  /** Followers and candidates: campaign when no leader was heard from for the timeout. */
  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.pastElectionTimeout()) {
      this.electionElapsed = 0;
      this.step(newMessage(MessageType.MsgHup, { from: this.id }));
    }
  }

  /** Leaders: heartbeat every heartbeatTimeout; check the quorum every electionTimeout. */
  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(newMessage(MessageType.MsgCheckQuorum, { from: this.id }));
      // A transfer that did not finish within an election timeout is abandoned.
      if (this.state === StateType.Leader && this.leadTransferee !== NONE) this.abortLeaderTransfer();
    }
    if (this.state !== StateType.Leader) return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(newMessage(MessageType.MsgBeat, { from: this.id }));
    }
  }

  // ---------------------------------------------------------------- role changes

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
    this.logger.info(`${hexId(this.id)} became follower at term ${this.term}`);
  }

  becomeCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> candidate]');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
    this.logger.info(`${hexId(this.id)} became candidate at term ${this.term}`);
  }

  becomePreCandidate(): void {
    if (this.state === StateType.Leader) throw new Error('invalid transition [leader -> pre-candidate]');
    // A pre-candidate changes neither its term nor its vote: that is the point of pre-vote.
    this.trk.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
    this.logger.info(`${hexId(this.id)} became pre-candidate at term ${this.term}`);
  }

  becomeLeader(): void {
    if (this.state === StateType.Follower) throw new Error('invalid transition [follower -> leader]');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const pr = this.trk.progress.get(this.id)!;
    pr.becomeReplicate();
    pr.recentActive = true;
    // There may be an unapplied conf change in our log; conservatively treat the whole tail as
    // pending so that no new change is accepted until everything we have is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op entry of the new term: committing it commits everything before it (§5.4.2)
    // and tells us the commit index of the cluster (needed before serving ReadIndex).
    if (!this.appendEntry([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }])) {
      throw new Error('empty entry was dropped');
    }
    this.logger.info(`${hexId(this.id)} became leader at term ${this.term}`);
  }

  private hup(t: CampaignType): void {
    if (this.state === StateType.Leader) {
      this.logger.debug(`${hexId(this.id)} ignoring MsgHup because already leader`);
      return;
    }
    if (!this.promotable()) {
      this.logger.warn(`${hexId(this.id)} is unpromotable and can not campaign`);
      return;
    }
    if (this.hasUnappliedConfChanges()) {
      this.logger.warn(
        `${hexId(this.id)} cannot campaign at term ${this.term} since there are still pending configuration changes to apply`,
      );
      return;
    }
    this.logger.info(`${hexId(this.id)} is starting a new election at term ${this.term}`);
    this.campaign(t);
  }

  private hasUnappliedConfChanges(): boolean {
    if (this.raftLog.applied >= this.raftLog.committed) return false;
    // TODO(raftkv): reads the whole committed-but-unapplied range in one slice; etcd-io/raft
    // scans it in pages of maxApplyingEntsSize, so a long backlog is not held in memory at once.
    const lo = Math.max(this.raftLog.applied + 1, this.raftLog.firstIndex());
    const ents = this.raftLog.slice(lo, this.raftLog.committed + 1, NO_LIMIT);
    return ents.some((e) => e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2);
  }

  campaign(t: CampaignType): void {
    let term: number;
    let voteMsg: MessageType;
    if (t === CampaignType.PreElection) {
      this.becomePreCandidate();
      voteMsg = MessageType.MsgPreVote;
      // Pre-votes are requested for the next term, without incrementing ours.
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = MessageType.MsgVote;
      term = this.term;
    }
    // Our own vote. It counts at once: the vote requests go out only after the new term and
    // vote are persisted (see needsPersistBeforeSend), so no peer acts on them before that.
    const { result } = this.poll(this.id, voteRespMsgType(voteMsg), true);
    if (result === VoteResult.Won) {
      // A single-voter configuration: we won outright.
      if (t === CampaignType.PreElection) this.campaign(CampaignType.Election);
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.trk.voterNodes()) {
      if (id === this.id) continue;
      this.logger.info(
        `${hexId(this.id)} [logterm: ${lastTerm}, index: ${lastIndex}] sent ${MessageType[voteMsg]} request to ${hexId(id)} at term ${this.term}`,
      );
      this.send(
        newMessage(voteMsg, {
          to: id,
          term,
          index: lastIndex,
          logTerm: lastTerm,
          context: t === CampaignType.Transfer ? CAMPAIGN_TRANSFER_CTX : undefined,
        }),
      );
    }
  }

  private poll(id: NodeId, t: MessageType, granted: boolean): { granted: number; rejected: number; result: VoteResult } {
    this.logger.info(`${hexId(this.id)} received ${MessageType[t]} ${granted ? '' : 'rejection '}from ${hexId(id)} at term ${this.term}`);
    this.trk.recordVote(id, granted);
    return this.trk.tallyVotes();
  }

  // ---------------------------------------------------------------- step

  /** Steps any message (network or local). May throw ErrProposalDropped for proposals. */
  step(m: Message): void {
    // First, reconcile terms: a higher term makes us a follower (with exceptions), a lower
    // term is (mostly) ignored.
    if (m.term === 0) {
      // local message
    } else if (m.term > this.term) {
      if (m.type === MessageType.MsgVote || m.type === MessageType.MsgPreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER_CTX);
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) {
          // We heard from a leader within the minimum election timeout: this vote request
          // comes from a node that was cut off (thesis §4.2.3). Don't let it disrupt us.
          this.logger.info(
            `${hexId(this.id)} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${hexId(this.vote)}] ignored ${MessageType[m.type]} from ${hexId(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}: lease is not expired (remaining ticks: ${this.electionTimeout - this.electionElapsed})`,
          );
          return;
        }
      }
      if (m.type === MessageType.MsgPreVote) {
        // Never change our term in response to a pre-vote.
      } else if (m.type === MessageType.MsgPreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we will campaign in; we bump it when we win.
      } else {
        this.logger.info(
          `${hexId(this.id)} [term: ${this.term}] received a ${MessageType[m.type]} message with higher term from ${hexId(m.from)} [term: ${m.term}]`,
        );
        if (m.type === MessageType.MsgApp || m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgSnap) {
          this.becomeFollower(m.term, m.from);
        } else {
          this.becomeFollower(m.term, NONE);
        }
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === MessageType.MsgHeartbeat || m.type === MessageType.MsgApp)) {
        // A stale leader talks to us. With CheckQuorum/PreVote we won't disrupt it with a
        // higher-term vote request, so tell it about our term (it will step down) — otherwise
        // a node partitioned with a higher term could never rejoin.
        this.send(newMessage(MessageType.MsgAppResp, { to: m.from }));
      } else if (m.type === MessageType.MsgPreVote) {
        // Reject explicitly so the pre-candidate learns our term rather than waiting forever.
        this.send(newMessage(MessageType.MsgPreVoteResp, { to: m.from, term: this.term, reject: true }));
      } else {
        this.logger.info(
          `${hexId(this.id)} [term: ${this.term}] ignored a ${MessageType[m.type]} message with lower term from ${hexId(m.from)} [term: ${m.term}]`,
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.MsgHup:
        this.hup(this.preVote ? CampaignType.PreElection : CampaignType.Election);
        break;
      case MessageType.MsgVote:
      case MessageType.MsgPreVote: {
        // We can vote if this is a repeat of our vote, if we have not voted and know of no
        // leader in this term, or if it is a pre-vote for a future term...
        const canVote =
          this.vote === m.from ||
          (this.vote === NONE && this.lead === NONE) ||
          (m.type === MessageType.MsgPreVote && m.term > this.term);
        // ...and the candidate's log is at least as up to date as ours (§5.4.1).
        if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
          this.logger.info(
            `${hexId(this.id)} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${hexId(this.vote)}] cast ${MessageType[m.type]} for ${hexId(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          // The response carries the candidate's term (for pre-votes, a future term).
          this.send(newMessage(voteRespMsgType(m.type), { to: m.from, term: m.term }));
          if (m.type === MessageType.MsgVote) {
            // Only real votes are recorded (and persisted before the response leaves).
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.logger.info(
            `${hexId(this.id)} [logterm: ${this.raftLog.lastTerm()}, index: ${this.raftLog.lastIndex()}, vote: ${hexId(this.vote)}] rejected ${MessageType[m.type]} from ${hexId(m.from)} [logterm: ${m.logTerm}, index: ${m.index}] at term ${this.term}`,
          );
          this.send(newMessage(voteRespMsgType(m.type), { to: m.from, term: this.term, reject: true }));
        }
        break;
      }
      default:
        if (this.state === StateType.Leader) this.stepLeader(m);
        else if (this.state === StateType.Follower) this.stepFollower(m);
        else this.stepCandidate(m);
    }
  }

  private stepLeader(m: Message): void {
    // Messages that need no progress for m.from.
    switch (m.type) {
      case MessageType.MsgBeat:
        this.bcastHeartbeat();
        return;
      case MessageType.MsgCheckQuorum:
        if (!this.trk.quorumActive()) {
          this.logger.warn(`${hexId(this.id)} stepped down to follower since quorum is not active`);
          this.becomeFollower(this.term, NONE);
        }
        // Everyone but us must prove to be alive again before the next check.
        this.trk.visit((id, pr) => {
          if (id !== this.id) pr.recentActive = false;
        });
        return;
      case MessageType.MsgProp: {
        if (m.entries.length === 0) throw new Error(`${hexId(this.id)} stepped empty MsgProp`);
        if (!this.trk.progress.has(this.id)) {
          // We were removed from the configuration while leading: take no new proposals.
          throw new ErrProposalDropped('raft proposal dropped: leader was removed from the configuration');
        }
        if (this.leadTransferee !== NONE) {
          this.logger.debug(
            `${hexId(this.id)} [term ${this.term}] transfer leadership to ${hexId(this.leadTransferee)} is in progress; dropping proposal`,
          );
          throw new ErrProposalDropped('raft proposal dropped: leadership transfer in progress');
        }
        for (let i = 0; i < m.entries.length; i++) {
          const e = m.entries[i]!;
          if (e.type !== EntryType.ConfChange && e.type !== EntryType.ConfChangeV2) continue;
          const cc = decodeConfChangeEntry(e.type, e.data);
          const alreadyPending = this.pendingConfIndex > this.raftLog.applied;
          const alreadyJoint = this.trk.config.voters.isJoint();
          const wantsLeaveJoint = isLeaveJoint(cc);
          let failed = '';
          if (alreadyPending) {
            failed = `possible unapplied conf change at index ${this.pendingConfIndex} (applied to ${this.raftLog.applied})`;
          } else if (alreadyJoint && !wantsLeaveJoint) {
            failed = 'must transition out of joint config first';
          } else if (!alreadyJoint && wantsLeaveJoint) {
            failed = 'not in joint state; refusing empty conf change';
          }
          if (failed !== '') {
            // Keep the slot (the proposer waits for its index) but make it a no-op.
            this.logger.info(`${hexId(this.id)} ignoring conf change at config ${this.trk.config}: ${failed}`);
            m.entries[i] = { term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) };
          } else {
            this.pendingConfIndex = this.raftLog.lastIndex() + i + 1;
          }
        }
        if (!this.appendEntry(m.entries)) {
          throw new ErrProposalDropped('raft proposal dropped: too many uncommitted entries');
        }
        this.bcastAppend();
        return;
      }
      case MessageType.MsgReadIndex:
        if (this.trk.isSingleton()) {
          // Only us to ask: our commit index is the read index.
          this.respondToReadIndex(m, this.raftLog.committed);
          return;
        }
        // Until an entry of our term is committed we don't know the cluster's commit index.
        if (!this.committedEntryInCurrentTerm()) {
          this.pendingReadIndexMessages.push(m);
          return;
        }
        this.sendReadIndexResponse(m);
        return;
    }

    const pr = this.trk.progress.get(m.from);
    if (!pr) {
      this.logger.debug(`${hexId(this.id)} no progress available for ${hexId(m.from)}`);
      return;
    }
    switch (m.type) {
      case MessageType.MsgAppResp:
        pr.recentActive = true;
        if (m.reject) {
          // rejectHint is where the follower's log may match ours; logTerm is its term there.
          this.logger.debug(
            `${hexId(this.id)} received MsgAppResp(rejected, hint: (index ${m.rejectHint}, term ${m.logTerm})) from ${hexId(m.from)} for index ${m.index}`,
          );
          let nextProbeIdx = m.rejectHint;
          if (m.logTerm > 0) {
            // Skip every entry of ours with a term above the follower's term at the hint:
            // one round trip per term instead of per entry (thesis §5.3 optimization).
            nextProbeIdx = this.raftLog.findConflictByTerm(m.rejectHint, m.logTerm).index;
          }
          if (pr.maybeDecrTo(m.index, nextProbeIdx)) {
            this.logger.debug(`${hexId(this.id)} decreased progress of ${hexId(m.from)} to [${pr}]`);
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
        } else if (pr.maybeUpdate(m.index) || (pr.match === m.index && pr.state === ProgressState.Probe)) {
          if (pr.state === ProgressState.Probe) {
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Snapshot && pr.match + 1 >= this.raftLog.firstIndex()) {
            // The follower caught up far enough to continue from the log.
            this.logger.debug(`${hexId(this.id)} recovered from needing snapshot, resumed sending replication messages to ${hexId(m.from)} [${pr}]`);
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) {
            pr.inflights.freeLE(m.index);
          }
          if (this.maybeCommit()) {
            // The commit index moved in our term: pending reads can be served.
            this.releasePendingReadIndexMessages();
            this.bcastAppend();
          } else if (pr.canBumpCommit(this.raftLog.committed)) {
            // The follower may not know the latest commit index: tell it now, not at the next heartbeat.
            this.sendAppend(m.from);
          }
          // The window may have opened: send as much as it allows.
          while (this.maybeSendAppend(m.from, false)) {
            /* keep sending */
          }
          if (m.from === this.leadTransferee && pr.match === this.raftLog.lastIndex()) {
            this.logger.info(`${hexId(this.id)} sent MsgTimeoutNow to ${hexId(m.from)} after received MsgAppResp`);
            this.sendTimeoutNow(m.from);
          }
        }
        return;
      case MessageType.MsgHeartbeatResp: {
        pr.recentActive = true;
        pr.msgAppFlowPaused = false;
        // A paused or probing follower gets an append so that it can recover (its inflight
        // messages may all have been lost).
        if (pr.match < this.raftLog.lastIndex() || pr.state === ProgressState.Probe) this.sendAppend(m.from);
        if (this.readOnly.option !== ReadOnlyOption.Safe || !m.context || m.context.length === 0) return;
        const acks = this.readOnly.recvAck(m.from, m.context);
        if (!acks || this.trk.config.voters.voteResult(acks) !== VoteResult.Won) return;
        for (const rs of this.readOnly.advance(m.context)) this.respondToReadIndex(rs.req, rs.index);
        return;
      }
      case MessageType.MsgSnapStatus:
        if (pr.state !== ProgressState.Snapshot) return;
        if (!m.reject) {
          pr.becomeProbe();
          this.logger.debug(`${hexId(this.id)} snapshot succeeded, resumed sending replication messages to ${hexId(m.from)} [${pr}]`);
        } else {
          // Clear pendingSnapshot first, or we would probe from the snapshot that never arrived.
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
          this.logger.debug(`${hexId(this.id)} snapshot failed, resumed sending replication messages to ${hexId(m.from)} [${pr}]`);
        }
        // Wait for the follower's MsgAppResp (success) or the next heartbeat (failure).
        pr.msgAppFlowPaused = true;
        return;
      case MessageType.MsgUnreachable:
        // An optimistic stream to an unreachable peer has probably lost messages.
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.logger.debug(`${hexId(this.id)} failed to send message to ${hexId(m.from)} because it is unreachable [${pr}]`);
        return;
      case MessageType.MsgTransferLeader: {
        if (pr.isLearner) {
          this.logger.debug(`${hexId(this.id)} is learner. Ignored transferring leadership`);
          return;
        }
        const transferee = m.from;
        const last = this.leadTransferee;
        if (last !== NONE) {
          if (last === transferee) {
            this.logger.info(
              `${hexId(this.id)} [term ${this.term}] transfer leadership to ${hexId(transferee)} is in progress, ignores request to same node ${hexId(transferee)}`,
            );
            return;
          }
          this.abortLeaderTransfer();
          this.logger.info(`${hexId(this.id)} [term ${this.term}] abort previous transferring leadership to ${hexId(last)}`);
        }
        if (transferee === this.id) {
          this.logger.debug(`${hexId(this.id)} is already leader. Ignored transferring leadership to self`);
          return;
        }
        this.logger.info(`${hexId(this.id)} [term ${this.term}] starts to transfer leadership to ${hexId(transferee)}`);
        // The transfer must finish within one election timeout (see tickHeartbeat).
        this.electionElapsed = 0;
        this.leadTransferee = transferee;
        if (pr.match === this.raftLog.lastIndex()) {
          this.sendTimeoutNow(transferee);
          this.logger.info(`${hexId(this.id)} sends MsgTimeoutNow to ${hexId(transferee)} immediately as ${hexId(transferee)} already has up-to-date log`);
        } else {
          this.sendAppend(transferee);
        }
        return;
      }
    }
  }

  private stepCandidate(m: Message): void {
    // Only responses to our current kind of campaign count (a candidate may still receive
    // pre-vote responses from its pre-candidate phase).
    const myVoteRespType = this.state === StateType.PreCandidate ? MessageType.MsgPreVoteResp : MessageType.MsgVoteResp;
    switch (m.type) {
      case MessageType.MsgProp:
        this.logger.info(`${hexId(this.id)} no leader at term ${this.term}; dropping proposal`);
        throw new ErrProposalDropped('raft proposal dropped: no leader');
      case MessageType.MsgApp:
        this.becomeFollower(m.term, m.from); // m.term === this.term: someone else won
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myVoteRespType: {
        const { granted, rejected, result } = this.poll(m.from, m.type, !m.reject);
        this.logger.info(`${hexId(this.id)} has received ${granted} ${MessageType[m.type]} votes and ${rejected} vote rejections`);
        if (result === VoteResult.Won) {
          if (this.state === StateType.PreCandidate) {
            this.campaign(CampaignType.Election);
          } else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === VoteResult.Lost) {
          // A rejected pre-vote carries a future term; we stay at ours.
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
      case MessageType.MsgTimeoutNow:
        this.logger.debug(`${hexId(this.id)} [term ${this.term} state ${this.state}] ignored MsgTimeoutNow from ${hexId(m.from)}`);
        return;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.MsgProp:
        if (this.lead === NONE) {
          this.logger.info(`${hexId(this.id)} no leader at term ${this.term}; dropping proposal`);
          throw new ErrProposalDropped('raft proposal dropped: no leader');
        }
        if (this.disableProposalForwarding) {
          this.logger.info(`${hexId(this.id)} not forwarding to leader ${hexId(this.lead)} at term ${this.term}; dropping proposal`);
          throw new ErrProposalDropped('raft proposal dropped: forwarding disabled');
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.MsgApp:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case MessageType.MsgHeartbeat:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case MessageType.MsgSnap:
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case MessageType.MsgTransferLeader:
        if (this.lead === NONE) {
          this.logger.info(`${hexId(this.id)} no leader at term ${this.term}; dropping leader transfer msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.MsgTimeoutNow:
        // The leader hands over to us: campaign at once. No pre-vote: we know the cluster is
        // healthy, and the forced campaign overrides the peers' leases.
        this.logger.info(`${hexId(this.id)} [term ${this.term}] received MsgTimeoutNow from ${hexId(m.from)} and starts an election to get leadership.`);
        this.hup(CampaignType.Transfer);
        return;
      case MessageType.MsgReadIndex:
        if (this.lead === NONE) {
          this.logger.info(`${hexId(this.id)} no leader at term ${this.term}; dropping index reading msg`);
          return;
        }
        this.send({ ...m, to: this.lead });
        return;
      case MessageType.MsgReadIndexResp:
        this.readStates.push({ index: m.index, requestCtx: m.context ?? new Uint8Array(0) });
        return;
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Everything up to our commit index is known to match; tell the leader where we are.
      this.send(newMessage(MessageType.MsgAppResp, { to: m.from, index: this.raftLog.committed }));
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(newMessage(MessageType.MsgAppResp, { to: m.from, index: lastNew }));
      return;
    }
    this.logger.debug(
      `${hexId(this.id)} [logterm: ${this.raftLog.zeroTermOnErr(m.index)}, index: ${m.index}] rejected MsgApp [logterm: ${m.logTerm}, index: ${m.index}] from ${hexId(m.from)}`,
    );
    // Hint the largest (index, term) with index <= m.index and term <= m.logTerm: the leader
    // can skip all our entries of newer terms in one go.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.send(
      newMessage(MessageType.MsgAppResp, {
        to: m.from,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(m.commit);
    this.send(newMessage(MessageType.MsgHeartbeatResp, { to: m.from, context: m.context }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    const sindex = s?.metadata.index ?? 0;
    const sterm = s?.metadata.term ?? 0;
    if (s && this.restore(s)) {
      this.logger.info(`${hexId(this.id)} [commit: ${this.raftLog.committed}] restored snapshot [index: ${sindex}, term: ${sterm}]`);
      this.send(newMessage(MessageType.MsgAppResp, { to: m.from, index: this.raftLog.lastIndex() }));
    } else {
      this.logger.info(`${hexId(this.id)} [commit: ${this.raftLog.committed}] ignored snapshot [index: ${sindex}, term: ${sterm}]`);
      this.send(newMessage(MessageType.MsgAppResp, { to: m.from, index: this.raftLog.committed }));
    }
  }

  /** Installs a snapshot from the leader. Returns false if it is stale or unusable. */
  restore(s: Snapshot): boolean {
    if (s.metadata.index <= this.raftLog.committed) return false;
    if (this.state !== StateType.Follower) {
      // Defense in depth: only followers receive snapshots.
      this.logger.warn(`${hexId(this.id)} attempted to restore snapshot as leader; should never happen`);
      this.becomeFollower(this.term + 1, NONE);
      return false;
    }
    if (this.raftLog.applying > this.raftLog.applied) {
      // Committed entries were handed to the application and are not applied yet; their conf
      // changes would then be applied on top of the snapshot's configuration. Decline for now:
      // the leader retries the snapshot once we have caught up with our own Ready.
      this.logger.info(`${hexId(this.id)} declined snapshot [index: ${s.metadata.index}] while applying entries up to ${this.raftLog.applying}`);
      return false;
    }
    const cs = s.metadata.confState;
    const found = [cs.voters, cs.learners, cs.votersOutgoing].some((set) => set.includes(this.id));
    if (!found) {
      this.logger.warn(`${hexId(this.id)} attempted to restore snapshot but it is not in the ConfState; should never happen`);
      return false;
    }
    if (this.raftLog.matchTerm(s.metadata.index, s.metadata.term)) {
      // We already have the snapshot's last entry: just fast-forward the commit index.
      this.logger.info(
        `${hexId(this.id)} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}] fast-forwarded commit to snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
      );
      this.raftLog.commitTo(s.metadata.index);
      return false;
    }
    this.raftLog.restore(s);
    // Rebuild the configuration from the snapshot's ConfState.
    this.trk = new ProgressTracker(this.trk.maxInflight, this.trk.maxInflightBytes);
    this.switchToConfig(restoreConfig(this.trk, this.raftLog.lastIndex(), cs));
    this.logger.info(
      `${hexId(this.id)} [commit: ${this.raftLog.committed}, lastindex: ${this.raftLog.lastIndex()}, lastterm: ${this.raftLog.lastTerm()}] restored snapshot [index: ${s.metadata.index}, term: ${s.metadata.term}]`,
    );
    return true;
  }

  /** A node can campaign if it is a voter and has no snapshot pending. */
  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && !this.raftLog.hasPendingSnapshot();
  }

  // ---------------------------------------------------------------- configuration

  applyConfChange(cc: ConfChangeV2): ConfState {
    const changer = new Changer(this.trk, this.raftLog.lastIndex());
    let r: ChangeResult;
    if (isLeaveJoint(cc)) r = changer.leaveJoint();
    else {
      const joint = enterJoint(cc);
      r = joint ? changer.enterJoint(joint.autoLeave, cc.changes) : changer.simple(cc.changes);
    }
    return this.switchToConfig(r);
  }

  private switchToConfig(r: ChangeResult): ConfState {
    this.trk.config = r.config;
    this.trk.progress = r.progress;
    this.logger.info(`${hexId(this.id)} switched to configuration ${this.trk.config}`);
    const cs = this.trk.confState();
    const pr = this.trk.progress.get(this.id);
    this.isLearner = pr !== undefined && pr.isLearner;

    if ((!pr || this.isLearner) && this.state === StateType.Leader) {
      // We were removed (or demoted) while leading.
      if (this.stepDownOnRemoval) this.becomeFollower(this.term, NONE);
      return cs;
    }
    if (this.state !== StateType.Leader || cs.voters.length === 0) return cs;

    if (this.maybeCommit()) {
      // The new quorum may already cover more entries.
      this.bcastAppend();
    } else {
      // Probe newly added members now rather than at the next heartbeat.
      this.trk.visit((id) => {
        if (id !== this.id) this.maybeSendAppend(id, false);
      });
    }
    if (this.leadTransferee !== NONE && !this.trk.config.voters.has(this.leadTransferee)) {
      this.abortLeaderTransfer();
    }
    return cs;
  }

  loadState(hs: HardState): void {
    if (hs.commit < this.raftLog.committed || hs.commit > this.raftLog.lastIndex()) {
      throw new Error(`${hexId(this.id)} state.commit ${hs.commit} is out of range [${this.raftLog.committed}, ${this.raftLog.lastIndex()}]`);
    }
    this.raftLog.committed = hs.commit;
    this.term = hs.term;
    this.vote = hs.vote;
  }

  pastElectionTimeout(): boolean {
    return this.electionElapsed >= this.randomizedElectionTimeout;
  }

  private resetRandomizedElectionTimeout(): void {
    this.randomizedElectionTimeout = this.electionTimeout + this.rand.intn(this.electionTimeout);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(newMessage(MessageType.MsgTimeoutNow, { to }));
  }

  abortLeaderTransfer(): void {
    this.leadTransferee = NONE;
  }

  private committedEntryInCurrentTerm(): boolean {
    return this.raftLog.zeroTermOnErr(this.raftLog.committed) === this.term;
  }

  private sendReadIndexResponse(m: Message): void {
    // TODO(raftkv): with LeaseBased, a leader with a transfer in flight (leadTransferee set)
    // still answers from its lease, though the transferee's forced campaign ignores the peers'
    // leases: the old leader may serve a stale read until it hears the new term
    // (etcd-io/raft#99). Falling back to a heartbeat round while transferring would close it.
    if (this.readOnly.option === ReadOnlyOption.Safe) {
      this.readOnly.addRequest(this.raftLog.committed, m);
      // We ack our own request; a quorum of heartbeat acks confirms we still lead.
      this.readOnly.recvAck(this.id, m.context);
      this.bcastHeartbeatWithCtx(m.context);
    } else {
      this.respondToReadIndex(m, this.raftLog.committed);
    }
  }

  private releasePendingReadIndexMessages(): void {
    if (this.pendingReadIndexMessages.length === 0) return;
    if (!this.committedEntryInCurrentTerm()) return;
    const msgs = this.pendingReadIndexMessages;
    this.pendingReadIndexMessages = [];
    for (const m of msgs) this.sendReadIndexResponse(m);
  }

  /** A local request becomes a ReadState; a forwarded one gets a MsgReadIndexResp. */
  private respondToReadIndex(req: Message, readIndex: number): void {
    if (req.from === NONE || req.from === this.id) {
      this.readStates.push({ index: readIndex, requestCtx: req.context ?? new Uint8Array(0) });
      return;
    }
    this.send(newMessage(MessageType.MsgReadIndexResp, { to: req.from, index: readIndex, context: req.context }));
  }

  private increaseUncommittedSize(ents: readonly Entry[]): boolean {
    const s = payloadsSize(ents);
    // An empty tail accepts any size (so a huge entry still makes progress); empty entries
    // (leader no-op, leave-joint) are always accepted.
    if (this.uncommittedSize > 0 && s > 0 && this.uncommittedSize + s > this.maxUncommittedSize) return false;
    this.uncommittedSize += s;
    return true;
  }

  reduceUncommittedSize(s: number): void {
    this.uncommittedSize = s > this.uncommittedSize ? 0 : this.uncommittedSize - s;
  }
}

function validateConfig(c: Config): void {
  if (c.id === NONE) throw new ErrConfig('cannot use none as id');
  if (c.heartbeatTick <= 0) throw new ErrConfig('heartbeat tick must be greater than 0');
  if (c.electionTick <= c.heartbeatTick) throw new ErrConfig('election tick must be greater than heartbeat tick');
  if ((c.maxInflightMsgs ?? 256) <= 0) throw new ErrConfig('max inflight messages must be greater than 0');
  if (c.readOnlyOption === ReadOnlyOption.LeaseBased && !c.checkQuorum) {
    throw new ErrConfig('CheckQuorum must be enabled when ReadOnlyOption is ReadOnlyLeaseBased');
  }
}
