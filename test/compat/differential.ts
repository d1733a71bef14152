// Differential testing against real etcd 3.4: the same seeded sequence of KV, Txn, lease,
// compaction and watch requests is sent to an etcd member and to a raftkv cluster, one request
// at a time, and every answer is compared after normalization — revisions, versions, counts,
// `more`, key order, prev_kv, lease ids and TTLs as granted, watch events, and the gRPC status
// code and message of every error (clients pick error types by message). Both start empty,
// so their revisions line up exactly as long as they agree on which requests write.
//
// What is normalized away, and why: the response header's cluster_id, member_id and raft_term
// (each cluster's own); lease ids the server chose (mapped to the order of their grant); a
// lease's remaining TTL (a countdown; only "alive" vs -1 is compared); the order of a lease's
// keys and of the leases listed (etcd's come from Go maps, in random order); how a watch's
// events are cut into responses (the comparison is over the flat event list).
//
// Leases are granted with long TTLs only (a short one is granted, read and revoked within one
// step, to compare etcd's minimum TTL), so no lease expires while a sequence runs: expiry
// timing is each server's own.

import * as grpc from '@grpc/grpc-js';
import { SeededRand } from '../../src/raft/rand.js';
import type { Event, KeyValue } from '../../src/gen/etcd/kv.js';
import {
  AuthClient,
  type Compare,
  Compare_CompareResult,
  Compare_CompareTarget,
  KVClient,
  LeaseClient,
  type LeaseKeepAliveResponse,
  MaintenanceClient,
  RangeRequest,
  RangeRequest_SortOrder,
  RangeRequest_SortTarget,
  type RequestOp,
  type ResponseHeader,
  type ResponseOp,
  type TxnRequest,
  WatchClient,
  WatchCreateRequest_FilterType,
  WatchRequest,
  type WatchResponse,
} from '../../src/gen/etcd/rpc.js';

// ---------------------------------------------------------------------------------------------
// The requests

/** One step of a sequence: a request (or a short fixed exchange) sent to both servers alike. */
export type Step =
  | { kind: 'range'; req: RangeRequest }
  | { kind: 'put'; key: Buffer; value: Buffer; lease: bigint; prevKv: boolean; ignoreValue: boolean; ignoreLease: boolean }
  | { kind: 'delete'; key: Buffer; rangeEnd: Buffer; prevKv: boolean }
  | { kind: 'txn'; req: TxnRequest }
  | { kind: 'compact'; revision: bigint; physical: boolean }
  | { kind: 'grant'; id: bigint; ttl: bigint }
  | { kind: 'grant-short'; id: bigint; ttl: bigint }
  | { kind: 'revoke'; id: bigint }
  | { kind: 'ttl'; id: bigint; keys: boolean }
  | { kind: 'keepalive'; id: bigint }
  | { kind: 'leases' }
  | { kind: 'watch'; key: Buffer; rangeEnd: Buffer; startRevision: bigint; prevKv: boolean; filters: WatchCreateRequest_FilterType[] }
  | { kind: 'hash'; revision: bigint }
  | { kind: 'restart'; hard: boolean };

/** What the generator knows of the servers' state (from the reference's answers). */
export interface Known {
  revision: bigint;
  compactRevision: bigint;
}

// A small key space, so that requests meet each other's keys: ordinary keys, a prefix family,
// the smallest and largest byte values, and the empty key (an error everywhere it is refused).
const KEYS = ['a', 'a1', 'a2', 'b', 'b/', 'b/x', 'c', '\x00', '\xff', '\xff\xff'].map((k) => Buffer.from(k, 'latin1'));
const VALUES = ['', 'v1', 'v2', 'longer value', '\x00\xff'].map((v) => Buffer.from(v, 'latin1'));
// Explicit lease ids (granted with TTLs that outlive any sequence), plus one never granted.
const LEASE_IDS = [0x64n, 0x65n, 0x1234567890abcn, 0x7fffffffffffffffn, -1n];
// The last is one over etcd's MaxLeaseTTL (refused: "too large lease TTL").
const LONG_TTLS = [3600n, 86_400n, 9_000_000_001n];

