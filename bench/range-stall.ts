// `npm run bench -- range-stall [--keys N]`: how long other clients wait while one client reads
// every key in one Range (N keys of 100 B, 1 M by default), on 3 members of raftkv (its lean
// unary path, and with RAFTKV_GRPC_JS_ONLY=1 every call through grpc-js) and of etcd 3.4.
//
// The puts run in a child process, so that the reader's own decode of the answer (seconds, for
// a million keys) does not hold them up: what is measured is the members' stall. Bounded: the
// putter stops when the Range ends, at most 100,000 puts.

import * as grpc from '@grpc/grpc-js';
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { KVClient, RangeRequest, type RequestOp } from '../src/gen/etcd/rpc.js';
import { TestClient } from '../test/support/client.js';
import { type Row, printTable, writeResults } from './report.js';
import { startTarget } from './targets.js';

interface PutterResult {
  n: number;
  p50: number;
  p99: number;
  max: number;
}

const VALUE = Buffer.alloc(100, 7);

/** The child: puts back to back until told to stop, then reports its latencies (ms). */
async function putter(endpoint: string): Promise<void> {
  const c = new TestClient(endpoint, 60_000);
  const lat: number[] = [];
  let stop = false;
  process.on('message', (m) => {
    if (m === 'stop') stop = true;
  });
  process.send!('ready');
  for (let i = 0; !stop && i < 100_000; i++) {
    const s = performance.now();
    await c.put(`range-stall/${i % 100}`, 'x');
    lat.push(performance.now() - s);
  }
  lat.sort((a, b) => a - b);
  const at = (q: number) => Number((lat[Math.min(lat.length - 1, Math.floor(lat.length * q))] ?? 0).toFixed(1));
  process.send!({ n: lat.length, p50: at(0.5), p99: at(0.99), max: at(1) } satisfies PutterResult);
  c.close();
  process.exit(0);
}

async function load(endpoint: string, n: number): Promise<void> {
  const c = new TestClient(endpoint, 120_000);
  let next = 0;
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < n) {
        const from = next;
        next = Math.min(n, next + 100);
        const success: RequestOp[] = [];
        for (let i = from; i < next; i++) {
          success.push({ requestPut: { key: Buffer.from(`scale/${String(i).padStart(8, '0')}`), value: VALUE, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
        }
        await c.txn({ compare: [], success, failure: [] });
      }
    }),
  );
  c.close();
}

async function measure(endpoint: string): Promise<{ rangeMs: number } & PutterResult> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ['--putter', endpoint]);
  try {
    await new Promise((r) => child.once('message', r));
    const reader = new KVClient(endpoint, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1 });
    const t0 = performance.now();
    await new Promise((res, rej) =>
      reader.range(RangeRequest.fromPartial({ key: Buffer.from('scale/'), rangeEnd: Buffer.from('scale0') }), new grpc.Metadata(), { deadline: Date.now() + 600_000 }, (e, r) => (e ? rej(e) : res(r))),
    );
    const rangeMs = performance.now() - t0;
    reader.close();
    const result = new Promise<PutterResult>((r) => child.once('message', (m) => r(m as PutterResult)));
    child.send('stop');
    return { rangeMs, ...(await result) };
  } finally {
    child.kill();
  }
}

export async function rangeStallExperiment(keys: number): Promise<void> {
  const rows: Row[] = [];
  const targets = [
    { label: 'raftkv', kind: 'raftkv' as const, env: '' },
    { label: 'raftkv (grpc-js only)', kind: 'raftkv' as const, env: '1' },
    { label: 'etcd', kind: 'etcd' as const, env: '' },
  ];
  for (const x of targets) {
    process.env.RAFTKV_GRPC_JS_ONLY = x.env;
    const t = await startTarget(x.kind, 3, x.kind === 'raftkv' ? { nodeArgs: ['--max-old-space-size=4096'] } : {});
    try {
      const ep = t.endpoints[await t.leader()]!;
      process.stderr.write(`${x.label}: loading ${keys} keys...\n`);
      await load(ep, keys);
      const r = await measure(ep);
      rows.push({ target: x.label, keys, 'full Range ms': Math.round(r.rangeMs), 'puts during': r.n, 'put p50 ms': r.p50, 'put p99 ms': r.p99, 'put max ms': r.max });
    } finally {
      await t.destroy();
      delete process.env.RAFTKV_GRPC_JS_ONLY;
    }
  }
  const md = printTable(`puts from another client during one full Range (${keys} keys of 100 B, 3 members)`, rows);
  await writeResults('range-stall', { keys }, rows, { title: 'Put latency during a full Range (max ms)', mark: 'bar', x: { field: 'target', type: 'nominal' }, y: { field: 'put max ms', type: 'quantitative' } }, md);
}

if (process.argv[2] === '--putter') void putter(process.argv[3]!);
