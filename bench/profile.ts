// `npm run bench -- profile [--clients N] [--ops N] [--reads]`: where a raftkv member's CPU goes.
//
// Starts 3 members under `node --cpu-prof`, runs one load (puts by default, linearizable gets
// with --reads) against the leader, stops the members cleanly (SIGTERM: V8 writes the profile
// at exit) and sums each profile's self time by the code it was spent in — our own layers
// (src/raft, src/storage, ...), the libraries (grpc-js, protobuf), Node's internals (http2,
// streams, fs), the garbage collector, and idle. Leader and one follower are reported side by
// side in ms of CPU per operation and in % of busy time, with each one's top functions.
// Writes bench/results/profile.{json,md,svg}; the raw .cpuprofile files stay in the printed
// directory for Chrome DevTools or speedscope.

import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type LoadResult, runLoad } from './loadgen.js';
import { type Row, cpuMs, printTable, writeResults } from './report.js';
import { startRaftkv } from './targets.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}
interface CpuProfile {
  nodes: ProfileNode[];
  /** Microseconds on the monotonic clock (CLOCK_MONOTONIC, as process.hrtime). */
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** The layer a function belongs to, from where its code lives. Order matters: first match wins. */
const CATEGORIES: Array<[string, (f: CallFrame) => boolean]> = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['gc', (f) => f.functionName === '(garbage collector)'],
  ['native/program', (f) => f.functionName === '(program)' || (f.url === '' && f.functionName !== '')],
  ['grpc-js', (f) => f.url.includes('@grpc/grpc-js')],
  ['protobuf', (f) => f.url.includes('@bufbuild/protobuf') || f.url.includes('/src/gen/')],
  ['raft core', (f) => f.url.includes('/src/raft/')],
  ['storage (wal, snap)', (f) => f.url.includes('/src/storage/')],
  ['transport', (f) => f.url.includes('/src/transport/')],
  ['server loop', (f) => f.url.includes('/src/server/')],
  ['kv (mvcc, watch)', (f) => f.url.includes('/src/kv/')],
  ['api (services)', (f) => f.url.includes('/src/api/') || f.url.includes('/src/auth/')],
  ['other raftkv', (f) => f.url.includes('/dist/src/')],
  ['node http2/net', (f) => /node:internal\/(http2|net|stream_base_commons|tls|dns)/.test(f.url) || f.url === 'node:http2' || f.url === 'node:net'],
  ['node fs', (f) => /node:internal\/fs|^node:fs/.test(f.url)],
  ['node streams/events', (f) => /node:internal\/streams|node:events|node:internal\/event_target/.test(f.url)],
  ['node timers/queues', (f) => /node:internal\/(timers|process\/task_queues|process\/promises|async_hooks)/.test(f.url)],
  ['node other', (f) => f.url.startsWith('node:')],
  ['other libraries', (f) => f.url.includes('node_modules')],
  ['other', () => true],
];

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  byCategory: Map<string, number>;
  topFunctions: Array<{ name: string; ms: number }>;
}

/**
 * Sums self time (ms) per category and per function in one .cpuprofile, over the samples taken
 * in [fromUs, toUs] of the monotonic clock (the measured load: not start-up, not warm-up).
 */
