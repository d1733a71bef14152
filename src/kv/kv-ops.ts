// The etcd KV semantics on top of the MVCC store: Range (sorting, limits, filters), Put
// (prev_kv, ignore_value, ignore_lease, leases), DeleteRange, Txn (compares, nested ops) and
// request validation. Pure and deterministic: every replica computes the same responses.

import type { KeyValue } from '../gen/etcd/kv.js';
import {
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  type RequestOp,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../gen/etcd/rpc.js';
import { Errors } from './errors.js';
import { type MvccStore, type WriteTxn, keyStr, rangeBounds } from './mvcc.js';

export const MAX_TXN_OPS = 128;

type Reader = Pick<WriteTxn, 'range'>;

function cmpBig(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Range with etcd's sorting, filtering and limit rules. */
export function doRange(r: Reader, req: RangeRequest): Omit<RangeResponse, 'header'> & { rev: bigint } {
  const limit = Number(req.limit);
  const filtered =
    req.minModRevision > 0n || req.maxModRevision > 0n || req.minCreateRevision > 0n || req.maxCreateRevision > 0n;
  let order = req.sortOrder;
  // A non-key sort target with no order means ascending (etcd's rule).
  if (order === RangeRequest_SortOrder.NONE && req.sortTarget !== RangeRequest_SortTarget.KEY) order = RangeRequest_SortOrder.ASCEND;
  const needAll = filtered || (order !== RangeRequest_SortOrder.NONE && !(order === RangeRequest_SortOrder.ASCEND && req.sortTarget === RangeRequest_SortTarget.KEY));
  const res = r.range(req.key, req.rangeEnd, {
    revision: req.revision,
    // One more than the limit tells us whether there is more.
    limit: needAll || limit <= 0 ? 0 : limit + 1,
    keysOnly: req.keysOnly,
    countOnly: req.countOnly,
  });
  if (req.countOnly) return { kvs: [], more: false, count: BigInt(res.count), rev: res.rev };
  let kvs = res.kvs;
  if (filtered) {
    kvs = kvs.filter(
      (kv) =>
        (req.minModRevision <= 0n || kv.modRevision >= req.minModRevision) &&
        (req.maxModRevision <= 0n || kv.modRevision <= req.maxModRevision) &&
        (req.minCreateRevision <= 0n || kv.createRevision >= req.minCreateRevision) &&
        (req.maxCreateRevision <= 0n || kv.createRevision <= req.maxCreateRevision),
    );
  }
  if (order !== RangeRequest_SortOrder.NONE) {
    const cmp = (a: KeyValue, b: KeyValue): number => {
      switch (req.sortTarget) {
        case RangeRequest_SortTarget.VERSION:
          return cmpBig(a.version, b.version);
        case RangeRequest_SortTarget.CREATE:
          return cmpBig(a.createRevision, b.createRevision);
        case RangeRequest_SortTarget.MOD:
          return cmpBig(a.modRevision, b.modRevision);
        case RangeRequest_SortTarget.VALUE:
          return Buffer.compare(a.value, b.value);
        default:
          return Buffer.compare(a.key, b.key);
      }
    };
    // Stable sort keeps key order among equal targets, as etcd does.
    kvs = [...kvs].sort(order === RangeRequest_SortOrder.DESCEND ? (a, b) => cmp(b, a) : cmp);
  }
  let more = false;
  if (limit > 0 && kvs.length > limit) {
    kvs = kvs.slice(0, limit);
    more = true;
  }
  return { kvs, more, count: BigInt(res.count), rev: res.rev };
}

// ------------------------------------------------------------------ validation (before proposing)

export function checkPut(req: PutRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
  if (req.ignoreValue && req.value.length !== 0) throw Errors.valueProvided();
  if (req.ignoreLease && req.lease !== 0n) throw Errors.leaseProvided();
}

export function checkRange(req: RangeRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
}

export function checkDelete(req: DeleteRangeRequest): void {
  if (req.key.length === 0) throw Errors.emptyKey();
}

/** etcd's checkTxnReqs: op count, empty keys, and no key written twice on one path. */
export function checkTxn(req: TxnRequest, maxOps = MAX_TXN_OPS): void {
  if (req.compare.length > maxOps || req.success.length > maxOps || req.failure.length > maxOps) throw Errors.tooManyOps();
  for (const c of req.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const ops of [req.success, req.failure]) {
    for (const op of ops) {
      if (op.requestRange) checkRange(op.requestRange);
      else if (op.requestPut) checkPut(op.requestPut);
      else if (op.requestDeleteRange) checkDelete(op.requestDeleteRange);
      else if (op.requestTxn) checkTxn(op.requestTxn, maxOps);
    }
    checkNoDuplicateWrites(ops);
  }
}

interface Interval {
  lo: string;
  hi: string | undefined; // undefined: to the end
  single: boolean;
}

function writesOf(ops: readonly RequestOp[], puts: Set<string>, dels: Interval[]): void {
  for (const op of ops) {
    if (op.requestPut) {
      const k = keyStr(op.requestPut.key);
      if (puts.has(k)) throw Errors.duplicateKey();
      puts.add(k);
    } else if (op.requestDeleteRange) {
      dels.push(rangeBounds(op.requestDeleteRange.key, op.requestDeleteRange.rangeEnd));
    } else if (op.requestTxn) {
      // Either branch of a nested txn may run: check each against the outer writes.
      for (const branch of [op.requestTxn.success, op.requestTxn.failure]) {
        const p = new Set<string>();
        const d: Interval[] = [];
        writesOf(branch, p, d);
        for (const k of p) {
          if (puts.has(k)) throw Errors.duplicateKey();
        }
      }
      const p = new Set<string>();
      const d: Interval[] = [];
      writesOf(op.requestTxn.success, p, d);
      writesOf(op.requestTxn.failure, new Set(), d);
      for (const k of p) puts.add(k);
      dels.push(...d);
    }
  }
}

function inInterval(k: string, iv: Interval): boolean {
  if (iv.single) return k === iv.lo;
  return k >= iv.lo && (iv.hi === undefined || k < iv.hi);
}

function checkNoDuplicateWrites(ops: readonly RequestOp[]): void {
  const puts = new Set<string>();
  const dels: Interval[] = [];
  writesOf(ops, puts, dels);
  // A put may not fall inside a deleted range of the same txn (etcd: "duplicate key").
  for (const k of puts) for (const d of dels) if (inInterval(k, d)) throw Errors.duplicateKey();
}

// ------------------------------------------------------------------ apply (deterministic)

export interface KvContext {
  store: MvccStore;
}

export function applyPut(w: WriteTxn, store: MvccStore, req: PutRequest): Omit<PutResponse, 'header'> {
  let value = req.value;
  let lease = req.lease;
  if (req.ignoreValue || req.ignoreLease) {
    const cur = w.get(req.key);
    if (!cur) throw Errors.keyNotFound();
    if (req.ignoreValue) value = cur.value;
    if (req.ignoreLease) lease = cur.lease;
  }
  if (lease !== 0n && !(store.leases?.exists(lease) ?? false)) throw Errors.leaseNotFound();
  const prev = w.put(req.key, value, lease);
  return { prevKv: req.prevKv ? prev : undefined };
}

export function applyDelete(w: WriteTxn, req: DeleteRangeRequest): Omit<DeleteRangeResponse, 'header'> {
  const deleted = w.deleteRange(req.key, req.rangeEnd);
  return { deleted: BigInt(deleted.length), prevKvs: req.prevKv ? deleted : [] };
}

function compareOne(c: Compare, kv: KeyValue | undefined): boolean {
  let r: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      if (!kv) return false; // a missing key has no value to compare
      r = Buffer.compare(kv.value, c.value ?? Buffer.alloc(0));
      break;
    case Compare_CompareTarget.VERSION:
      r = cmpBig(kv?.version ?? 0n, c.version ?? 0n);
      break;
    case Compare_CompareTarget.CREATE:
      r = cmpBig(kv?.createRevision ?? 0n, c.createRevision ?? 0n);
      break;
    case Compare_CompareTarget.MOD:
      r = cmpBig(kv?.modRevision ?? 0n, c.modRevision ?? 0n);
      break;
    case Compare_CompareTarget.LEASE:
      r = cmpBig(kv?.lease ?? 0n, c.lease ?? 0n);
      break;
    default:
      return false;
  }
  switch (c.result) {
    case Compare_CompareResult.EQUAL:
      return r === 0;
    case Compare_CompareResult.NOT_EQUAL:
      return r !== 0;
    case Compare_CompareResult.GREATER:
      return r > 0;
    case Compare_CompareResult.LESS:
      return r < 0;
    default:
      return false;
  }
}

export function evalCompare(w: Reader, c: Compare): boolean {
  const kvs = w.range(c.key, c.rangeEnd).kvs;
  if (kvs.length === 0) return compareOne(c, undefined);
  return kvs.every((kv) => compareOne(c, kv));
}

/** Pre-checks the chosen branch (leases exist, ignore_* keys exist) so a txn fails atomically. */
function precheckOps(w: WriteTxn, store: MvccStore, ops: readonly RequestOp[]): void {
  for (const op of ops) {
    const p = op.requestPut;
    if (p) {
      if (p.lease !== 0n && !(store.leases?.exists(p.lease) ?? false)) throw Errors.leaseNotFound();
      if ((p.ignoreValue || p.ignoreLease) && !w.get(p.key)) throw Errors.keyNotFound();
    }
    const t = op.requestTxn;
    if (t) precheckOps(w, store, t.compare.every((c) => evalCompare(w, c)) ? t.success : t.failure);
  }
}

export function applyTxn(w: WriteTxn, store: MvccStore, req: TxnRequest, header: () => RangeResponse['header']): Omit<TxnResponse, 'header'> {
  const succeeded = req.compare.every((c) => evalCompare(w, c));
  const ops = succeeded ? req.success : req.failure;
  precheckOps(w, store, ops);
  const responses: ResponseOp[] = [];
  for (const op of ops) {
    if (op.requestRange) {
      const r = doRange(w, op.requestRange);
      responses.push({ responseRange: { header: header(), kvs: r.kvs, more: r.more, count: r.count } });
    } else if (op.requestPut) {
      responses.push({ responsePut: { header: header(), ...applyPut(w, store, op.requestPut) } });
    } else if (op.requestDeleteRange) {
      responses.push({ responseDeleteRange: { header: header(), ...applyDelete(w, op.requestDeleteRange) } });
    } else if (op.requestTxn) {
      responses.push({ responseTxn: { header: header(), ...applyTxn(w, store, op.requestTxn, header) } });
    } else {
      responses.push({});
    }
  }
  return { succeeded, responses };
}

/** True if the txn could write (decides whether it needs consensus or can be served as a read). */
export function txnIsReadOnly(req: TxnRequest): boolean {
  const ro = (ops: readonly RequestOp[]): boolean =>
    ops.every((op) => op.requestRange !== undefined || (op.requestTxn !== undefined && txnIsReadOnly(op.requestTxn)));
  return ro(req.success) && ro(req.failure);
}
