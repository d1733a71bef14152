// An index of half-open key ranges [lo, hi) that answers "which ranges contain this key?"
// without looking at every range: the watch hub uses it to find the range watchers of a written
// key (src/kv/watch-hub.ts).
//
// Keys are latin1 strings compared with < (as the MVCC index compares them); hi undefined means
// "to the end of the key space" (etcd's range_end "\0"). A range with hi <= lo is empty: it is
// kept, and contains nothing. The same range may be added any number of times; each add returns
// its own handle, which is what `delete` takes.
//
// The structure is an interval tree: a binary search tree ordered by lo (ties broken by insertion
// order, so every range has its own place) in which each node also records the largest hi in its
// subtree (maxHi). It is kept balanced as a treap — each node has a random priority and the tree
// is a heap on it — which gives an expected depth of O(log n) whatever the order of adds and
// deletes, with short split/merge code instead of rotation cases.
//
// A query for key k skips every subtree whose maxHi <= k (nothing there reaches k) and everything
// right of the first node with lo > k (nothing there starts by k). What it visits is then one
// root-to-leaf path plus the nodes that have a containing range below them: O(log n) when few
// ranges contain k, and never more than the ancestors of the m ranges that do (O(m log n) at worst,
// about O(log n + m) when they lie close together in lo order).

/** A range in the index, as `add` returned it. */
export interface IntervalHandle<V> {
  readonly lo: string;
  readonly hi: string | undefined;
  readonly value: V;
}

interface Node<V> extends IntervalHandle<V> {
  /** Insertion number: orders ranges with equal lo. */
  readonly seq: number;
  /** Treap priority: every node's is at least its children's. */
  readonly prio: number;
  left: Node<V> | null;
  right: Node<V> | null;
  /** The largest hi in this subtree (undefined: some range in it is open-ended). */
  maxHi: string | undefined;
  /** Still in the index (a handle deleted twice is ignored). */
  live: boolean;
}

/** Whether `hi` lies above key `k` (undefined: the end of the key space, above every key). */
const above = (hi: string | undefined, k: string): boolean => hi === undefined || k < hi;

/** The larger of two upper bounds, undefined being the largest. */
const maxOf = (a: string | undefined, b: string | undefined): string | undefined =>
  a === undefined || b === undefined ? undefined : a < b ? b : a;

/** The tree's order: by lo, then by insertion. */
const before = <V>(a: Node<V>, b: Node<V>): boolean => a.lo < b.lo || (a.lo === b.lo && a.seq < b.seq);

/** Recomputes n.maxHi from n and its children (after either changed). */
function pull<V>(n: Node<V>): void {
  let m = n.hi;
  if (n.left) m = maxOf(m, n.left.maxHi);
  if (n.right) m = maxOf(m, n.right.maxHi);
  n.maxHi = m;
}

/** Splits tree t into the nodes before n and those after it (n itself is not in t). */
function split<V>(t: Node<V> | null, n: Node<V>): [Node<V> | null, Node<V> | null] {
  if (!t) return [null, null];
  if (before(t, n)) {
    const [l, r] = split(t.right, n);
    t.right = l;
    pull(t);
    return [t, r];
  }
  const [l, r] = split(t.left, n);
  t.left = r;
  pull(t);
  return [l, t];
}

/** Joins two trees, every node of a coming before every node of b. */
function merge<V>(a: Node<V> | null, b: Node<V> | null): Node<V> | null {
  if (!a) return b;
  if (!b) return a;
  if (a.prio >= b.prio) {
    a.right = merge(a.right, b);
    pull(a);
    return a;
  }
  b.left = merge(a, b.left);
  pull(b);
  return b;
}

/** Tree t with n added. */
function insert<V>(t: Node<V> | null, n: Node<V>): Node<V> {
  if (!t) return n;
  if (n.prio > t.prio) {
    // n belongs above t: it takes t's place, with t's nodes split around it.
    [n.left, n.right] = split(t, n);
    pull(n);
    return n;
  }
  if (before(n, t)) t.left = insert(t.left, n);
  else t.right = insert(t.right, n);
  pull(t);
  return t;
}

/** Tree t without n (which is in it). */
function remove<V>(t: Node<V> | null, n: Node<V>): Node<V> | null {
  if (!t) throw new Error('interval-index: a live range is missing from the tree');
  if (t === n) return merge(t.left, t.right);
  if (before(n, t)) t.left = remove(t.left, n);
  else t.right = remove(t.right, n);
  pull(t);
  return t;
}

export class IntervalIndex<V> {
  private root: Node<V> | null = null;
  private count = 0;
  private seq = 0;
  /** xorshift32 state for the priorities (fixed seed: the same adds build the same tree). */
  private rand = 0x9e3779b9;

  /** Adds [lo, hi) with its value; returns the handle that `delete` takes. */
  add(lo: string, hi: string | undefined, value: V): IntervalHandle<V> {
    let x = this.rand;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rand = x >>> 0;
    const n: Node<V> = { lo, hi, value, seq: this.seq++, prio: this.rand, left: null, right: null, maxHi: hi, live: true };
    this.root = insert(this.root, n);
    this.count++;
    return n;
  }

  /** Removes a range `add` returned; false if it had already been removed. */
  delete(h: IntervalHandle<V>): boolean {
    const n = h as Node<V>;
    if (!n.live) return false;
    this.root = remove(this.root, n);
    n.live = false;
    n.left = n.right = null;
    this.count--;
    return true;
  }

  /** Calls f with the value of every range that contains `k` (lo <= k < hi), in lo order. */
  stab(k: string, f: (value: V) => void): void {
    this.visit(this.root, k, f);
  }

  private visit(n: Node<V> | null, k: string, f: (value: V) => void): void {
    // Walk right in a loop, left by recursion.
    while (n && above(n.maxHi, k)) {
      this.visit(n.left, k, f);
      if (n.lo > k) return; // this range and all to its right start after k
      if (above(n.hi, k)) f(n.value);
      n = n.right;
    }
  }

  get size(): number {
    return this.count;
  }

  /** The tree's height (for tests: it stays O(log n) whatever the order of adds). */
  height(): number {
    const h = (n: Node<V> | null): number => (n ? 1 + Math.max(h(n.left), h(n.right)) : 0);
    return h(this.root);
  }
}
