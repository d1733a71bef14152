// What the Raft loop needs from the disk, as interfaces: the WAL (wal/wal.ts) and the snapshot
// files (snap/snapshotter.ts) implement them; a test can put anything that keeps the same
// promises in their place.
//
// The promises: when save(..., sync=true), saveSnapshotMark() or a snapshot's save() resolves,
// what they were given is on stable storage (fsynced, and the directory too for a new file).
// A failure rejects with FatalStorageError and every later call rejects with it (fsyncgate:
// after a failed fsync nothing on disk can be trusted), so the member stops acknowledging.

import type { Entry, HardState, Snapshot } from '../raft/index.js';

export interface LogStore {
  /** Appends entries and a HardState in one write; fsyncs if `sync`. */
  save(hardState: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void>;
  /**
   * Keeps a HardState whose only change is the commit index (Raft does not need it durable);
   * it may be written a little later, with the next write, and may be lost in a crash.
   */
  saveNoWait(hardState: HardState): void;
  /** Records that a snapshot at (index, term) is on disk, durably. */
  saveSnapshotMark(index: number, term: number): Promise<void>;
  /** Lets go of what only entries at or below `index` need (after a snapshot). */
  releaseTo(index: number): Promise<unknown>;
  close(): Promise<void>;
  /** Bytes written to the log so far by this process (etcd_disk_wal_write_bytes_total). */
  readonly bytesWritten: number;
}

export interface SnapshotStore {
  /** Writes a snapshot durably (temporary file, fsync, rename, directory fsync). */
  save(s: Snapshot): Promise<void>;
  /** The newest snapshot that passes its checks, if any. */
  loadNewest(): Promise<Snapshot | undefined>;
}
