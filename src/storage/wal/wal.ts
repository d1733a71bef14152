// A segmented write-ahead log of Raft entries and HardState.
//
// Durability: save() writes one Ready's records with a single write() to a segment opened
// with O_DSYNC, so the write returns once the data is on stable storage: one system call and
// one trip through libuv's thread pool per Ready, where write + fdatasync took two (measured
// here: 180 vs 245 us per sync). Group commit: everything proposed while the previous write
// was running lands in the same batch. All I/O is async (libuv's thread pool), so the event
// loop keeps ticking heartbeats while the disk works.
//
// A HardState whose only change is the commit index (saveNoWait) is not made durable: Raft does
// not need the commit index durable (it is re-learned from the leader, and restart clamps it to
// the snapshot), and etcd writes it without an fsync too. It is written at once, through a
// second handle without O_DSYNC, just past the end of the durable data — so that a member killed
// while idle restarts (or is forced into a new cluster, which keeps only the committed log) with
// the commit index it had — and the end of the data is not moved: the next durable write starts
// at the same place and writes it again (it always carries a HardState then: a Ready's, or this
// pending one, at least as long as the record it overwrites), so the two can never leave a stale
// record between durable ones. A synced write of its own, as it used to have 2 ms after the last
// write, was a quarter to a third of all synced writes at one put at a time on one member, and
// the next entries' write waited behind it.
//
// Invariant: in the current segment, the bytes from `size` on are zeros, or the pending
// HardState's record written by writePending.
//
// Segments are preallocated to their full size (as etcd's are): appends then write inside the
// file, so an fdatasync never has to make a new file size durable (on ext4 that saves about a
// fifth of each sync). The data of a segment ends at the first all-zero record header.
//
// Recovery: segments are replayed in order; a later entry at an existing index replaces the
// old suffix (a follower's log truncation). A torn record at the very end of the last
// segment (a crash mid-write, proven as etcd proves it: see isTornWrite) is cut off with a
// warning. Any other bad record, including a flipped bit in the last one, means acknowledged
// data may be damaged: open() refuses, naming the file and offset.
//
// Failures: the first failed write, fsync or unlink poisons the WAL (see ../fatal.ts): that call
// and every later one reject with the same FatalStorageError, and nothing more is written.

import { constants, existsSync } from 'node:fs';
import { type FileHandle, mkdir, open, readFile, truncate, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { type Entry, type HardState, emptyHardState, isEmptyHardState } from '../../raft/index.js';
import type { Logger } from '../../raft/logger.js';
import { FatalStorageError, type SyncCalls, osSync } from '../fatal.js';
import type { LogStore } from '../durable.js';
import {
  type DecodeResult,
  HEADER_SIZE,
  RecordType,
  type WalMetadata,
  decodeRecord,
  encodeEntry,
  encodeHardState,
  encodeMetadata,
  encodeSnapshotMark,
  verifiesWithOneLengthBitFlipped,
} from './record.js';
import { type Segment, WalReadAhead, allZero, listSegments, segmentName, segmentsToRead } from './segment-read.js';

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

export interface WalOptions {
  segmentBytes?: number;
  logger: Logger;
  /** Segments already being read (segment-read.ts); open() reads them itself otherwise. */
  readAhead?: WalReadAhead;
  /** The fsync calls (tests inject failures here); the operating system's by default. */
  sync?: SyncCalls;
  /**
   * etcd's --max-wals: how many segment files may stay on disk once released (covered by a
   * snapshot, see releaseTo); the oldest released ones beyond it are deleted, and a segment not
   * released never is. 0 keeps every segment. 1 by default: a released segment goes at once.
   */
  maxFiles?: number;
  /**
   * open() only: the index of the newest snapshot, whose state the caller restores. A segment
   * whose entries all come before it is not read (etcd's WAL opens at its snapshot too), so
   * segments kept by maxFiles cost a restart nothing. 0 (default): every segment is read.
   */
  from?: number;
}

export interface WalContents {
  meta: WalMetadata;
  hardState: HardState;
  /** The contiguous run of entries the WAL holds (it may start before the snapshot index). */
  entries: Entry[];
  /** The latest snapshot recorded in the WAL. */
  snapshot?: { index: number; term: number };
  /** Set when a torn tail was cut off. */
  repaired?: { file: string; offset: number; droppedBytes: number };
  /**
   * Where the segments read begin (the first one's first index) when segments before them were
   * left unread for `from`; 0 when every segment was read. A caller whose snapshot turns out
   * older than `from` (the newest did not load) must open again without it.
   */
  readFrom: number;
}

export class WalCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`wal: corrupt record in ${file} at offset ${offset} (${reason}); refusing to start to avoid losing acknowledged data`);
    this.name = 'WalCorruptError';
  }
}

