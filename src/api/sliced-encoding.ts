// Encoding a large Range response without stalling the event loop. grpc-js serializes a
// response synchronously, and a RangeResponse of a million keys takes seconds to encode; so
// the handler encodes large ones itself, a slice of key-values per turn, and attaches the bytes
// to the response object, which the method's serializer then sends as they are. Consumers of
// the object (the JSON gateway) still see an ordinary RangeResponse.

import { BinaryWriter } from '@bufbuild/protobuf/wire';
import { KeyValue } from '../gen/etcd/kv.js';
import { RangeResponse } from '../gen/etcd/rpc.js';

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
  const parts: Buffer[] = [Buffer.from(RangeResponse.encode({ ...res, kvs: [] }).finish())];
  for (let i = 0; i < res.kvs.length; i += chunk) {
    // One writer per slice: each key-value as RangeResponse.encode writes it (tag, length, bytes).
    const w = new BinaryWriter();
    for (const kv of res.kvs.slice(i, i + chunk)) KeyValue.encode(kv, w.uint32(KVS_TAG).fork()).join();
    const bytes = w.finish();
    parts.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (i + chunk < res.kvs.length) await pause();
  }
  // Kept in slices: the lean unary path (./lean-unary.ts) writes them one by one; grpc-js,
  // which needs one buffer, joins them in its serializer (usingPreEncoded).
  (res as RangeResponse & Encoded)[ENCODED] = parts;
  return res;
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
