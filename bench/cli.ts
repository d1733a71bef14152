// `npm run bench -- <experiment> [--ops N] [--quick]`: the experiments are listed in USAGE below
// (printed by --help). Every load is bounded in operations and time; only 127.0.0.1 is contacted.

import * as grpc from '@grpc/grpc-js';
import { SingleBar } from 'cli-progress';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type LoadOptions, type LoadResult, runLoad } from './loadgen.js';
import { gatewayBench } from './gateway.js';
import { restoreBench } from './restore.js';
import { type Row, cpuMs, printTable, writeResults } from './report.js';
import { election } from './election.js';
import { type Target, type TargetOptions, ensureEtcd, startTarget } from './targets.js';
import { type TestCerts, hasOpenssl, makeTestCerts } from '../test/support/certs.js';
import { AuthClient } from '../src/gen/etcd/rpc.js';
import { Permission_Type } from '../src/gen/etcd/auth.js';
import { TestClient } from '../test/support/client.js';
import { sleep } from '../test/support/proc-cluster.js';
import { freePorts } from '../test/support/ports.js';
import { MvccStore } from '../src/kv/mvcc.js';
import { Lessor } from '../src/kv/lessor.js';
import { StateMachine } from '../src/server/state-machine.js';
import { decodeSnapshotFile, encodeSnapshotFile } from '../src/storage/snap/snapshotter.js';
import { emptyConfState } from '../src/raft/index.js';
import { scaleExperiment, watchFanoutExperiment } from './scale.js';
import { profileExperiment } from './profile.js';
import { rangeStallExperiment } from './range-stall.js';

const USAGE = `npm run bench -- <experiment> [options]

Experiments (each prints a table and writes bench/results/<name>.{json,svg,md}):
  seed       the seed projects' workload: 10k sequential puts, 10k sequential gets (1 client),
             10k puts with 64 clients, on 3 and 5 members, raftkv and etcd
  vs-etcd    3 members: puts with 1/16/64/256 clients and linearizable gets with 64 clients,
             raftkv and etcd in one run, with ratios and server CPU ms per operation
  size       put throughput and latency vs cluster size 3..11 (64 clients)
  election   time from killing the leader to the first acknowledged write, for the seed's election
             timeouts (0-5, 12-25, 150-300, 300-500 ms) and cluster sizes 3..11 (bench/election.ts)
  mix        read/write ratios against raftkv, etcd and a non-replicated baseline
  reads      linearizable vs serializable reads
  security   puts and linearizable gets (64 clients) on plaintext, client+peer mTLS, and mTLS
             with auth on (a non-root user with a readwrite role), raftkv and etcd alike
  straggler  throughput with one follower paused (SIGSTOP) and with one slowed
  reconfig   throughput dip during a leadership transfer and a membership change
  catchup    time for a member that missed 100,000 writes to catch up
  snapshot   snapshot size and create/restore time vs key count
  wal        disk use (WAL, snapshots) over 200,000 writes
  scale      100k/1M/3M keys of 100 B in 3 members (--keys N,N): load rate, RSS (after the load and at rest), disk, restart to
             first read, puts during a full Range, puts with 10,000 watchers; raftkv and etcd
  gateway    the JSON gateway: JSON puts and linearizable gets with 64 keep-alive HTTP clients,
             raftkv and etcd 3.4 (3 members each)
  profile    CPU profiles (node --cpu-prof) of a 3-member cluster's leader and a follower under
             puts (or --reads) with --clients N (64), self time summed by layer (bench/profile.ts)
  range-stall  put latency from another process during one full Range of --keys N (1 M), raftkv
             (lean unary path, and grpc-js only) and etcd (bench/range-stall.ts)
  compaction-stall  the longest event-loop stall while a compaction is applied (in-process)
  watch-fanout  puts/s with 10,000 watchers on the written prefix, raftkv and etcd
  restore    snapshot save and restore of N keys, raftkv and etcd (bench/restore.ts)
  all        every experiment above
Every load is bounded in operations and time; only 127.0.0.1 is contacted.

Options: --ops N, --quick, --trials N, --sizes N,N, --ranges ..., --targets ..., --keys N,N, --clients N, --reads, --help`;

