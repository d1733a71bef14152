// The dashboard's charts over the last minutes: once a second, one point of this member's
// proposals committed/s, reads/s, put latency p50/p99, WAL fsync p99 and event-loop delay p99,
// kept for ten minutes so that a page opened late still shows them.
//
// Owns: the sampling timer (on the server's clock) and the ring of points. Never: does more
// per second than sorting the second's recorded values.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Clock, Timer } from '../clock.js';
import { type RecentActivity, quantile } from './sample-window.js';

export interface ChartPoint {
  /** Wall-clock seconds (uPlot's time axis). */
  t: number;
  committedPerSec: number;
  readsPerSec: number;
  /** Milliseconds; null when nothing happened in that second. */
  putP50: number | null;
  putP99: number | null;
  fsyncP99: number | null;
  loopDelayP99: number;
}

const SAMPLE_MS = 1000;
/** Node's delay monitor times its own timer, whose period counts in what it reports: taken off. */
const LOOP_RESOLUTION_MS = 10;
const KEPT_POINTS = 600;

export class ChartHistory {
  private readonly points: ChartPoint[] = [];
  private readonly listeners = new Set<(p: ChartPoint) => void>();
  private readonly loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  private timer: Timer | undefined;
  private lastCommit: number;
  private lastAt: number;

  constructor(
    private readonly committedIndex: () => number,
    private readonly recent: RecentActivity,
    private readonly clock: Clock,
  ) {
    this.lastCommit = committedIndex();
    this.lastAt = clock.now();
  }

  start(): void {
    if (this.timer) return;
    this.loopDelay.enable();
    // Values recorded before the first point belong to no second: start clean.
    this.recent.putSeconds.take();
    this.recent.walFsyncSeconds.take();
    this.recent.reads = 0;
    this.timer = this.clock.setInterval(() => this.sample(), SAMPLE_MS);
  }

  stop(): void {
    this.timer?.cancel();
    this.timer = undefined;
    this.loopDelay.disable();
  }

  all(): readonly ChartPoint[] {
    return this.points;
  }

  onPoint(f: (p: ChartPoint) => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  private sample(): void {
    const now = this.clock.now();
    const dt = Math.max(0.001, (now - this.lastAt) / 1000);
    const commit = this.committedIndex();
    const puts = this.recent.putSeconds.take();
    const fsyncs = this.recent.walFsyncSeconds.take();
    const ms = (v: number | null): number | null => (v === null ? null : v * 1000);
    const p: ChartPoint = {
      t: this.clock.wallNow() / 1000,
      committedPerSec: Math.max(0, commit - this.lastCommit) / dt,
      readsPerSec: this.recent.reads / dt,
      putP50: ms(quantile(puts, 0.5)),
      putP99: ms(quantile(puts, 0.99)),
      fsyncP99: ms(quantile(fsyncs, 0.99)),
      loopDelayP99: Math.max(0, this.loopDelay.percentile(99) / 1e6 - LOOP_RESOLUTION_MS),
    };
    this.loopDelay.reset();
    this.recent.reads = 0;
    this.lastCommit = commit;
    this.lastAt = now;
    this.points.push(p);
    if (this.points.length > KEPT_POINTS) this.points.splice(0, this.points.length - KEPT_POINTS);
    for (const f of this.listeners) f(p);
  }
}
