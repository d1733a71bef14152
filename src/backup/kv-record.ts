// The records of etcd's `key` bucket, coded by hand: the revision key and the marshalled
// mvccpb.KeyValue (fields 1 key, 2 create_revision, 3 mod_revision, 4 version, 5 value,
// 6 lease; zero values left out, as Go's protobuf marshals them). A snapshot holds one record per
// stored version — a million and more — and the generated codec's per-record writer and copies
// made the garbage collector the main cost of writing and reading them; here records are laid
// out in shared slabs and decoded as views into the file.

import { keyValueSize, putKeyValue } from '../util/keyvalue-wire.js';

/**
 * Hands out small byte arrays carved from large slabs: one allocation per slab, and plain
 * Uint8Array views, which are much cheaper to make than Buffer views.
 */
export class Slab {
  private buf = new Uint8Array(0);
  private pos = 0;

  constructor(private readonly size = 1 << 20) {}

  take(n: number): Uint8Array {
    if (this.pos + n > this.buf.length) {
      this.buf = new Uint8Array(Math.max(this.size, n));
      this.pos = 0;
    }
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

export interface KeyValueRecord {
  key: Buffer;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  value: Buffer;
  lease: bigint;
}

/** Marshals `kv` as Go's protobuf would (mvccpb.KeyValue), into bytes from `slab`. */
export function encodeKeyValue(kv: KeyValueRecord, slab: Slab): Uint8Array {
  const b = slab.take(keyValueSize(kv));
  putKeyValue(b, 0, kv);
  return b;
}

/** Parses a marshalled mvccpb.KeyValue; key and value are views into `b`. Throws if malformed. */
export function decodeKeyValue(b: Buffer): KeyValueRecord {
  const kv: KeyValueRecord = { key: b.subarray(0, 0), createRevision: 0n, modRevision: 0n, version: 0n, value: b.subarray(0, 0), lease: 0n };
  let o = 0;
  const bad = (): never => {
    throw new Error(`etcd snapshot: malformed mvccpb.KeyValue at byte ${o} of ${b.length}`);
  };
  const varint = (): bigint => {
    let x = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (o >= b.length) bad();
      const c = b[o++]!;
      if (mul <= 2 ** 42) {
        x += (c & 0x7f) * mul;
        mul *= 128;
        if (c < 0x80) return BigInt(x);
      } else {
        // Past 49 bits a Number is no longer exact: finish with bigint (large or negative int64).
        let big = BigInt(x) + BigInt(c & 0x7f) * BigInt(mul);
        let shift = BigInt(mul) * 128n;
        let cc = c;
        while (cc >= 0x80) {
          if (o >= b.length) bad();
          cc = b[o++]!;
          big += BigInt(cc & 0x7f) * shift;
          shift *= 128n;
        }
        return BigInt.asIntN(64, big);
      }
    }
    return bad();
  };
  while (o < b.length) {
    const tag = b[o++]!;
    const field = tag >> 3;
    const wire = tag & 7;
    if (wire === 0) {
      const v = varint();
      if (field === 2) kv.createRevision = v;
      else if (field === 3) kv.modRevision = v;
      else if (field === 4) kv.version = v;
      else if (field === 6) kv.lease = v;
    } else if (wire === 2) {
      const len = Number(varint());
      if (o + len > b.length) bad();
      const bytes = b.subarray(o, o + len);
      o += len;
      if (field === 1) kv.key = bytes;
      else if (field === 5) kv.value = bytes;
    } else if (wire === 1) o += 8;
    else if (wire === 5) o += 4;
    else bad();
  }
  if (o > b.length) bad();
  return kv;
}
