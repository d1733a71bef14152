// The client workload of the fault suite: concurrent clients over the etcd v3 API doing
// linearizable reads, writes of unique values, compare-and-set (Txn) on a handful of keys, and
// inserts of unique keys (never overwritten, so a lost acknowledged write is plain to see).
// Every operation is recorded with invoke/complete timestamps and ok / fail / unknown.

import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { TestClient } from '../support/client.js';
import type { Op } from './checker.js';

export interface Insert {
  key: string;
  status: 'ok' | 'unknown' | 'fail';
}

export interface WorkloadOptions {
  endpoints: string[];
  clients: number;
  keys: number;
  /** Stop issuing new operations at this monotonic time (ms). */
  until: number;
  /** Per-operation deadline. */
  opTimeoutMs: number;
  rand: () => number;
  history: Op[];
  inserts: Insert[];
  /** Hard cap on operations (every loop is bounded in count and time). */
  maxOps: number;
  /** Optional early stop. */
  shouldStop?: () => boolean;
  /** TLS credentials of the clients (default: plaintext). */
  credentials?: grpc.ChannelCredentials;
}

/** Errors after which a write certainly did not happen. Anything else is "unknown". */
function definitelyFailed(e: grpc.ServiceError): boolean {
  // No connection: the request never left the client.
  if (e.code === status.UNAVAILABLE && /No connection established|ECONNREFUSED/.test(e.details ?? '')) return true;
  return (
    e.code === status.INVALID_ARGUMENT ||
    e.code === status.FAILED_PRECONDITION ||
    e.code === status.NOT_FOUND ||
    e.code === status.OUT_OF_RANGE ||
    e.code === status.RESOURCE_EXHAUSTED
  );
}

export const regKey = (i: number): string => `faults/reg/${i}`;

export async function runWorkload(o: WorkloadOptions): Promise<void> {
  let issued = 0;
  const client = async (c: number): Promise<void> => {
    const conns = o.endpoints.map((e) => new TestClient(e, o.opTimeoutMs, o.credentials));
    let ep = c % conns.length;
    let seq = 0;
    const lastSeen = new Map<string, string>();
    try {
      while (performance.now() < o.until && issued < o.maxOps && !o.shouldStop?.()) {
        issued++;
        const cli = conns[ep]!;
        const k = regKey(Math.floor(o.rand() * o.keys));
        const dice = o.rand();
        const call = performance.now();
        try {
          if (dice < 0.4) {
            const r = await cli.range(k);
            const v = r.kvs[0]?.value.toString() ?? null;
            if (v !== null) lastSeen.set(k, v);
            o.history.push({ client: c, key: k, kind: 'read', out: v, call, ret: performance.now(), status: 'ok', revision: String(r.header?.revision ?? 0n) });
          } else if (dice < 0.7) {
            const value = `c${c}-${seq++}`;
            const r = await cli.put(k, value);
            o.history.push({ client: c, key: k, kind: 'write', value, call, ret: performance.now(), status: 'ok', revision: String(r.header?.revision ?? 0n) });
          } else if (dice < 0.9) {
            const expect = lastSeen.get(k) ?? `c${c}-none`;
            const value = `c${c}-${seq++}`;
            const r = await cli.txn({
              compare: [{ result: 0, target: 3, key: Buffer.from(k), value: Buffer.from(expect), rangeEnd: Buffer.alloc(0) }],
              success: [{ requestPut: { key: Buffer.from(k), value: Buffer.from(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }],
              failure: [],
            });
            if (r.succeeded) lastSeen.set(k, value);
            o.history.push({ client: c, key: k, kind: 'cas', expect, value, succeeded: r.succeeded, call, ret: performance.now(), status: 'ok', revision: String(r.header?.revision ?? 0n) });
          } else {
            const key = `faults/uniq/c${c}/${seq++}`;
            const ins: Insert = { key, status: 'unknown' };
            o.inserts.push(ins);
            try {
              await cli.put(key, 'x');
              ins.status = 'ok';
            } catch (e) {
              if (definitelyFailed(e as grpc.ServiceError)) ins.status = 'fail';
              throw e;
            }
          }
        } catch (e) {
          const err = e as grpc.ServiceError;
          const ret = performance.now();
          if (dice < 0.4) o.history.push({ client: c, key: k, kind: 'read', call, ret, status: 'fail' });
          else if (dice < 0.9) {
            const st = definitelyFailed(err) ? 'fail' : 'unknown';
            // Record what was attempted; the checker treats unknown as "may have happened".
            const last = { client: c, key: k, call, ret, status: st } as const;
            if (dice < 0.7) o.history.push({ ...last, kind: 'write', value: `c${c}-${seq - 1}` });
            else o.history.push({ ...last, kind: 'cas', expect: lastSeen.get(k) ?? `c${c}-none`, value: `c${c}-${seq - 1}` });
          }
          // Fail over to another endpoint, after a short pause (no hot retry loop while down).
          ep = (ep + 1 + Math.floor(o.rand() * (conns.length - 1))) % conns.length;
          await new Promise((r) => setTimeout(r, 50 + o.rand() * 100));
        }
      }
    } finally {
      for (const x of conns) x.close();
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, c) => client(c)));
}
