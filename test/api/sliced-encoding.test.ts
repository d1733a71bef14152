// Range answers encoded by hand in slices (src/api/sliced-encoding.ts, src/util/keyvalue-wire.ts)
// are byte for byte what the generated encoder writes: for key-values given as Buffers and for
// the store's own (StoredKeyValue, written from its latin1 strings), with every byte value in keys
// and values, empty and large values, zero, large (> 2^53) and negative int64s. The same for a
// DeleteRange's answer with prev_kv (its prev_kvs: every key it deleted), alone or in a Txn's.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  encodeDeleteRangeResponseInSlices,
  encodeRangeResponseInSlices,
  encodeTxnResponseInSlices,
  preEncodedParts,
  SLICED_ENCODING_MIN_BYTES,
  SLICED_ENCODING_MIN_KVS,
} from '../../src/api/sliced-encoding.js';
import type { KeyValue } from '../../src/gen/etcd/kv.js';
import { DeleteRangeResponse, RangeResponse, type ResponseOp, TxnResponse } from '../../src/gen/etcd/rpc.js';
import { MvccStore, StoredKeyValue } from '../../src/kv/mvcc.js';

const header = { clusterId: 0x1234567890abcdefn, memberId: 0xfedcba0987654321n, revision: 77n, raftTerm: 3n };
const noPause = async (): Promise<void> => {};
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1n << 20n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
const bytes = (max: number) => fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ minLength: max / 2, maxLength: max }));
/** Arbitrary key-values' fields (keys up to 300 bytes, values up to 5,000). */
const keyValueFields = fc.record({ key: bytes(300), createRevision: int64, modRevision: int64, version: int64, value: bytes(5000), lease: int64 });

/** Key-values from `sample`, `n` of them, as Buffers. */
const keyValues = (sample: Array<Omit<KeyValue, 'key' | 'value'> & { key: Uint8Array; value: Uint8Array }>, n: number): KeyValue[] =>
  Array.from({ length: n }, (_, i) => {
    const s = sample[i % sample.length]!;
    return { ...s, key: Buffer.from(s.key), value: Buffer.from(s.value) };
  });

/**
 * The generated encoder's bytes in the sliced order: header, more and count first, then the
 * key-values (fields may come in any order; the decoded message is the same).
 */
function generated(res: RangeResponse): Buffer {
  return Buffer.concat([RangeResponse.encode({ ...res, kvs: [] }).finish(), RangeResponse.encode({ header: undefined, kvs: res.kvs, more: false, count: 0n }).finish()]);
}

async function sliced(res: RangeResponse): Promise<Buffer> {
  const parts = preEncodedParts(await encodeRangeResponseInSlices(res, noPause, 700));
  assert.ok(parts && parts.length > 2, 'encoded in slices');
  return Buffer.concat(parts);
}

describe('Range encoded in slices', () => {
  it('key-values as Buffers: the generated encoder\'s bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(keyValueFields, { minLength: 1, maxLength: 40 }),
        async (sample) => {
          const res = { header, kvs: keyValues(sample, SLICED_ENCODING_MIN_KVS + 11), more: true, count: 123456789n };
          assert.ok((await sliced(res)).equals(generated(res)));
        },
      ),
      { numRuns: 25 },
    );
  });

  it("the store's key-values (StoredKeyValue, from its strings): the generated encoder's bytes", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(bytes(200), bytes(3000), fc.boolean()), { minLength: 1, maxLength: 30 }), fc.boolean(), async (puts, keysOnly) => {
        const s = new MvccStore();
        for (let i = 0; i < SLICED_ENCODING_MIN_KVS + 50; i++) {
          const [k, v, twice] = puts[i % puts.length]!;
          // Distinct keys with any bytes in them; some written twice (version 2).
          const key = Buffer.concat([Buffer.from(k), Buffer.from([0xff, i >> 8, i & 0xff])]);
          s.write((w) => w.put(key, Buffer.from(v), 0n));
          if (twice) s.write((w) => w.put(key, Buffer.from(v).reverse(), 0n));
        }
        const r = await s.rangeAsync(Buffer.from([0]), Buffer.from([0]), { keysOnly }, noPause);
        assert.ok(r.kvs[0] instanceof StoredKeyValue);
        const res = { header, kvs: r.kvs, more: false, count: BigInt(r.count) };
        assert.ok((await sliced(res)).equals(generated(res)));
      }),
      { numRuns: 15 },
    );
  });
});

