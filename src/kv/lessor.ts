// Leases. Grants and revokes go through the log (every node knows every lease and its keys);
// expiry deadlines are kept only by the leader, in its own monotonic clock, as in etcd: the
// leader renews on keepalive and, when a lease expires, proposes its revocation through Raft.
// A new leader restarts every lease's countdown with a full TTL (it cannot know how much of the
// old leader's countdown had run) — unless lease checkpoints are on (etcd's
// --experimental-enable-lease-checkpoint): then the leader records, through the log, how many
// seconds a long lease had left once per checkpoint interval, and a new leader counts down
// from there, so a lease whose leaders keep changing still expires.

import type { LeaseHooks } from './mvcc.js';
import { Errors } from './errors.js';

export const MAX_LEASE_TTL = 9_000_000_000n;

/** How often the leader checkpoints a long lease when checkpoints are on (etcd's defaultLeaseCheckpointInterval). */
export const DEFAULT_LEASE_CHECKPOINT_INTERVAL_MS = 5 * 60_000;

/** Leases in a state image: [id, ttl] or [id, ttl, remaining TTL] (decimal strings). */
export type LeaseImage = Array<[string, string] | [string, string, string]>;

export interface Lease {
  id: bigint;
  /** Granted TTL in seconds. */
  ttl: bigint;
  keys: Set<string>;
  /** Leader-local deadline (ms, monotonic); undefined on followers. */
  expiry: number | undefined;
  /**
   * Seconds left at the leader's last checkpoint (etcd's remainingTTL), applied from the log on
   * every member; 0n: none, a countdown starts from the full TTL. Cleared by the first renewal.
   */
  remainingTTL: bigint;
}

export interface LeaseCheckpointOptions {
  /**
   * How often the leader checkpoints a lease's remaining TTL (ms; etcd's 5 min); 0: never
   * (checkpoints applied from the log still count, as in etcd without a checkpointer).
   */
  intervalMs: number;
  /**
   * State images keep the checkpoints (etcd's --experimental-enable-lease-checkpoint-persist,
   * which writes them to the backend); without it a restart from an image forgets them, as
   * etcd 3.4's does.
   */
  persist: boolean;
}

/** One lease's remaining seconds, as a checkpoint proposes them (etcd's pb.LeaseCheckpoint). */
export interface LeaseCheckpoint {
  ID: bigint;
  remainingTTL: bigint;
}

/** Seconds a countdown starts from (etcd's Lease.RemainingTTL): the checkpoint if set, else the TTL. */
function countdownSeconds(l: Lease): bigint {
  return l.remainingTTL > 0n ? l.remainingTTL : l.ttl;
}

/** One lease in a state image: its remaining TTL third only when there is one to keep. */
export function leaseImageEntry(id: bigint, ttl: bigint, remainingTTL = 0n): LeaseImage[number] {
  return remainingTTL > 0n ? [id.toString(), ttl.toString(), remainingTTL.toString()] : [id.toString(), ttl.toString()];
}

/** What the lessor did, as etcd counts it (etcd_debugging_lease_*: grants and revokes on every member, renewals and expiries on the leader). */
export interface LeaseStats {
  granted: number;
  revoked: number;
  renewed: number;
  /** Expired leases the leader revoked (etcd_debugging_server_lease_expired_total). */
  expired: number;
  /** Each granted lease's TTL in seconds, after the minimum is applied (etcd_debugging_lease_ttl_total). */
  onGrant?: (ttlSeconds: number) => void;
  /** While set, grants and revokes are not counted (a restart replaying what it counted before). */
  muted?: boolean;
}

/**
 * What one lease holds in the heap (its record, map entry and key set: ~310 B measured), counted
 * in the store's size — the DB size the space quota is checked against — from its grant to its
 * revoke. etcd's leaseOverhead is 64 B (a record in bbolt); leases were counted nowhere, so a
 * client granting leases without end was bounded by nothing (~13 M would fill a 4 GB heap).
 */
export const LEASE_BYTES = 320;

