// A set of 64-bit state fingerprints in two flat Uint32Arrays (open addressing, linear
// probing): 8 bytes per slot instead of a JS Set's ~50 per bigint, so tens of millions of
// states fit. As in TLC, two distinct states with the same fingerprint would be merged; with
// 64 bits and n states the chance of any collision is about n²/2^65 (10^-6 at 6 million).

export class FingerprintSet {
  private lo: Uint32Array;
  private hi: Uint32Array;
  private mask: number;
  size = 0;

  constructor(capacityLog2 = 16) {
    this.lo = new Uint32Array(1 << capacityLog2);
    this.hi = new Uint32Array(1 << capacityLog2);
    this.mask = (1 << capacityLog2) - 1;
  }

  /** Adds the fingerprint; false if it was there already. */
  add(h: bigint): boolean {
    let lo = Number(h & 0xffffffffn) >>> 0;
    const hi = Number(h >> 32n) >>> 0;
    if (lo === 0 && hi === 0) lo = 1; // (0, 0) marks an empty slot
    if (!this.insert(lo, hi)) return false;
    if (++this.size * 2 > this.mask) this.grow();
    return true;
  }

  bytes(): number {
    return this.lo.byteLength + this.hi.byteLength;
  }

  private insert(lo: number, hi: number): boolean {
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & this.mask;
    for (;;) {
      const l = this.lo[i]!;
      const h = this.hi[i]!;
      if (l === 0 && h === 0) {
        this.lo[i] = lo;
        this.hi[i] = hi;
        return true;
      }
      if (l === lo && h === hi) return false;
      i = (i + 1) & this.mask;
    }
  }

  private grow(): void {
    const { lo, hi } = this;
    this.lo = new Uint32Array(lo.length * 2);
    this.hi = new Uint32Array(hi.length * 2);
    this.mask = this.lo.length - 1;
    for (let i = 0; i < lo.length; i++) if (lo[i] !== 0 || hi[i] !== 0) this.insert(lo[i]!, hi[i]!);
  }
}
