// mvccpb.KeyValue marshalled by hand, as Go's protobuf (and ts-proto) lay it out: fields 1 key,
// 2 create_revision, 3 mod_revision, 4 version, 5 value, 6 lease, in that order, zero values left
// out, int64s as varints (a negative one in ten bytes). Shared by the backup codec (etcd's `key`
// bucket, src/backup/kv-record.ts) and the Range encoder (src/api/sliced-encoding.ts), both of
// which write millions of them, where the generated writer's per-message chunks and copies cost
// more than the bytes.
//
// Key and value come either as bytes or as latin1 strings (one char per byte: how the MVCC store
// keeps them), written straight into the output without a Buffer in between.

import { lengthSize, putVarint, varintSize } from './varint.js';

export interface KeyValueFields {
  key: Uint8Array | string;
  createRevision: bigint;
  modRevision: bigint;
  version: bigint;
  value: Uint8Array | string;
  lease: bigint;
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

/** A length-delimited field (tag, length, bytes) at `o`; returns the end. */
function putBytesField(b: Uint8Array, o: number, tag: number, x: Uint8Array | string): number {
  b[o] = tag;
  return putBytes(b, putVarint(b, o + 1, x.length), x);
}

/** A varint field (tag, int64) at `o`; returns the end. */
function putVarintField(b: Uint8Array, o: number, tag: number, v: bigint): number {
  b[o] = tag;
  return putVarint(b, o + 1, v);
}

/**
 * Writes a KeyValue's encoding at `o` (keyValueSize(kv) bytes); returns the end. A key or value
 * given as a string needs `b` to be a Buffer.
 */
export function putKeyValue(b: Uint8Array, o: number, kv: KeyValueFields): number {
  const { key, value, createRevision: c, modRevision: m, version: v, lease: l } = kv;
  if (key.length > 0) o = putBytesField(b, o, 0x0a, key);
  if (c !== 0n) o = putVarintField(b, o, 0x10, c);
  if (m !== 0n) o = putVarintField(b, o, 0x18, m);
  if (v !== 0n) o = putVarintField(b, o, 0x20, v);
  if (value.length > 0) o = putBytesField(b, o, 0x2a, value);
  if (l !== 0n) o = putVarintField(b, o, 0x30, l);
  return o;
}
