// The key-value calls etcd's concurrency recipes (client/v3/concurrency: Mutex, Election) make,
// done in-process on this member as the caller of a Lock or Election request: reads are
// linearizable and checked against the caller's permissions, writes are proposed with the
// caller's token (checked when applied), watches are this member's own watchers. etcd serves
// v3lock and v3election with an in-process clientv3 on the same server, so these are the same
// requests the KV, Lease and Watch services serve — without a gRPC hop to ourselves.

import type { Event, KeyValue } from '../gen/etcd/kv.js';
import { Event_EventType } from '../gen/etcd/kv.js';
import {
  Compare_CompareResult,
  Compare_CompareTarget,
  type Compare,
  type DeleteRangeResponse,
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RangeResponse,
  type RequestOp,
  type ResponseHeader,
  type TxnResponse,
} from '../gen/etcd/rpc.js';
import { checkRange } from '../auth/apply-checks.js';
import { type Caller, authOf } from '../auth/frontend.js';
import { checkDelete, doRangeAsync } from '../kv/kv-ops.js';
import { yieldToEventLoop } from '../util/yield.js';
import { EtcdError, ErrorCode, Errors } from '../kv/errors.js';
import type { Watcher } from '../kv/watch-hub.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { randomInt63 } from '../util/ids.js';
import { throwIfCancelled, untilCancelled } from './call-cancellation.js';

/** One revision's events on a watched range. */
export interface WatchBatch {
  events: Event[];
  rev: bigint;
}

/**
 * clientv3's GetPrefixRangeEnd: the smallest key greater than every key starting with `prefix`
 * ("\0", the end of the keyspace, when every byte is 0xff).
 */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]! += 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/** Compare: the key's create revision equals `rev` (0: the key does not exist). */
export function createRevisionIs(key: Buffer, rev: bigint): Compare {
  return { result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.CREATE, key, createRevision: rev, rangeEnd: Buffer.alloc(0) };
}

export const putOp = (key: Buffer, value: Buffer, lease: bigint): RequestOp => ({
  requestPut: { key, value, lease, prevKv: false, ignoreValue: false, ignoreLease: false },
});

export const getOp = (key: Buffer): RequestOp => ({ requestRange: RangeRequest.fromPartial({ key }) });

export const deleteOp = (key: Buffer): RequestOp => ({ requestDeleteRange: { key, rangeEnd: Buffer.alloc(0), prevKv: false } });

/** clientv3's WithFirstCreate on a prefix: the key under `prefix` created first. */
export function firstCreated(prefix: Buffer): RangeRequest {
  return RangeRequest.fromPartial({
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    sortTarget: RangeRequest_SortTarget.CREATE,
    sortOrder: RangeRequest_SortOrder.ASCEND,
    limit: 1n,
  });
}

/** clientv3's WithLastCreate + WithMaxCreateRev: the key under `prefix` created last, at or before `maxCreateRev`. */
export function lastCreatedUpTo(prefix: Buffer, maxCreateRev: bigint): RangeRequest {
  return RangeRequest.fromPartial({
    key: prefix,
    rangeEnd: prefixEnd(prefix),
    sortTarget: RangeRequest_SortTarget.CREATE,
    sortOrder: RangeRequest_SortOrder.DESCEND,
    limit: 1n,
    maxCreateRevision: maxCreateRev,
  });
}

/**
 * What an error looks like once it went through clientv3, as it does in etcd's lock and
 * election servers: clientv3 turns etcd's gRPC errors into plain errors carrying only the
 * message, which the handler returns, so the caller sees code UNKNOWN with etcd's message
 * (checked against etcd 3.4: Lock on a missing lease answers UNKNOWN "etcdserver: requested
 * lease not found", not NOT_FOUND).
 */
export function throughClient(e: unknown): unknown {
  return e instanceof EtcdError ? new EtcdError(ErrorCode.UNKNOWN, e.message) : e;
}

/** Revisions a KeyWatch holds for a reader that does not keep up; past them it catches up from the history. */
export const KEY_WATCH_MAX_QUEUED = 64;

/**
 * A watch on one key or range from a start revision, read one revision at a time. Events
 * arriving while nobody reads are queued, so none is lost between two reads — up to
 * KEY_WATCH_MAX_QUEUED revisions: past that the watcher is set aside (the hub's unsynced
 * watchers) and caught up from the history once the reader has taken from the queue, so a
 * reader held back (an Observe stream whose client does not read) holds a bounded queue.
 * If that history is compacted meanwhile, next() fails with etcd's compaction error.
 */
export class KeyWatch {
  private readonly queue: WatchBatch[] = [];
  private waiter: ((b: WatchBatch) => void) | undefined;
  private failWaiter: ((e: Error) => void) | undefined;
  private readonly watcher: Watcher;
  private closed = false;
  /** The hub was told the queue is full: it resumes this watcher from the history when asked. */
  private behind = false;
  /** Set when the history this watch still needed was compacted away. */
  private failed: Error | undefined;

  constructor(
    private readonly s: EtcdServer,
    key: Buffer,
    rangeEnd: Buffer | undefined,
    startRevision: bigint,
  ) {
    this.watcher = {
      key,
      rangeEnd,
      startRevision,
      prevKv: false,
      noPut: false,
      noDelete: false,
      deliver: (events, rev) => this.push({ events, rev }),
      // As clientv3's watch reports it to etcd's lock and election servers.
      onCompacted: () => this.fail(throughClient(Errors.compacted()) as Error),
    };
    // The history since startRevision is delivered now, batch by batch (add throws if it was
    // compacted away); this watcher's queue takes everything.
    s.watchHub.add(this.watcher);
    s.watchHub.resume(this.watcher);
  }

