// Encoding a large Range response without stalling the event loop. grpc-js serializes a
// response synchronously, and a RangeResponse of a million keys takes seconds to encode; so
// the handler encodes large ones itself, a slice of key-values per turn, and attaches the bytes
// to the response object, which the method's serializer then sends as they are. Consumers of
// the object (the JSON gateway) still see an ordinary RangeResponse. A DeleteRange's answer
// with prev_kv holds every key it deleted (500,000 of them: a 2 s stall of a leader's loop,
// 8-11 s through the JSON gateway), and goes the same way, as does a Txn's holding one.
//
// Large is counted in key-values and in bytes alike: forty values of 1 MiB are few key-values
// but 40 MiB to copy, and the generated writer, which grows its buffer by doubling and copies
// it again to finish, held a leader's loop for ~0.4 s on such an answer (three at once cost it
// the leadership). A slice ends at `chunk` key-values or SLICE_BYTES, whichever comes first.

import type { KeyValue } from '../gen/etcd/kv.js';
import { DeleteRangeResponse, RangeResponse, ResponseOp, TxnResponse } from '../gen/etcd/rpc.js';
import { StoredKeyValue } from '../kv/mvcc.js';
import { type KeyValueFields, keyValueSize, putKeyValue } from '../util/keyvalue-wire.js';
import { lengthSize, putVarint } from '../util/varint.js';
import { SliceBudget } from '../util/yield.js';

const ENCODED = Symbol('encoded');
/** Below this many key-values (and SLICED_ENCODING_MIN_BYTES), encoding in one go is cheap enough. */
export const SLICED_ENCODING_MIN_KVS = 2000;
/** Below this many bytes of keys and values (and SLICED_ENCODING_MIN_KVS), encoding in one go is cheap enough. */
export const SLICED_ENCODING_MIN_BYTES = 1 << 20;
/** RangeResponse.kvs is field 2, length-delimited: tag (2 << 3) | 2. */
const KVS_TAG = 0x12;
/** DeleteRangeResponse.prev_kvs is field 3, length-delimited: tag (3 << 3) | 2. */
const PREV_KVS_TAG = 0x1a;

type Encoded = { [ENCODED]?: Buffer[]; [FRAMED]?: Buffer };

/**
 * Encodes `res` in slices of at most `chunk` key-values (and about SLICE_BYTES) with a yield
 * (`pause`) between them when it is large, attaching the bytes to it (protobuf fields may come
 * in any order and repeated ones concatenate, so header, more and count first, then each
 * key-value, is the same message).
 */
export async function encodeRangeResponseInSlices(res: RangeResponse, pause: () => Promise<void>, chunk = 2000): Promise<RangeResponse> {
  if (!exceeds(res.kvs, inOneGo())) return res;
  return attach(res, await rangeResponseParts(res, pause, chunk));
}

/**
 * encodeRangeResponseInSlices for a DeleteRange's answer, whose prev_kvs (with prev_kv set) are
 * every key it deleted. Header and deleted come before prev_kvs in the generated encoder's order
 * too: the bytes are DeleteRangeResponse.encode's.
 */
export async function encodeDeleteRangeResponseInSlices(res: DeleteRangeResponse, pause: () => Promise<void>, chunk = 2000): Promise<DeleteRangeResponse> {
  if (!exceeds(res.prevKvs, inOneGo())) return res;
  return attach(res, await deleteRangeResponseParts(res, pause, chunk));
}

/**
 * encodeRangeResponseInSlices for a Txn's answer (a read-only Txn's ranges can be as large as
 * any Range, a DeleteRange's prev_kvs as large as its range): each response op is encoded on its
 * own, a large range's key-values (a DeleteRange's prev_kvs) in slices, and wrapped in its
 * field's tag and length once its size is known.
 */
export async function encodeTxnResponseInSlices(res: TxnResponse, pause: () => Promise<void>, chunk = 2000): Promise<TxnResponse> {
  if (!txnExceeds(res, inOneGo())) return res;
  return attach(res, await txnResponseParts(res, pause, chunk));
}

/**
 * Attaches the bytes of `res`, encoded beforehand in `parts`, to it (see usingPreEncoded), and
 * optionally the same bytes behind gRPC's message prefix in one buffer (`framed`: see
 * sendingFramedAsIs).
 */
export function attach<T extends object>(res: T, parts: Buffer[], framed?: Buffer): T {
  // Kept in slices: the lean unary path (./lean-unary.ts) writes them one by one; grpc-js,
  // which needs one buffer, joins them in its serializer (usingPreEncoded).
  (res as T & Encoded)[ENCODED] = parts;
  if (framed) (res as T & Encoded)[FRAMED] = framed;
  return res;
}

/** gRPC's message prefix: a compressed flag and the length (big-endian u32). */
export const GRPC_PREFIX = 5;
const FRAMED = Symbol('framed');

/**
 * Lets a call's responses that were encoded with their gRPC prefix (attach's `framed`) go out
 * as they are: grpc-js copies whatever its serializer returns into a new buffer behind the
 * prefix, in the turn that sends it (a 30 MB watch response: 67-115 ms of one member's loop).
 * It reaches into grpc-js's call (its serializeMessage and the method's counting serializer);
 * where that is not there as expected, nothing changes and grpc-js copies as before.
 */
export function sendingFramedAsIs(call: object): void {
  type Base = { serializeMessage?: (v: unknown) => Buffer; handler?: { serialize?: { countSent?: (bytes: number) => void } } };
  const base = (call as { call?: Base }).call;
  const original = base?.serializeMessage;
  if (!base || typeof original !== 'function') return;
  base.serializeMessage = (v: unknown): Buffer => {
    const framed = typeof v === 'object' && v !== null ? (v as Encoded)[FRAMED] : undefined;
    if (!framed) return original.call(base, v);
    // Counted as the method's serializer counts what it encodes (./grpc-metrics.ts).
    base.handler?.serialize?.countSent?.(framed.length - GRPC_PREFIX);
    return framed;
  };
}

