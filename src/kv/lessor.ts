// Leases. Grants and revokes go through the log (every node knows every lease and its keys);
// expiry deadlines are kept only by the leader, in its own monotonic clock, as in etcd: the
// leader renews on keepalive and, when a lease expires, proposes its revocation through Raft.
// A new leader restarts every lease's countdown with a full TTL (it cannot know how much of the
// old leader's countdown had run).

import type { LeaseHooks } from './mvcc.js';
import { Errors } from './errors.js';

export const MAX_LEASE_TTL = 9_000_000_000n;

export interface Lease {
  id: bigint;
  /** Granted TTL in seconds. */
  ttl: bigint;
  keys: Set<string>;
  /** Leader-local deadline (ms, monotonic); undefined on followers. */
  expiry: number | undefined;
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

export class Lessor implements LeaseHooks {
  readonly leases = new Map<bigint, Lease>();
  readonly stats: LeaseStats = { granted: 0, revoked: 0, renewed: 0, expired: 0 };
  private primary = false;

  constructor(
    /** Minimum TTL in seconds (etcd: 1.5 election timeouts, rounded up). */
    readonly minTTL: bigint,
    private readonly now: () => number,
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
    if (this.leases.has(id)) throw Errors.leaseExist();
    if (ttl > MAX_LEASE_TTL) throw Errors.leaseTTLTooLarge();
    const t = ttl < this.minTTL ? this.minTTL : ttl;
    const l: Lease = { id, ttl: t, keys: new Set(), expiry: this.primary ? this.now() + Number(t) * 1000 : undefined };
    this.leases.set(id, l);
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
    if (!this.stats.muted) this.stats.revoked++;
  }

  /** Leader only: a keepalive. Returns the TTL. */
  renew(id: bigint): bigint {
    const l = this.leases.get(id);
    if (!l) throw Errors.leaseNotFound();
    l.expiry = this.now() + Number(l.ttl) * 1000;
    this.stats.renewed++;
    return l.ttl;
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
   * This node became leader: start every countdown afresh, `extendMs` longer (etcd's Promote,
   * given an election timeout: a lease kept alive through the old leader gets the time its
   * client needs to find the new one).
   */
  promote(extendMs = 0): void {
    this.primary = true;
    const now = this.now();
    for (const l of this.leases.values()) l.expiry = now + extendMs + Number(l.ttl) * 1000;
  }

  demote(): void {
    this.primary = false;
    for (const l of this.leases.values()) l.expiry = undefined;
  }

  isPrimary(): boolean {
    return this.primary;
  }

  /** Leader only: leases past their deadline. */
  expired(): bigint[] {
    if (!this.primary) return [];
    const now = this.now();
    const out: bigint[] = [];
    for (const l of this.leases.values()) if (l.expiry !== undefined && l.expiry <= now) out.push(l.id);
    return out;
  }

  toImage(): Array<[string, string]> {
    return [...this.leases.values()].map((l) => [l.id.toString(), l.ttl.toString()]);
  }

  restore(img: Array<[string, string]>): void {
    this.leases.clear();
    for (const [id, ttl] of img) {
      this.leases.set(BigInt(id), { id: BigInt(id), ttl: BigInt(ttl), keys: new Set(), expiry: undefined });
    }
    if (this.primary) this.promote();
  }
}
