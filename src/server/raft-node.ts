// THE loop around the pure core: tick -> ready -> send leader appends -> persist (one durable
// write) while applying what was already durable -> send acks and votes -> apply the rest ->
// advance, as etcd-io/raft's README orders it (and etcd's raftNode overlaps apply and save).
//
// Owns: the RawNode, the in-memory log storage, the WAL and snapshot files, and when each
// message may leave. Never: decides what an entry means (the state machine does, through
// `apply`), builds snapshot images (snapshots.ts), or sends a message whose term or vote is
// not yet durable (the core holds those back in messagesAfterPersist). One Ready is handled
// at a time; a failure anywhere in persist or apply is fatal to the member (onFatal), since
// carrying on could acknowledge what is not on disk.

import {
  ErrProposalDropped,
  type ConfChangeV1,
  type ConfState,
  type Entry,
  type MemoryStorage,
  type Message,
  MessageType,
  type RawNode,
  type Ready,
  type Snapshot,
  SnapshotStatus,
  type SoftState,
} from '../raft/index.js';
import type { LogStore, SnapshotStore } from '../storage/durable.js';
import type { Transport } from '../transport/transport.js';
import type { Logger } from '../raft/logger.js';
import type { Clock } from './clock.js';
import { yieldToEventLoop } from '../util/yield.js';

/** At most this many proposals per RawNode.propose call (one MsgProp). */
const MAX_PROPOSALS_PER_STEP = 1024;

/** Committed entry bytes applied before the loop yields to the event loop (see runReady). */
export const APPLY_BYTES_PER_TURN = 1024 * 1024;

/** What the loop hands to the rest of the server, in the order the contract requires. */
export interface RaftNodeHooks {
  onSoftState(ss: SoftState): void;
  /** A snapshot from the leader, now durable: replace the state with it. */
  restoreSnapshot(s: Snapshot): Promise<void>;
  /**
   * Committed entries, in order, after everything before them was persisted. A Promise when
   * an entry is applied in slices: the loop waits for it before going on (the apply is serial).
   */
  apply(ents: Entry[]): void | Promise<void>;
  onReadState(ctx: Uint8Array, index: number): void;
  /** After advance(): applied state moved (reads waiting on it, snapshots due). */
  afterReady(): void;
  /** The core wants to send a snapshot to a peer (snapshots.ts builds a current one). */
  sendSnapshot(m: Message): void;
  observeFsync(seconds: number): void;
  /** Messages about to be handed to the transport (the leader's heartbeats are timed). */
  sending?(msgs: readonly Message[]): void;
  /** How long applying one Ready's committed entries took (metrics: the backend commit's stand-in). */
  observeApply?(seconds: number): void;
  onFatal(e: Error): void;
}

export class RaftNode {
  private inReady = false;
  /** The loop run in progress (stop() waits for it: nothing acknowledged is half-written). */
  private running: Promise<void> = Promise.resolve();
  private kicked = false;
  private stopped = false;
  private lastHeard = new Map<bigint, number>();
  /** Proposals of this turn, not yet handed to Raft, and whom to tell if Raft refuses them. */
  private proposalQueue: Uint8Array[] = [];
  private proposalDropped: Array<(e: Error) => void> = [];

