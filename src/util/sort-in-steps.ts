// A stable sort in steps of bounded work, for arrays too large to sort in one turn of the event
// loop (a Range sorted over a million keys, an etcd snapshot's versions in revision order): runs
// of `step` items sorted one by one (Array.prototype.sort, stable in V8), then bottom-up merge
// passes. It is a generator that yields after every run and every `step` items merged; the
// caller decides what a yield means: nothing (runSteps, for work that must finish in one go) or
// a pause to let the event loop run (runStepsPaused).

/**
 * Sorts `items` stably by `compare` (< 0: the first goes first; equal items keep their order).
 * The input array is reordered and may be returned, or a second array of the same length.
 */
export function* mergeSortSteps<T>(items: T[], compare: (a: T, b: T) => number, step: number): Generator<void, T[]> {
  const n = items.length;
  for (let lo = 0; lo < n; lo += step) {
    const run = items.slice(lo, lo + step).sort(compare);
    for (let i = 0; i < run.length; i++) items[lo + i] = run[i]!;
    yield;
  }
  let src = items;
  let dst: T[] = new Array(n);
  let placed = 0;
  for (let width = step; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let i = lo;
      let j = mid;
      for (let out = lo; out < hi; out++) {
        // Right first only when strictly smaller: equal items keep their order.
        dst[out] = j < hi && (i >= mid || compare(src[j]!, src[i]!) < 0) ? src[j++]! : src[i++]!;
        if (++placed % step === 0) yield;
      }
    }
    [src, dst] = [dst, src];
  }
  return src;
}

/** Runs the steps straight through. */
export function runSteps<T>(g: Generator<void, T>): T {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}

/** Runs the steps with `pause` (a yield to the event loop) between them. */
export async function runStepsPaused<T>(g: Generator<void, T>, pause: () => Promise<void>): Promise<T> {
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
    await pause();
  }
}
