// The lease a Lock or Election request acts under: etcd's servers wrap each request in a
// concurrency.Session made with the request's lease, and a Session given no lease (0) grants
// one of 60 seconds that nothing keeps alive. etcd does this for every request carrying a lease
// field — Lock, Campaign, Proclaim and Resign — so a 0 there costs a fresh lease, as in etcd
// (checked against etcd 3.4: Proclaim and Resign with lease 0 each leave a new lease behind).

import type { CallerKv } from './caller-kv.js';

/** concurrency's defaultSessionTTL, in seconds. */
export const DEFAULT_SESSION_TTL = 60n;

/** The request's lease, or a new lease of DEFAULT_SESSION_TTL when it gave none. */
export async function sessionLease(kv: CallerKv, lease: bigint): Promise<bigint> {
  return lease === 0n ? kv.grantLease(DEFAULT_SESSION_TTL) : lease;
}

/** `<prefix><lease id in hex>`: the key a session puts under an election's or lock's prefix. */
export function sessionKey(prefix: Buffer, lease: bigint): Buffer {
  return Buffer.concat([prefix, Buffer.from(lease.toString(16))]);
}