/** The disk's unit of atomic writes that etcd assumes: after a crash each is old or new. */
const SECTOR_SIZE = 512;

/** Whether buf[from, to), cut at the file's sector boundaries, has a piece that is all zeros. */
function hasZeroSector(buf: Buffer, from: number, to: number): boolean {
  for (let start = from; start < to; ) {
    const end = Math.min(to, (Math.floor(start / SECTOR_SIZE) + 1) * SECTOR_SIZE);
    if (allZero(buf, start, end)) return true;
    start = end;
  }
  return false;
}

/**
 * Whether the bad record at `off` of the last segment is provably a write cut short by a crash
 * (so never acknowledged), by etcd's rule (wal/decoder.go, isTornEntry): the file ends inside
 * it, or one of its pieces between sector boundaries is all zeros, a sector that never
 * replaced the preallocated zeros. Nothing but zeros may follow it. A flipped bit in a record
 * that was written whole proves no such thing, and cutting it could make the member forget the
 * term and vote of its last HardState.
 */
function isTornWrite(buf: Buffer, off: number, r: Extract<DecodeResult, { ok: false }>): boolean {
  if (r.reason === 'short-header') return true;
  // The length is outside the CRC: a record that verifies with one length bit flipped back
  // was written whole, although its wrong length may now take in zeros or run past the end.
  if (verifiesWithOneLengthBitFlipped(buf, off)) return false;
  if (r.reason === 'short-payload') return true;
  // Any other failure is of a record that passed its CRC: written whole, so not torn.
  if (r.reason !== 'crc') return false;
  return allZero(buf, off + r.size) && hasZeroSector(buf, off, off + r.size);
}

/** Opens a new segment file with its first records, preallocated and durable. */
async function createSegment(path: string, first: Buffer, segmentBytes: number, sync: SyncCalls): Promise<FileHandle> {
  // Readable by the member's user alone, as etcd's (fileutil.PrivateFileMode): the key space is in it.
  const fh = await open(path, sync.durableFlags | constants.O_CREAT | constants.O_EXCL, 0o600);
  await sync.durableWrite(fh, first, 0);
  // Sparse preallocation: the size is set once here, never by an append.
  if (segmentBytes > first.length) await fh.truncate(segmentBytes);
  await sync.fsync(fh);
  return fh;
}

export class Wal implements LogStore {
  /** Bytes written to the segments by this process: records, HardStates and segment headers. */
  bytesWritten = 0;
  private fh: FileHandle;
  private size: number;
  private seq: number;
  private segments: Segment[];
  private lastIndex: number;
  private hardState: HardState;
  private readonly segmentBytes: number;
  private readonly sync: SyncCalls;
  /** Writes run one at a time, in call order (see enqueue). */
  private chain: Promise<void> = Promise.resolve();
  /** A commit-only HardState not yet made durable (see saveNoWait). */
  private pendingHardState: HardState | undefined;
  /** Whether a plain write of the pending HardState is queued (writePending). */
  private pendingQueued = false;
  /** The current segment without O_DSYNC, for writePending; opened on first use. */
  private plainFh: FileHandle | undefined;
  /** Set by the first failed write or fsync: every later call rejects with it. */
  private fatal: FatalStorageError | undefined;
  private closed = false;
  /**
   * Entries below this index are covered by a snapshot: segments holding only them are released.
   * 0 when created or opened: releasing is the running member's, at each snapshot (releaseTo).
   */
  private releasedTo = 0;
  private readonly maxFiles: number;

