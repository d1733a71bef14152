// mvccpb.KeyValue marshalled by hand, as Go's protobuf (and ts-proto) lay it out: fields 1 key,
// 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease, in that order, zero values left
// out, int64s as varints (a negative one in ten bytes). Shared by the backup codec (etcd's `key`
// bucket, src/backup/kv-record.ts) and the Range encoder (src/api/sliced-encoding.ts), both of
// which write millions of them, where the generated writer's per-message chunks and copies cost
// more than the bytes.
//
// Key and value come either as bytes or as latin1 strings (one char per byte: how the MVCC store
// keeps them), written straight into the output without a Buffer in between.

import { putVarint } from './varint.js';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

export interface KeyValueFields {
  key: Uint8Array | string;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  value: Uint8Array | string;
  lease: bigint;
}

/** Bytes of the varint of a length (a non-negative safe integer). */
export function lengthSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

/** Writes a length's varint at `o`; returns the end. */
export function putLength(b: Uint8Array, o: number, n: number): number {
  while (n >= 0x80) {
    b[o++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  b[o++] = n;
  return o;
}

/** Bytes of an int64's varint. */
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

/** The size of a KeyValue's encoding (without a tag or length of its own). */
export function keyValueSize(kv: KeyValueFields): number {
  const { key, value, createRevision: c, modRevision: m, version: v, lease: l } = kv;
  let n = 0;
  if (key.length > 0) n += 1 + lengthSize(key.length) + key.length;
  if (c !== 0n) n += 1 + varintSize(c);
  if (m !== 0n) n += 1 + varintSize(m);
  if (v !== 0n) n += 1 + varintSize(v);
  if (value.length > 0) n += 1 + lengthSize(value.length) + value.length;
  if (l !== 0n) n += 1 + varintSize(l);
  return n;
}

/** Node's Buffer.prototype.latin1Write (not in @types/node): what write(s, o, 'latin1') calls. */
type Latin1Writable = Buffer & { latin1Write(s: string, offset: number, length: number): number };

/** Writes bytes, or a latin1 string (then `b` must be a Buffer), at `o`; returns the end. */
function putBytes(b: Uint8Array, o: number, x: Uint8Array | string): number {
  // Buffer's own latin1Write: write()'s argument parsing cost more than the copy.
  if (typeof x === 'string') return o + (b as Latin1Writable).latin1Write(x, o, x.length);
  b.set(x, o);
  return o + x.length;
}

/**
 * Writes a KeyValue's encoding at `o` (keyValueSize(kv) bytes); returns the end. A key or value
 * given as a string needs `b` to be a Buffer.
 */
export function putKeyValue(b: Uint8Array, o: number, kv: KeyValueFields): number {
  const { key, value, createRevision: c, modRevision: m, version: v, lease: l } = kv;
  if (key.length > 0) {
    b[o++] = 0x0a;
    o = putLength(b, o, key.length);
    o = putBytes(b, o, key);
  }
  if (c !== 0n) {
    b[o++] = 0x10;
    o = putVarint(b, o, c);
  }
  if (m !== 0n) {
    b[o++] = 0x18;
    o = putVarint(b, o, m);
  }
  if (v !== 0n) {
    b[o++] = 0x20;
    o = putVarint(b, o, v);
  }
  if (value.length > 0) {
    b[o++] = 0x2a;
    o = putLength(b, o, value.length);
    o = putBytes(b, o, value);
  }
  if (l !== 0n) {
    b[o++] = 0x30;
    o = putVarint(b, o, l);
  }
  return o;
}