/** The command line, or the usage and exit code 2 for an option it does not know. */
function commandLine() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h', default: false },
    ops: { type: 'string' },
    quick: { type: 'boolean', default: false },
    trials: { type: 'string' },
    sizes: { type: 'string' },
    ranges: { type: 'string' },
    targets: { type: 'string' },
    keys: { type: 'string' },
    clients: { type: 'string' },
        reads: { type: 'boolean', default: false },
      },
    });
  } catch (e) {
    console.error(`bench: ${(e as Error).message.split('.')[0]}\n\n${USAGE}`);
    process.exit(2);
  }
}
const { values, positionals } = commandLine();
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const QUICK = values.quick;
const scale = (n: number): number => (values.ops ? Number(values.ops) : QUICK ? Math.max(200, Math.floor(n / 10)) : n);

const defaults: Omit<LoadOptions, 'endpoints' | 'clients' | 'ops'> = {
  connections: 1,
  maxMs: 120_000,
  keySize: 8,
  valueSize: 256,
  readRatio: 0,
  serializable: false,
  keySpace: 10_000,
  prefix: 'bench/',
};

async function load(label: string, t: Target, o: Partial<LoadOptions> & { clients: number; ops: number }): Promise<LoadResult & { cpuMsPerOp: number }> {
  const lead = await t.leader();
  // Warm-up (not measured): both targets get the same, so that a fresh Node process's JIT
  // warm-up does not count against it in short runs.
  await runLoad({ ...defaults, connections: Math.min(o.clients, 16), endpoints: [t.endpoints[lead]!], credentials: t.credentials, ...o, ops: Math.min(2000, Math.ceil(o.ops / 5)), prefix: 'warmup/' });
  const bar = new SingleBar({ format: `${label.padEnd(34)} [{bar}] {value}/{total} ops`, hideCursor: true, clearOnComplete: true, stream: process.stderr });
  bar.start(o.ops, 0);
  // Server CPU is counted from when the connections (and auth tokens) are ready.
  let cpu0 = cpuMs(t.pids());
  const r = await runLoad({
    ...defaults,
    connections: Math.min(o.clients, 16),
    endpoints: [t.endpoints[lead]!],
    credentials: t.credentials,
    ...o,
    onProgress: (d) => bar.update(d),
    onStart: () => {
      cpu0 = cpuMs(t.pids());
    },
  });
  const cpu = cpuMs(t.pids()) - cpu0;
  bar.stop();
  if (r.errors > 0) console.error(`  ${label}: ${r.errors} errors (first: ${r.firstError})`);
  return { ...r, cpuMsPerOp: r.ops > 0 ? cpu / r.ops : 0 };
}

const fmtRes = (r: LoadResult & { cpuMsPerOp?: number }) => ({
  'ops/s': Math.round(r.opsPerSec),
  'p50 ms': r.p50Ms,
  'p99 ms': r.p99Ms,
  ...(r.cpuMsPerOp !== undefined ? { 'cpu ms/op': r.cpuMsPerOp } : {}),
});

async function withTarget<T>(kind: Target['kind'], size: number, f: (t: Target) => Promise<T>, o: TargetOptions = {}): Promise<T> {
  const t = await startTarget(kind, size, o);
  try {
    return await f(t);
  } finally {
    await t.destroy();
  }
}

// ------------------------------------------------------------------ experiments