const EMPTY = Buffer.alloc(0);

/** etcd's prefix end: the key with its last byte below 0xff incremented, the rest dropped. */
export function prefixEnd(key: Buffer): Buffer {
  const end = Buffer.from(key);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]); // all keys from `key` on
}

export class StepGenerator {
  private readonly r: SeededRand;

  constructor(seed: number) {
    this.r = new SeededRand(seed);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.r.intn(xs.length)]!;
  }

  private chance(p: number): boolean {
    return this.r.next() < p;
  }

  private key(): Buffer {
    return this.chance(0.02) ? EMPTY : this.pick(KEYS);
  }

  private rangeEnd(key: Buffer): Buffer {
    switch (this.r.intn(5)) {
      case 0:
      case 1:
        return EMPTY;
      case 2:
        return prefixEnd(key);
      case 3:
        return Buffer.from([0]);
      default:
        return this.pick(KEYS);
    }
  }

  /** A revision around the interesting ones: 0, compacted, the compact revision, current, future. */
  private revision(k: Known): bigint {
    switch (this.r.intn(7)) {
      case 0:
        return 0n;
      case 6:
        return -1n;
      case 1:
        return k.compactRevision > 0n ? BigInt(1 + this.r.intn(Number(k.compactRevision))) : 1n;
      case 2:
        return k.compactRevision;
      case 3:
        return k.revision + 1n;
      case 4:
        return k.revision;
      default:
        return k.compactRevision + 1n + BigInt(this.r.intn(Number(k.revision - k.compactRevision) + 1));
    }
  }

  private lease(): bigint {
    return this.chance(0.7) ? 0n : this.pick(LEASE_IDS);
  }

  private rangeReq(k: Known): RangeRequest {
    const key = this.key();
    const sorted = this.chance(0.3);
    const filtered = this.chance(0.15);
    return RangeRequest.fromPartial({
      key,
      rangeEnd: this.rangeEnd(key),
      limit: this.chance(0.3) ? BigInt(this.r.intn(5) - 1) : 0n,
      revision: this.chance(0.3) ? this.revision(k) : 0n,
      sortOrder: sorted ? this.pick([RangeRequest_SortOrder.NONE, RangeRequest_SortOrder.ASCEND, RangeRequest_SortOrder.DESCEND]) : RangeRequest_SortOrder.NONE,
      sortTarget: sorted
        ? this.pick([RangeRequest_SortTarget.KEY, RangeRequest_SortTarget.VERSION, RangeRequest_SortTarget.CREATE, RangeRequest_SortTarget.MOD, RangeRequest_SortTarget.VALUE])
        : RangeRequest_SortTarget.KEY,
      serializable: this.chance(0.3),
      keysOnly: this.chance(0.15),
      countOnly: this.chance(0.1),
      minModRevision: filtered && this.chance(0.5) ? this.revision(k) : 0n,
      maxModRevision: filtered && this.chance(0.5) ? this.revision(k) : 0n,
      minCreateRevision: filtered && this.chance(0.5) ? this.revision(k) : 0n,
      maxCreateRevision: filtered && this.chance(0.5) ? this.revision(k) : 0n,
    });
  }

  private putFields(): Omit<Extract<Step, { kind: 'put' }>, 'kind'> {
    return {
      key: this.key(),
      // Now and then a value past etcd's --max-request-bytes (1.5 MiB): "request is too large".
      value: this.chance(0.01) ? Buffer.alloc(1_600_000, 'x') : this.pick(VALUES),
      lease: this.lease(),
      prevKv: this.chance(0.4),
      ignoreValue: this.chance(0.08),
      ignoreLease: this.chance(0.08),
    };
  }

  private compare(k: Known): Compare {
    const target = this.pick([Compare_CompareTarget.VERSION, Compare_CompareTarget.CREATE, Compare_CompareTarget.MOD, Compare_CompareTarget.VALUE, Compare_CompareTarget.LEASE]);
    const key = this.key();
    const c: Compare = {
      result: this.pick([Compare_CompareResult.EQUAL, Compare_CompareResult.GREATER, Compare_CompareResult.LESS, Compare_CompareResult.NOT_EQUAL]),
      target,
      key,
      rangeEnd: this.chance(0.2) ? this.rangeEnd(key) : EMPTY,
    };
    switch (target) {
      case Compare_CompareTarget.VERSION:
        c.version = BigInt(this.r.intn(4));
        break;
      case Compare_CompareTarget.CREATE:
        c.createRevision = this.chance(0.3) ? 0n : this.revision(k);
        break;
      case Compare_CompareTarget.MOD:
        c.modRevision = this.chance(0.3) ? 0n : this.revision(k);
        break;
      case Compare_CompareTarget.VALUE:
        c.value = this.pick(VALUES);
        break;
      case Compare_CompareTarget.LEASE:
        c.lease = this.chance(0.5) ? 0n : this.pick(LEASE_IDS);
        break;
    }
    return c;
  }

  private requestOp(k: Known, depth: number): RequestOp {
    const n = this.r.intn(depth < 2 ? 10 : 9);
    if (n < 3) return { requestRange: this.rangeReq(k) };
    if (n < 7) {
      const p = this.putFields();
      return { requestPut: { key: p.key, value: p.value, lease: p.lease, prevKv: p.prevKv, ignoreValue: p.ignoreValue, ignoreLease: p.ignoreLease } };
    }
    if (n < 9) {
      const key = this.key();
      return { requestDeleteRange: { key, rangeEnd: this.rangeEnd(key), prevKv: this.chance(0.5) } };
    }
    return { requestTxn: this.txn(k, depth + 1) };
  }

  private txn(k: Known, depth = 0): TxnRequest {
    // Now and then more ops than etcd's --max-txn-ops (128) allows.
    const count = (): number => (this.chance(0.01) ? 129 + this.r.intn(3) : this.r.intn(4));
    const ops = (): RequestOp[] => Array.from({ length: count() }, () => this.requestOp(k, depth));
    return { compare: Array.from({ length: this.r.intn(3) }, () => this.compare(k)), success: ops(), failure: ops() };
  }

  /**
   * Many keys under "b/" with few distinct values in one txn: more than 12 equal sort targets,
   * where etcd's unstable sort (Go's) decides their order in a sorted Range.
   */
  private bulk(): Step {
    const success: RequestOp[] = Array.from({ length: 13 + this.r.intn(40) }, (_, i) => ({
      requestPut: { key: Buffer.from(`b/${String(i).padStart(2, '0')}`), value: VALUES[this.r.intn(3)]!, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false },
    }));
    return { kind: 'txn', req: { compare: [], success, failure: [] } };
  }

  next(k: Known): Step {
    if (this.chance(0.01)) return this.bulk();
    // Now and then both servers restart (kill -9 or a clean stop): what follows must be answered
    // as before — the revisions, the compaction, leases, the history the watches read.
    if (this.chance(0.004)) return { kind: 'restart', hard: this.chance(0.5) };
    const n = this.r.intn(100);
    if (n < 22) return { kind: 'range', req: this.rangeReq(k) };
    if (n < 47) return { kind: 'put', ...this.putFields() };
    if (n < 55) {
      const key = this.key();
      return { kind: 'delete', key, rangeEnd: this.rangeEnd(key), prevKv: this.chance(0.5) };
    }
    if (n < 72) return { kind: 'txn', req: this.txn(k) };
    if (n < 75) return { kind: 'compact', revision: this.revision(k), physical: this.chance(0.5) };
    if (n < 80) return { kind: 'grant', id: this.chance(0.15) ? 0n : this.pick(LEASE_IDS), ttl: this.pick(LONG_TTLS) };
    if (n < 81) return { kind: 'grant-short', id: this.chance(0.5) ? 0n : 0x77n, ttl: BigInt(this.r.intn(3)) };
    if (n < 85) return { kind: 'revoke', id: this.pick(LEASE_IDS) };
    if (n < 87) return { kind: 'ttl', id: this.pick(LEASE_IDS), keys: this.chance(0.5) };
    if (n < 88) return { kind: 'keepalive', id: this.pick(LEASE_IDS) };
    if (n < 90) return { kind: 'leases' };
    if (n < 93) return { kind: 'hash', revision: this.chance(0.5) ? 0n : this.revision(k) };
    const key = this.key();
    return {
      kind: 'watch',
      key,
      rangeEnd: this.rangeEnd(key),
      startRevision: this.revision(k),
      prevKv: this.chance(0.5),
      filters: this.chance(0.2) ? [this.pick([WatchCreateRequest_FilterType.NOPUT, WatchCreateRequest_FilterType.NODELETE])] : [],
    };
  }
}

