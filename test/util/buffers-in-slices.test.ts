// Buffers joined and checksummed in slices (src/util/buffers-in-slices.ts): the same bytes and
// checksum as in one go, with a pause after every slice's worth.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { concatInSlices, crc32InSlices } from '../../src/util/buffers-in-slices.js';

it('joins and checksums as Buffer.concat and crc32 do, pausing once per slice (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.integer({ min: 1, max: 200 }), fc.integer({ min: 0, max: 0xffffffff }), async (parts, slice, seed) => {
      let pauses = 0;
      const pause = async (): Promise<void> => void pauses++;
      const joined = await concatInSlices(parts, pause, slice);
      const whole = Buffer.concat(parts);
      assert.ok(joined.equals(whole));
      assert.equal(pauses, Math.floor(whole.length / slice));
      pauses = 0;
      assert.equal(await crc32InSlices(whole, pause, seed, slice), crc32(whole, seed));
      assert.equal(pauses, Math.max(0, Math.ceil(whole.length / slice) - 1));
    }),
    { numRuns: 200 },
  );
});
