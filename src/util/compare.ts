// One ascending comparison for the values raftkv orders with < and >: bigints by value, numbers,
// and latin1 strings, which compare like the bytes they stand for (the MVCC store's keys and
// values), without making Buffers.

/** -1, 0 or 1 as `a` is below, equal to or above `b`. */
export function compareOrdered<T extends bigint | number | string>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
