// Helpers for tests that damage WAL files the way a crash or a bad disk would.

import { HEADER_SIZE, decodeRecord } from '../../src/storage/wal/record.js';

/** The disk's unit of atomic writes that the WAL's torn-write check assumes (as etcd's). */
export const SECTOR = 512;

/** The offsets of a segment's records, up to its first all-zero header (preallocated space). */
export function walRecordOffsets(buf: Buffer): number[] {
  const offs: number[] = [];
  let off = 0;
  while (off + HEADER_SIZE <= buf.length && !buf.subarray(off, off + HEADER_SIZE).every((b) => b === 0)) {
    const r = decodeRecord(buf, off);
    if (!r.ok) break;
    offs.push(off);
    off += r.size;
  }
  return offs;
}

/** Where a segment's records end (its first all-zero header: preallocated space), by walking them. */
export function walDataEnd(buf: Buffer): number {
  const offs = walRecordOffsets(buf);
  if (offs.length === 0) return 0;
  const last = offs[offs.length - 1]!;
  return last + (decodeRecord(buf, last) as { size: number }).size;
}
