// Reading a WAL's segments at start-up: which files are segments, how far each one's records
// go, and reading them ahead of the replay.
//
// Why read ahead: at a restart the segments are the biggest thing a member reads (118 MB for a
// million 100-byte keys), and reading them is mostly the kernel filling fresh pages — work a
// thread-pool thread can do while the main thread does something else. The CLI starts a
// WalReadAhead as soon as it knows the data dir, before it loads the rest of the member's code
// (~0.4 s of compiling on the main thread); Wal.open then takes the bytes already read, and
// decodes one segment while the next is still being read.

import { readdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { HEADER_SIZE } from './record.js';

export interface Segment {
  name: string;
  seq: number;
  firstIndex: number;
}

export function segmentName(seq: number, firstIndex: number): string {
  return `${seq.toString(16).padStart(16, '0')}-${firstIndex.toString(16).padStart(16, '0')}.wal`;
}

function parseSegmentName(name: string): Segment | undefined {
  const m = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/.exec(name);
  if (!m) return undefined;
  return { name, seq: parseInt(m[1]!, 16), firstIndex: parseInt(m[2]!, 16) };
}

/** The WAL segments in `dir`, in sequence order. */
export async function listSegments(dir: string): Promise<Segment[]> {
  const names = await readdir(dir);
  return names
    .map(parseSegmentName)
    .filter((s): s is Segment => s !== undefined)
    .sort((a, b) => a.seq - b.seq);
}

/**
 * The segments a replay that starts at snapshot index `from` must read: all but those whose
 * entries all come before it (segment i holds the entries from its first index to the next
 * one's, exclusive). The last segment is always read: it is the one written to.
 */
export function segmentsToRead(segments: Segment[], from: number): Segment[] {
  let first = 0;
  while (first < segments.length - 1 && segments[first + 1]!.firstIndex <= from) first++;
  return segments.slice(first);
}

/** Whether buf[from, end) is all zero bytes (unwritten preallocated space). */
export function allZero(buf: Buffer, from: number, end = buf.length): boolean {
  for (let i = Math.max(0, from); i < end; i++) if (buf[i] !== 0) return false;
  return true;
}

/** A segment's bytes as far as its records go (`whole`: the file's every byte). */
export interface SegmentBytes {
  buf: Buffer;
  whole: boolean;
}

/** A segment is read in pieces of this size, as far as its records go. */
const READ_PIECE = 4 * 1024 * 1024;

/**
 * Reads a segment as far as its records go. The preallocated zeros after the records are not
 * read: reading them cost more than the records (a 64 MiB segment holding 13 MiB took ~230 ms
 * to read whole, mostly page faults of this VM's kind), so the file is read piece by piece
 * along its record headers until a zero header (the end of the data, where Wal.open stops) or
 * the file's end. The buffer is the file's size but only the pages read are ever touched. Each
 * piece is one thread-pool trip; what the records say is checked by Wal.open, not here.
 */
export async function readSegment(file: string): Promise<SegmentBytes> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.allocUnsafeSlow((await fh.stat()).size);
    let have = 0;
    // Invariant: every record before `off` lies whole within buf[0, have).
    let off = 0;
    for (;;) {
      // The end of what must be read to see past the record at `off`, or -1: the data ends.
      let need = -1;
      while (need < 0) {
        const headerEnd = off + HEADER_SIZE;
        if (headerEnd > have) need = headerEnd;
        else if (allZero(buf, off, headerEnd)) break;
        else {
          const next = headerEnd + buf.readUInt32LE(off);
          if (next > have) need = next;
          else off = next;
        }
      }
      if (need < 0 || have >= buf.length) break;
      const end = Math.min(buf.length, Math.max(need, have + READ_PIECE));
      const { bytesRead } = await fh.read(buf, have, end - have, have);
      if (bytesRead === 0) break; // the file is shorter than it was: what was read is all there is
      have += bytesRead;
    }
    return { buf: buf.subarray(0, have), whole: have >= buf.length };
  } finally {
    await fh.close();
  }
}

/** Segments read at once: enough to keep a read going while one is decoded, few enough not to crowd the thread pool. */
const SEGMENTS_IN_FLIGHT = 2;

/**
 * Reads a WAL directory's segments in order, at most SEGMENTS_IN_FLIGHT at a time, from the
 * moment it is started. It only reads: a segment's bytes are judged by Wal.open, and one that
 * is asked for but was not listed here (the directory changed) is read then.
 */
export class WalReadAhead {
  private readonly reads = new Map<string, Promise<SegmentBytes>>();
  private readonly listed: Promise<void>;
  /** Resolves once every segment listed at the start is read (or failed to be). */
  readonly settled: Promise<void>;
  private allRead: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly dir: string,
    from: number,
  ) {
    this.listed = listSegments(dir).then(
      (segments) => this.readAll(segmentsToRead(segments, from)),
      () => {}, // no directory (a new member): nothing to read ahead; Wal.open says what is wrong
    );
    this.settled = this.listed.then(() => this.allRead).then(() => {});
  }

  /** Starts reading `dir`'s segments, those a replay from snapshot index `from` needs (see segmentsToRead). */
  static start(dir: string, from = 0): WalReadAhead {
    return new WalReadAhead(dir, from);
  }

  private readAll(segments: Segment[]): void {
    const started: Promise<unknown>[] = [];
    for (const s of segments) {
      // Segment i starts when segment i - SEGMENTS_IN_FLIGHT is done, failed or not.
      const turn = started[started.length - SEGMENTS_IN_FLIGHT] ?? Promise.resolve();
      const read = turn.then(() => readSegment(join(this.dir, s.name)));
      // A failed read is reported to whoever takes the segment, not as an unhandled rejection.
      const settled = read.catch(() => {});
      this.reads.set(s.name, read);
      started.push(settled);
    }
    this.allRead = Promise.all(started);
  }

  /** Segment `name`'s bytes: the read-ahead's (given once), or read now. */
  async segment(name: string): Promise<SegmentBytes> {
    await this.listed;
    const read = this.reads.get(name);
    this.reads.delete(name);
    return read ?? readSegment(join(this.dir, name));
  }
}
