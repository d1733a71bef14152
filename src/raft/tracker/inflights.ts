// Flow control for one follower in StateReplicate: a ring buffer of the last index of each
// MsgApp in flight, bounded by message count and by payload bytes.
//
// Invariants: 0 <= count <= size; the indexes in the ring increase from start onwards (the
// leader adds them in the order it sends, each past the previous one), so an ack frees a
// prefix; `bytes` is the sum of the entries' bytes in the ring. The byte limit is soft: one
// message may take `bytes` from below maxBytes to above it (so a large entry still goes out),
// after which the window counts as full.

interface Inflight {
  index: number;
  bytes: number;
}

export class Inflights {
  private start = 0;
  private count = 0;
  private bytes = 0;
  private buffer: Inflight[] = [];

  constructor(
    readonly size: number,
    readonly maxBytes: number = 0, // 0 = no byte limit
  ) {}

  clone(): Inflights {
    const c = new Inflights(this.size, this.maxBytes);
    c.start = this.start;
    c.count = this.count;
    c.bytes = this.bytes;
    c.buffer = this.buffer.map((x) => ({ ...x }));
    return c;
  }

  /**
   * Records a MsgApp whose last entry is `index` carrying `bytes` of payload. Callers check
   * full() first, and pass increasing indexes.
   */
  add(index: number, bytes: number): void {
    if (this.full()) throw new Error('cannot add into a full inflights');
    let next = this.start + this.count;
    if (next >= this.size) next -= this.size;
    if (next >= this.buffer.length) this.buffer.push({ index, bytes });
    else this.buffer[next] = { index, bytes };
    this.count++;
    this.bytes += bytes;
  }

  /** Frees every inflight message whose last index is <= to (they were acknowledged). */
  freeLE(to: number): void {
    if (this.count === 0 || to < this.buffer[this.start]!.index) return;
    let idx = this.start;
    let i = 0;
    for (; i < this.count; i++) {
      const f = this.buffer[idx]!;
      if (to < f.index) break;
      this.bytes -= f.bytes;
      idx++;
      if (idx >= this.size) idx -= this.size;
    }
    this.count -= i;
    this.start = idx;
    if (this.count === 0) this.start = 0; // keep the ring compact
  }

  full(): boolean {
    return this.count === this.size || (this.maxBytes !== 0 && this.bytes >= this.maxBytes);
  }

  len(): number {
    return this.count;
  }

  reset(): void {
    this.start = 0;
    this.count = 0;
    this.bytes = 0;
  }
}
