// `npm run bench -- gateway [--quick]`: the JSON gateway under load. 64 clients over keep-alive
// HTTP/1.1 connections (one agent, up to 64 sockets) send JSON puts (/v3/kv/put, 256-byte
// values), then linearizable JSON gets (/v3/kv/range), to the leader of a 3-member raftkv and
// of a 3-member etcd 3.4 started the same way (bench/targets.ts). Each answer is checked to be
// a 200 with a header, so errors are counted, not timed.

import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Row, cpuMs, printTable, writeResults } from './report.js';
import { type Target, startTarget } from './targets.js';

const CLIENTS = 64;
const VALUE = Buffer.alloc(256, 'x').toString('base64');
const KEY_SPACE = 10_000;

interface HttpLoadResult {
  ops: number;
  errors: number;
  firstError?: string;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

/** One POST on `agent`; resolves with the status and body. */
function post(agent: Agent, host: string, port: number, path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ agent, host, port, path, method: 'POST', headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const keyOf = (prefix: string, i: number): string => Buffer.from(`${prefix}${String(i % KEY_SPACE).padStart(8, '0')}`).toString('base64');

/** `ops` requests from CLIENTS concurrent clients, bounded by `maxMs`. */
async function httpLoad(endpoint: string, kind: 'put' | 'get', ops: number, prefix: string, maxMs = 120_000): Promise<HttpLoadResult> {
  const [host, portText] = endpoint.split(':');
  const port = Number(portText);
  const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
  const latencies: number[] = [];
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = t0 + maxMs;
  const worker = async (): Promise<void> => {
    while (next < ops && performance.now() < deadline) {
      const i = next++;
      const body = kind === 'put' ? `{"key":"${keyOf(prefix, i)}","value":"${VALUE}"}` : `{"key":"${keyOf(prefix, i)}"}`;
      const start = performance.now();
      try {
        const r = await post(agent, host!, port, kind === 'put' ? '/v3/kv/put' : '/v3/kv/range', body);
        if (r.status !== 200 || !r.body.startsWith('{"header"')) throw new Error(`${r.status} ${r.body.slice(0, 200)}`);
        latencies.push(performance.now() - start);
      } catch (e) {
        errors++;
        firstError ??= (e as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: CLIENTS }, worker));
  const elapsed = performance.now() - t0;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const pct = (p: number): number => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))]! : 0);
  return { ops: latencies.length, errors, firstError, opsPerSec: (latencies.length / elapsed) * 1000, p50Ms: pct(50), p99Ms: pct(99) };
}

async function measure(t: Target, label: string, kind: 'put' | 'get', ops: number): Promise<Row> {
  const lead = t.endpoints[await t.leader()]!;
  // Unmeasured warm-up (JIT, connections), the same for both targets.
  await httpLoad(lead, kind, Math.min(2000, Math.ceil(ops / 5)), 'gw-warmup/');
  const cpu0 = cpuMs(t.pids());
  const r = await httpLoad(lead, kind, ops, 'gw/');
  const cpu = cpuMs(t.pids()) - cpu0;
  if (r.errors > 0) console.error(`  ${label}: ${r.errors} errors (first: ${r.firstError})`);
  return {
    target: t.kind,
    workload: `JSON ${kind} x${CLIENTS}${kind === 'get' ? ' (linearizable)' : ''}`,
    'ops/s': Math.round(r.opsPerSec),
    'p50 ms': r.p50Ms,
    'p99 ms': r.p99Ms,
    'cpu ms/op': r.ops > 0 ? cpu / r.ops : 0,
    errors: r.errors,
  };
}

/** The experiment; `scale` maps full-run operation counts to this run's (--quick, --ops). */
export async function gatewayBench(scale: (n: number) => number): Promise<void> {
  const n = scale(20_000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd'] as const) {
    const t = await startTarget(kind, 3, {});
    try {
      rows.push(await measure(t, `${kind} JSON put`, 'put', n));
      rows.push(await measure(t, `${kind} JSON get`, 'get', n));
    } finally {
      await t.destroy();
    }
  }
  for (const r of rows) {
    const e = rows.find((x) => x.target === 'etcd' && x.workload === r.workload);
    if (e) r['ratio vs etcd'] = Number(r['ops/s']) / Number(e['ops/s']);
  }
  const md = printTable(`JSON gateway: 3 members, ${CLIENTS} keep-alive HTTP clients (${n} ops per workload)`, rows);
  await writeResults(
    'gateway',
    { ops: n, clients: CLIENTS },
    rows,
    { title: 'JSON gateway (3 members, 64 clients): ops/s', mark: 'bar', x: { field: 'workload', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } },
    md,
  );
}
