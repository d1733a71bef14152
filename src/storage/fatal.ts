// Failures of durable storage are fatal.
//
// After a failed fsync the kernel may already have dropped the dirty pages it could not write
// and marked them clean ("fsyncgate"): a retried fsync can then succeed although the data never
// reached the disk, and reads return what is only in memory. So the WAL or snapshotter that
// sees a failed write or fsync refuses all further work with the same error, and the server
// exits non-zero to recover from what is really on disk, as etcd does (it panics).

import { constants } from 'node:fs';
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
  /**
   * Writes all of `buf` at `position` through a handle opened with O_DSYNC (see openDurable):
   * durable when it resolves, like write(2) + fdatasync(2), but in one system call and so one
   * trip through libuv's thread pool instead of two.
   */
  durableWrite(fh: FileHandle, buf: Buffer, position: number): Promise<void>;
  /**
   * Writes all of `buf` at `position` through a handle without O_DSYNC: into the page cache,
   * where it survives the process (kill -9) but not a power loss.
   */
  write(fh: FileHandle, buf: Buffer, position: number): Promise<void>;
  /** open(2) flags of a file written with durableWrite (O_DSYNC, unless nothing is synced). */
  readonly durableFlags: number;
}

/** open(2) flags for a file whose every write is durable when it returns (see durableWrite). */
export const DURABLE_WRITE_FLAGS = constants.O_RDWR | constants.O_DSYNC;

/** Writes all of `buf` at `position` (a short write continues where it stopped). */
async function writeWhole(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let off = 0;
  while (off < buf.length) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

export const osSync: SyncCalls = {
  // The same call: what makes it durable is the handle's O_DSYNC.
  durableWrite: writeWhole,
  write: writeWhole,
  datasync: (fh) => fh.datasync(),
  fsync: (fh) => fh.sync(),
  fsyncDir,
  durableFlags: DURABLE_WRITE_FLAGS,
};

/**
 * etcd's --unsafe-no-fsync: writes reach the page cache only, nothing is synced (no O_DSYNC, no
 * fsync of files or directories). A crash of the machine, not of the process, can lose
 * acknowledged writes: for test and throwaway clusters only, as etcd says.
 */
export const unsafeNoSync: SyncCalls = {
  durableWrite: writeWhole,
  write: writeWhole,
  datasync: async () => {},
  fsync: async () => {},
  fsyncDir: async () => {},
  durableFlags: constants.O_RDWR,
};