export class Lessor implements LeaseHooks {
  readonly leases = new Map<bigint, Lease>();
  readonly stats: LeaseStats = { granted: 0, revoked: 0, renewed: 0, expired: 0 };
  private primary = false;
  /**
   * Leader only: when each lease is next due a checkpoint (ms). Every entry is set to now plus
   * the one interval, on a monotonic clock, and re-setting one moves it to the end: so the
   * map's insertion order is the order of due times (etcd keeps a heap for the same).
   */
  private readonly checkpointsDue = new Map<bigint, number>();

  constructor(
    /** Minimum TTL in seconds (etcd: 1.5 election timeouts, rounded up). */
    readonly minTTL: bigint,
    private readonly now: () => number,
    readonly checkpoints: LeaseCheckpointOptions = { intervalMs: 0, persist: false },
  ) {}

  exists(id: bigint): boolean {
    return this.leases.has(id);
  }

  attach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.add(key);
  }

  detach(id: bigint, key: string): void {
    this.leases.get(id)?.keys.delete(key);
  }

  /** Applied from the log. */
  grant(id: bigint, ttl: bigint): Lease {
    // etcd's lessor.Grant checks the TTL first: a too-large TTL for an existing id is "too large".
    if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge();
    if (this.leases.has(id)) throw Errors.leaseExist();
    const t = ttl < this.minTTL ? this.minTTL : ttl;
    const l: Lease = { id, ttl: t, keys: new Set(), expiry: undefined, remainingTTL: 0n };
    this.leases.set(id, l);
    if (this.primary) {
      this.refresh(l, 0);
      this.scheduleCheckpoint(l);
    }
    if (!this.stats.muted) {
      this.stats.granted++;
      this.stats.onGrant?.(Number(t));
    }
    return l;
  }

  /** The keys attached to lease `id` (a copy), or etcd's error if there is no such lease. */
  keysOf(id: bigint): string[] {
    const l = this.leases.get(id);
    if (!l) throw Errors.leaseNotFound();
    return [...l.keys];
  }

  /** Applied from the log, once the caller has deleted its keys (keysOf) in the same revision. */
  revoke(id: bigint): void {
    if (!this.leases.delete(id)) throw Errors.leaseNotFound();
    this.checkpointsDue.delete(id);
    if (!this.stats.muted) this.stats.revoked++;
  }

  /**
   * Leader only: a keepalive. Returns the TTL. The countdown restarts from the checkpointed
   * remaining TTL if one is still set (etcd's refresh): a renewal first clears it through the
   * log when checkpoints are on (mustClearCheckpoint), so this is the full TTL unless that failed.
   */
  renew(id: bigint): bigint {
    const l = this.leases.get(id);
    if (!l) throw Errors.leaseNotFound();
    this.refresh(l, 0);
    this.stats.renewed++;
    return l.ttl;
  }

  /**
   * Leader only: whether a renewal of `id` must first clear its checkpoint through the log
   * (etcd's Renew, with a checkpointer, proposes remaining_TTL 0 and waits for it): otherwise
   * a later leader would count down from the old checkpoint. At most one such entry per lease
   * per checkpoint interval, since only a set checkpoint is cleared.
   */
  mustClearCheckpoint(id: bigint): boolean {
    return this.checkpoints.intervalMs > 0 && (this.leases.get(id)?.remainingTTL ?? 0n) > 0n;
  }

  /** Applied from the log (etcd's Checkpoint): records a lease's remaining TTL on every member. */
  checkpoint(id: bigint, remainingTTL: bigint): void {
    const l = this.leases.get(id);
    if (!l) return; // revoked meanwhile: etcd ignores it too
    l.remainingTTL = remainingTTL;
    if (this.primary) this.scheduleCheckpoint(l);
  }

  /**
   * Leader only: the checkpoints due now, at most `limit` (etcd's findDueScheduledCheckpoints):
   * each lease's seconds left, rounded up. A lease taken here is scheduled again when its
   * checkpoint is applied.
   */
  dueCheckpoints(limit: number): LeaseCheckpoint[] {
    const out: LeaseCheckpoint[] = [];
    if (!this.primary) return out;
    const now = this.now();
    for (const [id, due] of this.checkpointsDue) {
      if (due > now || out.length >= limit) break;
      this.checkpointsDue.delete(id);
      const l = this.leases.get(id);
      if (!l || l.expiry === undefined) continue;
      const remainingTTL = BigInt(Math.ceil((l.expiry - now) / 1000));
      // Expired, its revocation on the way: a checkpoint of 0 would clear it instead.
      if (remainingTTL <= 0n) continue;
      // Just renewed (its full TTL left): nothing to record now, but due again an interval
      // later (etcd's drops it until its next checkpoint or promotion, so a lease renewed at
      // that moment and then left alone went back to a full TTL at each leader change).
      if (remainingTTL >= l.ttl) {
        this.scheduleCheckpoint(l);
        continue;
      }
      out.push({ ID: id, remainingTTL });
    }
    return out;
  }

  /**
   * Leader only: checkpoints that could not be made (their proposal failed) are due again one
   * interval from now, if this member still leads.
   */
  retryCheckpoints(cps: readonly LeaseCheckpoint[]): void {
    for (const cp of cps) {
      const l = this.leases.get(cp.ID);
      if (l) this.scheduleCheckpoint(l);
    }
  }

  /** A lease's countdown restarts (etcd's refresh): from its checkpoint if set, else its TTL. */
  private refresh(l: Lease, extendMs: number): void {
    l.expiry = this.now() + extendMs + Number(countdownSeconds(l)) * 1000;
  }

  /** etcd's scheduleCheckpointIfNeeded: only leases with more than one interval to go. */
  private scheduleCheckpoint(l: Lease): void {
    if (this.checkpoints.intervalMs <= 0 || !this.primary) return;
    if (countdownSeconds(l) <= BigInt(Math.trunc(this.checkpoints.intervalMs / 1000))) return;
    this.checkpointsDue.delete(l.id);
    this.checkpointsDue.set(l.id, this.now() + this.checkpoints.intervalMs);
  }

  /**
   * Remaining seconds (leader's view), or the granted TTL on a follower. Whole seconds cut
   * toward zero, as etcd's int64(Remaining().Seconds()): 9 just after a grant of 10, and below
   * zero for a lease expired but not yet revoked.
   */
  remaining(id: bigint): bigint {
    const l = this.leases.get(id);
    if (!l) throw Errors.leaseNotFound();
    if (l.expiry === undefined) return l.ttl;
    return BigInt(Math.trunc((l.expiry - this.now()) / 1000));
  }

  /**
   * This node became leader: start every countdown afresh — from its checkpoint, if any —
   * `extendMs` longer (etcd's Promote, given an election timeout: a lease kept alive through
   * the old leader gets the time its client needs to find the new one).
   */
  promote(extendMs = 0): void {
    this.primary = true;
    for (const l of this.leases.values()) {
      this.refresh(l, extendMs);
      this.scheduleCheckpoint(l);
    }
  }

  demote(): void {
    this.primary = false;
    this.checkpointsDue.clear();
    for (const l of this.leases.values()) l.expiry = undefined;
  }

  isPrimary(): boolean {
    return this.primary;
  }

  /** Leader only: whether lease `id` is past its deadline (its revocation due or on its way). */
  isExpired(id: bigint): boolean {
    const expiry = this.leases.get(id)?.expiry;
    return this.primary && expiry !== undefined && expiry <= this.now();
  }

  /** Leader only: leases past their deadline. */
  expired(): bigint[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: bigint[] = [];
    for (const l of this.leases.values()) if (l.expiry !== undefined && l.expiry <= now) out.push(l.id);
    return out;
  }

  /** [id, ttl] per lease, and its checkpointed remaining TTL if set and checkpoints persist. */
  toImage(): LeaseImage {
    return [...this.leases.values()].map((l) => leaseImageEntry(l.id, l.ttl, this.checkpoints.persist ? l.remainingTTL : 0n));
  }

  restore(img: LeaseImage): void {
    this.leases.clear();
    this.checkpointsDue.clear();
    for (const [id, ttl, remaining] of img) {
      this.leases.set(BigInt(id), { id: BigInt(id), ttl: BigInt(ttl), keys: new Set(), expiry: undefined, remainingTTL: BigInt(remaining ?? 0) });
    }
    if (this.primary) this.promote();
  }
}
