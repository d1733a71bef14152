// The driver's API to the core. Inputs: tick, step, propose, proposeConfChange, readIndex,
// transferLeader, report*. Output: ready() / advance() (see ready.ts for the contract).

import {
  ConfChangeType,
  type ConfChangeV1,
  type ConfChangeV2,
  encodeConfChangeV1,
  encodeConfChangeV2,
  v1ToV2,
} from './confchange/types.js';
import { ErrStepLocalMsg, ErrStepPeerNotFound } from './errors.js';
import { type Config, Raft } from './raft.js';
import { type Ready, appliedCursor } from './ready.js';
import type { Progress } from './tracker/progress.js';
import {
  type ConfState,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type SoftState,
  StateType,
  hardStateEqual,
  isLocalMsg,
  isResponseMsg,
  newMessage,
  payloadsSize,
} from './types.js';

export interface Status {
  id: NodeId;
  hardState: HardState;
  softState: SoftState;
  applied: number;
  /** Only on the leader: the progress of every member. */
  progress?: Map<NodeId, Progress>;
  leadTransferee: NodeId;
  config: string;
}

export interface BasicStatus {
  id: NodeId;
  term: number;
  commit: number;
  applied: number;
  lead: NodeId;
  raftState: StateType;
  isLearner: boolean;
  leadTransferee: NodeId;
  /** Index of the last conf change proposed by this leader (a new one waits until it is applied). */
  pendingConfIndex: number;
}

