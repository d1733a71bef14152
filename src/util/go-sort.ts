// Go's sort.Sort — pattern-defeating quicksort, as Go 1.19 and later have it (src/sort/
// zsortinterface.go) — in steps of bounded work, over indexes.
//
// Why Go's and not any sort: etcd 3.4 sorts a Range's key-values with sort.Sort, which is not
// stable, so key-values whose sort target is equal (the same value, version, ...) come out in
// the order Go's algorithm leaves them in — deterministic, but neither key order nor its reverse
// once there are more than 12 of them (12 or fewer are insertion-sorted, which keeps key order).
// With a limit, that order decides which of the equal ones are answered. A client moving from
// etcd sees the same answer only if the same algorithm runs on the same input (the key-values in
// key order), so it is written out here, step for step: every comparison and swap as Go makes
// them. `test/util/go-sort.test.ts` checks it against etcd 3.4.23 (built with go1.19.8).
//
// Why steps: a sort of a million key-values is seconds of work; a generator yields after about
// `step` elements looked at (in a partition) or sifted (heapsort's fallback), so the caller can
// give the event loop a turn; so do Go's partial insertion sort and range reversal, which can
// pass over a whole range. What runs between two yields besides is bounded: insertion sorts of
// at most 12 items (counted by their size) and pivot choices.

