// Snapshot files: <term>-<index>.snap, written atomically (temp file, fsync, rename, fsync
// directory) and checked by CRC on load. A corrupt newest snapshot is skipped (with a
// warning) in favour of the newest valid one.
//
// Layout: "RKVSNAP1" | u32 crc32(body) | u32 body length | body, where
// body = u32 metadata length | metadata JSON | data. Bytes after the body are ignored (the
// Maintenance.Snapshot stream pads and appends a sha256, as etcd's does). This is the envelope
// only: `data` is opaque here. The layers around it (the state machine's image inside, the
// etcdctl stream outside) are described and coded in src/server/snapshot-image.ts.
//
// A failed save is fatal (see ../fatal.ts): that call and every later one reject with the same
// FatalStorageError, and nothing more is written.

import { type FileHandle, mkdir, open, readFile, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { ConfState, Snapshot } from '../../raft/index.js';
import type { Logger } from '../../raft/logger.js';
import { FatalStorageError, type SyncCalls, osSync } from '../fatal.js';
import type { SnapshotStore } from '../durable.js';
import { listSnapshots, snapName } from './snap-names.js';
import { crc32InSlices } from '../../util/buffers-in-slices.js';
import { yieldToEventLoop } from '../../util/yield.js';

const MAGIC = Buffer.from('RKVSNAP1');

interface MetaJson {
  index: number;
  term: number;
  confState: { voters: string[]; learners: string[]; votersOutgoing: string[]; learnersNext: string[]; autoLeave: boolean };
}

const ids = (xs: bigint[]): string[] => xs.map(String);
const big = (xs: string[]): bigint[] => xs.map((x) => BigInt(x));

/** A snapshot file's body as its two parts: u32 metadata length + metadata JSON, and the image (not copied). */
function bodyParts(s: Snapshot): { meta: Buffer; data: Buffer } {
  const cs: ConfState = s.metadata.confState;
  const json: MetaJson = {
    index: s.metadata.index,
    term: s.metadata.term,
    confState: {
      voters: ids(cs.voters),
      learners: ids(cs.learners),
      votersOutgoing: ids(cs.votersOutgoing),
      learnersNext: ids(cs.learnersNext),
      autoLeave: cs.autoLeave,
    },
  };
  const mb = Buffer.from(JSON.stringify(json));
  const meta = Buffer.alloc(4 + mb.length);
  meta.writeUInt32LE(mb.length, 0);
  mb.copy(meta, 4);
  return { meta, data: Buffer.from(s.data.buffer, s.data.byteOffset, s.data.byteLength) };
}

/** The file's first 16 bytes: magic, the body's crc32 and its length. */
function fileHead(crc: number, bodyLength: number): Buffer {
  const head = Buffer.alloc(16);
  MAGIC.copy(head, 0);
  head.writeUInt32LE(crc, 8);
  head.writeUInt32LE(bodyLength, 12);
  return head;
}

/** The whole file in one buffer (small snapshots and tests; Snapshotter writes the parts in slices). */
export function encodeSnapshotFile(s: Snapshot): Buffer {
  const { meta, data } = bodyParts(s);
  return Buffer.concat([fileHead(crc32(data, crc32(meta)), meta.length + data.length), meta, data]);
}

/** Writes all of `buf` at the file's position (a write may take less than it is given). */
async function writeAll(fh: FileHandle, buf: Buffer): Promise<void> {
  for (let at = 0; at < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, at, buf.length - at);
    if (bytesWritten <= 0) throw new Error(`short write: ${at} of ${buf.length} bytes`);
    at += bytesWritten;
  }
}

export function decodeSnapshotFile(buf: Buffer): Snapshot {
  if (buf.length < 20 || !buf.subarray(0, 8).equals(MAGIC)) throw new Error('not a raftkv snapshot');
  const len = buf.readUInt32LE(12);
  if (16 + len > buf.length) throw new Error('snapshot is truncated');
  const rest = buf.subarray(16, 16 + len);
  if (crc32(rest) !== buf.readUInt32LE(8)) throw new Error('snapshot checksum mismatch');
  const ml = rest.readUInt32LE(0);
  const meta = JSON.parse(rest.subarray(4, 4 + ml).toString()) as MetaJson;
  return {
    data: rest.subarray(4 + ml),
    metadata: {
      index: meta.index,
      term: meta.term,
      confState: {
        voters: big(meta.confState.voters),
        learners: big(meta.confState.learners),
        votersOutgoing: big(meta.confState.votersOutgoing),
        learnersNext: big(meta.confState.learnersNext),
        autoLeave: meta.confState.autoLeave,
      },
    },
  };
}

