// Member, cluster and request ids, computed as etcd computes them so that the same flags
// give the same ids (and `etcdctl member list` output looks familiar).

import { createHash, randomBytes } from 'node:crypto';
import { compareOrdered } from './compare.js';

/** etcd: sha1(sorted peer URLs joined + cluster token), first 8 bytes big-endian. */
export function memberId(peerUrls: string[], clusterToken: string): bigint {
  const h = createHash('sha1').update([...peerUrls].sort().join('') + clusterToken).digest();
  return h.readBigUInt64BE(0);
}

/** etcd: sha1 over the sorted member ids (8 bytes big-endian each), first 8 bytes. */
export function clusterId(memberIds: bigint[]): bigint {
  const ids = [...memberIds].sort(compareOrdered);
  const b = Buffer.alloc(8 * ids.length);
  ids.forEach((id, i) => b.writeBigUInt64BE(id, 8 * i));
  return createHash('sha1').update(b).digest().readBigUInt64BE(0);
}

/**
 * Unique proposal ids: the member id's low 16 bits, then a counter seeded from the clock so
 * ids do not repeat across restarts (etcd's idutil scheme).
 */
export class IdGenerator {
  private prefix: bigint;
  private suffix: bigint;

  constructor(member: bigint, nowMs: number = Date.now()) {
    this.prefix = (member & 0xffffn) << 48n;
    this.suffix = (BigInt(nowMs) & 0xffffffffffn) << 8n;
  }

  /** Makes the next id greater than `id` (ids must keep growing: see AppliedRequests). */
  atLeast(id: bigint): void {
    const suffix = id & 0xffffffffffffn;
    if (suffix > this.suffix) this.suffix = suffix;
  }

  next(): bigint {
    this.suffix = (this.suffix + 1n) & 0xffffffffffffn;
    return this.prefix | this.suffix;
  }
}

/** A random positive int64 (lease ids chosen by the server). */
export function randomInt63(): bigint {
  const v = randomBytes(8).readBigUInt64BE(0) & 0x7fffffffffffffffn;
  return v === 0n ? 1n : v;
}

export const hex = (id: bigint): string => id.toString(16);
