// Watches a store's reads of its history (MvccStore.eventsBatch): how many events each built.

import type { MvccStore } from '../../src/kv/mvcc.js';

/** Wraps `store.eventsBatch`; the returned array gets the number of events of each call. */
export function recordHistoryBatches(store: MvccStore): number[] {
  const sizes: number[] = [];
  const batch = store.eventsBatch.bind(store);
  store.eventsBatch = (...a: Parameters<typeof batch>) => {
    const r = batch(...a);
    sizes.push(r.events.length);
    return r;
  };
  return sizes;
}
