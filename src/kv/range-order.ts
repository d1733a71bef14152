// Filtering and sorting a Range's key-values as etcd's Range does, in steps of bounded work.
//
// Why steps: a sorted Range over a million keys was one Array.sort with a comparator that read
// getters and compared bigints — 5-10 s in one turn of the event loop, longer than any election
// timeout, so a leader asked for it lost its leadership. The work is a generator that yields
// after every STEP items it has handled; a client's Range runs it with a pause (a yield to the
// event loop) at each, a Txn's read (applied in one go, like every entry) runs it straight through.
// The answer is the same either way.
//
// The sort: each key-value's sort key is taken once (a bigint, or a latin1 string, which compares
// like the bytes), then a stable merge sort in steps (util/sort-in-steps.ts), so that among equal
// targets the key order is kept, as before. A sort
// by key needs none: the store hands key-values out in key order (descending is a reversal).

import type { KeyValue } from '../gen/etcd/kv.js';
import { RangeRequest_SortOrder, RangeRequest_SortTarget } from '../gen/etcd/rpc.js';
import { StoredKeyValue } from './mvcc.js';
import { mergeSortSteps } from '../util/sort-in-steps.js';

/** Items handled between two yields. */
export const RANGE_ORDER_STEP = 4096;

/** What a Range asks of its key-values after the store collected them. */
export interface RangeOrdering {
  /** Keep only these (etcd's min/max mod/create revision filters), if given. */
  keep?: (kv: KeyValue) => boolean;
  order: RangeRequest_SortOrder;
  target: RangeRequest_SortTarget;
}

/** Filters then sorts `kvs` (given in key order); yields between bounded steps of work. */
export function* orderSteps(kvs: KeyValue[], o: RangeOrdering, step = RANGE_ORDER_STEP): Generator<void, KeyValue[]> {
  if (o.keep) {
    const kept: KeyValue[] = [];
    for (let i = 0; i < kvs.length; i++) {
      if (o.keep(kvs[i]!)) kept.push(kvs[i]!);
      if ((i + 1) % step === 0) yield;
    }
    kvs = kept;
  }
  if (o.order === RangeRequest_SortOrder.NONE) return kvs;
  const descending = o.order === RangeRequest_SortOrder.DESCEND;
  if (o.target === RangeRequest_SortTarget.KEY) return descending ? kvs.slice().reverse() : kvs;
  const keyOf = sortKeyOf(o.target);
  const items: Keyed[] = new Array(kvs.length);
  for (let i = 0; i < kvs.length; i++) {
    items[i] = { k: keyOf(kvs[i]!), kv: kvs[i]! };
    if ((i + 1) % step === 0) yield;
  }
  const sorted = yield* mergeSortSteps(items, descending ? (a, b) => cmp(b.k, a.k) : (a, b) => cmp(a.k, b.k), step);
  const out: KeyValue[] = new Array(sorted.length);
  for (let i = 0; i < sorted.length; i++) {
    out[i] = sorted[i]!.kv;
    if ((i + 1) % step === 0) yield;
  }
  return out;
}

interface Keyed {
  k: bigint | string;
  kv: KeyValue;
}

/** Bigints by value; latin1 strings like their bytes (a store's strings, compared without making Buffers). */
export function compareOrdered<T extends bigint | string>(a: T, b: T): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
const cmp = compareOrdered;

const latin1Of = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

function sortKeyOf(target: RangeRequest_SortTarget): (kv: KeyValue) => bigint | string {
  switch (target) {
    case RangeRequest_SortTarget.VERSION:
      return (kv) => kv.version;
    case RangeRequest_SortTarget.CREATE:
      return (kv) => kv.createRevision;
    case RangeRequest_SortTarget.MOD:
      return (kv) => kv.modRevision;
    case RangeRequest_SortTarget.VALUE:
      // The store's own key-values have their value as a string already (no bytes made).
      return (kv) => (kv instanceof StoredKeyValue ? kv.valueString : latin1Of(kv.value));
    default:
      return (kv) => (kv instanceof StoredKeyValue ? kv.keyString : latin1Of(kv.key));
  }
}
