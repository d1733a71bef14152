// Encoding a large Range response without stalling the event loop. grpc-js serializes a
// response synchronously, and a RangeResponse of a million keys takes seconds to encode; so
// the handler encodes large ones itself, a slice of key-values per turn, and attaches the bytes
// to the response object, which the method's serializer then sends as they are. Consumers of
// the object (the JSON gateway) still see an ordinary RangeResponse.

import type { KeyValue } from '../gen/etcd/kv.js';
import { RangeResponse, ResponseOp, TxnResponse } from '../gen/etcd/rpc.js';
import { StoredKeyValue } from '../kv/mvcc.js';
import { type KeyValueFields, keyValueSize, putKeyValue } from '../util/keyvalue-wire.js';
import { lengthSize, putVarint } from '../util/varint.js';

const ENCODED = Symbol('encoded');
/** Below this many key-values, encoding in one go is cheap enough. */
export const SLICED_ENCODING_MIN_KVS = 2000;
/** RangeResponse.kvs is field 2, length-delimited: tag (2 << 3) | 2. */
const KVS_TAG = 0x12;

type Encoded = { [ENCODED]?: Buffer[] };

/**
 * Encodes `res` in slices of `chunk` key-values with a yield (`pause`) between them when it is
 * large, attaching the bytes to it (protobuf fields may come in any order and repeated ones
 * concatenate, so header, more and count first, then each key-value, is the same message).
 */
export async function encodeRangeResponseInSlices(res: RangeResponse, pause: () => Promise<void>, chunk = 2000): Promise<RangeResponse> {
  if (res.kvs.length < SLICED_ENCODING_MIN_KVS) return res;
  return attach(res, await rangeResponseParts(res, pause, chunk));
}

/**
 * encodeRangeResponseInSlices for a Txn's answer (a read-only Txn's ranges can be as large as
 * any Range): each response op is encoded on its own, a large range's key-values in slices,
 * and wrapped in its field's tag and length once its size is known.
 */
export async function encodeTxnResponseInSlices(res: TxnResponse, pause: () => Promise<void>, chunk = 2000): Promise<TxnResponse> {
  if (txnKeyValues(res) < SLICED_ENCODING_MIN_KVS) return res;
  return attach(res, await txnResponseParts(res, pause, chunk));
}

function attach<T extends object>(res: T, parts: Buffer[]): T {
  // Kept in slices: the lean unary path (./lean-unary.ts) writes them one by one; grpc-js,
  // which needs one buffer, joins them in its serializer (usingPreEncoded).
  (res as T & Encoded)[ENCODED] = parts;
  return res;
}

/** How many key-values the ranges of a Txn's answer hold, nested txns included. */
function txnKeyValues(res: Omit<TxnResponse, 'header'>): number {
  let n = 0;
  for (const op of res.responses) n += op.responseRange?.kvs.length ?? (op.responseTxn ? txnKeyValues(op.responseTxn) : 0);
  return n;
}

async function rangeResponseParts(res: RangeResponse, pause: () => Promise<void>, chunk: number): Promise<Buffer[]> {
  const parts: Buffer[] = [Buffer.from(RangeResponse.encode({ ...res, kvs: [] }).finish())];
  for (let i = 0; i < res.kvs.length; i += chunk) {
    parts.push(encodeKeyValues(res.kvs, i, Math.min(res.kvs.length, i + chunk)));
    if (i + chunk < res.kvs.length) await pause();
  }
  return parts;
}

/** TxnResponse.responses is field 3; ResponseOp.response_range field 1, response_txn field 4 (all length-delimited). */
const TXN_RESPONSES_TAG = 0x1a;
const OP_RANGE_TAG = 0x0a;
const OP_TXN_TAG = 0x22;

async function txnResponseParts(res: TxnResponse, pause: () => Promise<void>, chunk: number): Promise<Buffer[]> {
  const parts: Buffer[] = [Buffer.from(TxnResponse.encode({ ...res, responses: [] }).finish())];
  for (const op of res.responses) {
    let inner: Buffer[];
    if (op.responseRange) inner = withLength(OP_RANGE_TAG, await rangeResponseParts(op.responseRange, pause, chunk));
    else if (op.responseTxn) inner = withLength(OP_TXN_TAG, await txnResponseParts(op.responseTxn, pause, chunk));
    else inner = [Buffer.from(ResponseOp.encode(op).finish())];
    parts.push(...withLength(TXN_RESPONSES_TAG, inner));
  }
  return parts;
}

/** `parts` as a length-delimited field: its tag and length, then the parts. */
function withLength(tag: number, parts: Buffer[]): Buffer[] {
  let n = 0;
  for (const p of parts) n += p.length;
  const head = Buffer.allocUnsafe(1 + lengthSize(n));
  head[0] = tag;
  putVarint(head, 1, n);
  return [head, ...parts];
}

/** One reused view of a key-value's fields: a StoredKeyValue's as the store's strings. */
const fields: KeyValueFields = { key: '', createRevision: 0n, modRevision: 0n, version: 0n, value: '', lease: 0n };

function fieldsOf(kv: KeyValue): KeyValueFields {
  if (!(kv instanceof StoredKeyValue)) return kv;
  fields.key = kv.keyString;
  fields.value = kv.valueString;
  fields.createRevision = kv.createRevision;
  fields.modRevision = kv.modRevision;
  fields.version = kv.version;
  fields.lease = kv.lease;
  return fields;
}

/**
 * kvs[from, to) as RangeResponse.encode writes them (each: tag, length, KeyValue), into one
 * buffer, by hand (src/util/keyvalue-wire.ts): the generated writer's chunks per message cost
 * more than the bytes, and a key or value still in the store's strings is written as it is.
 */
function encodeKeyValues(kvs: readonly KeyValue[], from: number, to: number): Buffer {
  const sizes = new Array<number>(to - from);
  let total = 0;
  for (let i = from; i < to; i++) {
    const n = keyValueSize(fieldsOf(kvs[i]!));
    sizes[i - from] = n;
    total += 1 + lengthSize(n) + n;
  }
  const b = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = from; i < to; i++) {
    b[o++] = KVS_TAG;
    o = putVarint(b, o, sizes[i - from]!);
    o = putKeyValue(b, o, fieldsOf(kvs[i]!));
  }
  return b;
}

/** The slices of a response encoded beforehand (above), if it was. */
export function preEncodedParts(v: unknown): Buffer[] | undefined {
  return typeof v === 'object' && v !== null ? (v as Encoded)[ENCODED] : undefined;
}

/** A response serializer that sends bytes encoded beforehand (above) as they are. */
export function usingPreEncoded<T>(serialize: (v: T) => Buffer): (v: T) => Buffer {
  return (v) => {
    const parts = preEncodedParts(v);
    return parts ? Buffer.concat(parts) : serialize(v);
  };
}
