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
// like the bytes), then their indexes are sorted in steps by Go's sort.Sort, as etcd sorts them
// (util/go-sort.ts, descending as sort.Reverse): etcd's sort is not stable, and key-values with
// equal targets come out in the order Go's algorithm leaves them — with a limit, that order
// decides which are answered. A sort by key needs none: the store hands key-values out in key
// order (descending is a reversal: keys are unique, so any sort gives the same).

import type { KeyValue } from '../gen/etcd/kv.js';
import { RangeRequest_SortOrder, RangeRequest_SortTarget } from '../gen/etcd/rpc.js';
import { StoredKeyValue, latin1 } from './mvcc.js';
import { compareOrdered } from '../util/compare.js';
import { goSortSteps } from '../util/go-sort.js';

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
  // An order etcd does not know (3, 9, ...) leaves key order, as none does.
  if (o.order !== RangeRequest_SortOrder.ASCEND && o.order !== RangeRequest_SortOrder.DESCEND) return kvs;
  const descending = o.order === RangeRequest_SortOrder.DESCEND;
  if (o.target === RangeRequest_SortTarget.KEY) return descending ? kvs.slice().reverse() : kvs;
  const keyOf = sortKeyOf(o.target);
  const keys: Array<bigint | string> = new Array(kvs.length);
  for (let i = 0; i < kvs.length; i++) {
    keys[i] = keyOf(kvs[i]!);
    if ((i + 1) % step === 0) yield;
  }
  const less = descending ? (i: number, j: number) => compareOrdered(keys[j]!, keys[i]!) < 0 : (i: number, j: number) => compareOrdered(keys[i]!, keys[j]!) < 0;
  const order = yield* goSortSteps(kvs.length, less, step);
  const out: KeyValue[] = new Array(kvs.length);
  for (let i = 0; i < order.length; i++) {
    out[i] = kvs[order[i]!]!;
    if ((i + 1) % step === 0) yield;
  }
  return out;
}

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
      return (kv) => (kv instanceof StoredKeyValue ? kv.storedValueString : latin1(kv.value));
    default:
      return (kv) => (kv instanceof StoredKeyValue ? kv.keyString : latin1(kv.key));
  }
}
