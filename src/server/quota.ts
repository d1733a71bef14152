// The space quota (etcd's --quota-backend-bytes) and the apply backpressure rule: what a member
// refuses before proposing, so that the cluster says no before it runs out of memory.
//
// raftkv keeps the key space in the JS heap, so the quota is bounded by the heap a member has:
// the default is etcd's 2 GiB or half of V8's heap limit, whichever is smaller, and a larger
// configured quota (or a negative one, which disables etcd's) is lowered to that bound with a
// warning — a member must never die of heap exhaustion from client writes. The other half
// holds the Raft log kept for followers, requests in flight, watchers and snapshot building.

import { getHeapStatistics } from 'node:v8';
import type { InternalRequest } from '../gen/raftkv/entry.js';
import type { RequestOp } from '../gen/etcd/rpc.js';
import { keyCost, versionCost } from '../kv/mvcc.js';
import { LEASE_BYTES } from '../kv/lessor.js';

/** etcd's DefaultQuotaBytes. */
export const DEFAULT_QUOTA_BYTES = 2 * 1024 ** 3;
/** The share of V8's heap limit the key space may take. */
export const HEAP_FRACTION = 0.5;
/** etcd's maxGapBetweenApplyAndCommitIndex: more unapplied committed entries refuse proposals. */
export const MAX_APPLY_GAP = 5000;

export interface QuotaSetting {
  bytes: number;
  /** Why the configured value was not taken as is (logged at start). */
  warning?: string;
}

/**
 * The quota a member enforces for a configured --quota-backend-bytes (0 or absent: default),
 * given V8's heap limit.
 */
export function effectiveQuota(configured: number | undefined, heapLimit = getHeapStatistics().heap_size_limit): QuotaSetting {
  const safe = Math.floor(heapLimit * HEAP_FRACTION);
  if (configured === undefined || configured === 0) return { bytes: Math.min(DEFAULT_QUOTA_BYTES, safe) };
  if (configured < 0) {
    return { bytes: safe, warning: `a negative quota-backend-bytes disables etcd's quota; raftkv keeps its data in the heap and uses ${safe} bytes (half the heap limit of ${heapLimit})` };
  }
  if (configured > safe) {
    return {
      bytes: safe,
      warning: `quota-backend-bytes ${configured} exceeds half the heap limit (${heapLimit}); using ${safe} (raise it with node --max-old-space-size)`,
    };
  }
  return { bytes: configured };
}

/**
 * The bytes a request may add (0: it cannot grow the store). Puts and txns with puts cost
 * their keys and values as the store counts them (src/kv/mvcc.ts); a txn its costlier branch.
 */
export function requestCost(req: Pick<InternalRequest, 'put' | 'txn' | 'leaseGrant'>): number {
  if (req.put) return keyCost(req.put.key) + versionCost(req.put.value);
  if (req.txn) return Math.max(opsCost(req.txn.success), opsCost(req.txn.failure));
  if (req.leaseGrant) return LEASE_BYTES;
  return 0;
}

function opsCost(ops: RequestOp[]): number {
  let n = 0;
  for (const op of ops) {
    if (op.requestPut) n += requestCost({ put: op.requestPut });
    else if (op.requestTxn) n += requestCost({ txn: op.requestTxn });
  }
  return n;
}

/** etcd's quota check: whether a request of `cost` bytes fits beside `size` bytes. */
export const fitsQuota = (size: number, cost: number, quota: number): boolean => cost === 0 || size + cost < quota;

/** etcd's apply backpressure: proposals wait while the applier trails the commit index too far. */
export const applyTooFarBehind = (committed: number, applied: number): boolean => committed > applied + MAX_APPLY_GAP;