export enum SnapshotStatus {
  Finish = 1,
  Failure = 2,
}

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  /** Term and vote as last confirmed durable by advance(): gates early message sending. */
  private persistedHardState: HardState;
  private outstanding: Ready | undefined;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
    this.persistedHardState = this.raft.hardState();
  }

  /**
   * Initializes a brand-new cluster member with the initial membership, as etcd does: the log
   * starts with one committed AddNode entry per peer (term 1, indexes 1..n), identical on every
   * initial member. Members added later catch up from those entries (or from a snapshot), so
   * every node learns the configuration through the log. Call once, on an empty Storage.
   */
  bootstrap(peers: ReadonlyArray<{ id: NodeId; context?: Uint8Array }>): void {
    if (peers.length === 0) throw new Error('must provide at least one peer to bootstrap');
    const r = this.raft;
    if (r.raftLog.storage.lastIndex() !== 0) throw new Error("can't bootstrap a nonempty Storage");
    // Nothing is persisted yet: the first Ready must carry the HardState.
    this.prevHardState = { term: 0, vote: 0n, commit: 0 };
    r.becomeFollower(1, 0n);
    const ents = peers.map((p, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChangeV1({ type: ConfChangeType.AddNode, nodeId: p.id, context: p.context ?? new Uint8Array(0) }),
    }));
    r.raftLog.append(ents);
    r.raftLog.committed = ents.length;
    // Apply now, so that the node can campaign at once; the application applies the same
    // entries again from Ready.committedEntries (adding a voter twice is a no-op).
    for (const p of peers) r.applyConfChange(v1ToV2({ type: ConfChangeType.AddNode, nodeId: p.id, context: new Uint8Array(0) }));
  }

  tick(): void {
    this.raft.tick();
  }

  /** Starts an election now (with pre-vote if configured). */
  campaign(): void {
    this.raft.step(newMessage(MessageType.MsgHup));
  }

  /**
   * Proposes entries (several in one call are appended as one batch). Throws
   * ErrProposalDropped if there is no leader to take them; on a follower they are forwarded.
   */
  propose(...data: Uint8Array[]): void {
    this.raft.step(
      newMessage(MessageType.MsgProp, {
        from: this.raft.id,
        entries: data.map((d) => ({ term: 0, index: 0, type: EntryType.Normal, data: d })),
      }),
    );
  }

  /** Proposes a configuration change (v1: exactly one change; v2: several, maybe joint). */
  proposeConfChange(cc: ConfChangeV2 | ConfChangeV1): void {
    const isV1 = 'nodeId' in cc;
    const entry = isV1
      ? { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChangeV1(cc) }
      : { term: 0, index: 0, type: EntryType.ConfChangeV2, data: encodeConfChangeV2(cc) };
    this.raft.step(newMessage(MessageType.MsgProp, { from: this.raft.id, entries: [entry] }));
  }

  /** Applies a committed conf change to the core's configuration; returns the new ConfState. */
  applyConfChange(cc: ConfChangeV2 | ConfChangeV1): ConfState {
    return this.raft.applyConfChange('nodeId' in cc ? v1ToV2(cc) : cc);
  }

  /** Steps a message received from a peer. */
  step(m: Message): void {
    if (isLocalMsg(m.type)) throw new ErrStepLocalMsg();
    if (isResponseMsg(m.type) && !this.raft.trk.progress.has(m.from)) throw new ErrStepPeerNotFound();
    this.raft.step(m);
  }

  /**
   * Requests a read index for `ctx` (unique per request). The answer arrives as a ReadState
   * in a later Ready; it may never arrive (leader change), so the caller needs a timeout.
   */
  readIndex(ctx: Uint8Array): void {
    this.raft.step(newMessage(MessageType.MsgReadIndex, { context: ctx }));
  }

  /** Asks the leader to hand leadership to `transferee` (thesis §3.10). */
  transferLeader(transferee: NodeId): void {
    this.raft.step(newMessage(MessageType.MsgTransferLeader, { from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(newMessage(MessageType.MsgUnreachable, { from: id }));
  }

  reportSnapshot(id: NodeId, status: SnapshotStatus): void {
    this.raft.step(newMessage(MessageType.MsgSnapStatus, { from: id, reject: status === SnapshotStatus.Failure }));
  }

  hasReady(): boolean {
    if (this.outstanding) return false;
    const r = this.raft;
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) return true;
    if (!hardStateEqual(r.hardState(), this.prevHardState)) return true;
    if (r.raftLog.hasPendingSnapshot()) return true;
    if (r.msgs.length > 0 || r.msgsAfterPersist.length > 0) return true;
    if (r.raftLog.unstable.entries.length > 0 || r.raftLog.hasNextCommittedEnts()) return true;
    return r.readStates.length > 0;
  }

  /**
   * Collects everything the driver must do now. Call advance(rd) when done.
   *
   * TODO(raftkv): no AsyncStorageWrites (etcd-io/raft's MsgStorageAppend/MsgStorageApply): one
   * Ready is outstanding at a time, so the next append and fsync cannot start while the
   * previous Ready's entries are being applied. takeMessages() lets a leader's appends leave
   * meanwhile, but the persist -> apply -> advance cycle stays serial.
   */
  ready(): Ready {
    if (this.outstanding) throw new Error('ready() called before advance() of the previous Ready');
    const r = this.raft;
    const rd: Ready = {
      entries: r.raftLog.unstableEntries(),
      committedEntries: r.raftLog.nextCommittedEnts(),
      messages: r.msgs,
      messagesAfterPersist: r.msgsAfterPersist,
      readStates: r.readStates,
      mustSync: false,
    };
    const ss = r.softState();
    if (ss.lead !== this.prevSoftState.lead || ss.raftState !== this.prevSoftState.raftState) rd.softState = ss;
    const hs = r.hardState();
    if (!hardStateEqual(hs, this.prevHardState)) rd.hardState = hs;
    if (r.raftLog.unstable.snapshot) rd.snapshot = r.raftLog.unstable.snapshot;
    rd.mustSync =
      rd.entries.length > 0 ||
      rd.snapshot !== undefined ||
      hs.term !== this.prevHardState.term ||
      hs.vote !== this.prevHardState.vote;
    // While our term or vote is not yet durable, nothing may leave before the persist: a
    // message stamped with a term we could forget on a crash could let us act twice in it.
    if (hs.term !== this.persistedHardState.term || hs.vote !== this.persistedHardState.vote) {
      rd.messagesAfterPersist = rd.messages.concat(rd.messagesAfterPersist);
      rd.messages = [];
    }
    const nCommitted = rd.committedEntries.length;
    if (nCommitted > 0) r.raftLog.applying = rd.committedEntries[nCommitted - 1]!.index;
    r.msgs = [];
    r.msgsAfterPersist = [];
    r.readStates = [];
    this.prevSoftState = ss;
    this.prevHardState = hs;
    this.outstanding = rd;
    return rd;
  }

  /**
   * Messages produced since the last ready() that may be sent right away (leader appends and
   * heartbeats), so that replication need not wait for the current fsync. Empty while our
   * term or vote is not yet durable.
   */
  takeMessages(): Message[] {
    const r = this.raft;
    if (r.msgs.length === 0) return [];
    if (r.term !== this.persistedHardState.term || r.vote !== this.persistedHardState.vote) return [];
    const out = r.msgs;
    r.msgs = [];
    return out;
  }

  /** The driver has persisted, sent and applied `rd`. */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('advance() called with a Ready that is not outstanding');
    const r = this.raft;
    if (rd.snapshot) r.raftLog.stableSnapTo(rd.snapshot.metadata.index);
    const n = rd.entries.length;
    if (n > 0) {
      const last = rd.entries[n - 1]!;
      r.raftLog.stableTo(last.index, last.term);
    }
    if (rd.hardState) this.persistedHardState = rd.hardState;
    const applied = appliedCursor(rd);
    if (applied > 0) {
      r.raftLog.appliedTo(applied);
      if (r.state === StateType.Leader) {
        r.reduceUncommittedSize(payloadsSize(rd.committedEntries));
        this.maybeAutoLeaveJoint();
      }
    }
    this.outstanding = undefined;
    r.onPersisted();
  }

  /** With autoLeave, the leader proposes leaving the joint config once it is applied. */
  private maybeAutoLeaveJoint(): void {
    const r = this.raft;
    if (!r.trk.config.autoLeave || r.raftLog.applied < r.pendingConfIndex) return;
    try {
      // Empty data decodes as the empty ConfChangeV2; it can never be refused for its size.
      r.step(
        newMessage(MessageType.MsgProp, {
          from: r.id,
          entries: [{ term: 0, index: 0, type: EntryType.ConfChangeV2, data: new Uint8Array(0) }],
        }),
      );
      r.logger.info(`initiating automatic transition out of joint configuration ${r.trk.config}`);
    } catch (e) {
      // Dropped (e.g. a transfer is in progress): retried at the next advance.
      r.logger.debug(`not initiating automatic transition out of joint configuration: ${String(e)}`);
    }
  }

  /**
   * The cheap part of the status, for a driver that asks on every request (etcd-io/raft's
   * BasicStatus): no copies of the progress tracker.
   */
  basicStatus(): BasicStatus {
    const r = this.raft;
    return {
      id: r.id,
      term: r.term,
      commit: r.raftLog.committed,
      applied: r.raftLog.applied,
      lead: r.lead,
      raftState: r.state,
      isLearner: r.isLearner,
      leadTransferee: r.leadTransferee,
      pendingConfIndex: r.pendingConfIndex,
    };
  }

  // Single fields of basicStatus(), read-only, for a driver that reads one on every request
  // (a response header's term, the commit index, the leader, learner or not) without making
  // the whole status object for it.

  get term(): number {
    return this.raft.term;
  }

  get committed(): number {
    return this.raft.raftLog.committed;
  }

  get lead(): NodeId {
    return this.raft.lead;
  }

  get isLearner(): boolean {
    return this.raft.isLearner;
  }

  /** The leader's view of a member's replication: its match index (undefined if unknown). */
  matchOf(id: NodeId): number | undefined {
    return this.raft.trk.progress.get(id)?.match;
  }

  /** The current configuration as a ConfState. */
  confState(): ConfState {
    return this.raft.trk.confState();
  }

  /**
   * The protocol state itself, for tests and the simulator's invariant checks only. A driver
   * never reaches into it: it uses basicStatus(), matchOf(), confState() and status().
   */
  inspect(): Raft {
    return this.raft;
  }

  status(): Status {
    const r = this.raft;
    const st: Status = {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.raftLog.applied,
      leadTransferee: r.leadTransferee,
      config: r.trk.config.toString(),
    };
    if (r.state === StateType.Leader) {
      st.progress = new Map();
      for (const [id, pr] of r.trk.progress) st.progress.set(id, pr.clone());
    }
    return st;
  }
}
