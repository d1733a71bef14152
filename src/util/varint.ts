// Protobuf varints written into a caller's buffer, and their sizes, without BigInt arithmetic
// for values that fit a double exactly (the common case: revisions, versions, lengths). Shared
// by the MVCC hash (src/kv/mvcc.ts, etcd's KeyValue bytes), the KeyValue encoder
// (src/util/keyvalue-wire.ts: Range answers, backups) and the peer stream's frames
// (src/transport/peer-wire.ts).

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** Writes a protobuf varint of `v` (int64: a negative value takes ten bytes) at `o`; returns the end. */
export function putVarint(b: Uint8Array, o: number, v: bigint | number): number {
  if (typeof v === 'number' || (v >= 0n && v <= SAFE)) {
    let x = Number(v);
    // `x & 0x7f` is exact above 2^32 too (ToInt32 keeps the low bits), and the division is by a
    // power of two, so exact for a safe integer; below 2^31 a shift does it.
    while (x > 0x7fffffff) {
      b[o++] = (x & 0x7f) | 0x80;
      x = Math.floor(x / 128);
    }
    while (x > 0x7f) {
      b[o++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    b[o++] = x;
    return o;
  }
  let x = BigInt.asUintN(64, v);
  while (x >= 0x80n) {
    b[o++] = Number(x & 0x7fn) | 0x80;
    x >>= 7n;
  }
  b[o++] = Number(x);
  return o;
}

/** Bytes of the varint of a length or any uint32. */
export function lengthSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Bytes of an int64's varint (what putVarint writes for it). */
export function varintSize(v: bigint): number {
  if (v >= 0n && v <= SAFE) {
    let x = Number(v);
    let n = 1;
    while (x >= 0x80) {
      x = Math.floor(x / 0x80);
      n++;
    }
    return n;
  }
  // Beyond 2^53 (lease ids often are) or negative (two's complement: ten bytes).
  let x = BigInt.asUintN(64, v);
  let n = 1;
  while (x >= 0x80n) {
    x >>= 7n;
    n++;
  }
  return n;
}
