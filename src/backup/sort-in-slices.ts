// Sorting a large index array without holding the event loop: sorted runs, then bottom-up
// merge passes, with a yield (`pause`) every `budget` element moves. Writing an etcd snapshot
// needs every stored version of a million keys in revision order, which one Array.sort call
// would do in a single multi-second block.

/**
 * Sorts [0, n) by `cmp` and returns the order. `cmp(i, j)` compares items i and j (< 0: i first);
 * items that compare equal keep their index order (the merge is stable).
 */
export async function sortIndexesInSlices(
  n: number,
  cmp: (i: number, j: number) => number,
  pause: () => Promise<void>,
  budget = 100_000,
): Promise<Uint32Array> {
  const RUN = 1024;
  let src = new Uint32Array(n);
  let dst = new Uint32Array(n);
  for (let i = 0; i < n; i++) src[i] = i;
  let done = 0;
  const tick = async (work: number): Promise<void> => {
    done += work;
    if (done >= budget) {
      done = 0;
      await pause();
    }
  };
  for (let lo = 0; lo < n; lo += RUN) {
    // Runs are sorted with a stable comparator on the index, so ties stay in index order.
    src.subarray(lo, Math.min(n, lo + RUN)).sort((a, b) => cmp(a, b) || a - b);
    await tick(RUN * 10);
  }
  for (let width = RUN; width < n; width *= 2) {
    for (let lo = 0; lo < n; lo += 2 * width) {
      const mid = Math.min(lo + width, n);
      const hi = Math.min(lo + 2 * width, n);
      let a = lo;
      let b = mid;
      for (let o = lo; o < hi; o++) {
        dst[o] = a < mid && (b >= hi || cmp(src[a]!, src[b]!) <= 0) ? src[a++]! : src[b++]!;
        if ((o & 0xfff) === 0) await tick(0x1000);
      }
    }
    [src, dst] = [dst, src];
  }
  return src;
}