  constructor(
    readonly raw: RawNode,
    readonly storage: MemoryStorage,
    readonly wal: LogStore,
    private readonly snapshotter: SnapshotStore,
    private readonly transport: Transport,
    private readonly hooks: RaftNodeHooks,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  // ------------------------------------------------------------------ inputs

  tick(): void {
    this.raw.tick();
    this.kick();
  }

  /** A message from a peer. */
  step(m: Message): void {
    if (this.stopped) return;
    this.lastHeard.set(m.from, this.clock.now());
    try {
      this.raw.step(m);
    } catch (e) {
      this.logger.debug(`dropped message from ${m.from.toString(16)}: ${(e as Error).message}`);
    }
    this.sendImmediate();
    this.kick();
  }

  /**
   * Queues data for Raft; everything proposed in one event-loop turn is handed over together
   * (flushProposals), as one MsgProp: the leader appends the batch and sends each follower one
   * MsgApp for it, which the follower acknowledges with one MsgAppResp — not one of each per
   * request. `onDropped` hears if Raft refused the batch (ErrProposalDropped: no leader, or a
   * leadership transfer under way) or failed otherwise.
   */
  propose(data: Uint8Array, onDropped: (e: Error) => void): void {
    if (this.stopped) return onDropped(new ErrProposalDropped());
    this.proposalQueue.push(data);
    this.proposalDropped.push(onDropped);
    this.kick();
  }

  /**
   * Hands the queued proposals to Raft at once, and sends the appends at once. Called from the
   * turn's kick (also while a Ready is being persisted: the appends then leave in parallel with
   * our own disk write, and two followers can commit them without it), and at fixed points of
   * handleReady, so that what the loop itself proposes (re-proposals on a new leader, requests
   * made while applying) goes out at a point that does not depend on when the disk finishes: an
   * in-process cluster in lockstep replays the same run for the same seed.
   */
  private flushProposals(): void {
    if (this.proposalQueue.length === 0) return;
    const data = this.proposalQueue;
    const dropped = this.proposalDropped;
    this.proposalQueue = [];
    this.proposalDropped = [];
    // In bounded slices: a spread of a very large array would overflow the stack.
    for (let i = 0; i < data.length; i += MAX_PROPOSALS_PER_STEP) {
      try {
        this.raw.propose(...data.slice(i, i + MAX_PROPOSALS_PER_STEP));
      } catch (e) {
        for (const d of dropped.slice(i, i + MAX_PROPOSALS_PER_STEP)) d(e as Error);
      }
    }
    this.sendImmediate();
  }

  proposeConfChange(cc: ConfChangeV1): void {
    // After what was proposed before it, as if proposals were handed over one by one.
    this.flushProposals();
    this.raw.proposeConfChange(cc);
    this.sendImmediate();
    this.kick();
  }

  readIndex(ctx: Uint8Array): void {
    this.raw.readIndex(ctx);
    this.kick();
  }

  transferLeader(target: bigint): void {
    this.raw.transferLeader(target);
    this.sendImmediate();
    this.kick();
  }

  reportUnreachable(id: bigint): void {
    this.raw.reportUnreachable(id);
    this.kick();
  }

  reportSnapshot(id: bigint, ok: boolean): void {
    this.raw.reportSnapshot(id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
    this.kick();
  }

  applyConfChange(cc: Parameters<RawNode['applyConfChange']>[0]): ConfState {
    return this.raw.applyConfChange(cc);
  }

  /** Nothing to do: no Ready being handled, none scheduled, none pending (or stopped). */
  idle(): boolean {
    return this.stopped || (!this.inReady && !this.kicked && !this.raw.hasReady());
  }

  /** Leader only: when a member was last heard from (monotonic ms), if ever. */
  lastHeardFrom(id: bigint): number | undefined {
    return this.lastHeard.get(id);
  }

  // ------------------------------------------------------------------ the loop

  private advanceWaiters: Array<() => void> = [];

  /**
   * Resolves once the Ready being handled now is advanced (at once if none is): what it
   * applied is then the core's applied index too. Committed entries are applied, and their
   * callers answered, while that Ready's own new entries are still being written.
   */
  advanced(): Promise<void> {
    if (!this.inReady) return Promise.resolve();
    return new Promise((resolve) => this.advanceWaiters.push(resolve));
  }

  /** Runs the loop soon (once per event-loop turn however often it is asked). */
  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      // Also while a Ready is being persisted or applied: the appends leave now, in parallel
      // with it, and so do a leader's heartbeats (etcd's raft loop goes on while its apply
      // goroutine works; a long apply in slices must not cost the leadership). takeMessages
      // hands out nothing whose term or vote is not yet durable.
      this.flushProposals();
      if (this.inReady) this.sendImmediate();
      else this.running = this.runReady();
      // What this turn's Ready and proposals send (the leader's appends above all) leaves now,
      // in parallel with the disk write just started, not after another turn of the loop.
      this.transport.flush?.();
    });
  }

  /** Stops the loop; resolves once a Ready being persisted is done (nothing half-written). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Hands messages to the transport; snapshots go through the hook (a merged snapshot). */
  send(msgs: Message[]): void {
    this.hooks.sending?.(msgs);
    if (!msgs.some((m) => m.type === MessageType.MsgSnap)) {
      this.transport.send(msgs);
      return;
    }
    for (const m of msgs) if (m.type === MessageType.MsgSnap) this.hooks.sendSnapshot(m);
    this.transport.send(msgs.filter((m) => m.type !== MessageType.MsgSnap));
  }

  private sendImmediate(): void {
    const msgs = this.raw.takeMessages();
    if (msgs.length > 0) this.send(msgs);
  }

  private async runReady(): Promise<void> {
    if (this.inReady || this.stopped) return;
    this.inReady = true;
    try {
      this.flushProposals();
      this.sendImmediate();
      let appliedBytes = 0;
      while (!this.stopped && this.raw.hasReady()) {
        const rd = this.raw.ready();
        await this.handleReady(rd);
        // A Ready without new entries to write never waits for the disk, so a backlog of
        // committed entries (a restart replaying its WAL, a follower catching up) would be
        // applied in one turn, seconds long at a million keys. Every APPLY_BYTES_PER_TURN the
        // loop lets the event loop run (ticks, heartbeats, reads) before the next Ready. By
        // bytes, not time, so that a seeded in-process cluster replays the same run.
        for (const e of rd.committedEntries) appliedBytes += e.data.length;
        if (appliedBytes >= APPLY_BYTES_PER_TURN && this.raw.hasReady()) {
          appliedBytes = 0;
          await yieldToEventLoop();
        }
      }
    } catch (e) {
      // runReady is started with `void`: nothing above it would see this error.
      this.logger.error(`raft loop failed: ${(e as Error).stack ?? String(e)}`);
      this.hooks.onFatal(e as Error);
    } finally {
      this.inReady = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.hooks.onSoftState(rd.softState);
    // 1. The leader's appends go out before its own disk write (thesis §10.2.1).
    if (rd.messages.length > 0) this.send(rd.messages);
    this.flushProposals();
    // 2. Persist: snapshot file, then entries + HardState in one durable write.
    if (rd.snapshot) {
      await this.snapshotter.save(rd.snapshot);
      await this.wal.saveSnapshotMark(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
    }
    let persisted: Promise<void> | undefined;
    if (rd.entries.length === 0 && !rd.mustSync && rd.hardState) {
      // Only the commit index moved: nothing to wait for (Raft does not need it durable).
      this.wal.saveNoWait(rd.hardState);
    } else {
      const t0 = this.clock.now();
      persisted = this.wal.save(rd.hardState, rd.entries, rd.mustSync).then(() => {
        if (rd.mustSync) this.hooks.observeFsync((this.clock.now() - t0) / 1000);
      });
      // Awaited below; this only keeps a failure from counting as unhandled if apply throws first.
      persisted.catch(() => {});
    }
    // 4a. While this Ready's new entries are being written, apply the committed entries that
    // are not among them (etcd hands committed entries to its apply loop before
    // storage.Save): they are durable on a quorum and in our own log since an earlier Ready,
    // so nothing a crash could take back. Clients hear back one disk write sooner, and the
    // apply's CPU work overlaps the disk's. Not with a snapshot: it is restored first. ReadIndex
    // reads are answered from the applied state and the leader's commit index, neither of
    // which depends on the new entries.
    const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
    let early = 0;
    if (!rd.snapshot) {
      while (early < rd.committedEntries.length && rd.committedEntries[early]!.index < firstNew) early++;
      const slices = this.applyEntries(early === rd.committedEntries.length ? rd.committedEntries : rd.committedEntries.slice(0, early));
      if (slices) await slices;
      if (early === rd.committedEntries.length) this.answerReads(rd);
      this.flushProposals();
    }
    if (persisted) await persisted;
    if (this.stopped) return;
    if (rd.snapshot) {
      this.storage.applySnapshot(rd.snapshot);
      await this.hooks.restoreSnapshot(rd.snapshot);
    }
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // 3. Acks and votes only now that they are durable.
    if (rd.messagesAfterPersist.length > 0) this.send(rd.messagesAfterPersist);
    // 4b. Apply the rest (committed in the same Ready that brought them, or after a snapshot).
    if (rd.snapshot || early < rd.committedEntries.length) {
      const slices = this.applyEntries(early === 0 ? rd.committedEntries : rd.committedEntries.slice(early));
      if (slices) await slices;
      this.answerReads(rd);
    }
    this.raw.advance(rd);
    const advanced = this.advanceWaiters;
    this.advanceWaiters = [];
    for (const w of advanced) w();
    this.sendImmediate();
    this.hooks.afterReady();
    this.flushProposals();
  }

  private applyEntries(ents: Entry[]): void | Promise<void> {
    if (ents.length === 0) return;
    const applyStart = this.clock.now();
    const observe = (): void => this.hooks.observeApply?.((this.clock.now() - applyStart) / 1000);
    const slices = this.hooks.apply(ents);
    if (slices) return slices.then(observe);
    observe();
  }

  private answerReads(rd: Ready): void {
    for (const rs of rd.readStates) this.hooks.onReadState(rs.requestCtx, rs.index);
  }
}