/** What an answer may hold and still be encoded in one go (drawn down by exceeds()). */
const inOneGo = (): { kvs: number; bytes: number } => ({ kvs: SLICED_ENCODING_MIN_KVS, bytes: SLICED_ENCODING_MIN_BYTES });

/**
 * Whether key-values (a range's, a DeleteRange's prev_kvs) use up `left` (key-values and bytes
 * of keys and values still allowed in one go), which they draw down: stops looking as soon as
 * they do.
 */
function exceeds(kvs: readonly KeyValue[], left: { kvs: number; bytes: number }): boolean {
  if ((left.kvs -= kvs.length) <= 0) return true;
  for (const kv of kvs) {
    const f = fieldsOf(kv);
    if ((left.bytes -= f.key.length + f.value.length) <= 0) return true;
  }
  return false;
}

/** exceeds() over the ranges and DeleteRanges of a Txn's answer, nested txns included. */
function txnExceeds(res: Omit<TxnResponse, 'header'>, left: { kvs: number; bytes: number }): boolean {
  for (const op of res.responses) {
    const kvs = op.responseRange?.kvs ?? op.responseDeleteRange?.prevKvs;
    if (kvs ? exceeds(kvs, left) : op.responseTxn ? txnExceeds(op.responseTxn, left) : false) return true;
  }
  return false;
}

const rangeResponseParts = (res: RangeResponse, pause: () => Promise<void>, chunk: number): Promise<Buffer[]> =>
  withKeyValues(RangeResponse.encode({ ...res, kvs: [] }).finish(), KVS_TAG, res.kvs, pause, chunk);

const deleteRangeResponseParts = (res: DeleteRangeResponse, pause: () => Promise<void>, chunk: number): Promise<Buffer[]> =>
  withKeyValues(DeleteRangeResponse.encode({ ...res, prevKvs: [] }).finish(), PREV_KVS_TAG, res.prevKvs, pause, chunk);

/**
 * A message's other fields (`rest`, encoded), then its repeated key-value field (`tag`): `kvs`
 * encoded a slice at a time, with a yield (`pause`) between slices.
 */
async function withKeyValues(rest: Uint8Array, tag: number, kvs: readonly KeyValue[], pause: () => Promise<void>, chunk: number): Promise<Buffer[]> {
  const parts: Buffer[] = [Buffer.from(rest)];
  for (let i = 0; i < kvs.length; ) {
    const slice = encodeKeyValues(kvs, i, chunk, tag);
    parts.push(slice.bytes);
    i = slice.next;
    if (i < kvs.length) await pause();
  }
  return parts;
}

/**
 * TxnResponse.responses is field 3; ResponseOp.response_range field 1, response_delete_range
 * field 3, response_txn field 4 (all length-delimited).
 */
const TXN_RESPONSES_TAG = 0x1a;
const OP_RANGE_TAG = 0x0a;
const OP_DELETE_RANGE_TAG = 0x1a;
const OP_TXN_TAG = 0x22;

async function txnResponseParts(res: TxnResponse, pause: () => Promise<void>, chunk: number): Promise<Buffer[]> {
  const parts: Buffer[] = [Buffer.from(TxnResponse.encode({ ...res, responses: [] }).finish())];
  for (const op of res.responses) {
    let inner: Buffer[];
    if (op.responseRange) inner = withLength(OP_RANGE_TAG, await rangeResponseParts(op.responseRange, pause, chunk));
    else if (op.responseDeleteRange) inner = withLength(OP_DELETE_RANGE_TAG, await deleteRangeResponseParts(op.responseDeleteRange, pause, chunk));
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
 * Key-values from `from` on as RangeResponse.encode writes them (each: tag, length, KeyValue;
 * `tag`: the field's, RangeResponse.kvs' or DeleteRangeResponse.prev_kvs'),
 * into one buffer, by hand (src/util/keyvalue-wire.ts): the generated writer's chunks per
 * message cost more than the bytes, and a key or value still in the store's strings is written
 * as it is. Takes at most `chunk` of them and stops once SLICE_BYTES are taken (at least one:
 * util/yield.ts's SliceBudget); `next`: the first one not taken.
 */
function encodeKeyValues(kvs: readonly KeyValue[], from: number, chunk: number, tag: number): { bytes: Buffer; next: number } {
  const sizes: number[] = [];
  const slice = new SliceBudget(chunk);
  let total = 0;
  let to = from;
  while (to < kvs.length) {
    const n = keyValueSize(fieldsOf(kvs[to++]!));
    const field = 1 + lengthSize(n) + n;
    sizes.push(n);
    total += field;
    if (slice.spend(field)) break;
  }
  const b = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = from; i < to; i++) {
    b[o++] = tag;
    o = putVarint(b, o, sizes[i - from]!);
    o = putKeyValue(b, o, fieldsOf(kvs[i]!));
  }
  return { bytes: b, next: to };
}

/** The slices of a response encoded beforehand (above), if it was. */
export function preEncodedParts(v: unknown): Buffer[] | undefined {
  return typeof v === 'object' && v !== null ? (v as Encoded)[ENCODED] : undefined;
}

/** A response serializer that sends bytes encoded beforehand (above) as they are. */
export function usingPreEncoded<T>(serialize: (v: T) => Buffer): (v: T) => Buffer {
  return (v) => {
    const parts = preEncodedParts(v);
    if (!parts) return serialize(v);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  };
}
