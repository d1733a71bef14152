// THE loop around the pure core: tick -> ready -> send leader appends -> persist (+fsync) ->
// send acks and votes -> apply -> advance, as etcd-io/raft's README orders it.
//
// Owns: the RawNode, the in-memory log storage, the WAL and snapshot files, and when each
// message may leave. Never: decides what an entry means (the state machine does, through
// `apply`), builds snapshot images (snapshots.ts), or sends a message whose term or vote is
// not yet durable (the core holds those back in messagesAfterPersist). One Ready is handled
// at a time; a failure anywhere in persist or apply is fatal to the member (onFatal), since
// carrying on could acknowledge what is not on disk.

import {
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

/** What the loop hands to the rest of the server, in the order the contract requires. */
export interface RaftNodeHooks {
  onSoftState(ss: SoftState): void;
  /** A snapshot from the leader, now durable: replace the state with it. */
  restoreSnapshot(s: Snapshot): Promise<void>;
  /** Committed entries, in order, after everything before them was persisted. */
  apply(ents: Entry[]): void;
  onReadState(ctx: Uint8Array, index: number): void;
  /** After advance(): applied state moved (reads waiting on it, snapshots due). */
  afterReady(): void;
  /** The core wants to send a snapshot to a peer (snapshots.ts builds a current one). */
  sendSnapshot(m: Message): void;
  observeFsync(seconds: number): void;
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

  /** Hands data to Raft (throws ErrProposalDropped when there is no leader to take it). */
  propose(data: Uint8Array): void {
    this.raw.propose(data);
    this.sendImmediate();
    this.kick();
  }

  proposeConfChange(cc: ConfChangeV1): void {
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

  /** Runs the loop soon (once per event-loop turn however often it is asked). */
  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      if (!this.inReady) this.running = this.runReady();
    });
  }

  /** Stops the loop; resolves once a Ready being persisted is done (nothing half-written). */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Hands messages to the transport; snapshots go through the hook (a merged snapshot). */
  send(msgs: Message[]): void {
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
      this.sendImmediate();
      while (!this.stopped && this.raw.hasReady()) await this.handleReady(this.raw.ready());
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
    // 2. Persist: snapshot file, then entries + HardState in one write and one fsync.
    if (rd.snapshot) {
      await this.snapshotter.save(rd.snapshot);
      await this.wal.saveSnapshotMark(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
    }
    if (rd.entries.length === 0 && !rd.mustSync && rd.hardState) {
      // Only the commit index moved: nothing to wait for (Raft does not need it durable).
      this.wal.saveNoWait(rd.hardState);
    } else {
      const t0 = this.clock.now();
      await this.wal.save(rd.hardState, rd.entries, rd.mustSync);
      if (rd.mustSync) this.hooks.observeFsync((this.clock.now() - t0) / 1000);
    }
    if (this.stopped) return;
    if (rd.snapshot) {
      this.storage.applySnapshot(rd.snapshot);
      await this.hooks.restoreSnapshot(rd.snapshot);
    }
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // 3. Acks and votes only now that they are durable.
    if (rd.messagesAfterPersist.length > 0) this.send(rd.messagesAfterPersist);
    // 4. Apply, answer reads.
    const applyStart = this.clock.now();
    this.hooks.apply(rd.committedEntries);
    if (rd.committedEntries.length > 0) this.hooks.observeApply?.((this.clock.now() - applyStart) / 1000);
    for (const rs of rd.readStates) this.hooks.onReadState(rs.requestCtx, rs.index);
    this.raw.advance(rd);
    this.sendImmediate();
    this.hooks.afterReady();
  }
}
