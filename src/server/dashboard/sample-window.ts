// Raw values recorded since the dashboard last took them (about a second's worth), so that its
// charts show exact percentiles per second rather than estimates from histogram buckets.
//
// Owns: a bounded buffer. Never: grows without limit under load (past the bound it keeps a
// uniform sample of what came, so the percentiles stay honest) or sorts on the hot path.

const MAX_KEPT = 10_000;

export class SampleWindow {
  private values: number[] = [];
  private seen = 0;

  record(v: number): void {
    this.seen++;
    if (this.values.length < MAX_KEPT) {
      this.values.push(v);
      return;
    }
    // Reservoir sampling: each value seen stays with the same probability.
    const i = Math.floor(Math.random() * this.seen);
    if (i < MAX_KEPT) this.values[i] = v;
  }

  /** The values since the last take, and starts a new window. */
  take(): number[] {
    const out = this.values;
    this.values = [];
    this.seen = 0;
    return out;
  }
}

/** The q-quantile (0..1) of `values` (nearest rank), or null when there are none. */
export function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/** What the metrics record for the dashboard besides Prometheus: raw values for exact percentiles. */
export interface RecentActivity {
  readonly putSeconds: SampleWindow;
  readonly walFsyncSeconds: SampleWindow;
  /** Range calls answered (successfully or not) since the dashboard last looked. */
  reads: number;
}
