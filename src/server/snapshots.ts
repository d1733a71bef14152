// Snapshots: saving one every --snapshot-count applied entries (then compacting memory and
// the WAL), sending a current one to a peer that needs it, and restoring one from the leader.
//
// Owns: when to snapshot, what a sent snapshot holds, and the index of the last one saved.
// Never: blocks the event loop for long (images are built in chunks that yield), or lets the
// Raft loop wait on a snapshot being built (saving runs beside the loop). A failed write or
// fsync of a snapshot is fatal (FatalStorageError): the member exits rather than run on.

import type { Message, Snapshot } from '../raft/index.js';
import type { Logger } from '../raft/logger.js';
import { FatalStorageError } from '../storage/fatal.js';
import type { SnapshotStore } from '../storage/durable.js';
import { yieldToEventLoop } from '../util/yield.js';
import type { Clock } from './clock.js';
import type { RaftNode } from './raft-node.js';
import type { StateMachine } from './state-machine.js';

export interface SnapshotPolicy {
  /** Applied entries between two saved snapshots (--snapshot-count). */
  snapshotCount: number;
  /** Entries kept in memory and in the WAL after a snapshot (--snapshot-catchup-entries). */
  catchUpEntries: number;
}

export class Snapshots {
  /** A snapshot from the leader is being applied. */
  applying = false;
  private lastIndex: number;
  private saving = false;
  private stopped = false;
  /** Peers a snapshot image is being built for: one at a time each. */
  private building = new Set<bigint>();

  constructor(
    private readonly node: RaftNode,
    private readonly sm: StateMachine,
    private readonly snapshotter: SnapshotStore,
    private readonly policy: SnapshotPolicy,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly onFatal: (e: Error) => void,
    /** Index of the snapshot the state was last restored from or saved at. */
    lastIndex: number,
  ) {
    this.lastIndex = lastIndex;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Index of the snapshot last saved (or restored from). */
  get lastSavedIndex(): number {
    return this.lastIndex;
  }

  /** A snapshot is being saved (built and written) right now. */
  get isSaving(): boolean {
    return this.saving;
  }

  /** No snapshot being saved or built for a peer. */
  idle(): boolean {
    return !this.saving && this.building.size === 0;
  }

  /**
   * Every --snapshot-count applied entries: snapshot to disk, then compact memory and the WAL.
   * Runs beside the Raft loop (not awaited by it): the image is built in chunks that yield to
   * the event loop, so heartbeats and applies go on while a large snapshot is made.
   */
  maybeSave(): void {
    if (this.saving || this.stopped) return;
    if (this.sm.appliedIndex - this.lastIndex < this.policy.snapshotCount) return;
    this.saving = true;
    const started = this.clock.now();
    const storage = this.node.storage;
    void (async () => {
      try {
        const { index, confState, data } = await this.sm.imageAsync(yieldToEventLoop);
        if (this.stopped || index <= storage.snapshot().metadata.index) return;
        const snap = storage.createSnapshot(index, confState, data);
        await this.snapshotter.save(snap);
        await this.node.wal.saveSnapshotMark(snap.metadata.index, snap.metadata.term);
        this.lastIndex = index;
        const compactTo = index - this.policy.catchUpEntries;
        if (compactTo > storage.firstIndex()) {
          storage.compact(compactTo);
          await this.node.wal.releaseTo(compactTo);
        }
        this.logger.info(
          `saved snapshot at index ${index} (${data.length} bytes, ${(this.clock.now() - started).toFixed(0)} ms); log compacted to ${storage.firstIndex()}`,
        );
      } catch (e) {
        if (this.stopped) return;
        // A failed write or fsync may have lost data the disk reported as written: exit.
        if (e instanceof FatalStorageError) this.onFatal(e);
        else this.logger.warn(`snapshot failed: ${(e as Error).message}`);
      } finally {
        this.saving = false;
      }
    })();
  }

  /**
   * etcd's createMergedSnapshotMessage: the core asks for the last snapshot saved to storage,
   * which may be older than the member being caught up (a learner added after it is not in
   * its ConfState, and would refuse it forever on a quiet cluster). Send instead an image of
   * the state as applied now, with the applied index, its term and the current ConfState,
   * all taken at the same instant. The core still thinks it sent the older one; the
   * follower's answer (an index at or past it) moves its progress on all the same.
   */
  send(m: Message, transportSend: (msgs: Message[]) => void): void {
    if (this.building.has(m.to)) return; // one image per peer at a time
    this.building.add(m.to);
    const started = this.clock.now();
    const term = this.node.storage.term(this.sm.appliedIndex);
    this.sm
      .imageAsync(yieldToEventLoop)
      .then(({ index, confState, data }) => {
        if (this.stopped) return;
        this.logger.info(
          `sending merged snapshot at index ${index} (${data.length} bytes, built in ${(this.clock.now() - started).toFixed(0)} ms) to ${m.to.toString(16)}`,
        );
        transportSend([{ ...m, snapshot: { metadata: { index, term, confState }, data } }]);
      })
      .catch((e: Error) => {
        // The core is told, and tries again later (a new MsgSnap).
        this.logger.warn(`could not build a snapshot for ${m.to.toString(16)}: ${e.message}`);
        this.node.reportSnapshot(m.to, false);
      })
      .finally(() => this.building.delete(m.to));
  }

  /** A snapshot from the leader, already durable: the state becomes its image. */
  async restore(s: Snapshot): Promise<void> {
    // Parsed in chunks: heartbeats keep being answered (step() sends its replies at once).
    this.applying = true;
    try {
      await this.sm.restoreAsync(s.data, s.metadata.index, yieldToEventLoop, s.metadata.confState);
    } finally {
      this.applying = false;
    }
    this.lastIndex = s.metadata.index;
    this.logger.info(`restored state from snapshot at index ${s.metadata.index}`);
  }
}