  private constructor(
    readonly dir: string,
    readonly meta: WalMetadata,
    fh: FileHandle,
    size: number,
    segments: Segment[],
    lastIndex: number,
    hardState: HardState,
    private readonly logger: Logger,
    segmentBytes: number,
    sync: SyncCalls,
    maxFiles: number,
  ) {
    this.fh = fh;
    this.size = size;
    this.segments = segments;
    this.seq = segments[segments.length - 1]!.seq;
    this.lastIndex = lastIndex;
    this.hardState = hardState;
    this.segmentBytes = segmentBytes;
    this.sync = sync;
    this.maxFiles = maxFiles;
  }

  static exists(dir: string): boolean {
    if (!existsSync(dir)) return false;
    return true;
  }

  /** Creates a new WAL in an empty (or missing) directory. */
  static async create(dir: string, meta: WalMetadata, opts: WalOptions): Promise<Wal> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    if ((await listSegments(dir)).length > 0) throw new Error(`wal: ${dir} already contains a WAL`);
    const seg = { name: segmentName(0, 1), seq: 0, firstIndex: 1 };
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    const header = encodeMetadata(meta);
    const sync = opts.sync ?? osSync;
    const fh = await createSegment(join(dir, seg.name), header, segmentBytes, sync);
    await sync.fsyncDir(dir);
    return new Wal(dir, meta, fh, header.length, [seg], 0, emptyHardState(), opts.logger, segmentBytes, sync, opts.maxFiles ?? 1);
  }

  /** Removes `dir`'s segments (and leaves the directory and anything else in it). */
  static async removeSegments(dir: string): Promise<void> {
    if (!existsSync(dir)) return;
    for (const s of await listSegments(dir)) await unlink(join(dir, s.name));
    await osSync.fsyncDir(dir);
  }

  /** Whether `dir` holds at least one WAL segment. */
  static async hasWal(dir: string): Promise<boolean> {
    if (!existsSync(dir)) return false;
    return (await listSegments(dir)).length > 0;
  }

  /** Opens an existing WAL: replays it (repairing a torn tail) and readies it for appends. */
  static async open(dir: string, opts: WalOptions): Promise<{ wal: Wal; contents: WalContents }> {
    const segments = await listSegments(dir);
    if (segments.length === 0) throw new Error(`wal: no WAL segments in ${dir}`);
    // Started by the caller before it had other work to do, or here: either way the next
    // segment is being read while this one is decoded.
    const readAhead = opts.readAhead ?? WalReadAhead.start(dir, opts.from);
    let meta: WalMetadata | undefined;
    let hardState = emptyHardState();
    let snapshot: { index: number; term: number } | undefined;
    let entries: Entry[] = [];
    let repaired: WalContents['repaired'];
    let lastSize = 0;
    const from = opts.from ?? 0;
    const toRead = segmentsToRead(segments, from);
    const readFrom = toRead.length < segments.length ? toRead[0]!.firstIndex : 0;
    if (readFrom > 0) opts.logger.info(`wal: reading from ${toRead[0]!.name}: the ${segments.length - toRead.length} segments before it hold only entries before the snapshot at ${from}`);

    for (let si = segments.length - toRead.length; si < segments.length; si++) {
      const seg = segments[si]!;
      const file = join(dir, seg.name);
      let { buf, whole } = await readAhead.segment(seg.name);
      const isLast = si === segments.length - 1;
      let off = 0;
      while (off < buf.length) {
        // The end of the data: unwritten (zero) preallocated space.
        if (allZero(buf, off, Math.min(buf.length, off + HEADER_SIZE))) break;
        let r = decodeRecord(buf, off);
        if (!r.ok && !whole) {
          // Judge a bad record (torn? damaged?) on the whole file, as it always was.
          buf = await readFile(file);
          whole = true;
          r = decodeRecord(buf, off);
        }
        if (!r.ok) {
          // A torn write can only be the last thing in the last segment.
          if (isLast && isTornWrite(buf, off, r)) {
            const dropped = Math.min(r.size, buf.length - off);
            opts.logger.warn(`wal: truncating torn record at ${file} offset ${off} (${r.reason}, ${dropped} bytes)`);
            await truncate(file, off);
            repaired = { file, offset: off, droppedBytes: dropped };
            break;
          }
          throw new WalCorruptError(file, off, isLast ? `${r.reason}, not a torn write` : r.reason);
        }
        const rec = r.record;
        switch (rec.type) {
          case RecordType.Metadata:
            if (meta && (meta.nodeId !== rec.meta.nodeId || meta.clusterId !== rec.meta.clusterId)) {
              throw new WalCorruptError(file, off, 'metadata differs from the previous segment');
            }
            meta = rec.meta;
            break;
          case RecordType.HardState:
            hardState = rec.hardState;
            break;
          case RecordType.Snapshot:
            if (!snapshot || rec.index > snapshot.index) snapshot = { index: rec.index, term: rec.term };
            // A snapshot installed from the leader jumps the log forward: every entry so far is
            // below it (covered by the snapshot, whose file is durable before this record), and
            // the next entry follows the snapshot, not them.
            if (entries.length > 0 && entries[entries.length - 1]!.index < rec.index) entries = [];
            break;
          case RecordType.Entry: {
            const e = rec.entry;
            const first = entries.length > 0 ? entries[0]!.index : e.index;
            if (entries.length > 0 && e.index <= entries[entries.length - 1]!.index) {
              // A later write at an existing index: the log was truncated there.
              entries = entries.slice(0, Math.max(0, e.index - first));
            } else if (entries.length > 0 && e.index !== entries[entries.length - 1]!.index + 1) {
              throw new WalCorruptError(file, off, `entry ${e.index} does not follow ${entries[entries.length - 1]!.index}`);
            }
            entries.push(e);
            break;
          }
        }
        off += r.size;
      }
      if (isLast) lastSize = repaired ? repaired.offset : off;
    }
    if (!meta) throw new WalCorruptError(join(dir, toRead[0]!.name), 0, 'no metadata record');
    const last = segments[segments.length - 1]!;
    const sync = opts.sync ?? osSync;
    const fh = await open(join(dir, last.name), sync.durableFlags);
    // (Re)preallocate: after a torn tail was cut, or for a segment written unpreallocated.
    const segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    if ((await fh.stat()).size < segmentBytes) {
      await fh.truncate(segmentBytes);
      await sync.fsync(fh);
    }
    const lastIndex = Math.max(entries.length > 0 ? entries[entries.length - 1]!.index : 0, snapshot?.index ?? 0);
    // Nothing is released (nor deleted) by opening: `from` is the newest snapshot file's index by
    // its name, and if that file does not load, the segments before it are what the member
    // recovers from (the caller opens again without `from`). Releasing is the running member's,
    // at its next snapshot.
    const wal = new Wal(dir, meta, fh, lastSize, segments, lastIndex, hardState, opts.logger, segmentBytes, sync, opts.maxFiles ?? 1);
    return { wal, contents: { meta, hardState, entries, snapshot, repaired, readFrom } };
  }

  /**
   * Appends entries and the HardState in one write, durable when it resolves whatever `sync`
   * says (the segment is O_DSYNC: see the header). Entries at an index at or below the current
   * last index supersede the old suffix on replay.
   */
  async save(hardState: HardState | undefined, entries: readonly Entry[], _sync: boolean): Promise<void> {
    if (entries.length === 0 && (hardState === undefined || isEmptyHardState(hardState))) {
      // Nothing to write, but a poisoned WAL still says so.
      if (this.fatal) throw this.fatal;
      return;
    }
    // Writes are chained so that they reach the file in call order, whoever calls (the Raft
    // loop, snapshots, segment release).
    return this.enqueue(() => this.doSave(hardState, entries));
  }

  /**
   * Keeps a HardState whose only change is the commit index, which Raft does not need durable:
   * it is written at once but not synced (writePending), and made durable by the next write
   * (save, snapshot mark, close), which writes it again in the same place. A poisoned or closed
   * WAL ignores it.
   */
  saveNoWait(hardState: HardState): void {
    if (this.fatal || this.closed) return;
    this.pendingHardState = hardState;
    if (this.pendingQueued) return;
    this.pendingQueued = true;
    this.enqueue(() => this.writePending()).catch(() => {});
  }

  /** Writes the pending HardState past the durable data, unsynced, without moving its end. */
  private async writePending(): Promise<void> {
    this.pendingQueued = false;
    const hs = this.pendingHardState;
    if (!hs) return; // a durable write queued before this one took it
    this.plainFh ??= await open(join(this.dir, this.segments[this.segments.length - 1]!.name), constants.O_RDWR);
    const b = encodeHardState(hs);
    await this.sync.write(this.plainFh, b, this.size);
    this.bytesWritten += b.length;
  }

  /** The commit-only HardState not yet written (saveNoWait), taken for the write at hand. */
  private takePending(): HardState | undefined {
    const hs = this.pendingHardState;
    this.pendingHardState = undefined;
    return hs;
  }

  private async doSave(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    const parts: Buffer[] = [];
    for (const e of entries) parts.push(encodeEntry(e));
    // A Ready's HardState is the whole current one: it supersedes a pending commit-only one.
    const pending = this.takePending();
    const hs = hardState ?? pending;
    if (hs) {
      parts.push(encodeHardState(hs));
      this.hardState = hs;
    }
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    await this.writeAll(buf);
    if (entries.length > 0) this.lastIndex = entries[entries.length - 1]!.index;
    if (this.size >= this.segmentBytes) await this.rotate();
  }

  /** Records that a snapshot at (index, term) is durable (the snapshot file is written first). */
  async saveSnapshotMark(index: number, term: number): Promise<void> {
    return this.enqueue(async () => {
      // The pending commit index goes first: on replay the HardState's commit is then at least
      // the snapshot's index, as it was when the snapshot was taken.
      const pending = this.takePending();
      const mark = encodeSnapshotMark(index, term);
      await this.writeAll(pending ? Buffer.concat([encodeHardState(pending), mark]) : mark);
      if (pending) this.hardState = pending;
      // Already durable (O_DSYNC); kept so that a disk that cannot sync is found at a snapshot
      // even by a SyncCalls that is not O_DSYNC-backed.
      await this.sync.datasync(this.fh);
    });
  }

  /**
   * Runs `f` after every write queued before it, and before any queued after it. Its failure
   * poisons the WAL: the kernel may have dropped the pages a failed fsync could not write, and
   * the handle, size and segment list may no longer match the disk.
   */
  private enqueue<T>(f: () => Promise<T>): Promise<T> {
    const run = this.chain.then(async () => {
      if (this.fatal) throw this.fatal;
      if (this.closed) throw new Error('wal: closed');
      try {
        return await f();
      } catch (e) {
        this.fatal ??= new FatalStorageError(`wal: a write or fsync in ${this.dir} failed`, e);
        throw this.fatal;
      }
    });
    this.chain = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  /**
   * Releases whole segments whose entries all precede `index` (covered by a snapshot), never the
   * segment that contains `index`, and deletes the oldest released ones while more than
   * maxFiles segments are on disk (etcd's purge of --max-wals; 0 deletes none). Bounded disk
   * use over a long-running cluster. Resolves to the number of segments deleted.
   */
  async releaseTo(index: number): Promise<number> {
    return this.enqueue(() => this.doRelease(index));
  }

  private async doRelease(index: number): Promise<number> {
    this.releasedTo = Math.max(this.releasedTo, index);
    if (this.maxFiles === 0) return 0;
    let removed = 0;
    // Segment i holds entries from segments[i].firstIndex to segments[i+1].firstIndex - 1.
    while (this.segments.length > this.maxFiles && this.segments.length > 1 && this.segments[1]!.firstIndex <= this.releasedTo) {
      const seg = this.segments.shift()!;
      await unlink(join(this.dir, seg.name));
      this.logger.info(`purged file ${join(this.dir, seg.name)} successfully`);
      removed++;
    }
    if (removed > 0) await this.sync.fsyncDir(this.dir);
    return removed;
  }

  segmentCount(): number {
    return this.segments.length;
  }

  private async writeAll(buf: Buffer): Promise<void> {
    await this.sync.durableWrite(this.fh, buf, this.size);
    this.size += buf.length;
    this.bytesWritten += buf.length;
  }

  /** Starts a new segment; it begins with the metadata and the current HardState. */
  private async rotate(): Promise<void> {
    await this.sync.datasync(this.fh);
    await this.fh.close();
    await this.closePlain();
    this.seq++;
    const seg = { name: segmentName(this.seq, this.lastIndex + 1), seq: this.seq, firstIndex: this.lastIndex + 1 };
    const header = Buffer.concat([encodeMetadata(this.meta), encodeHardState(this.hardState)]);
    this.fh = await createSegment(join(this.dir, seg.name), header, this.segmentBytes, this.sync);
    this.size = header.length;
    this.bytesWritten += header.length;
    await this.sync.fsyncDir(this.dir);
    this.segments.push(seg);
    this.logger.info(`wal: rotated to segment ${seg.name}`);
  }

  /**
   * Waits for the queued writes, makes them durable (a commit-only HardState was not yet) and
   * releases the file. A poisoned WAL is released without a sync: the call that failed has
   * already reported its error.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.closePlain().catch(() => {});
    if (this.fatal) {
      await this.fh.close().catch(() => {});
      return;
    }
    try {
      const pending = this.takePending();
      if (pending) await this.writeAll(encodeHardState(pending));
      await this.sync.datasync(this.fh);
    } catch (e) {
      this.fatal = new FatalStorageError(`wal: fsync of ${this.dir} failed`, e);
      await this.fh.close().catch(() => {});
      throw this.fatal;
    }
    await this.fh.close();
  }

  private async closePlain(): Promise<void> {
    const fh = this.plainFh;
    this.plainFh = undefined;
    await fh?.close();
  }
}

/**
 * Entries are read as views of their segment's buffer (no copy per entry: at a million keys the
 * copies cost half a second of a restart), so a kept entry keeps its segment's bytes in memory.
 * Once the caller knows which entries it keeps (those after the newest snapshot), this moves the
 * entries of any buffer they fill less than half of to one right-sized copy: a segment of which
 * only a tail follows the snapshot. What a buffer holds in memory is what was read of it, up to
 * the end of its last record at least — not its length: the preallocated zeros after the records
 * are never read (readSegment), so their pages are never touched, and the last segment's records
 * need no copy of their own (which cost ~50 ms of a 100 k-key restart).
 */
export function compactEntryViews(entries: readonly Entry[]): void {
  const used = new Map<ArrayBufferLike, { bytes: number; end: number }>();
  for (const e of entries) {
    const u = used.get(e.data.buffer);
    const end = e.data.byteOffset + e.data.length;
    if (u) {
      u.bytes += e.data.length;
      u.end = Math.max(u.end, end);
    } else used.set(e.data.buffer, { bytes: e.data.length, end });
  }
  const copies = new Map<ArrayBufferLike, { to: Buffer; at: number }>();
  for (const [buffer, { bytes, end }] of used) {
    if (bytes < end / 2) copies.set(buffer, { to: Buffer.allocUnsafe(bytes), at: 0 });
  }
  if (copies.size === 0) return;
  for (const e of entries) {
    const c = copies.get(e.data.buffer);
    if (!c) continue;
    c.to.set(e.data, c.at);
    e.data = c.to.subarray(c.at, c.at + e.data.length);
    c.at += e.data.length;
  }
}
