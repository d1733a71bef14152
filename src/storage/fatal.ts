// Failures of durable storage are fatal.
//
// After a failed fsync the kernel may already have dropped the dirty pages it could not write
// and marked them clean ("fsyncgate"): a retried fsync can then succeed although the data never
// reached the disk, and reads return what is only in memory. So the WAL or snapshotter that
// sees a failed write or fsync refuses all further work with the same error, and the server
// exits non-zero to recover from what is really on disk, as etcd does (it panics).

import type { FileHandle } from 'node:fs/promises';
import { fsyncDir } from '../util/fsync.js';

export class FatalStorageError extends Error {
  constructor(what: string, cause: unknown) {
    super(`${what}: ${cause instanceof Error ? cause.message : String(cause)}; the data on disk is unknown, stopping`, { cause });
    this.name = 'FatalStorageError';
  }
}

/** The calls that make written data durable. Tests substitute failing ones. */
export interface SyncCalls {
  /** fdatasync(2): the file's data (and its size, if that changed). */
  datasync(fh: FileHandle): Promise<void>;
  /** fsync(2): the file's data and all its metadata. */
  fsync(fh: FileHandle): Promise<void>;
  /** fsync of a directory, so that entries created, renamed or removed in it survive a crash. */
  fsyncDir(dir: string): Promise<void>;
}

export const osSync: SyncCalls = {
  datasync: (fh) => fh.datasync(),
  fsync: (fh) => fh.sync(),
  fsyncDir,
};
