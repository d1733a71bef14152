// Encoding with the kept BinaryWriter (src/util/kept-writer.ts): for any sequence of messages —
// small, past the kept bound, and ones whose encoder throws halfway — each result has exactly
// the bytes a fresh writer gives, and stays so while later messages are encoded.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { encodeKept } from '../../src/util/kept-writer.js';

/** A put's request with a value of `size` bytes; `badId`: an id past uint64, which the encoder refuses after writing the fields before it. */
function request(size: number, fill: number, badId: boolean): InternalRequest {
  return {
    ...InternalRequest.create(),
    put: { key: Buffer.from(`k${size}`), value: Buffer.alloc(size, fill), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
    id: badId ? 1n << 64n : BigInt(size) * 1000n + BigInt(fill),
    proposer: 0x2d4aa2a79ffc69f3n,
    settledBelow: 7n,
  };
}

const message = fc.record({
  size: fc.oneof(fc.nat(300), fc.integer({ min: 60 * 1024, max: 70 * 1024 }), fc.integer({ min: 100_000, max: 300_000 })),
  fill: fc.nat(255),
  badId: fc.boolean(),
});

describe('kept writer', () => {
  it('encodes any sequence as fresh writers do, earlier results untouched, after failures too (property)', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 12 }), (msgs) => {
        const done: Array<{ got: Uint8Array; want: Uint8Array }> = [];
        for (const m of msgs) {
          const req = request(m.size, m.fill, m.badId);
          if (m.badId) {
            // The id is field 1: the encoder fails before writing anything, so fail after some
            // bytes instead, with a value that is checked later (authRevision, field 32).
            const late = { ...request(m.size, m.fill, false), authRevision: 1n << 64n };
            assert.throws(() => encodeKept(InternalRequest, late), /too large/);
            assert.throws(() => encodeKept(InternalRequest, req), /too large/);
            continue;
          }
          done.push({ got: encodeKept(InternalRequest, req), want: InternalRequest.encode(req).finish() });
        }
        for (const d of done) assert.deepEqual(Buffer.from(d.got), Buffer.from(d.want));
      }),
      { numRuns: 150 },
    );
  });
});