async function seed(): Promise<void> {
  const n = scale(10_000);
  const rows: Row[] = [];
  for (const size of [3, 5]) {
    for (const kind of ['raftkv', 'etcd'] as const) {
      await withTarget(kind, size, async (t) => {
        const put1 = await load(`${kind}/${size} seq put`, t, { clients: 1, ops: n, prefix: 'seed/' });
        const get1 = await load(`${kind}/${size} seq get`, t, { clients: 1, ops: n, readRatio: 1, prefix: 'seed/' });
        const put64 = await load(`${kind}/${size} put x64`, t, { clients: 64, ops: n, prefix: 'seed64/' });
        rows.push({ target: kind, nodes: size, workload: 'seq put (1 client)', ...fmtRes(put1) });
        rows.push({ target: kind, nodes: size, workload: 'seq get (1 client)', ...fmtRes(get1) });
        rows.push({ target: kind, nodes: size, workload: 'put (64 clients)', ...fmtRes(put64) });
      });
    }
  }
  addRatios(rows, ['nodes', 'workload']);
  const md = printTable(`seed workload (${n} ops each)`, rows);
  await writeResults('seed', { ops: n }, rows, { title: 'Seed workload: ops/s', mark: 'bar', x: { field: 'workload', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' }, column: { field: 'nodes', type: 'nominal' } }, md);
}

/** Adds raftkv/etcd throughput ratios to raftkv rows, matching on `keys`. */
function addRatios(rows: Row[], keys: string[]): void {
  for (const r of rows) {
    if (!String(r.target).startsWith('raftkv')) continue;
    const e = rows.find((x) => x.target === 'etcd' && keys.every((k) => x[k] === r[k]));
    if (e) {
      r['ratio vs etcd'] = Number(r['ops/s']) / Number(e['ops/s']);
      e['ratio vs etcd'] = 1;
    }
  }
}

async function vsEtcd(): Promise<void> {
  const n = scale(10_000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd'] as const) {
    await withTarget(kind, 3, async (t) => {
      for (const clients of [1, 16, 64, 256]) {
        const r = await load(`${kind} put x${clients}`, t, { clients, ops: clients === 1 ? Math.min(n, scale(5000)) : n, prefix: 'vs/' });
        rows.push({ target: kind, workload: `put x${clients}`, ...fmtRes(r) });
      }
      const g = await load(`${kind} linearizable get x64`, t, { clients: 64, ops: n, readRatio: 1, prefix: 'vs/' });
      rows.push({ target: kind, workload: 'get x64 (linearizable)', ...fmtRes(g) });
    });
  }
  addRatios(rows, ['workload']);
  const md = printTable(`raftkv vs etcd 3.4, 3 members (${n} ops per workload)`, rows);
  await writeResults('vs-etcd', { ops: n }, rows, { title: 'raftkv vs etcd (3 members): ops/s', mark: 'bar', x: { field: 'workload', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

async function size(): Promise<void> {
  const n = scale(5000);
  const rows: Row[] = [];
  const sizes = QUICK ? [3, 5] : [3, 5, 7, 9, 11];
  for (const s of sizes) {
    for (const kind of ['raftkv', 'etcd'] as const) {
      await withTarget(kind, s, async (t) => {
        const r = await load(`${kind}/${s} put x64`, t, { clients: 64, ops: n, prefix: 'size/' });
        rows.push({ target: kind, nodes: s, ...fmtRes(r) });
      });
    }
  }
  addRatios(rows, ['nodes']);
  const md = printTable(`write throughput vs cluster size (64 clients, ${n} puts)`, rows);
  await writeResults('size', { ops: n }, rows, { title: 'Put throughput vs cluster size (64 clients)', mark: 'line', x: { field: 'nodes', type: 'quantitative' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

async function mix(): Promise<void> {
  const n = scale(5000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd', 'baseline'] as const) {
    await withTarget(kind, kind === 'baseline' ? 1 : 3, async (t) => {
      await load(`${kind} preload`, t, { clients: 16, ops: 1000, keySpace: 1000, prefix: 'mix/' });
      for (const readPct of [100, 90, 50, 10, 0]) {
        const r = await load(`${kind} ${readPct}/${100 - readPct}`, t, { clients: 64, ops: n, readRatio: readPct / 100, keySpace: 1000, prefix: 'mix/' });
        rows.push({ target: kind, 'read/write': `${readPct}/${100 - readPct}`, ...fmtRes(r) });
      }
    });
  }
  addRatios(rows, ['read/write']);
  const md = printTable(`read/write mix (64 clients, ${n} ops, linearizable reads)`, rows);
  await writeResults('mix', { ops: n }, rows, { title: 'Throughput by read/write mix', mark: 'bar', x: { field: 'read/write', type: 'ordinal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

async function reads(): Promise<void> {
  const n = scale(10_000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd'] as const) {
    await withTarget(kind, 3, async (t) => {
      await load(`${kind} preload`, t, { clients: 16, ops: 1000, keySpace: 1000, prefix: 'rd/' });
      for (const serializable of [false, true]) {
        for (const clients of [1, 64]) {
          const r = await load(`${kind} ${serializable ? 'serializable' : 'linearizable'} x${clients}`, t, { clients, ops: clients === 1 ? Math.min(n, scale(5000)) : n, readRatio: 1, serializable, keySpace: 1000, prefix: 'rd/' });
          rows.push({ target: kind, read: serializable ? 'serializable' : 'linearizable', clients, ...fmtRes(r) });
        }
      }
    });
  }
  // The opt-in: linearizable reads on the leader's lease (no heartbeat round per batch).
  await withTarget(
    'raftkv',
    3,
    async (t) => {
      await load('raftkv --lease-reads preload', t, { clients: 16, ops: 1000, keySpace: 1000, prefix: 'rd/' });
      for (const clients of [1, 64]) {
        const r = await load(`raftkv --lease-reads x${clients}`, t, { clients, ops: clients === 1 ? Math.min(n, scale(5000)) : n, readRatio: 1, keySpace: 1000, prefix: 'rd/' });
        rows.push({ target: 'raftkv --lease-reads', read: 'linearizable', clients, ...fmtRes(r) });
      }
    },
    { extraArgs: ['--lease-reads'] },
  );
  addRatios(rows, ['read', 'clients']);
  const md = printTable(`linearizable vs serializable gets (${n} ops)`, rows);
  await writeResults('reads', { ops: n }, rows, { title: 'Reads: linearizable vs serializable (64 clients)', mark: 'bar', x: { field: 'read', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

/** Users for the `security` experiment: root, and a user whose role may read and write the bench keys. */
const BENCH_USER = { user: 'bench', password: 'bench-pw' };
const BENCH_PREFIXES = ['sec/', 'warmup/']; // load()'s warm-up writes under warmup/

/** etcd's auth recipe through the Auth RPCs (the same for raftkv and etcd), then AuthEnable. */
async function enableAuth(t: Target): Promise<void> {
  const lead = await t.leader();
  const a = new AuthClient(t.endpoints[lead]!, t.credentials ?? grpc.credentials.createInsecure());
  const call = <Req>(f: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => unknown, req: Req): Promise<void> =>
    new Promise((r, j) => f.call(a, req, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (e) => (e ? j(e) : r())));
  const prefixEnd = (p: string): Buffer => {
    const b = Buffer.from(p);
    b[b.length - 1]!++;
    return b;
  };
  try {
    await call(a.userAdd, { name: 'root', password: 'root-pw', hashedPassword: '' });
    await call(a.roleAdd, { name: 'root' });
    await call(a.userGrantRole, { user: 'root', role: 'root' });
    await call(a.roleAdd, { name: 'bench-rw' });
    for (const p of BENCH_PREFIXES) {
      await call(a.roleGrantPermission, { name: 'bench-rw', perm: { permType: Permission_Type.READWRITE, key: Buffer.from(p), rangeEnd: prefixEnd(p) } });
    }
    await call(a.userAdd, { name: BENCH_USER.user, password: BENCH_USER.password, hashedPassword: '' });
    await call(a.userGrantRole, { user: BENCH_USER.user, role: 'bench-rw' });
    await call(a.authEnable, {});
  } finally {
    a.close();
  }
}

/** The cost of client+peer mTLS and of auth (simple tokens) on top of it, raftkv beside etcd. */
async function security(): Promise<void> {
  if (!hasOpenssl()) throw new Error('security: openssl is needed to make the test certificates');
  const n = scale(20_000);
  const certs: TestCerts = makeTestCerts();
  const rows: Row[] = [];
  const setups = [
    { name: 'plaintext', tls: false, auth: false },
    { name: 'mTLS', tls: true, auth: false },
    { name: 'mTLS + auth', tls: true, auth: true },
  ];
  try {
    // Setup outer, target inner: each raftkv row ran next to its etcd row.
    for (const st of setups) {
      for (const kind of ['raftkv', 'etcd'] as const) {
        await withTarget(
          kind,
          3,
          async (t) => {
            if (st.auth) await enableAuth(t);
            const auth = st.auth ? BENCH_USER : undefined;
            // A fixed unmeasured warm-up (puts and gets, as reconfig does), also with --quick:
            // load()'s own (a fifth of the ops) is too short for a fresh cluster's JIT and TLS
            // session setup, and would count against whichever target warms up slower.
            const lead = await t.leader();
            await runLoad({ ...defaults, endpoints: [t.endpoints[lead]!], credentials: t.credentials, auth, clients: 64, connections: 16, ops: 5000, readRatio: 0.5, maxMs: 30_000, prefix: 'warmup/' });
            const put = await load(`${kind} ${st.name} put x64`, t, { clients: 64, ops: n, prefix: 'sec/', auth });
            rows.push({ target: kind, security: st.name, workload: 'put x64', ...fmtRes(put) });
            const get = await load(`${kind} ${st.name} get x64`, t, { clients: 64, ops: n, readRatio: 1, prefix: 'sec/', auth });
            rows.push({ target: kind, security: st.name, workload: 'get x64 (linearizable)', ...fmtRes(get) });
          },
          { tls: st.tls ? certs : undefined, authToken: 'simple' },
        );
      }
    }
  } finally {
    certs.cleanup();
  }
  addRatios(rows, ['security', 'workload']);
  // Cost relative to plaintext, per target and workload: throughput and CPU per operation.
  for (const r of rows) {
    const plain = rows.find((x) => x.target === r.target && x.workload === r.workload && x.security === 'plaintext')!;
    r['ops/s vs plaintext'] = Number(r['ops/s']) / Number(plain['ops/s']);
    r['cpu/op vs plaintext'] = Number(r['cpu ms/op']) / Number(plain['cpu ms/op']);
  }
  // raftkv then etcd; puts then gets; setups in the order above (the sort is stable).
  const rank = (r: Row): number => (r.target === 'raftkv' ? 0 : 2) + (r.workload === 'put x64' ? 0 : 1);
  rows.sort((x, y) => rank(x) - rank(y));
  const md = printTable(`security: plaintext vs client+peer mTLS vs mTLS + auth (3 members, 64 clients, ${n} ops per workload)`, rows);
  await writeResults('security', { ops: n }, rows, { title: 'ops/s by security setup (3 members, 64 clients)', mark: 'bar', x: { field: 'security', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' }, column: { field: 'workload', type: 'nominal' } }, md);
}

async function straggler(): Promise<void> {
  const n = scale(5000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd'] as const) {
    await withTarget(kind, 3, async (t) => {
      const normal = await load(`${kind} healthy`, t, { clients: 64, ops: n, prefix: 'st/' });
      rows.push({ target: kind, condition: 'healthy', ...fmtRes(normal) });
      const lead = await t.leader();
      const f = [0, 1, 2].find((i) => i !== lead)!;
      await t.kill(f, 'SIGSTOP');
      const paused = await load(`${kind} follower paused`, t, { clients: 64, ops: n, prefix: 'st/' });
      await t.kill(f, 'SIGCONT');
      rows.push({ target: kind, condition: 'one follower paused', ...fmtRes(paused) });
      // Slowed: the follower runs 20 ms out of every 100 ms (SIGSTOP/SIGCONT duty cycle).
      let slowing = true;
      const slow = (async () => {
        while (slowing) {
          await t.kill(f, 'SIGSTOP');
          await sleep(80);
          await t.kill(f, 'SIGCONT');
          await sleep(20);
        }
      })();
      const slowed = await load(`${kind} follower slowed`, t, { clients: 64, ops: n, prefix: 'st/' });
      slowing = false;
      await slow;
      await t.kill(f, 'SIGCONT');
      rows.push({ target: kind, condition: 'one follower slowed (20% CPU)', ...fmtRes(slowed) });
    });
  }
  addRatios(rows, ['condition']);
  const md = printTable(`stragglers (3 members, 64 clients, ${n} puts)`, rows);
  await writeResults('straggler', { ops: n }, rows, { title: 'Throughput with a straggling follower', mark: 'bar', x: { field: 'condition', type: 'nominal' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

/** Throughput dip while the leader moves and while a member is added and removed. */
async function reconfig(): Promise<void> {
  const rows: Row[] = [];
  const timeline: Row[] = [];
  const BUCKET = 250;
  for (const kind of ['raftkv', 'etcd'] as const) {
    await withTarget(kind, 3, async (t) => {
      const lead = await t.leader();
      const admin = new TestClient(t.endpoints[lead]!, 10_000);
      const events: Array<{ name: string; at: number }> = [];
      const shape = { ...defaults, endpoints: t.endpoints, clients: 64, connections: 16, prefix: 'rc/', bucketMs: BUCKET };
      // Unmeasured warm-up, so that the steady rate before each event is really steady.
      await runLoad({ ...shape, ops: 5000, maxMs: 10_000 });
      const t0 = performance.now();
      const loadP = runLoad({ ...shape, ops: 1_000_000, maxMs: 9500 });
      await sleep(3000);
      const target = (await new TestClient(t.endpoints[(lead + 1) % 3]!, 5000).status()).header!.memberId;
      events.push({ name: 'move-leader', at: performance.now() - t0 });
      await admin.moveLeader(target);
      await sleep(3000);
      const nl = await t.leader();
      const admin2 = new TestClient(t.endpoints[nl]!, 10_000);
      const [port] = await freePorts(1);
      events.push({ name: 'member add + remove', at: performance.now() - t0 });
      const added = await admin2.memberAdd([`http://127.0.0.1:${port}`], true);
      await admin2.memberRemove(added.member!.ID);
      const r = await loadP;
      admin.close();
      admin2.close();
      if (r.errors > 0) console.error(`  ${kind}: ${r.errors} errors (first: ${r.firstError})`);
      r.timeline.forEach((n, b) => timeline.push({ target: kind, 't (s)': (b * BUCKET) / 1000, 'ops/s': (n * 1000) / BUCKET }));
      const rate = (b: number) => ((r.timeline[b] ?? 0) * 1000) / BUCKET;
      for (const e of events) {
        const b0 = Math.floor(e.at / BUCKET);
        // Steady: the median of the 2 s before the event; dip: the worst of the 1 s after it.
        const before = [1, 2, 3, 4, 5, 6, 7, 8].map((k) => rate(b0 - k)).sort((a, b) => a - b);
        const steady = (before[3]! + before[4]!) / 2;
        const dip = Math.min(...[0, 1, 2, 3].map((k) => rate(b0 + k)));
        rows.push({ target: kind, event: e.name, 'steady ops/s': Math.round(steady), 'lowest 250ms ops/s after': Math.round(dip), 'dip %': steady > 0 ? Math.round((100 * (steady - dip)) / steady) : 0, 'max ms (run)': r.maxMs.toFixed(0), 'errors (run)': r.errors });
      }
    });
  }
  const md = printTable('throughput dip during reconfiguration (3 members, 64 clients, 250 ms buckets)', rows);
  await writeResults('reconfig', { timeline }, timeline, { title: 'Put throughput over time (move-leader at 3s, member add+remove at 6s)', mark: 'line', x: { field: 't (s)', type: 'quantitative' }, y: { field: 'ops/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

/** Time for a member that missed N writes to catch up (by snapshot once the log is compacted). */
async function catchup(): Promise<void> {
  const n = scale(100_000);
  const rows: Row[] = [];
  for (const kind of ['raftkv', 'etcd'] as const) {
    await withTarget(kind, 3, async (t) => {
      const lead = await t.leader();
      const victim = (lead + 1) % 3;
      await t.kill(victim, 'SIGKILL');
      await load(`${kind} ${n} writes, one member down`, t, { clients: 64, ops: n, keySpace: 50_000, prefix: 'cu/' });
      const leaderStatus = await new TestClient(t.endpoints[lead]!, 5000).status();
      const goal = leaderStatus.raftAppliedIndex;
      const t0 = performance.now();
      await t.restart(victim);
      const c = new TestClient(t.endpoints[victim]!, 1000);
      let caught = false;
      while (!caught && performance.now() - t0 < 300_000) {
        try {
          caught = (await c.status()).raftAppliedIndex >= goal;
        } catch {
          /* starting */
        }
        if (!caught) await sleep(50);
      }
      c.close();
      rows.push({ target: kind, 'missed writes': n, 'seconds to catch up': caught ? (performance.now() - t0) / 1000 : NaN, 'leader applied index': Number(goal) });
    });
  }
  const md = printTable(`catch-up of a member that missed ${n} writes (restart to applied index reached)`, rows);
  await writeResults('catchup', { ops: n }, rows, { title: `Catch-up after ${n} missed writes`, mark: 'bar', x: { field: 'target', type: 'nominal' }, y: { field: 'seconds to catch up', type: 'quantitative' } }, md);
}

/** Disk use stays bounded: 200,000 writes with snapshots every 10,000 entries. */
async function wal(): Promise<void> {
  const total = scale(200_000);
  const step = Math.max(1, Math.floor(total / 10));
  const rows: Row[] = [];
  const t = await startTarget('raftkv', 3, {
    snapshotCount: 10_000,
    extraArgs: ['--wal-segment-bytes', String(4 * 1024 * 1024), '--auto-compaction-mode', 'revision', '--auto-compaction-retention', '10000'],
  });
  try {
    const dir = t.dataDirs!()[await t.leader()]!;
    const mib = (p: string) => dirBytes(p) / 1048576;
    for (let done = 0; done < total; done += step) {
      await load(`writes ${done}..${done + step}`, t, { clients: 64, ops: step, keySpace: 1000, valueSize: 256, prefix: 'wal/' });
      rows.push({
        writes: done + step,
        'WAL MiB': mib(join(dir, 'member', 'wal')),
        'snapshots MiB': mib(join(dir, 'member', 'snap')),
        'WAL segments': readdirSync(join(dir, 'member', 'wal')).length,
      });
    }
  } finally {
    await t.destroy();
  }
  const md = printTable(`disk use over ${total} writes (1,000 keys, --snapshot-count 10000, 4 MiB WAL segments, --auto-compaction-mode revision --auto-compaction-retention 10000)`, rows);
  await writeResults('wal', { total }, rows, { title: 'WAL size over writes', mark: 'line', x: { field: 'writes', type: 'quantitative' }, y: { field: 'WAL MiB', type: 'quantitative' } }, md);
}

/** Bytes a directory takes on disk (allocated blocks: preallocated WAL space is sparse). */
function dirBytes(p: string): number {
  let s = 0;
  for (const n of readdirSync(p)) {
    const st = statSync(join(p, n));
    s += st.isDirectory() ? dirBytes(join(p, n)) : st.blocks * 512;
  }
  return s;
}

/** Snapshot size and time vs key count (in-process: the state machine image and file codec). */
async function snapshot(): Promise<void> {
  const rows: Row[] = [];
  for (const keys of QUICK ? [10_000, 50_000] : [10_000, 100_000, 300_000]) {
    const store = new MvccStore();
    const value = Buffer.alloc(256, 0x61);
    for (let k = 0; k < keys; k++) store.write((w) => w.put(Buffer.from(`key/${String(k).padStart(8, '0')}`), value, 0n));
    const sm = new StateMachine(new Lessor(1n, () => 0), () => ({ clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n }));
    sm.store = store;
    store.leases = sm.lessor;
    let t = performance.now();
    const { data } = await sm.imageAsync(async () => {});
    const file = encodeSnapshotFile({ data, metadata: { index: keys, term: 1, confState: emptyConfState() } });
    const createMs = performance.now() - t;
    t = performance.now();
    const back = decodeSnapshotFile(file);
    const target = new StateMachine(new Lessor(1n, () => 0), () => ({ clusterId: 0n, memberId: 0n, revision: 0n, raftTerm: 0n }));
    await target.restoreAsync(back.data, keys, async () => {});
    const restored = target.store;
    const restoreMs = performance.now() - t;
    if (restored.keyCount() !== keys) throw new Error('snapshot round trip lost keys');
    rows.push({ keys, 'snapshot MiB': file.length / 1048576, 'create ms': createMs, 'restore ms': restoreMs });
  }
  const md = printTable('snapshot size and time vs key count (256-byte values; total work, done in yielding chunks by the server)', rows);
  await writeResults('snapshot', {}, rows, { title: 'Snapshot create time vs keys', mark: 'line', x: { field: 'keys', type: 'quantitative' }, y: { field: 'create ms', type: 'quantitative' } }, md);
}

/**
 * The event-loop stall of applying a compaction (in-process, 100-byte values, a tenth of the keys
 * overwritten so there is history to drop): pruned at once, as before, and in slices with a
 * yield between them (MvccStore.pruneYield, what the server does): total time and the longest
 * stretch without a yield.
 */
async function compactionStall(): Promise<void> {
  const rows: Row[] = [];
  const value = Buffer.alloc(100, 0x61);
  const keyOf = (k: number): Buffer => Buffer.from(`key/${String(k).padStart(8, '0')}`);
  for (const keys of values.keys ? values.keys.split(',').map(Number) : QUICK ? [100_000, 1_000_000] : [100_000, 1_000_000, 3_000_000]) {
    for (const mode of ['at once', 'in slices'] as const) {
      const store = new MvccStore();
      for (let k = 0; k < keys; k += 10_000) store.write((w) => { for (let j = k; j < Math.min(keys, k + 10_000); j++) w.put(keyOf(j), value, 0n); });
      store.write((w) => { for (let j = 0; j < keys / 10; j++) w.put(keyOf(j), value, 0n); });
      let longest = 0;
      let since = performance.now();
      if (mode === 'in slices') {
        store.pruneYield = async () => {
          longest = Math.max(longest, performance.now() - since);
          await new Promise((r) => setImmediate(r));
          since = performance.now();
        };
      }
      const t = performance.now();
      since = t;
      store.compact(store.currentRev);
      await store.pruned();
      const total = performance.now() - t;
      longest = Math.max(longest, performance.now() - since);
      rows.push({ keys, pruning: mode, 'total ms': total, 'longest stall ms': longest });
      process.stderr.write(`compaction of ${keys} keys ${mode}: ${total.toFixed(0)} ms, longest stall ${longest.toFixed(1)} ms\n`);
    }
  }
  const md = printTable('applying a compaction: total time and longest event-loop stall (in-process, 100 B values)', rows);
  await writeResults('compaction-stall', {}, rows, { title: 'Longest stall applying a compaction', mark: 'bar', x: { field: 'keys', type: 'ordinal' }, y: { field: 'longest stall ms', type: 'quantitative' }, color: { field: 'pruning', type: 'nominal' } }, md);
}

/** The seed's election experiment (bench/election.ts); --quick: 3 trials per cell instead of 10. */
const electionExperiment = (): Promise<void> =>
  election({
    trials: values.trials ? Number(values.trials) : QUICK ? 3 : 10,
    sizes: values.sizes ? values.sizes.split(',').map(Number) : undefined,
    ranges: values.ranges ? values.ranges.split(',') : undefined,
    targets: values.targets ? (values.targets.split(',') as Array<'raftkv' | 'etcd'>) : undefined,
  });

const experiments: Record<string, () => Promise<void>> = { seed, 'compaction-stall': compactionStall, 'watch-fanout': () => watchFanoutExperiment({ quick: QUICK, members: values.sizes ? Number(values.sizes) : undefined, ops: values.ops ? Number(values.ops) : undefined }), 'vs-etcd': vsEtcd, size, election: electionExperiment, mix, reads, security, straggler, reconfig, catchup, snapshot, wal, gateway: () => gatewayBench(scale), restore: () => restoreBench(values.ops ? [Number(values.ops)] : QUICK ? [10_000, 100_000] : [100_000, 1_000_000]), scale: () => scaleExperiment({ quick: QUICK, sizes: values.keys?.split(',').map(Number) }), 'range-stall': () => rangeStallExperiment(values.keys ? Number(values.keys) : QUICK ? 200_000 : 1_000_000), profile: () => profileExperiment({ clients: Number(values.clients ?? 64), ops: scale(20_000), reads: values.reads ?? false }) };

async function main(): Promise<void> {
  const name = positionals[0] ?? 'seed';
  const which = name === 'all' ? Object.keys(experiments) : [name];
  for (const w of which) {
    if (!experiments[w]) {
      console.error(`bench: unknown experiment "${w}"; one of: ${[...Object.keys(experiments), 'all'].join(', ')}`);
      process.exit(2);
    }
  }
  ensureEtcd();
  for (const w of which) {
    console.error(`== ${w} ==`);
    await experiments[w]!();
  }
  process.exit(0);
}

void main();