/** bits.Len: the number of bits needed to write x (0 for 0). */
function bitsLen(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

const enum Hint {
  Unknown,
  Increasing,
  Decreasing,
}

/**
 * The permutation sort.Sort leaves `n` items in, as indexes into them: `less(i, j)` compares
 * items i and j (their original indexes). Yields between steps of about `step` elements' work.
 */
export function* goSortSteps(n: number, less: (i: number, j: number) => boolean, step: number): Generator<void, Uint32Array> {
  const d = new Uint32Array(n);
  for (let i = 0; i < n; i++) d[i] = i;
  if (n <= 1) return d;
  // data.Less and data.Swap of Go's sort.Interface, over positions.
  const lt = (i: number, j: number): boolean => less(d[i]!, d[j]!);
  const swap = (i: number, j: number): void => {
    const t = d[i]!;
    d[i] = d[j]!;
    d[j] = t;
  };
  let work = 0;
  /** Counts `units` of work (a comparison in a partition, a sift, a leaf's items); true when a step is done. */
  const due = (units = 1): boolean => {
    work += units;
    if (work < step) return false;
    work = 0;
    return true;
  };

  const insertionSort = (a: number, b: number): void => {
    for (let i = a + 1; i < b; i++) {
      for (let j = i; j > a && lt(j, j - 1); j--) swap(j, j - 1);
    }
  };

  const siftDown = (lo: number, hi: number, first: number): void => {
    let root = lo;
    for (;;) {
      let child = 2 * root + 1;
      if (child >= hi) return;
      if (child + 1 < hi && lt(first + child, first + child + 1)) child++;
      if (!lt(first + root, first + child)) return;
      swap(first + root, first + child);
      root = child;
    }
  };

  function* heapSort(a: number, b: number): Generator<void, void> {
    const first = a;
    const lo = 0;
    const hi = b - a;
    // A sift is up to two comparisons per level of the heap.
    const sift = 2 * bitsLen(hi);
    for (let i = ((hi - 1) / 2) | 0; i >= 0; i--) {
      siftDown(i, hi, first);
      if (due(sift)) yield;
    }
    for (let i = hi - 1; i >= 0; i--) {
      swap(first, first + i);
      siftDown(lo, i, first);
      if (due(sift)) yield;
    }
  }

  // The two partitions are Go's loops as they are, with a count (and a yield when a step is
  // done) at each element looked at: they are the O(n) work of a sort, a million items at first.

  /** Returns [newpivot, alreadyPartitioned]. */
  function* partition(a: number, b: number, pivot: number): Generator<void, [number, boolean]> {
    swap(a, pivot);
    let i = a + 1;
    let j = b - 1;
    while (i <= j && lt(i, a)) {
      i++;
      if (due()) yield;
    }
    while (i <= j && !lt(j, a)) {
      j--;
      if (due()) yield;
    }
    if (i > j) {
      swap(j, a);
      return [j, true];
    }
    swap(i, j);
    i++;
    j--;
    for (;;) {
      while (i <= j && lt(i, a)) {
        i++;
        if (due()) yield;
      }
      while (i <= j && !lt(j, a)) {
        j--;
        if (due()) yield;
      }
      if (i > j) break;
      swap(i, j);
      i++;
      j--;
    }
    swap(j, a);
    return [j, false];
  }

  function* partitionEqual(a: number, b: number, pivot: number): Generator<void, number> {
    swap(a, pivot);
    let i = a + 1;
    let j = b - 1;
    for (;;) {
      while (i <= j && !lt(a, i)) {
        i++;
        if (due()) yield;
      }
      while (i <= j && lt(a, j)) {
        j--;
        if (due()) yield;
      }
      if (i > j) break;
      swap(i, j);
      i++;
      j--;
    }
    return i;
  }

  // Go's partial insertion sort and range reversal: each may look at the whole range (an input
  // already sorted, or sorted the other way, is one pass), so they count and yield as the
  // partitions do.
  function* partialInsertionSort(a: number, b: number): Generator<void, boolean> {
    const maxSteps = 5;
    const shortestShifting = 50;
    let i = a + 1;
    for (let s = 0; s < maxSteps; s++) {
      while (i < b && !lt(i, i - 1)) {
        i++;
        if (due()) yield;
      }
      if (i === b) return true;
      if (b - a < shortestShifting) return false;
      swap(i, i - 1);
      // Shift the smaller one to the left (Go's loop runs down to index 1, not to a).
      if (i - a >= 2) {
        for (let j = i - 1; j >= 1; j--) {
          if (!lt(j, j - 1)) break;
          swap(j, j - 1);
          if (due()) yield;
        }
      }
      // Shift the greater one to the right.
      if (b - i >= 2) {
        for (let j = i + 1; j < b; j++) {
          if (!lt(j, j - 1)) break;
          swap(j, j - 1);
          if (due()) yield;
        }
      }
    }
    return false;
  }

  const breakPatterns = (a: number, b: number): void => {
    const length = b - a;
    if (length < 8) return;
    // Go's xorshift (a uint64) seeded with the length.
    let r = BigInt(length);
    const next = (): bigint => {
      r = BigInt.asUintN(64, r ^ (r << 13n));
      r ^= r >> 17n;
      r = BigInt.asUintN(64, r ^ (r << 5n));
      return r;
    };
    const modulus = 2 ** bitsLen(length);
    const mid = a + Math.floor(length / 4) * 2;
    for (let idx = mid - 1; idx <= mid + 1; idx++) {
      let other = Number(next() & BigInt(modulus - 1));
      if (other >= length) other -= length;
      swap(idx, a + other);
    }
  };

  const choosePivot = (a: number, b: number): [number, Hint] => {
    const shortestNinther = 50;
    const maxSwaps = 4 * 3;
    const l = b - a;
    const swaps = { n: 0 };
    let i = a + Math.floor(l / 4) * 1;
    let j = a + Math.floor(l / 4) * 2;
    let k = a + Math.floor(l / 4) * 3;
    if (l >= 8) {
      if (l >= shortestNinther) {
        i = medianAdjacent(i, swaps);
        j = medianAdjacent(j, swaps);
        k = medianAdjacent(k, swaps);
      }
      j = median(i, j, k, swaps);
    }
    if (swaps.n === 0) return [j, Hint.Increasing];
    if (swaps.n === maxSwaps) return [j, Hint.Decreasing];
    return [j, Hint.Unknown];
  };

  const order2 = (a: number, b: number, swaps: { n: number }): [number, number] => {
    if (lt(b, a)) {
      swaps.n++;
      return [b, a];
    }
    return [a, b];
  };

  const median = (a: number, b: number, c: number, swaps: { n: number }): number => {
    [a, b] = order2(a, b, swaps);
    [b, c] = order2(b, c, swaps);
    [a, b] = order2(a, b, swaps);
    return b;
  };

  const medianAdjacent = (a: number, swaps: { n: number }): number => median(a - 1, a, a + 1, swaps);

  function* reverseRange(a: number, b: number): Generator<void, void> {
    for (let i = a, j = b - 1; i < j; i++, j--) {
      swap(i, j);
      if (due()) yield;
    }
  }

  function* pdqsort(a: number, b: number, limit: number): Generator<void, void> {
    const maxInsertion = 12;
    let wasBalanced = true;
    let wasPartitioned = true;
    for (;;) {
      const length = b - a;
      if (length <= maxInsertion) {
        insertionSort(a, b);
        // A leaf: up to 12 items, ~length²/4 comparisons; many leaves may follow each other.
        if (due(length * 3)) yield;
        return;
      }
      if (limit === 0) {
        yield* heapSort(a, b);
        return;
      }
      if (!wasBalanced) {
        breakPatterns(a, b);
        limit--;
      }
      let [pivot, hint] = choosePivot(a, b);
      if (hint === Hint.Decreasing) {
        yield* reverseRange(a, b);
        pivot = b - 1 - (pivot - a);
        hint = Hint.Increasing;
      }
      if (wasBalanced && wasPartitioned && hint === Hint.Increasing) {
        if (yield* partialInsertionSort(a, b)) return;
      }
      if (a > 0 && !lt(a - 1, pivot)) {
        a = yield* partitionEqual(a, b, pivot);
        continue;
      }
      const [mid, alreadyPartitioned] = yield* partition(a, b, pivot);
      wasPartitioned = alreadyPartitioned;
      const leftLen = mid - a;
      const rightLen = b - mid;
      const balanceThreshold = Math.floor(length / 8);
      if (leftLen < rightLen) {
        wasBalanced = leftLen >= balanceThreshold;
        yield* pdqsort(a, mid, limit);
        a = mid + 1;
      } else {
        wasBalanced = rightLen >= balanceThreshold;
        yield* pdqsort(mid + 1, b, limit);
        b = mid;
      }
    }
  }

  yield* pdqsort(0, n, bitsLen(n));
  return d;
}

/** goSortSteps run straight through (for short lists: no step yields to anything). */
export function goSort(n: number, less: (i: number, j: number) => boolean): Uint32Array {
  const g = goSortSteps(n, less, Number.MAX_SAFE_INTEGER);
  for (;;) {
    const r = g.next();
    if (r.done) return r.value;
  }
}