/** Encodes `res` with `encode` (pauses counted): its pre-encoded parts, joined, if it has them. */
async function slicedWith<T>(encode: (res: T, pause: () => Promise<void>, chunk: number) => Promise<T>, res: T): Promise<{ bytes?: Buffer; parts: number; pauses: number }> {
  let pauses = 0;
  const parts = preEncodedParts(await encode(res, async () => void pauses++, 700));
  return { bytes: parts && Buffer.concat(parts), parts: parts?.length ?? 0, pauses };
}

/** `n` of the store's own key-values (StoredKeyValue), as a DeleteRange with prev_kv returns them. */
function deletedFromStore(n: number, value: (i: number) => Buffer): KeyValue[] {
  const s = new MvccStore();
  for (let i = 0; i < n; i++) s.write((w) => w.put(Buffer.from([0x80, i >> 16, (i >> 8) & 0xff, i & 0xff, 0xff]), value(i), BigInt(i % 3)));
  let kvs: KeyValue[] = [];
  s.write((w) => (kvs = w.deleteRange(Buffer.from([0]), Buffer.from([0]))));
  assert.ok(kvs.length === n && kvs[0] instanceof StoredKeyValue);
  return kvs;
}

describe('DeleteRange encoded in slices', () => {
  it("prev_kvs as Buffers, over SLICED_ENCODING_MIN_KVS: DeleteRangeResponse.encode's bytes, a slice at a time", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(keyValueFields, { minLength: 1, maxLength: 40 }),
        int64,
        fc.boolean(),
        async (sample, deleted, withHeader) => {
          const res = { header: withHeader ? header : undefined, deleted, prevKvs: keyValues(sample, SLICED_ENCODING_MIN_KVS + 11) };
          const got = await slicedWith(encodeDeleteRangeResponseInSlices, res);
          assert.ok(got.parts > 2 && got.pauses >= 2, `${got.parts} parts, ${got.pauses} pauses`);
          assert.ok(got.bytes!.equals(Buffer.from(DeleteRangeResponse.encode(res).finish())));
        },
      ),
      { numRuns: 25 },
    );
  });

  it("the store's key-values (StoredKeyValue, from its strings): DeleteRangeResponse.encode's bytes", async () => {
    const prevKvs = deletedFromStore(SLICED_ENCODING_MIN_KVS + 50, (i) => Buffer.from(Array.from({ length: i % 300 }, (_, j) => (i + j) & 0xff)));
    const res = { header, deleted: BigInt(prevKvs.length), prevKvs };
    const got = await slicedWith(encodeDeleteRangeResponseInSlices, res);
    assert.ok(got.parts > 2 && got.pauses >= 2, `${got.parts} parts, ${got.pauses} pauses`);
    assert.ok(got.bytes!.equals(Buffer.from(DeleteRangeResponse.encode(res).finish())));
  });

  it('few prev_kvs: encoded in one go (none attached) unless their values are large, then in slices too', async () => {
    const small = { header, deleted: 3n, prevKvs: deletedFromStore(3, () => Buffer.from('v')) };
    assert.deepEqual(await slicedWith(encodeDeleteRangeResponseInSlices, small), { bytes: undefined, parts: 0, pauses: 0 });
    const big = { header, deleted: 3n, prevKvs: deletedFromStore(3, (i) => Buffer.alloc(SLICED_ENCODING_MIN_BYTES / 2, i)) };
    const got = await slicedWith(encodeDeleteRangeResponseInSlices, big);
    assert.ok(got.pauses >= 1, `${got.pauses} pauses`);
    assert.ok(got.bytes!.equals(Buffer.from(DeleteRangeResponse.encode(big).finish())));
  });

  it("in a Txn's answer (nested too, beside puts and small ones): TxnResponse.encode's bytes, its prev_kvs a slice at a time", async () => {
    const prevKvs = deletedFromStore(SLICED_ENCODING_MIN_KVS + 50, (i) => Buffer.alloc(i % 40, i));
    const op = (n: number): ResponseOp => ({ responseDeleteRange: { header, deleted: BigInt(n), prevKvs: prevKvs.slice(0, n) } });
    const put: ResponseOp = { responsePut: { header, prevKv: prevKvs[7] } };
    for (const responses of [
      [put, op(prevKvs.length), op(2)],
      [op(0), { responseTxn: { header, succeeded: false, responses: [put, op(prevKvs.length)] } }, op(5)],
    ]) {
      const res: TxnResponse = { header, succeeded: true, responses };
      const got = await slicedWith(encodeTxnResponseInSlices, res);
      assert.ok(got.parts > 2 && got.pauses >= 2, `${got.parts} parts, ${got.pauses} pauses`);
      assert.ok(got.bytes!.equals(Buffer.from(TxnResponse.encode(res).finish())));
    }
  });
});
