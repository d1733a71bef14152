// A load generator speaking the etcd v3 gRPC API, so it drives raftkv and etcd alike.
// C concurrent clients share K connections; each runs put/get operations back to back until
// the operation count or the time limit is reached (both bounded). Latencies go into an HDR
// histogram (microseconds). With `auth`, each connection authenticates once (etcd's
// Auth/Authenticate, before the clock starts) and every call carries the `token` metadata, as
// etcd's clients do.

import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import { AuthClient, KVClient, type PutRequest, RangeRequest } from '../src/gen/etcd/rpc.js';

export interface LoadOptions {
  endpoints: string[];
  clients: number;
  connections: number;
  /** Total operations (bounded). */
  ops: number;
  /** Hard time limit in ms (bounded). */
  maxMs: number;
  keySize: number;
  valueSize: number;
  /** Fraction of reads in [0, 1]. */
  readRatio: number;
  serializable: boolean;
  /** Distinct keys written/read. */
  keySpace: number;
  /** Keys are prefixed so that separate runs do not collide. */
  prefix: string;
  onProgress?: (done: number) => void;
  /** Called once connections (and tokens) are ready, just before the clock starts. */
  onStart?: () => void;
  /** If set, count successful operations per bucket of this many ms (throughput over time). */
  bucketMs?: number;
  /** TLS credentials for https targets (Target.credentials; default: plaintext). */
  credentials?: grpc.ChannelCredentials;
  /** Authenticate as this user (once per connection) and send its token on every call. */
  auth?: { user: string; password: string };
}

export interface LoadResult {
  ops: number;
  errors: number;
  firstError?: string;
  seconds: number;
  opsPerSec: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Successful operations per bucket (when bucketMs was set). */
  timeline: number[];
}

function key(o: LoadOptions, i: number): Buffer {
  const s = `${o.prefix}${String(i % o.keySpace).padStart(8, '0')}`;
  return Buffer.from(s.length >= o.keySize ? s : s.padEnd(o.keySize, '_'));
}

type Cb = (err: grpc.ServiceError | null) => void;

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const creds = o.credentials ?? grpc.credentials.createInsecure();
  const conns = Array.from({ length: Math.max(1, o.connections) }, (_, i) => {
    const ep = o.endpoints[i % o.endpoints.length]!;
    // Distinct channel options force distinct connections (grpc-js shares identical ones).
    return new KVClient(ep, creds, { 'grpc.raftkv_conn': i, 'grpc.max_receive_message_length': 64 << 20 });
  });
  await Promise.all(
    conns.map((c) => new Promise<void>((r, j) => c.waitForReady(Date.now() + 10_000, (e) => (e ? j(e) : r())))),
  );
  // One token per connection (the Authenticate call rides the same channel), not timed.
  const metas = await Promise.all(
    conns.map(async (c) => {
      const md = new grpc.Metadata();
      if (!o.auth) return md;
      const a = new AuthClient('unused', creds, { channelOverride: c.getChannel() });
      const token = await new Promise<string>((r, j) =>
        a.authenticate({ name: o.auth!.user, password: o.auth!.password }, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (e, res) => (e ? j(e) : r(res!.token))),
      );
      md.set('token', token);
      return md;
    }),
  );
  const hist = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  const value = Buffer.alloc(o.valueSize, 0x61);
  let issued = 0;
  let done = 0;
  let errors = 0;
  let firstError: string | undefined;
  o.onStart?.();
  const start = performance.now();
  const deadline = start + o.maxMs;
  const timeline: number[] = [];
  let rnd = 12345;
  const nextRand = (): number => {
    rnd = (Math.imul(rnd, 1103515245) + 12345) >>> 0;
    return rnd / 4294967296;
  };

  const worker = async (w: number): Promise<void> => {
    const c = conns[w % conns.length]!;
    const md = metas[w % conns.length]!;
    while (issued < o.ops && performance.now() < deadline) {
      const i = issued++;
      const isRead = nextRand() < o.readRatio;
      const t0 = performance.now();
      await new Promise<void>((resolve) => {
        const cb: Cb = (err) => {
          const us = Math.max(1, Math.round((performance.now() - t0) * 1000));
          if (err) {
            errors++;
            firstError ??= err.details || err.message;
          } else {
            hist.recordValue(us);
            if (o.bucketMs) {
              const b = Math.floor((performance.now() - start) / o.bucketMs);
              timeline[b] = (timeline[b] ?? 0) + 1;
            }
          }
          done++;
          if ((done & 255) === 0) o.onProgress?.(done);
          resolve();
        };
        if (isRead) {
          const req = RangeRequest.fromPartial({ key: key(o, i), serializable: o.serializable });
          c.range(req, md, cb);
        } else {
          const req: PutRequest = { key: key(o, i), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false };
          c.put(req, md, cb);
        }
      });
    }
  };
  await Promise.all(Array.from({ length: o.clients }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  o.onProgress?.(done);
  for (const c of conns) c.close();
  const ok = done - errors;
  return {
    ops: ok,
    errors,
    firstError,
    seconds,
    opsPerSec: ok / seconds,
    p50Ms: hist.getValueAtPercentile(50) / 1000,
    p90Ms: hist.getValueAtPercentile(90) / 1000,
    p99Ms: hist.getValueAtPercentile(99) / 1000,
    maxMs: hist.maxValue / 1000,
    timeline: Array.from(timeline, (x) => x ?? 0),
  };
}
