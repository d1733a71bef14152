// Randomness is injected so that a seeded simulation replays exactly. The core only ever asks
// for an integer in [0, n) (to randomize election timeouts).

export interface Rand {
  /** A uniformly distributed integer in [0, n). */
  intn(n: number): number;
}

/**
 * A small deterministic PRNG (mulberry32). Pure arithmetic, no global state: the core's tests
 * and the simulator seed it; the server seeds it from crypto at start-up.
 */
export class SeededRand implements Rand {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  intn(n: number): number {
    return Math.floor(this.next() * n);
  }
}
