// Range answers encoded by hand in slices (src/api/sliced-encoding.ts, src/util/keyvalue-wire.ts)
// are byte for byte what the generated encoder writes: for key-values given as Buffers and for
// the store's own (StoredKeyValue, written from its latin1 strings), with every byte value in keys
// and values, empty and large values, zero, large (> 2^53) and negative int64s.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeRangeResponseInSlices, preEncodedParts, SLICED_ENCODING_MIN_KVS } from '../../src/api/sliced-encoding.js';
import type { KeyValue } from '../../src/gen/etcd/kv.js';
import { RangeResponse } from '../../src/gen/etcd/rpc.js';
import { MvccStore, StoredKeyValue } from '../../src/kv/mvcc.js';

const header = { clusterId: 0x1234567890abcdefn, memberId: 0xfedcba0987654321n, revision: 77n, raftTerm: 3n };
const noPause = async (): Promise<void> => {};
const int64 = fc.oneof(fc.constant(0n), fc.bigInt({ min: 1n, max: 1n << 20n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
const bytes = (max: number) => fc.oneof(fc.uint8Array({ maxLength: 24 }), fc.uint8Array({ minLength: max / 2, maxLength: max }));

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
        fc.array(fc.record({ key: bytes(300), createRevision: int64, modRevision: int64, version: int64, value: bytes(5000), lease: int64 }), { minLength: 1, maxLength: 40 }),
        async (sample) => {
          const kvs: KeyValue[] = Array.from({ length: SLICED_ENCODING_MIN_KVS + 11 }, (_, i) => {
            const s = sample[i % sample.length]!;
            return { ...s, key: Buffer.from(s.key), value: Buffer.from(s.value) };
          });
          const res = { header, kvs, more: true, count: 123456789n };
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
