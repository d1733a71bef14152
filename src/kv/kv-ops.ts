// The etcd KV semantics on top of the MVCC store: Range (sorting, limits, filters), Put
// (prev_kv, ignore_value, ignore_lease, leases), DeleteRange, Txn (compares, nested ops) and
// request validation. Pure and deterministic: every replica computes the same responses.

import type { MvccStats } from './mvcc-stats.js';
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
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  type TxnResponse,
} from '../gen/etcd/rpc.js';
import { Errors } from './errors.js';
import { orderSteps } from './range-order.js';
import { compareOrdered } from '../util/compare.js';
import { runSteps, runStepsPaused } from '../util/sort-in-steps.js';
import { type MvccStore, type PinnedRead, type RangeOptions, type RangeResult, StoredKeyValue, type WriteTxn, keyStr } from './mvcc.js';

export const MAX_TXN_OPS = 128;

type Reader = Pick<WriteTxn, 'range'>;
/** What a txn's compares read: the live state (before the txn's writes, as etcd's compareToPath). */
type CompareReader = Pick<WriteTxn, 'everyInSlices'>;

/** Range with etcd's sorting, filtering and limit rules (in one go: a Txn's read, applied whole). */
export function doRange(r: Reader, req: RangeRequest): Omit<RangeResponse, 'header'> & { rev: bigint } {
  return runSteps(finishRange(req, r.range(req.key, req.rangeEnd, rangeOptions(req))));
}

/**
 * doRange on the store itself for a client's Range: collected, filtered and sorted in slices that
 * yield to the event loop (MvccStore.rangeAsync, range-order.ts), so a Range over millions of
 * keys does not stall the member. `slice`: the work between two pauses (smaller in tests).
 */
export async function doRangeAsync(
  store: Pick<MvccStore, 'rangeAsync'>,
  req: RangeRequest,
  pause: () => Promise<void>,
  slice?: number,
): Promise<Omit<RangeResponse, 'header'> & { rev: bigint }> {
  const res = await store.rangeAsync(req.key, req.rangeEnd, rangeOptions(req), pause, slice);
  return runStepsPaused(finishRange(req, res, slice), pause);
}

/** The sort order a Range asks for (a non-key target with no order means ascending: etcd's rule). */
function sortOrderOf(req: RangeRequest): RangeRequest_SortOrder {
  if (req.sortOrder === RangeRequest_SortOrder.NONE && req.sortTarget !== RangeRequest_SortTarget.KEY) return RangeRequest_SortOrder.ASCEND;
  return req.sortOrder;
}

/** Any revision filter set: etcd applies each that is not 0, a negative one too (a negative max keeps nothing). */
const isFiltered = (req: RangeRequest): boolean =>
  req.minModRevision !== 0n || req.maxModRevision !== 0n || req.minCreateRevision !== 0n || req.maxCreateRevision !== 0n;

/**
 * What to collect from the store: everything when filtering or an asked-for sort comes after.
 * As etcd decides it, on the order the request names: with none named (a sort by a target
 * other than the key, which is then ascending), only the first limit + 1 keys are collected
 * and those are sorted — not the whole range (etcdctl's `get --sort-by=X` without `--order`).
 * Ascending by key, or an order etcd does not know (it leaves key order), need no more than
 * the limit either.
 */
function rangeOptions(req: RangeRequest): RangeOptions {
  const limit = Number(req.limit);
  const order = req.sortOrder;
  const sorted = order === RangeRequest_SortOrder.DESCEND || (order === RangeRequest_SortOrder.ASCEND && req.sortTarget !== RangeRequest_SortTarget.KEY);
  const needAll = isFiltered(req) || sorted;
  return {
    revision: req.revision,
    // One more than the limit tells us whether there is more.
    limit: needAll || limit <= 0 ? 0 : limit + 1,
    keysOnly: req.keysOnly,
    countOnly: req.countOnly,
  };
}

