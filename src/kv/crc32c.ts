// CRC-32C (Castagnoli), as Go's crc32.MakeTable(crc32.Castagnoli): etcd's HashKV uses it.
// Node's zlib.crc32 is the IEEE polynomial, so this is a table-driven (slicing-by-8) version.

const POLY = 0x82f63b78; // reversed Castagnoli polynomial

const T = ((): Uint32Array[] => {
  const t = Array.from({ length: 8 }, () => new Uint32Array(256));
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[0]![i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let s = 1; s < 8; s++) t[s]![i] = (t[0]![t[s - 1]![i]! & 0xff]! ^ (t[s - 1]![i]! >>> 8)) >>> 0;
  }
  return t;
})();
const [T0, T1, T2, T3, T4, T5, T6, T7] = T as [Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array, Uint32Array];

/** Continues a CRC-32C (`crc`: the value so far, 0 to start) over `buf`. */
export function crc32c(buf: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  let i = 0;
  const n = buf.length;
  const end8 = n - (n % 8);
  for (; i < end8; i += 8) {
    const lo = (c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))) >>> 0;
    c =
      T7[lo & 0xff]! ^
      T6[(lo >>> 8) & 0xff]! ^
      T5[(lo >>> 16) & 0xff]! ^
      T4[lo >>> 24]! ^
      T3[buf[i + 4]!]! ^
      T2[buf[i + 5]!]! ^
      T1[buf[i + 6]!]! ^
      T0[buf[i + 7]!]!;
  }
  for (; i < n; i++) c = T0[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