  /** False when the queue is full: the hub stops delivering to this watcher until resumed. */
  private push(b: WatchBatch): boolean {
    if (this.closed) return true;
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      this.failWaiter = undefined;
      w(b);
      return true;
    }
    this.queue.push(b);
    if (this.queue.length < KEY_WATCH_MAX_QUEUED) return true;
    this.behind = true;
    return false;
  }

  private fail(e: Error): void {
    this.failed = e;
    const f = this.failWaiter;
    this.waiter = undefined;
    this.failWaiter = undefined;
    f?.(e);
  }

  /** The next revision's events; rejects when `signal` aborts, or the history it needs was compacted. */
  next(signal: AbortSignal): Promise<WatchBatch> {
    const queued = this.queue.shift();
    if (this.behind && this.queue.length <= KEY_WATCH_MAX_QUEUED / 2 && !this.closed) {
      // Room again: what the queue did not take is read from the history (after what it holds).
      this.behind = false;
      this.s.watchHub.resume(this.watcher);
    }
    if (queued) return untilCancelled(signal, Promise.resolve(queued));
    if (this.failed) return Promise.reject(this.failed);
    return untilCancelled(
      signal,
      new Promise<WatchBatch>((resolve, reject) => {
        this.waiter = resolve;
        this.failWaiter = reject;
      }),
    );
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.waiter = undefined;
    this.failWaiter = undefined;
    this.queue.length = 0;
    this.s.watchHub.remove(this.watcher);
  }
}

/** The KV, Lease and Watch calls of one Lock/Election request, made as its caller. */
export class CallerKv {
  constructor(
    private readonly s: EtcdServer,
    private readonly caller: Caller,
  ) {}

  /** A linearizable Range, as the KV service serves one (permissions checked on this member). */
  async get(req: RangeRequest): Promise<RangeResponse> {
    try {
      await this.s.linearizableRead();
      const reader = await authOf(this.s).readerOf(this.caller);
      if (reader) checkRange(this.s.sm.auth, reader, req);
      this.s.sm.store.stats.record(1);
      // In slices: a Lock or an Election names its prefix, which may hold any number of keys
      // (Leader over 300,000 keys held the loop 289 ms in one turn).
      const r = await doRangeAsync(this.s.sm.store, req, yieldToEventLoop);
      return { header: this.s.header(r.rev), kvs: r.kvs, more: r.more, count: r.count };
    } catch (e) {
      throw throughClient(e);
    }
  }

  /** The single key `key`, if it exists. */
  async getKey(key: Buffer): Promise<{ header: ResponseHeader; kv: KeyValue | undefined }> {
    const r = await this.get(RangeRequest.fromPartial({ key }));
    return { header: r.header!, kv: r.kvs[0] };
  }

  async txn(compare: Compare[], success: RequestOp[], failure: RequestOp[]): Promise<TxnResponse> {
    try {
      return await authOf(this.s).propose(this.caller, 'txn', { compare, success, failure });
    } catch (e) {
      throw throughClient(e);
    }
  }

  async delete(key: Buffer): Promise<DeleteRangeResponse> {
    try {
      const req = { key, rangeEnd: Buffer.alloc(0), prevKv: false };
      checkDelete(req);
      return await authOf(this.s).propose(this.caller, 'deleteRange', req);
    } catch (e) {
      throw throughClient(e);
    }
  }

  /** A new lease of `ttl` seconds (the lease a concurrency.Session makes when given none). */
  async grantLease(ttl: bigint): Promise<bigint> {
    try {
      const r = await authOf(this.s).propose(this.caller, 'leaseGrant', { TTL: ttl, ID: randomInt63() });
      return r.ID;
    } catch (e) {
      throw throughClient(e);
    }
  }

  /**
   * Watches from `startRevision` on this member. The caller may read the range (the Get that
   * found what to watch checked it), as etcd's watch would check.
   */
  watch(key: Buffer, rangeEnd: Buffer | undefined, startRevision: bigint): KeyWatch {
    try {
      return new KeyWatch(this.s, key, rangeEnd, startRevision);
    } catch (e) {
      throw throughClient(e);
    }
  }

  /** concurrency's waitDelete: until `key` is deleted at or after revision `rev`. */
  async waitDelete(key: Buffer, rev: bigint, signal: AbortSignal): Promise<void> {
    const w = this.watch(key, undefined, rev);
    try {
      for (;;) {
        const b = await w.next(signal);
        if (b.events.some((ev) => ev.type === Event_EventType.DELETE)) return;
      }
    } finally {
      w.close();
    }
  }

  /**
   * concurrency's waitDeletes: until no key under `prefix` created at or before `maxCreateRev`
   * is left, waiting for the last created of them to go, then looking again. Answers the header
   * of the last look (the one that found none).
   */
  async waitDeletes(prefix: Buffer, maxCreateRev: bigint, signal: AbortSignal): Promise<ResponseHeader> {
    for (;;) {
      throwIfCancelled(signal);
      const r = await this.get(lastCreatedUpTo(prefix, maxCreateRev));
      const last = r.kvs[0];
      if (!last) return r.header!;
      await this.waitDelete(last.key, r.header!.revision, signal);
    }
  }
}
