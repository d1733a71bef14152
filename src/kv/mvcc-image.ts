// The binary image of MVCC key histories, as stored in snapshots.
//
// Per key: u32 key length, the key bytes, u32 number of versions; per version: u64 mod
// revision, u32 sub-revision, u64 create revision, u64 version, u64 lease, u32 value length,
// the value bytes (all little-endian). Keys and values stay raw bytes (no base64, no JSON
// escaping): building and parsing a 100,000-key image is several times cheaper than JSON lines,
// which is what a member catching up by snapshot waits on.

import type { Rev } from './mvcc.js';

export interface ImageKey {
  key: Buffer;
  history: readonly Rev[];
}

const REV_FIXED = 8 + 4 + 8 + 8 + 8 + 4;

/** Encodes a batch of keys into one buffer. */
export function encodeKeys(keys: readonly ImageKey[]): Buffer {
  let size = 0;
  for (const k of keys) {
    size += 8 + k.key.length;
    for (const r of k.history) size += REV_FIXED + r.value.length;
  }
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  for (const k of keys) {
    o = b.writeUInt32LE(k.key.length, o);
    o += k.key.copy(b, o);
    o = b.writeUInt32LE(k.history.length, o);
    for (const r of k.history) {
      o = b.writeBigInt64LE(r.mod, o);
      o = b.writeUInt32LE(r.sub, o);
      o = b.writeBigInt64LE(r.create, o);
      o = b.writeBigInt64LE(r.version, o);
      o = b.writeBigInt64LE(r.lease, o);
      o = b.writeUInt32LE(r.value.length, o);
      o += r.value.copy(b, o);
    }
  }
  return b;
}

/**
 * Decodes keys from `buf` starting at `offset`, calling `onKey` for each and `pause` every
 * `chunk` keys (so a large image does not hold the event loop). Keys and values are copied out
 * of `buf`, which can then be freed. Throws on a truncated or malformed image.
 */
export async function decodeKeys(
  buf: Buffer,
  offset: number,
  onKey: (k: { key: Buffer; history: Rev[] }) => void,
  pause: () => Promise<void>,
  chunk = 2000,
): Promise<number> {
  let o = offset;
  let n = 0;
  const need = (len: number): void => {
    if (o + len > buf.length) throw new Error(`snapshot image truncated at byte ${o} (needs ${len} more, has ${buf.length - o})`);
  };
  while (o < buf.length) {
    need(4);
    const keyLen = buf.readUInt32LE(o);
    o += 4;
    need(keyLen + 4);
    const key = Buffer.from(buf.subarray(o, o + keyLen));
    o += keyLen;
    const count = buf.readUInt32LE(o);
    o += 4;
    const history: Rev[] = new Array<Rev>(count);
    for (let i = 0; i < count; i++) {
      need(REV_FIXED);
      const mod = buf.readBigInt64LE(o);
      const sub = buf.readUInt32LE(o + 8);
      const create = buf.readBigInt64LE(o + 12);
      const version = buf.readBigInt64LE(o + 20);
      const lease = buf.readBigInt64LE(o + 28);
      const valueLen = buf.readUInt32LE(o + 36);
      o += REV_FIXED;
      need(valueLen);
      history[i] = { mod, sub, create, version, lease, value: Buffer.from(buf.subarray(o, o + valueLen)) };
      o += valueLen;
    }
    onKey({ key, history });
    if (++n % chunk === 0) await pause();
  }
  return n;
}