export function summarize(p: CpuProfile, fromUs: number, toUs: number): ProfileSummary {
  const byNode = new Map<number, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    if (t < fromUs || t > toUs) continue;
    byNode.set(p.samples[i]!, (byNode.get(p.samples[i]!) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  for (const n of p.nodes) {
    const us = byNode.get(n.id);
    if (!us) continue;
    const ms = us / 1000;
    const cat = CATEGORIES.find(([, m]) => m(n.callFrame))![0];
    if (cat === 'idle') {
      idle += ms;
      continue;
    }
    busy += ms;
    byCategory.set(cat, (byCategory.get(cat) ?? 0) + ms);
    const file = n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '');
    const name = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const topFunctions = [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15).map(([name, ms]) => ({ name, ms }));
  return { busyMs: busy, idleMs: idle, byCategory, topFunctions };
}

function profileOf(dir: string, pid: number): CpuProfile {
  const f = readdirSync(dir).find((n) => n.includes(`.${pid}.`) && n.endsWith('.cpuprofile'));
  if (!f) throw new Error(`no profile for pid ${pid} in ${dir}`);
  return JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
}

export async function profileExperiment(o: { clients: number; ops: number; reads: boolean }): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-prof-'));
  // The members run their modules, not the bundle (src/cli/raftkv.ts): the layers below are told
  // apart by the file a function lives in, and the bundle is one file.
  const t = await startRaftkv(3, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`], env: { RAFTKV_NO_BUNDLE: '1' } });
  let pids: number[] = [];
  let lead = 0;
  let r: LoadResult;
  const window = [0, 0];
  let cpu: number[] = [];
  try {
    lead = await t.leader();
    pids = t.pids();
    const base = { connections: Math.min(o.clients, 16), maxMs: 120_000, keySize: 8, valueSize: 256, serializable: false, keySpace: 10_000, credentials: t.credentials };
    const endpoints = [t.endpoints[lead]!];
    // Warm-up (JIT), then the measured load; keys written first so that gets find them.
    await runLoad({ ...base, endpoints, clients: o.clients, ops: Math.min(5000, o.ops), readRatio: 0, prefix: 'prof/' });
    process.stderr.write(`profiling ${o.reads ? 'linearizable gets' : 'puts'} x${o.clients}, ${o.ops} ops...\n`);
    let cpu0: number[] = [];
    r = await runLoad({
      ...base,
      endpoints,
      clients: o.clients,
      ops: o.ops,
      readRatio: o.reads ? 1 : 0,
      prefix: 'prof/',
      onStart: () => {
        window[0] = Number(process.hrtime.bigint() / 1000n);
        cpu0 = pids.map((p) => cpuMs([p]));
      },
    });
    window[1] = Number(process.hrtime.bigint() / 1000n);
    cpu = pids.map((p, i) => cpuMs([p]) - cpu0[i]!);
  } finally {
    await t.destroy();
  }
  const fol = (lead + 1) % pids.length;
  const leader = summarize(profileOf(dir, pids[lead]!), window[0], window[1]);
  const follower = summarize(profileOf(dir, pids[fol]!), window[0], window[1]);
  // A sampling profile counts wall time while the thread runs or waits to run (on 2 shared
  // cores, often); the process's own CPU time (/proc) is the honest total, so each layer's
  // share of the samples is scaled to it.
  const cpuPerOp = new Map<ProfileSummary, number>([
    [leader, cpu[lead]! / r.ops],
    [follower, cpu[fol]! / r.ops],
  ]);
  // Microseconds of CPU per operation.
  const perOpOf = (ms: number, s: ProfileSummary) => Number(((ms / s.busyMs) * cpuPerOp.get(s)! * 1000).toFixed(1));
  const pct = (ms: number, s: ProfileSummary) => Number(((100 * ms) / s.busyMs).toFixed(1));
  const cats = [...new Set([...leader.byCategory.keys(), ...follower.byCategory.keys()])].sort(
    (a, b) => (leader.byCategory.get(b) ?? 0) - (leader.byCategory.get(a) ?? 0),
  );
  const rows: Row[] = cats.map((c) => ({
    category: c,
    'leader µs/op': perOpOf(leader.byCategory.get(c) ?? 0, leader),
    'leader %': pct(leader.byCategory.get(c) ?? 0, leader),
    'follower µs/op': perOpOf(follower.byCategory.get(c) ?? 0, follower),
    'follower %': pct(follower.byCategory.get(c) ?? 0, follower),
  }));
  rows.push({ category: 'CPU (total, /proc)', 'leader µs/op': perOpOf(leader.busyMs, leader), 'leader %': 100, 'follower µs/op': perOpOf(follower.busyMs, follower), 'follower %': 100 });
  const what = `${o.reads ? 'linearizable gets' : 'puts'} x${o.clients}, ${r.ops} ops at ${Math.round(r.opsPerSec)} ops/s`;
  let md = printTable(`CPU profile of a 3-member raftkv cluster: ${what}`, rows);
  for (const [name, s] of [['leader', leader], ['follower', follower]] as const) {
    const top = s.topFunctions.map((f) => ({ function: f.name, 'µs/op': perOpOf(f.ms, s), '%': pct(f.ms, s) }));
    md += `\n${printTable(`top functions (self time), ${name}`, top)}`;
  }
  console.log(`raw profiles: ${dir}`);
  await writeResults(
    o.reads ? 'profile-gets' : 'profile',
    { clients: o.clients, ops: r.ops, opsPerSec: r.opsPerSec, dir },
    rows.filter((x) => x.category !== 'CPU (total, /proc)').flatMap((x) => [
      { category: x.category as string, member: 'leader', 'µs/op': x['leader µs/op'] as number },
      { category: x.category as string, member: 'follower', 'µs/op': x['follower µs/op'] as number },
    ]),
    { title: `CPU µs per operation by layer (${what})`, mark: 'bar', x: { field: 'member', type: 'nominal' }, y: { field: 'µs/op', type: 'quantitative' }, color: { field: 'category', type: 'nominal' } },
    md,
  );
}
