// Joining and checksumming buffers of hundreds of MB (a snapshot image of a million keys) in
// slices that yield to the event loop between them.
//
// Why: one Buffer.concat or crc32 of a 160 MB image is one turn of the event loop, and on this
// kind of VM, where the first touch of fresh memory costs ~1.5 ms per MB, such turns took seconds
// (a probe: 3.2–6.5 s per member at every Raft snapshot of 1 M keys, all members at once, and a
// follower went pre-candidate). Each slice here touches at most `sliceBytes`.

import { crc32 } from 'node:zlib';
import { SLICE_BYTES } from './yield.js';

/** `parts` as one new buffer, copied a slice at a time. */
export async function concatInSlices(parts: readonly Uint8Array[], pause: () => Promise<void>, sliceBytes = SLICE_BYTES): Promise<Buffer> {
  let total = 0;
  for (const p of parts) total += p.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  let inSlice = 0;
  for (const p of parts) {
    for (let from = 0; from < p.length; ) {
      const n = Math.min(p.length - from, sliceBytes - inSlice);
      out.set(p.subarray(from, from + n), at);
      at += n;
      from += n;
      inSlice += n;
      if (inSlice >= sliceBytes) {
        inSlice = 0;
        await pause();
      }
    }
  }
  return out;
}

/** zlib's crc32 of `data` (continuing from `value`), a slice at a time. */
export async function crc32InSlices(data: Uint8Array, pause: () => Promise<void>, value = 0, sliceBytes = SLICE_BYTES): Promise<number> {
  let crc = value;
  for (let from = 0; from < data.length; from += sliceBytes) {
    if (from > 0) await pause();
    crc = crc32(data.subarray(from, Math.min(data.length, from + sliceBytes)), crc);
  }
  return crc;
}
