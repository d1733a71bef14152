// WAL record framing: [u32 payload length][u32 crc32 of type+payload][u8 type][payload].
// The CRC covers the type byte too, so a flipped type is detected like a flipped payload.

import { crc32 } from 'node:zlib';
import type { Entry, HardState } from '../../raft/index.js';
import { NONE } from '../../raft/index.js';

export const HEADER_SIZE = 9;

export enum RecordType {
  /** Segment header: node id and cluster id (every segment starts with one). */
  Metadata = 1,
  Entry = 2,
  HardState = 3,
  /** A snapshot was saved at (index, term): older entries are covered by it. */
  Snapshot = 4,
}

export interface WalMetadata {
  nodeId: bigint;
  clusterId: bigint;
}

export type WalRecord =
  | { type: RecordType.Metadata; meta: WalMetadata }
  | { type: RecordType.Entry; entry: Entry }
  | { type: RecordType.HardState; hardState: HardState }
  | { type: RecordType.Snapshot; index: number; term: number };

function frame(type: RecordType, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(HEADER_SIZE + payload.length);
  out.writeUInt32LE(payload.length, 0);
  out.writeUInt8(type, 8);
  payload.copy(out, HEADER_SIZE);
  out.writeUInt32LE(crc32(out.subarray(8)), 4);
  return out;
}

export function encodeEntry(e: Entry): Buffer {
  // [u64 term][u64 index][u8 type][data]
  const p = Buffer.allocUnsafe(17 + e.data.length);
  p.writeBigUInt64LE(BigInt(e.term), 0);
  p.writeBigUInt64LE(BigInt(e.index), 8);
  p.writeUInt8(e.type, 16);
  p.set(e.data, 17);
  return frame(RecordType.Entry, p);
}

export function encodeHardState(h: HardState): Buffer {
  const p = Buffer.allocUnsafe(24);
  p.writeBigUInt64LE(BigInt(h.term), 0);
  p.writeBigUInt64LE(BigInt.asUintN(64, h.vote), 8);
  p.writeBigUInt64LE(BigInt(h.commit), 16);
  return frame(RecordType.HardState, p);
}

export function encodeSnapshotMark(index: number, term: number): Buffer {
  const p = Buffer.allocUnsafe(16);
  p.writeBigUInt64LE(BigInt(index), 0);
  p.writeBigUInt64LE(BigInt(term), 8);
  return frame(RecordType.Snapshot, p);
}

export function encodeMetadata(m: WalMetadata): Buffer {
  const p = Buffer.allocUnsafe(16);
  p.writeBigUInt64LE(BigInt.asUintN(64, m.nodeId), 0);
  p.writeBigUInt64LE(BigInt.asUintN(64, m.clusterId), 8);
  return frame(RecordType.Metadata, p);
}

function toSafe(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${what} ${v} out of range`);
  return Number(v);
}

export type DecodeResult =
  | { ok: true; record: WalRecord; size: number }
  | { ok: false; reason: 'short-header' | 'short-payload' | 'crc' | 'bad-type' | 'bad-payload'; size: number };

/** Decodes the record at `off`. `size` is the bytes the record claims (for torn-tail checks). */
export function decodeRecord(buf: Buffer, off: number): DecodeResult {
  if (buf.length - off < HEADER_SIZE) return { ok: false, reason: 'short-header', size: buf.length - off };
  const len = buf.readUInt32LE(off);
  const size = HEADER_SIZE + len;
  if (buf.length - off < size) return { ok: false, reason: 'short-payload', size };
  const crc = buf.readUInt32LE(off + 4);
  if (crc32(buf.subarray(off + 8, off + size)) !== crc) return { ok: false, reason: 'crc', size };
  const type = buf.readUInt8(off + 8);
  const p = buf.subarray(off + HEADER_SIZE, off + size);
  try {
    switch (type) {
      case RecordType.Entry: {
        if (p.length < 17) return { ok: false, reason: 'bad-payload', size };
        const entry: Entry = {
          term: toSafe(p.readBigUInt64LE(0), 'term'),
          index: toSafe(p.readBigUInt64LE(8), 'index'),
          type: p.readUInt8(16),
          // A view of the segment (the caller keeps what it holds on to small: see compactEntryViews in wal.ts).
          data: p.subarray(17),
        };
        return { ok: true, record: { type, entry }, size };
      }
      case RecordType.HardState: {
        if (p.length !== 24) return { ok: false, reason: 'bad-payload', size };
        const hardState: HardState = {
          term: toSafe(p.readBigUInt64LE(0), 'term'),
          vote: p.readBigUInt64LE(8) || NONE,
          commit: toSafe(p.readBigUInt64LE(16), 'commit'),
        };
        return { ok: true, record: { type, hardState }, size };
      }
      case RecordType.Snapshot: {
        if (p.length !== 16) return { ok: false, reason: 'bad-payload', size };
        return {
          ok: true,
          record: { type, index: toSafe(p.readBigUInt64LE(0), 'index'), term: toSafe(p.readBigUInt64LE(8), 'term') },
          size,
        };
      }
      case RecordType.Metadata: {
        if (p.length !== 16) return { ok: false, reason: 'bad-payload', size };
        return { ok: true, record: { type, meta: { nodeId: p.readBigUInt64LE(0), clusterId: p.readBigUInt64LE(8) } }, size };
      }
      default:
        return { ok: false, reason: 'bad-type', size };
    }
  } catch {
    return { ok: false, reason: 'bad-payload', size };
  }
}

/**
 * Whether the record at `off`, which fails to verify at its stated length, verifies once one bit
 * of that length is flipped back. The length is outside the CRC: such a record was written whole
 * and only its length was damaged, whatever its wrong length now takes in (preallocated zeros,
 * or more than the file holds).
 */
export function verifiesWithOneLengthBitFlipped(buf: Buffer, off: number): boolean {
  if (buf.length - off < HEADER_SIZE) return false;
  const len = buf.readUInt32LE(off);
  const crc = buf.readUInt32LE(off + 4);
  for (let bit = 0; bit < 32; bit++) {
    const end = off + HEADER_SIZE + ((len ^ (1 << bit)) >>> 0);
    if (end <= buf.length && crc32(buf.subarray(off + 8, end)) === crc) return true;
  }
  return false;
}