// ---------------------------------------------------------------------------------------------
// A server under test

type Cb<T> = (err: grpc.ServiceError | null, res?: T) => void;
type Unary<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: Cb<Res>) => unknown;

/** A readable value for a byte string (printable ASCII as is, anything else escaped). */
function bytes(b: Buffer): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
  return s;
}

/** One server (an etcd member or a raftkv member), with the lease ids it chose mapped to names. */
export class Target {
  readonly kv: InstanceType<typeof KVClient>;
  readonly lease: InstanceType<typeof LeaseClient>;
  readonly maint: InstanceType<typeof MaintenanceClient>;
  readonly watch: InstanceType<typeof WatchClient>;
  readonly auth: InstanceType<typeof AuthClient>;
  /** Lease ids this server chose, by the order of their grant. */
  private readonly chosen = new Map<bigint, string>();

  constructor(
    readonly name: string,
    readonly endpoint: string,
    private readonly timeoutMs = 10_000,
  ) {
    const creds = grpc.credentials.createInsecure();
    this.kv = new KVClient(endpoint, creds);
    this.lease = new LeaseClient(endpoint, creds);
    this.maint = new MaintenanceClient(endpoint, creds);
    this.watch = new WatchClient(endpoint, creds);
    this.auth = new AuthClient(endpoint, creds);
  }