/** Filters, sorts and limits what the store returned, as etcd's Range does, in bounded steps. */
function* finishRange(req: RangeRequest, res: RangeResult, step?: number): Generator<void, Omit<RangeResponse, 'header'> & { rev: bigint }> {
  const limit = Number(req.limit);
  if (req.countOnly) return { kvs: [], more: false, count: BigInt(res.count), rev: res.rev };
  const keep = isFiltered(req)
    ? (kv: KeyValue): boolean =>
        (req.minModRevision === 0n || kv.modRevision >= req.minModRevision) &&
        (req.maxModRevision === 0n || kv.modRevision <= req.maxModRevision) &&
        (req.minCreateRevision === 0n || kv.createRevision >= req.minCreateRevision) &&
        (req.maxCreateRevision === 0n || kv.createRevision <= req.maxCreateRevision)
    : undefined;
  // Stable: key order is kept among equal targets.
  let kvs = yield* orderSteps(res.kvs, { keep, order: sortOrderOf(req), target: req.sortTarget }, step);
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

/**
 * etcd's checkTxnRequest: op counts, empty keys and empty ops, recursively. A nested txn may use
 * only what its parent left of the op budget (maxOps minus the parent's largest list), as etcd
 * counts it; then etcd's checkIntervals once over each top-level branch.
 */
/**
 * Leaves each op of a txn (nested ones too) with one request, as protobuf's oneof means it: a
 * hand-made message (JSON with two `request_*` fields, or protobuf with two oneof fields) can
 * carry several, and the members must not each pick their own — the one answering a client
 * read its ops in one order and the others in another, so such a txn wrote on some members
 * and not on others. The one kept is the one with the highest field number (txn, delete, put,
 * range): the last on the wire, which protobuf's rule keeps, when fields are written in order
 * as every encoder writes them (etcd's gateway picks one at random).
 */
export function oneRequestPerOp(req: TxnRequest): void {
  for (const ops of [req.success, req.failure]) {
    for (const op of ops) {
      if (op.requestTxn) {
        op.requestRange = op.requestPut = op.requestDeleteRange = undefined;
        oneRequestPerOp(op.requestTxn);
      } else if (op.requestDeleteRange) op.requestRange = op.requestPut = undefined;
      else if (op.requestPut) op.requestRange = undefined;
    }
  }
}

export function checkTxn(req: TxnRequest, maxOps = MAX_TXN_OPS): void {
  checkTxnOps(req, maxOps);
  // Checked after the shape, as etcd does, so a malformed request cannot make it costly.
  checkIntervals(req.success);
  checkIntervals(req.failure);
}

function checkTxnOps(req: TxnRequest, maxOps: number): void {
  const opc = Math.max(req.compare.length, req.success.length, req.failure.length);
  if (opc > maxOps) throw Errors.tooManyOps();
  for (const c of req.compare) if (c.key.length === 0) throw Errors.emptyKey();
  for (const ops of [req.success, req.failure]) {
    for (const op of ops) {
      if (op.requestRange) checkRange(op.requestRange);
      else if (op.requestPut) checkPut(op.requestPut);
      else if (op.requestDeleteRange) checkDelete(op.requestDeleteRange);
      else if (op.requestTxn) checkTxnOps(op.requestTxn, maxOps - opc);
      else throw Errors.keyNotFound(); // an empty op: etcd's answer
    }
  }
}

/**
 * etcd's checkIntervals: no key is put twice, or put and deleted, on any path a txn can take.
 * The two branches of a nested txn exclude each other, so the same key may be put in both.
 * Each level is visited once (its children's puts and deletes are returned upwards), so the
 * cost is linear in the request times its depth, never exponential in the nesting.
 */
function checkIntervals(ops: readonly RequestOp[]): { puts: Set<string>; dels: KeyIntervals } {
  let dels = KeyIntervals.of(
    ops.flatMap((op) => (op.requestDeleteRange ? [deletedInterval(op.requestDeleteRange)] : [])),
  );
  const puts = new Set<string>();
  for (const op of ops) {
    if (!op.requestTxn) continue;
    const then = checkIntervals(op.requestTxn.success);
    const otherwise = checkIntervals(op.requestTxn.failure);
    for (const k of then.puts) {
      if (puts.has(k) || dels.contains(k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    for (const k of otherwise.puts) {
      if ((puts.has(k) && !then.puts.has(k)) || dels.contains(k)) throw Errors.duplicateKey();
      puts.add(k);
    }
    dels = dels.union(then.dels).union(otherwise.dels);
  }
  for (const op of ops) {
    if (!op.requestPut) continue;
    const k = keyStr(op.requestPut.key);
    if (puts.has(k) || dels.contains(k)) throw Errors.duplicateKey();
    puts.add(k);
  }
  return { puts, dels };
}

type Interval = readonly [lo: string, hi: string]; // [lo, hi)

/**
 * The keys a DeleteRange removes, as etcd's checkIntervals sees them: a single key is [k, k\0)
 * (the smallest key after k is k\0), and a range end is compared as the bytes it is. So "\0"
 * — every key from `key` on, to the DeleteRange itself — is the interval [key, "\0"), which
 * holds no key: etcd 3.4 accepts a txn that deletes from a key on with "\0" and puts a key in
 * that range, and a txn etcd takes must not be refused here (found by the differential test).
 */
function deletedInterval(d: DeleteRangeRequest): Interval {
  const lo = keyStr(d.key);
  return d.rangeEnd.length === 0 ? [lo, `${lo}\0`] : [lo, keyStr(d.rangeEnd)];
}

/** A set of key intervals kept sorted and disjoint, so a point lookup is a binary search. */
class KeyIntervals {
  private constructor(private readonly ivs: readonly Interval[]) {}

  static of(ivs: readonly Interval[]): KeyIntervals {
    // An empty or inverted interval holds no key (etcd's interval tree never matches one).
    const sorted = ivs.filter(([lo, hi]) => lo < hi).sort((a, b) => compareOrdered(a[0], b[0]));
    const out: Array<[string, string]> = [];
    for (const [lo, hi] of sorted) {
      const last = out[out.length - 1];
      if (last && lo <= last[1]) {
        if (hi > last[1]) last[1] = hi;
      } else out.push([lo, hi]);
    }
    return new KeyIntervals(out);
  }

  union(o: KeyIntervals): KeyIntervals {
    if (o.ivs.length === 0) return this;
    if (this.ivs.length === 0) return o;
    return KeyIntervals.of([...this.ivs, ...o.ivs]);
  }

  contains(k: string): boolean {
    // The last interval starting at or before k is the only one that can hold it.
    let lo = 0;
    let hi = this.ivs.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.ivs[mid]![0] <= k) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found >= 0 && k < this.ivs[found]![1];
  }
}

// ------------------------------------------------------------------ apply (deterministic)

export interface KvContext {
  store: MvccStore;
}

/**
 * A put, as etcd's applier makes it: its lease must exist (checked first, before anything is
 * read: an ignore_lease put names none, and keeps a key's lease, which exists while the key
 * does), then the key is read if the put needs its current version (counted as a range).
 */
export function applyPut(w: WriteTxn, store: MvccStore, req: PutRequest): Omit<PutResponse, 'header'> {
  if (req.lease !== 0n && !(store.leases?.exists(req.lease) ?? false)) throw Errors.leaseNotFound();
  let value = req.value;
  let lease = req.lease;
  if (req.prevKv || req.ignoreValue || req.ignoreLease) w.stats.range();
  if (req.ignoreValue || req.ignoreLease) {
    const cur = w.get(req.key);
    if (!cur) throw Errors.keyNotFound();
    if (req.ignoreValue) value = cur.value;
    if (req.ignoreLease) lease = cur.lease;
  }
  const prev = w.put(req.key, value, lease);
  w.stats.put(req.key.length + value.length);
  return { prevKv: req.prevKv ? prev : undefined };
}

/** A DeleteRange, in steps for MvccStore.writeInSlices (over many keys, a slice at a time). */
export function* applyDeleteInSlices(w: WriteTxn, req: DeleteRangeRequest, respond = true): Generator<void, Omit<DeleteRangeResponse, 'header'>> {
  if (req.prevKv) w.stats.range();
  w.stats.delete();
  // The deleted key-values are made only where a client waits for them: a DeleteRange of
  // 500,000 keys with prev_kv made as many objects on every member for one answer.
  const { deleted, prevKvs } = yield* w.deleteRangeInSlices(req.key, req.rangeEnd, req.prevKv && respond);
  return { deleted: BigInt(deleted), prevKvs };
}

/**
 * Whether compare `c` holds for `kv` (undefined: a missing key). `value`: c.value as a latin1
 * string, to compare a stored value as it is held (a string of its bytes, whose order is theirs)
 * rather than as a Buffer made for it.
 */
function compareOne(c: Compare, kv: KeyValue | undefined, value?: string): boolean {
  let r: number;
  switch (c.target) {
    case Compare_CompareTarget.VALUE:
      if (!kv) return false; // a missing key has no value to compare
      if (value !== undefined && kv instanceof StoredKeyValue) {
        const v = kv.valueString;
        r = v < value ? -1 : v > value ? 1 : 0;
      } else r = Buffer.compare(kv.value, c.value ?? Buffer.alloc(0));
      break;
    case Compare_CompareTarget.VERSION:
      r = compareOrdered(kv?.version ?? 0n, c.version ?? 0n);
      break;
    case Compare_CompareTarget.CREATE:
      r = compareOrdered(kv?.createRevision ?? 0n, c.createRevision ?? 0n);
      break;
    case Compare_CompareTarget.MOD:
      r = compareOrdered(kv?.modRevision ?? 0n, c.modRevision ?? 0n);
      break;
    case Compare_CompareTarget.LEASE:
      r = compareOrdered(kv?.lease ?? 0n, c.lease ?? 0n);
      break;
    default:
      r = 0; // etcd's compareKV: a target it does not know compares equal
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
      return true; // etcd's compareKV: a result it does not know holds
  }
}

/** etcd's applyCompare: every key in the range must satisfy `c` (none: as a missing key), decided at the first that does not. */
export function evalCompare(w: CompareReader, c: Compare): boolean {
  return runSteps(evalCompareSteps(w, c));
}

/** evalCompare in steps: a range of many keys is walked a slice at a time (WriteTxn.everyInSlices). */
function* evalCompareSteps(w: CompareReader, c: Compare): Generator<void, boolean> {
  const value = c.target === Compare_CompareTarget.VALUE ? keyStr(c.value ?? NO_VALUE) : undefined;
  return (yield* w.everyInSlices(c.key, c.rangeEnd, (kv) => compareOne(c, kv, value))) ?? compareOne(c, undefined);
}

const NO_VALUE = new Uint8Array(0);

/** Whether compare `c` holds for the key-values in its range (a missing key has a version 0). */
function compareHolds(c: Compare, kvs: readonly KeyValue[]): boolean {
  if (kvs.length === 0) return compareOne(c, undefined);
  return kvs.every((kv) => compareOne(c, kv));
}

/**
 * etcd's compareToPath: the outcome of the txn's compares and of every nested txn's compares on
 * the path taken, in the order they are met. All are evaluated against the state before the
 * txn, as etcd does: a nested compare does not see the writes made by the ops before it.
 */
function* txnPath(r: CompareReader, req: TxnRequest, stats: MvccStats, path: boolean[] = []): Generator<void, boolean[]> {
  let ok = true;
  for (const c of req.compare) {
    stats.range();
    if (!(yield* evalCompareSteps(r, c))) {
      ok = false;
      break;
    }
  }
  path.push(ok);
  for (const op of ok ? req.success : req.failure) if (op.requestTxn) yield* txnPath(r, op.requestTxn, stats, path);
  return path;
}

/** Visits the ops on the txn's path (nested ones included), as etcd's checkRequests. */
function forEachOpOnPath(req: TxnRequest, path: readonly boolean[], f: (op: RequestOp) => void, at = { i: 0 }): void {
  const ops = path[at.i++] ? req.success : req.failure;
  for (const op of ops) {
    if (op.requestTxn) forEachOpOnPath(op.requestTxn, path, f, at);
    else f(op);
  }
}

/**
 * What can make a txn fail, checked on its path before anything is written (etcd's checkPut
 * then checkRange): a put's lease must exist and an ignore_value/ignore_lease put needs the key;
 * a range's revision must be neither in the future nor compacted. `rev` and `compactRev` are
 * the store's before the txn. A negative revision is checked too, as etcd's checkRequestRange
 * does (only 0 is exempt): below the compact revision it fails the txn as compacted, though a
 * Range of its own reads the current revision with it. Before any compaction (compact
 * revision -1), -1 passes and reads the current revision.
 */
function checkTxnPath(w: WriteTxn, store: MvccStore, req: TxnRequest, path: readonly boolean[]): void {
  forEachOpOnPath(req, path, (op) => {
    const p = op.requestPut;
    if (!p) return;
    if (p.ignoreValue || p.ignoreLease) {
      w.stats.range();
      if (!w.get(p.key)) throw Errors.keyNotFound();
    }
    if (p.lease !== 0n && !(store.leases?.exists(p.lease) ?? false)) throw Errors.leaseNotFound();
  });
  forEachOpOnPath(req, path, (op) => {
    const rev = op.requestRange?.revision ?? 0n;
    if (rev === 0n) return;
    if (rev > store.currentRev) throw Errors.futureRev();
    if (rev < store.compactRev) throw Errors.compacted();
  });
}

/**
 * Applies a txn inside a write transaction. Everything that can fail is checked first, so a
 * txn that answers an error has written nothing; anything that still throws later is rolled
 * back by MvccStore.write (all or nothing).
 *
 * `respond` false: nobody reads the response (a member applying another's request), so only
 * the writes are made, the same ones in the same order, and `responses` is left empty. Its
 * ranges are skipped: reads change nothing, and what could make them fail (a future or
 * compacted revision) is checked above for both.
 *
 * `deferred` given: the ranges that may read many keys are not read here but listed there, with
 * empty answers in their place, to be read after the write in slices (readDeferredRanges) —
 * applying is one synchronous step, and a range over millions of keys inside it stalled the
 * answering member for seconds. Only ranges whose view is a whole revision are deferred: one
 * with its own revision, one before any write on the txn's path (the store before the txn) and
 * one after every write (the store after it); a range between writes is read here.
 */
export function applyTxn(w: WriteTxn, store: MvccStore, req: TxnRequest, respond = true, deferred?: DeferredRange[]): Omit<TxnResponse, 'header'> {
  return runSteps(applyTxnInSlices(w, store, req, respond, deferred));
}

/**
 * applyTxn in steps, for MvccStore.writeInSlices: its compares, its DeleteRanges and its ranges
 * read in the apply (between two of its writes) go a slice of keys at a time, so each step is
 * bounded. Its puts are few (--max-txn-ops).
 */
export function* applyTxnInSlices(w: WriteTxn, store: MvccStore, req: TxnRequest, respond = true, deferred?: DeferredRange[]): Generator<void, Omit<TxnResponse, 'header'>> {
  let path: boolean[];
  try {
    path = yield* txnPath(w, req, w.stats);
    checkTxnPath(w, store, req, path);
  } finally {
    // etcd reads the compares in a transaction of their own, then makes the ops in another.
    w.stats.end();
  }
  if (!respond) {
    // The ranges are not read (nobody reads the answer), but counted as every member's etcd reads them.
    const ops: RequestOp[] = [];
    forEachOpOnPath(req, path, (op) => void ops.push(op));
    for (const op of ops) {
      if (op.requestPut) applyPut(w, store, op.requestPut);
      else if (op.requestDeleteRange) yield* applyDeleteInSlices(w, op.requestDeleteRange, false);
      else if (op.requestRange) w.stats.range();
    }
    return { succeeded: path[0]!, responses: [] };
  }
  let writes = 0;
  if (deferred) forEachOpOnPath(req, path, (op) => void (op.requestPut || op.requestDeleteRange ? writes++ : 0));
  return yield* applyTxnPath(w, store, req, path, { i: 0, writes: 0, total: writes, deferred });
}

/**
 * A range of a txn that writes, read after the txn was applied (applyTxn's `deferred`): its
 * answer `resp` (empty until read), what it asks, and the revision whose state it saw in the
 * txn ('after': the store's right after the txn, known once it is applied).
 */
export interface DeferredRange {
  resp: RangeResponse;
  req: RangeRequest;
  rev: bigint | 'after';
}

/** Where applyTxnPath is on the txn's path: compares taken, writes made of how many, deferrals. */
interface PathCursor {
  i: number;
  writes: number;
  total: number;
  deferred?: DeferredRange[];
}

/** The revision a range at this point of the path sees as a whole, if it does (see applyTxn). */
function wholeRevision(w: WriteTxn, req: RangeRequest, at: PathCursor): bigint | 'after' | undefined {
  if (req.rangeEnd.length === 0) return undefined; // one key: cheap, read at once
  if (req.revision > 0n) return req.revision;
  if (at.writes === 0) return w.rev - 1n;
  if (at.writes === at.total) return 'after';
  return undefined;
}

/**
 * The header of a response inside a txn, as etcd's applier makes it: the revision only (the
 * member's fields are in the txn's own header). `revision`: for a range the revision it read
 * (the store's as the txn has changed it so far, whatever revision the range asked for), for a
 * write the revision the store is at after it.
 */
const opHeader = (revision: bigint): ResponseHeader => ({ clusterId: 0n, memberId: 0n, revision, raftTerm: 0n });

/** A nested txn's header: left empty by etcd (newTxnResp), revision 0 included. */
const nestedTxnHeader = (): ResponseHeader => opHeader(0n);

/** The store's revision at this point of a write txn (etcd's storeTxnWrite: begin + 1 once changed). */
const revSoFar = (w: WriteTxn): bigint => (w.changed ? w.rev : w.rev - 1n);

function* applyTxnPath(w: WriteTxn, store: MvccStore, req: TxnRequest, path: readonly boolean[], at: PathCursor): Generator<void, Omit<TxnResponse, 'header'>> {
  const succeeded = path[at.i++]!;
  const responses: ResponseOp[] = [];
  for (const op of succeeded ? req.success : req.failure) {
    if (op.requestRange) {
      w.stats.range();
      const rev = at.deferred ? wholeRevision(w, op.requestRange, at) : undefined;
      if (rev !== undefined) {
        const resp: RangeResponse = { header: opHeader(revSoFar(w)), kvs: [], more: false, count: 0n };
        at.deferred!.push({ resp, req: op.requestRange, rev });
        responses.push({ responseRange: resp });
        continue;
      }
      const r = yield* finishRange(op.requestRange, yield* w.rangeInSlices(op.requestRange.key, op.requestRange.rangeEnd, rangeOptions(op.requestRange)));
      responses.push({ responseRange: { header: opHeader(revSoFar(w)), kvs: r.kvs, more: r.more, count: r.count } });
    } else if (op.requestPut) {
      at.writes++;
      const r = applyPut(w, store, op.requestPut);
      responses.push({ responsePut: { header: opHeader(revSoFar(w)), ...r } });
    } else if (op.requestDeleteRange) {
      at.writes++;
      const r = yield* applyDeleteInSlices(w, op.requestDeleteRange);
      responses.push({ responseDeleteRange: { header: opHeader(revSoFar(w)), ...r } });
    } else if (op.requestTxn) {
      responses.push({ responseTxn: { header: nestedTxnHeader(), ...(yield* applyTxnPath(w, store, op.requestTxn, path, at)) } });
    } else {
      responses.push({});
    }
  }
  return { succeeded, responses };
}

/** What readDeferredRanges is still reading, by the response it fills. */
const deferredReads = new WeakMap<object, Promise<void>>();

/**
 * Reads a txn's deferred ranges (applyTxn's `deferred`) into their answers, in slices that yield
 * (`pause`), at the revisions they saw — starting now, right after the txn was applied: the store
 * is pinned at once (pruning waits, so a compaction applied meanwhile takes nothing these reads
 * need) and released when they are done, whether anyone waits for them or not. `res`, the txn's
 * answer, is complete once settled(res) resolves.
 */
export function readDeferredRanges(res: object, store: MvccStore, deferred: readonly DeferredRange[], pause: () => Promise<void>, slice?: number): void {
  const view = store.pinnedRead();
  const read = (async () => {
    try {
      for (const d of deferred) {
        const rev = d.rev === 'after' ? view.rev : d.rev;
        // The pinned view, read at the revision this range saw.
        const atRev = {
          rangeAsync: (key: Uint8Array, end: Uint8Array | undefined, o: RangeOptions, yieldFn: () => Promise<void>, chunk?: number) =>
            view.rangeAsync(key, end, { ...o, revision: rev }, yieldFn, chunk),
        };
        const r = await doRangeAsync(atRev, d.req, pause, slice);
        d.resp.kvs = r.kvs;
        d.resp.more = r.more;
        d.resp.count = r.count;
      }
    } finally {
      view.release();
    }
  })();
  deferredReads.set(res, read);
  read.catch(() => {}); // reported to whoever awaits settled(res)
}

/** `value` once the ranges deferred into it (readDeferredRanges), if any, are read. */
export async function settled<T>(value: T): Promise<T> {
  const read = typeof value === 'object' && value !== null ? deferredReads.get(value) : undefined;
  if (read) await read;
  return value;
}

/**
 * A read-only Txn (txnIsReadOnly) served by a member outside the log, as etcd serves one after
 * a linearizable read point: its compares and the ranges on its path all read the revision that
 * was current when it began (pruning waits meanwhile), collected and sorted in slices with a
 * yield (`pause`) between them, so a Txn that reads millions of keys does not stall the member
 * the way applying it whole would. The answer is applyTxn's at that revision; `header` makes
 * its header (with that revision).
 */
export async function readTxnAsync(
  store: MvccStore,
  req: TxnRequest,
  header: (rev: bigint) => TxnResponse['header'],
  pause: () => Promise<void>,
  slice?: number,
): Promise<TxnResponse> {
  const view = store.pinnedRead();
  // Compares and ranges in one read transaction, as etcd counts a read-only txn's.
  const reads = { n: 0 };
  try {
    const path: boolean[] = [];
    await readTxnPath(view, req, path, pause, slice, reads);
    // What can fail is checked before anything is read, as checkTxnPath does (negative
    // revisions too).
    forEachOpOnPath(req, path, (op) => {
      const rev = op.requestRange?.revision ?? 0n;
      if (rev !== 0n) view.checkRev(rev);
    });
    return { header: header(view.rev), ...(await readTxnOps(view, req, path, { i: 0 }, pause, slice, reads)) };
  } finally {
    view.release();
    store.stats.record(reads.n);
  }
}

/** txnPath for readTxnAsync: the compares' outcomes on the path, at the pinned revision. */
async function readTxnPath(view: PinnedRead, req: TxnRequest, path: boolean[], pause: () => Promise<void>, slice: number | undefined, reads: { n: number }): Promise<void> {
  let ok = true;
  for (const c of req.compare) {
    reads.n++;
    if (!compareHolds(c, (await view.rangeAsync(c.key, c.rangeEnd, {}, pause, slice)).kvs)) {
      ok = false;
      break;
    }
  }
  path.push(ok);
  for (const op of ok ? req.success : req.failure) if (op.requestTxn) await readTxnPath(view, op.requestTxn, path, pause, slice, reads);
}

/** applyTxnPath for readTxnAsync (ranges and nested read-only txns only). */
async function readTxnOps(
  view: PinnedRead,
  req: TxnRequest,
  path: readonly boolean[],
  at: { i: number },
  pause: () => Promise<void>,
  slice: number | undefined,
  reads: { n: number },
): Promise<Omit<TxnResponse, 'header'>> {
  const succeeded = path[at.i++]!;
  const responses: ResponseOp[] = [];
  for (const op of succeeded ? req.success : req.failure) {
    if (op.requestRange) {
      reads.n++;
      const r = await doRangeAsync(view, op.requestRange, pause, slice);
      responses.push({ responseRange: { header: opHeader(view.rev), kvs: r.kvs, more: r.more, count: r.count } });
    } else if (op.requestTxn) {
      responses.push({ responseTxn: { header: nestedTxnHeader(), ...(await readTxnOps(view, op.requestTxn, path, at, pause, slice, reads)) } });
    } else {
      throw new Error('readTxnAsync: a txn that writes must be applied through the log');
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
