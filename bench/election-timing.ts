// Preloaded (`node --import`) into raftkv members started by the election benchmark
// (bench/election.ts), to run them with exactly the election timeouts the seed project lists,
// which etcd's flags cannot express: ticks shorter than a millisecond (Node's timers fire at
// most every millisecond) and a random election timeout drawn from any range [lo, hi), where
// etcd-io/raft always draws from [E, 2E). Benchmark only; nothing in src/ loads it.
//
//   RAFTKV_BENCH_TICK_MS=0.5         the Raft ticker (started with --heartbeat-interval 1) ticks
//                                    every 0.5 ms on average: a 1 ms timer that catches up
//   RAFTKV_BENCH_ELECTION_TICKS=0,10 the random election timeout, in ticks: uniform in [0, 10)

import { systemClock } from '../src/server/clock.js';
import { Raft } from '../src/raft/raft.js';

const tickMs = Number(process.env.RAFTKV_BENCH_TICK_MS ?? 0);
if (tickMs > 0) {
  const nodeInterval = systemClock.setInterval;
  systemClock.setInterval = (f, ms) => {
    if (ms !== 1) return nodeInterval(f, ms);
    let last = performance.now();
    let owed = 0;
    return nodeInterval(() => {
      const now = performance.now();
      owed += (now - last) / tickMs;
      last = now;
      // A member that was stalled (GC, a loaded machine) catches up a bounded number of ticks.
      let n = Math.min(Math.floor(owed), 64);
      owed -= Math.floor(owed);
      while (n-- > 0) f();
    }, 1);
  };
}

const range = process.env.RAFTKV_BENCH_ELECTION_TICKS;
if (range) {
  const [lo, hi] = range.split(',').map(Number) as [number, number];
  (Raft.prototype as unknown as { resetRandomizedElectionTimeout(): void }).resetRandomizedElectionTimeout = function (this: { randomizedElectionTimeout: number }) {
    this.randomizedElectionTimeout = lo + Math.floor(Math.random() * (hi - lo));
  };
}
