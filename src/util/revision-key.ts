// etcd's revision key (mvcc/revision.go revToBytes): the main revision, '_', the sub revision,
// both int64 big-endian, and a 't' after them for a deletion — the key of every version in
// etcd's backend. Written here for the hash of the key space (src/kv/mvcc.ts, which must match
// etcd's) and for etcd-format snapshot files (src/backup/etcd-snapshot.ts).

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Bytes of a revision key: 17, or 18 for a deletion. */
export const revisionKeySize = (tombstone: boolean): number => (tombstone ? 18 : 17);

/** Writes a revision key at `o`; returns the offset after it. */
export function putRevisionKey(b: Uint8Array, o: number, main: bigint, sub: bigint | number, tombstone: boolean): number {
  putInt64BE(b, o, main);
  b[o + 8] = 0x5f; // '_'
  putInt64BE(b, o + 9, sub);
  if (!tombstone) return o + 17;
  b[o + 17] = 0x74; // 't'
  return o + 18;
}

/** Writes a signed 64-bit integer big-endian at `o`. */
export function putInt64BE(b: Uint8Array, o: number, v: bigint | number): void {
  if (typeof v === 'number' ? v >= 0 : v >= 0n && v <= SAFE) {
    // Two 32-bit halves: exact for a safe non-negative integer.
    const x = Number(v);
    const hi = Math.floor(x / 0x1_0000_0000);
    const lo = x % 0x1_0000_0000;
    b[o] = hi >>> 24;
    b[o + 1] = (hi >>> 16) & 0xff;
    b[o + 2] = (hi >>> 8) & 0xff;
    b[o + 3] = hi & 0xff;
    b[o + 4] = lo >>> 24;
    b[o + 5] = (lo >>> 16) & 0xff;
    b[o + 6] = (lo >>> 8) & 0xff;
    b[o + 7] = lo & 0xff;
    return;
  }
  let x = BigInt.asUintN(64, BigInt(v));
  for (let i = 7; i >= 0; i--) {
    b[o + i] = Number(x & 0xffn);
    x >>= 8n;
  }
}