export interface SnapshotterOptions {
  /** How many snapshot files to keep (--max-snapshots; 0: all). 2 by default. */
  retain?: number;
  /** The fsync calls (tests inject failures here); the operating system's by default. */
  sync?: SyncCalls;
  /** Where the checksum of a large image yields to the event loop (tests count the pauses). */
  pause?: () => Promise<void>;
}

/** How long a save's steps took, in seconds (etcd's snap metrics: marshalling, the file's write and fsync, the whole save). */
export interface SnapshotSaveTimings {
  marshalled(seconds: number): void;
  synced(seconds: number): void;
  saved(seconds: number): void;
}

export class Snapshotter implements SnapshotStore {
  /** Reported to, when set (the process's metrics). */
  timings: SnapshotSaveTimings | undefined;
  private readonly retain: number;
  private readonly sync: SyncCalls;
  private readonly pause: () => Promise<void>;
  /** Saves run one at a time, so that none goes on writing after another has failed. */
  private chain: Promise<void> = Promise.resolve();
  /** Set by the first failed save: every later call rejects with it. */
  private fatal: FatalStorageError | undefined;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
    opts: SnapshotterOptions = {},
  ) {
    this.retain = opts.retain ?? 2;
    this.sync = opts.sync ?? osSync;
    this.pause = opts.pause ?? yieldToEventLoop;
  }

  /**
   * Writes the snapshot atomically and durably, then deletes all but the newest `retain` (--max-snapshots). Any failure is
   * fatal, as etcd's is: after a failed fsync neither the file nor the directory entry is known
   * to be on disk, although reads may still show them (from the page cache).
   */
  save(s: Snapshot): Promise<void> {
    const run = this.chain.then(async () => {
      if (this.fatal) throw this.fatal;
      try {
        await this.write(s);
      } catch (e) {
        this.fatal ??= new FatalStorageError(`snap: saving snapshot ${s.metadata.index} in ${this.dir} failed`, e);
        throw this.fatal;
      }
    });
    this.chain = run.catch(() => {});
    return run;
  }

  private async write(s: Snapshot): Promise<void> {
    // The member's user alone, as etcd's (fileutil.PrivateDirMode): an image holds every key.
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const name = snapName(s.metadata.term, s.metadata.index);
    const tmp = join(this.dir, `${name}.tmp`);
    const t0 = performance.now();
    // The image is neither copied nor checksummed in one turn (a million keys' image is
    // ~160 MB): its crc in slices, then the parts written as they are.
    const { meta, data } = bodyParts(s);
    const head = fileHead(await crc32InSlices(data, this.pause, crc32(meta)), meta.length + data.length);
    const t1 = performance.now();
    this.timings?.marshalled((t1 - t0) / 1000);
    // Timed as etcd times its WriteAndSyncFile: open, write, fsync and close.
    const fh = await open(tmp, 'w', 0o600);
    try {
      for (const part of [head, meta, data]) await writeAll(fh, part);
      await this.sync.fsync(fh);
    } finally {
      await fh.close();
      this.timings?.synced((performance.now() - t1) / 1000);
    }
    await rename(tmp, join(this.dir, name));
    await this.sync.fsyncDir(this.dir);
    this.timings?.saved((performance.now() - t0) / 1000);
    await this.purge();
  }

  /** Deletes all but the `retain` newest snapshot files (by index), and any temporary file left by a crash. */
  private async purge(): Promise<void> {
    const byIndex = await listSnapshots(this.dir);
    const drop = this.retain === 0 ? [] : byIndex.slice(0, Math.max(0, byIndex.length - this.retain));
    for (const { name } of drop) {
      await unlink(join(this.dir, name));
      this.logger.info(`purged file ${join(this.dir, name)} successfully`);
    }
    for (const n of await readdir(this.dir).catch(() => [] as string[])) {
      if (n.endsWith('.tmp')) await unlink(join(this.dir, n)).catch(() => {});
    }
  }

  /** The newest valid snapshot, or undefined if there is none. */
  async loadNewest(): Promise<Snapshot | undefined> {
    if (this.fatal) throw this.fatal;
    const all = (await listSnapshots(this.dir)).map((s) => s.name).reverse();
    for (const n of all) {
      try {
        return decodeSnapshotFile(await readFile(join(this.dir, n)));
      } catch (e) {
        this.logger.warn(`snap: skipping ${join(this.dir, n)}: ${(e as Error).message}`);
      }
    }
    return undefined;
  }
}
