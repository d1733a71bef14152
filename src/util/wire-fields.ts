// A protobuf message's top-level fields read from its bytes, for the few places where the
// generated decoders lose what the wire says: whether an empty field was present
// (src/api/range-end-presence.ts) and which member of a oneof came last (src/api/watch-service.ts).
// The bytes have been decoded by the generated decoder first, which refused malformed ones.

/** Reads a varint at `pos`: [value, position after it]. Values above 2^53 are not needed here. */
export function varint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let mul = 1;
  for (;;) {
    const x = b[pos++]!;
    v += (x & 0x7f) * mul;
    if (x < 0x80 || pos >= b.length) return [v, pos];
    mul *= 128;
  }
}

/**
 * Visits the top-level fields of the message in b[start, end): `f(field, start, end)` for each
 * length-delimited one (its value's bytes); others are skipped. Stops when `f` returns true.
 */
export function forEachLengthDelimited(b: Uint8Array, start: number, end: number, f: (field: number, from: number, to: number) => boolean | void): void {
  let pos = start;
  while (pos < end) {
    const [tag, p] = varint(b, pos);
    pos = p;
    const wire = tag & 7;
    if (wire === 0) pos = varint(b, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, q] = varint(b, pos);
      if (f(Math.floor(tag / 8), q, q + len)) return;
      pos = q + len;
    } else return; // groups are not in etcd's protocol; the decoder has already refused bad bytes
  }
}
