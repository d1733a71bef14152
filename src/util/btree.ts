// An ordered map (B+ tree from the sorted-btree package), behind the small interface the
// MVCC index needs. sorted-btree is CommonJS with a default export; under NodeNext its ESM
// default is module.exports, whose `default` is the class, so it is loaded with require.

import { createRequire } from 'node:module';

export interface SortedMap<K, V> {
  readonly size: number;
  get(key: K): V | undefined;
  set(key: K, value: V): boolean;
  delete(key: K): boolean;
  forEach(cb: (value: V, key: K) => void): number;
  /** Visits [low, high) (or [low, high] with includeHigh) in order; return {break: true} to stop. */
  forRange(low: K, high: K, includeHigh: boolean, onFound: (key: K, value: V) => { break?: unknown } | void): number;
  maxKey(): K | undefined;
}

type Ctor = new <K, V>() => SortedMap<K, V>;
const require = createRequire(import.meta.url);
const BTree = (require('sorted-btree') as { default: Ctor }).default;

export function newSortedMap<K, V>(): SortedMap<K, V> {
  return new BTree<K, V>();
}