  /** Its clients, one channel each. */
  private get clients(): grpc.Client[] {
    return [this.kv, this.lease, this.maint, this.watch, this.auth];
  }

  close(): void {
    for (const c of this.clients) c.close();
  }

  /**
   * Resolves once every client's channel is connected again (after a restart a channel waits
   * out its reconnect backoff, and a call made meanwhile would fail at once as UNAVAILABLE).
   */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    await Promise.all(
      this.clients.map(
        (c) => new Promise<void>((resolve, reject) => c.waitForReady(deadline, (e) => (e ? reject(e) : resolve()))),
      ),
    );
  }

  /** The auth token sent with every call and stream (./auth-steps.ts sets it per step), if any. */
  token: string | undefined;

  /**
   * Restarts the server under test (`hard`: kill -9) and resolves once it serves again; set by
   * whoever started it (etcd: its one member; raftkv: the member this target talks to, or all).
   */
  restart: ((hard: boolean) => Promise<void>) | undefined;

  metadata(): grpc.Metadata {
    const m = new grpc.Metadata();
    if (this.token !== undefined) m.set('token', this.token);
    return m;
  }

  call<Req, Res>(f: Unary<Req, Res>, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => f(req, this.metadata(), { deadline: Date.now() + this.timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!))));
  }

  leaseName(id: bigint): string {
    return this.chosen.get(id) ?? `0x${id.toString(16)}`;
  }

  /** Remembers a lease id this server chose (asked for with id 0). */
  nameChosenLease(id: bigint): void {
    if (!this.chosen.has(id)) this.chosen.set(id, `chosen#${this.chosen.size + 1}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Running a step and normalizing its outcome

/** A step's outcome, as plain JSON: what must be the same on both servers. */
export type Outcome = unknown;

function kv(t: Target, x: KeyValue | undefined): unknown {
  if (!x) return undefined;
  return { key: bytes(x.key), create: String(x.createRevision), mod: String(x.modRevision), version: String(x.version), value: bytes(x.value), lease: x.lease === 0n ? '0' : t.leaseName(x.lease) };
}

/** A response header as compared: its revision alone (the ids and the term are each server's own). */
export function header(h: Pick<ResponseHeader, 'revision'> | undefined): string {
  return h ? String(h.revision) : 'no header';
}

function responseOp(t: Target, r: ResponseOp): unknown {
  if (r.responseRange) return { range: { rev: header(r.responseRange.header), count: String(r.responseRange.count), more: r.responseRange.more, kvs: r.responseRange.kvs.map((x) => kv(t, x)) } };
  if (r.responsePut) return { put: { rev: header(r.responsePut.header), prev: kv(t, r.responsePut.prevKv) } };
  if (r.responseDeleteRange)
    return { delete: { rev: header(r.responseDeleteRange.header), deleted: String(r.responseDeleteRange.deleted), prev: r.responseDeleteRange.prevKvs.map((x) => kv(t, x)) } };
  if (r.responseTxn) return { txn: { rev: header(r.responseTxn.header), succeeded: r.responseTxn.succeeded, responses: r.responseTxn.responses.map((x) => responseOp(t, x)) } };
  return 'empty response op';
}

/** A gRPC error as compared: its status and its message (anything else is the harness's own, thrown). */
export function failure(e: unknown): Outcome {
  const g = e as grpc.ServiceError;
  if (typeof g?.code === 'number') return { error: `${grpc.status[g.code]}: ${g.details}` };
  throw e;
}

/** The outcome of one step on one server, and the revisions it learned (from its headers). */
export async function runStep(t: Target, s: Step): Promise<Outcome> {
  try {
    switch (s.kind) {
      case 'range': {
        const r = await t.call(t.kv.range.bind(t.kv), s.req);
        return { rev: header(r.header), count: String(r.count), more: r.more, kvs: r.kvs.map((x) => kv(t, x)) };
      }
      case 'put': {
        const r = await t.call(t.kv.put.bind(t.kv), { key: s.key, value: s.value, lease: s.lease, prevKv: s.prevKv, ignoreValue: s.ignoreValue, ignoreLease: s.ignoreLease });
        return { rev: header(r.header), prev: kv(t, r.prevKv) };
      }
      case 'delete': {
        const r = await t.call(t.kv.deleteRange.bind(t.kv), { key: s.key, rangeEnd: s.rangeEnd, prevKv: s.prevKv });
        return { rev: header(r.header), deleted: String(r.deleted), prev: r.prevKvs.map((x) => kv(t, x)) };
      }
      case 'txn': {
        const r = await t.call(t.kv.txn.bind(t.kv), s.req);
        return { rev: header(r.header), succeeded: r.succeeded, responses: r.responses.map((x) => responseOp(t, x)) };
      }
      case 'compact': {
        const r = await t.call(t.kv.compact.bind(t.kv), { revision: s.revision, physical: s.physical });
        return { rev: header(r.header) };
      }
      case 'grant': {
        const r = await t.call(t.lease.leaseGrant.bind(t.lease), { ID: s.id, TTL: s.ttl });
        if (s.id === 0n) t.nameChosenLease(r.ID);
        return { rev: header(r.header), id: t.leaseName(r.ID), ttl: String(r.TTL), error: r.error };
      }
      case 'grant-short': {
        // A short TTL is raised to the server's minimum; read it back at once, then revoke, so
        // that the lease cannot expire on its own while the sequence goes on.
        const g = await t.call(t.lease.leaseGrant.bind(t.lease), { ID: s.id, TTL: s.ttl });
        if (s.id === 0n) t.nameChosenLease(g.ID);
        const l = await t.call(t.lease.leaseTimeToLive.bind(t.lease), { ID: g.ID, keys: false });
        await t.call(t.lease.leaseRevoke.bind(t.lease), { ID: g.ID });
        return { rev: header(g.header), id: t.leaseName(g.ID), ttl: String(g.TTL), granted: String(l.grantedTTL) };
      }
      case 'revoke': {
        const r = await t.call(t.lease.leaseRevoke.bind(t.lease), { ID: s.id });
        return { rev: header(r.header) };
      }
      case 'ttl': {
        const r = await t.call(t.lease.leaseTimeToLive.bind(t.lease), { ID: s.id, keys: s.keys });
        return { rev: header(r.header), id: t.leaseName(r.ID), alive: r.TTL > 0n ? 'alive' : String(r.TTL), granted: String(r.grantedTTL), keys: r.keys.map(bytes).sort() };
      }
      case 'keepalive': {
        // One request on a keep-alive stream, and its answer (TTL 0: no such lease).
        const call = t.lease.leaseKeepAlive(t.metadata());
        try {
          const r = await new Promise<LeaseKeepAliveResponse>((resolve, reject) => {
            call.once('data', resolve);
            call.once('error', reject);
            call.write({ ID: s.id });
          });
          return { rev: header(r.header), id: t.leaseName(r.ID), alive: r.TTL > 0n ? 'alive' : String(r.TTL) };
        } finally {
          call.cancel();
        }
      }
      case 'leases': {
        const r = await t.call(t.lease.leaseLeases.bind(t.lease), {});
        return { rev: header(r.header), leases: r.leases.map((l) => t.leaseName(l.ID)).sort() };
      }
      case 'hash': {
        const r = await t.call(t.maint.hashKv.bind(t.maint), { revision: s.revision });
        return { rev: header(r.header), hash: r.hash, compact: String(r.compactRevision) };
      }
      case 'watch':
        return await watchOnce(t, s);
      case 'restart':
        if (!t.restart) return { restarted: 'no restart hook' };
        await t.restart(s.hard);
        return { restarted: true };
    }
  } catch (e) {
    return failure(e);
  }
}

/**
 * Creates one watch and collects what it says until it has caught up: the events up to the
 * current revision (read first), a cancel, or — if it starts past the current revision — only
 * its creation. Ends early once an event at the current revision is seen; otherwise once the
 * stream has been quiet for `quietMs` (history is sent at once, so quiet means caught up).
 */
async function watchOnce(t: Target, s: Extract<Step, { kind: 'watch' }>, quietMs = 300): Promise<Outcome> {
  // The current revision, to know when the history has been sent (unknown if the step's user may
  // not read: then the stream's quiet ends it).
  const current = await t.call(t.kv.range.bind(t.kv), RangeRequest.fromPartial({ key: s.key.length > 0 ? s.key : Buffer.from([0]), serializable: false })).then(
    (r) => r.header!.revision,
    () => -1n,
  );
  const call = t.watch.watch(t.metadata());
  const responses: WatchResponse[] = [];
  try {
    return await new Promise<Outcome>((resolve, reject) => {
      let quiet: NodeJS.Timeout | undefined;
      const hardStop = setTimeout(() => done('no end within 10 s'), 10_000);
      const events: Event[] = [];
      const done = (why?: string): void => {
        clearTimeout(hardStop);
        if (quiet) clearTimeout(quiet);
        resolve({
          // Every response without events (created, canceled, compacted), then the events.
          control: responses
            .filter((r) => r.events.length === 0)
            .map((r) => ({ created: r.created, canceled: r.canceled, compact: String(r.compactRevision), reason: r.cancelReason })),
          events: events.map((e) => ({ type: e.type, kv: kv(t, e.kv), prev: kv(t, e.prevKv) })),
          ...(why ? { why } : {}),
        });
      };
      call.on('data', (r: WatchResponse) => {
        responses.push(r);
        events.push(...r.events);
        if (r.canceled || r.compactRevision !== 0n) return done();
        if (current >= 0n && events.length > 0 && events[events.length - 1]!.kv!.modRevision >= current) return done();
        if (quiet) clearTimeout(quiet);
        quiet = setTimeout(() => done(), current >= 0n && s.startRevision > current ? 50 : quietMs);
      });
      call.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
      call.write(WatchRequest.fromPartial({ createRequest: { key: s.key, rangeEnd: s.rangeEnd, startRevision: s.startRevision, prevKv: s.prevKv, filters: s.filters } }));
    });
  } finally {
    call.cancel();
  }
}

/** Servers that have not been written to. */
export const FRESH: Known = { revision: 1n, compactRevision: 0n };

/** What the generator learns from the reference's outcome of a step. */
export function learn(k: Known, s: Step, o: Outcome): Known {
  const rev = (o as { rev?: string }).rev;
  const next = { ...k };
  if (typeof rev === 'string' && /^\d+$/.test(rev)) next.revision = BigInt(rev) > k.revision ? BigInt(rev) : k.revision;
  if (s.kind === 'compact' && !(o as { error?: string }).error) next.compactRevision = s.revision > k.compactRevision ? s.revision : k.compactRevision;
  return next;
}

// ---------------------------------------------------------------------------------------------
// A whole sequence

/** What makes a sequence: a generator of steps and how a step is run on a server. */
export interface Steps<S> {
  next(k: Known): S;
  run(t: Target, s: S): Promise<Outcome>;
  /** What the generator learns from the reference's outcome of a step it made. */
  learn(k: Known, s: S, o: Outcome): Known;
  /**
   * Why the outcomes of a step that changes nothing may differ, if this is a difference raftkv
   * keeps on purpose (documented in the README); undefined for any other.
   */
  deviation?(s: S, reference: Outcome, candidate: Outcome): string | undefined;
}

/** The KV, Txn, lease, compaction, HashKV and watch steps of this file. */
export function kvSteps(seed: number): Steps<Step> {
  const gen = new StepGenerator(seed);
  return { next: (k) => gen.next(k), run: runStep, learn };
}

export interface Divergence {
  seed: number;
  index: number;
  step: unknown;
  reference: Outcome;
  candidate: Outcome;
  /** The steps before it (the last few), for a reproduction. */
  before: unknown[];
}

export function describeStep(s: unknown): string {
  return JSON.stringify(s, (_k, v: unknown) => {
    if (typeof v === 'bigint') return `${v}n`;
    if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `b'${bytes(Buffer.from((v as { data: number[] }).data))}'`;
    return v;
  });
}

/**
 * Runs `steps` steps of `kind` (seeded with `seed`) on the reference (etcd) and the candidate
 * (raftkv), one step at a time on each, and returns the first step whose outcomes differ (or
 * undefined). Both servers must be in the same state, which `known` describes (FRESH:
 * revision 1, no leases; a sequence can go on from where another ended). `onStep` reports
 * progress.
 */
export async function runSequence<S = Step>(
  reference: Target,
  candidate: Target,
  seed: number,
  steps: number,
  known: Known = FRESH,
  onStep?: (i: number, step: S, outcome: Outcome) => void,
  kind: (seed: number) => Steps<S> = kvSteps as unknown as (seed: number) => Steps<S>,
): Promise<{ divergence?: Divergence; known: Known; deviations: number }> {
  const gen = kind(seed);
  const history: S[] = [];
  let deviations = 0;
  for (let i = 0; i < steps; i++) {
    const s = gen.next(known);
    const a = await gen.run(reference, s);
    const b = await gen.run(candidate, s);
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      if (gen.deviation?.(s, a, b) !== undefined) deviations++;
      else return { divergence: { seed, index: i, step: s, reference: a, candidate: b, before: history.slice(-8) }, known, deviations };
    }
    known = gen.learn(known, s, a);
    history.push(s);
    onStep?.(i, s, a);
  }
  return { known, deviations };
}

export function describeDivergence(d: Divergence): string {
  return [
    `seed ${d.seed}, step ${d.index}: ${describeStep(d.step)}`,
    `  etcd:   ${JSON.stringify(d.reference)}`,
    `  raftkv: ${JSON.stringify(d.candidate)}`,
    '  the steps before it:',
    ...d.before.map((s) => `    ${describeStep(s)}`),
  ].join('\n');
}
