// Helpers for tests that damage WAL files the way a crash or a bad disk would.

import { HEADER_SIZE, decodeRecord } from '../../src/storage/wal/record.js';

/** Where a segment's records end (its first all-zero header: preallocated space), by walking them. */
export function walDataEnd(buf: Buffer): number {
  let off = 0;
  while (off + HEADER_SIZE <= buf.length && !buf.subarray(off, off + HEADER_SIZE).every((b) => b === 0)) {
    const r = decodeRecord(buf, off);
    if (!r.ok) break;
    off += r.size;
  }
  return off;
}
