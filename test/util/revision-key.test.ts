// etcd's revision key (src/util/revision-key.ts): int64s big-endian as Buffer.writeBigInt64BE
// writes them, for any value given as a bigint or (when safe) a number; '_' between, 't' after a
// deletion.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { putInt64BE, putRevisionKey, revisionKeySize } from '../../src/util/revision-key.js';

const int64 = fc.oneof(fc.bigInt({ min: 0n, max: 1n << 20n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }), fc.constantFrom(0n, -1n, BigInt(Number.MAX_SAFE_INTEGER), BigInt(Number.MAX_SAFE_INTEGER) + 1n));

describe('revision keys', () => {
  it('int64 big-endian as writeBigInt64BE, from a bigint or a safe number (property)', () => {
    fc.assert(
      fc.property(int64, fc.nat(5), (v, o) => {
        const want = Buffer.alloc(13);
        want.writeBigInt64BE(v, o);
        const got = new Uint8Array(13);
        putInt64BE(got, o, v);
        assert.deepEqual(Buffer.from(got), want);
        if (v >= 0n && v <= BigInt(Number.MAX_SAFE_INTEGER)) {
          const fromNumber = new Uint8Array(13);
          putInt64BE(fromNumber, o, Number(v));
          assert.deepEqual(Buffer.from(fromNumber), want);
        }
      }),
      { numRuns: 500 },
    );
  });

  it("main, '_', sub, and 't' for a deletion", () => {
    for (const tomb of [false, true]) {
      const b = new Uint8Array(revisionKeySize(tomb) + 2);
      assert.equal(putRevisionKey(b, 1, 258n, 3, tomb), 1 + revisionKeySize(tomb));
      const want = Buffer.concat([Buffer.from([0]), Buffer.from('0000000000000102', 'hex'), Buffer.from('_'), Buffer.from('0000000000000003', 'hex'), Buffer.from(tomb ? 't' : ''), Buffer.from([0])]);
      assert.deepEqual(Buffer.from(b), want);
    }
  });
});
