// `npm run bench -- election [--quick] [--trials N] [--sizes 3,5]`: the seed project's
// election experiment as it wrote it — the time to elect a new leader with election timeouts
// of 0–5 ms, 12–25 ms, 150–300 ms and 300–500 ms, on clusters of 3, 5, 7, 9 and 11 members —
// for raftkv (exactly those ranges, see election-timing.ts) and etcd 3.4 (its nearest
// setting, where its flags accept one). A trial kills the leader (SIGKILL) and measures the
// time until a write is acknowledged again; a trial with no write within 20 s, or a cluster
// that elects no first leader, is reported as such: elections that never settle are a result.

import { resolve } from 'node:path';
import { type Row, printTable, writeResults } from './report.js';
import { type Target, startEtcd } from './targets.js';
import { ProcCluster, sleep } from '../test/support/proc-cluster.js';
import { TestClient } from '../test/support/client.js';

interface Range {
  label: string;
  lo: number;
  hi: number;
  /** raftkv: tick length (ms) and the range in ticks. */
  tickMs: number;
  /** etcd: --heartbeat-interval/--election-timeout (it draws from [E, 2E)), or why not. */
  etcd: { heartbeatMs: number; electionMs: number; label: string } | { none: string };
}

// The seed's ranges. raftkv's base election timeout (CheckQuorum, the vote lease) is lo, or
// hi/2 for 0–5 ms; its heartbeat is one tick.
const RANGES: Range[] = [
  { label: '0–5 ms', lo: 0, hi: 5, tickMs: 0.5, etcd: { none: 'etcd needs whole-millisecond heartbeats and a timeout of at least 5 heartbeats: 5–10 ms at best' } },
  { label: '12–25 ms', lo: 12, hi: 25, tickMs: 1, etcd: { heartbeatMs: 1, electionMs: 12, label: '12–24 ms' } },
  { label: '150–300 ms', lo: 150, hi: 300, tickMs: 10, etcd: { heartbeatMs: 10, electionMs: 150, label: '150–300 ms' } },
  { label: '300–500 ms', lo: 300, hi: 500, tickMs: 10, etcd: { heartbeatMs: 10, electionMs: 300, label: '300–600 ms' } },
];

const SIZES = [3, 5, 7, 9, 11];
const TIMING = resolve('dist/bench/election-timing.js');

async function startRaftkvTimed(size: number, r: Range): Promise<Target> {
  const baseTicks = Math.max(5, Math.round((r.lo > 0 ? r.lo : r.hi / 2) / r.tickMs));
  const env = { RAFTKV_BENCH_TICK_MS: String(r.tickMs), RAFTKV_BENCH_ELECTION_TICKS: `${Math.round(r.lo / r.tickMs)},${Math.round(r.hi / r.tickMs)}` };
  // --heartbeat-interval 1 marks the Raft ticker for election-timing.ts; the election
  // timeout flag is the base timeout in ticks.
  const opts = { size, heartbeatMs: 1, electionMs: baseTicks, logLevel: 'warn', nodeArgs: ['--import', TIMING], memberEnv: () => env };
  // ProcCluster.start gives nothing back if no leader is elected: build it step by step so
  // that its processes can be stopped either way.
  const { freePorts } = await import('../test/support/ports.js');
  const ports = await freePorts(size * 2);
  const c = Reflect.construct(ProcCluster, [{ ...opts, ports }]) as ProcCluster;
  for (let i = 0; i < size; i++) c.members.push({ name: `m${i + 1}`, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, dataDir: resolve(c.dataRoot, `m${i + 1}`), log: [] });
  for (let i = 0; i < size; i++) c.startMember(i);
  try {
    await c.waitForLeader(20_000);
  } catch (e) {
    await c.destroy();
    throw e;
  }
  return {
    kind: 'raftkv',
    size,
    endpoints: c.endpoints(),
    leader: () => c.waitForLeader(20_000),
    pids: () => c.members.map((m) => m.proc?.pid ?? 0).filter((p) => p > 0),
    kill: (i, s) => c.kill(i, s ?? 'SIGKILL'),
    restart: async (i) => {
      c.startMember(i);
    },
    destroy: () => c.destroy(),
  };
}

/** Kill the leader; ms until a put is acknowledged (undefined: none within 20 s). */
async function failover(t: Target, trial: number, pollMs: number): Promise<number | undefined> {
  const lead = await t.leader();
  const others = t.endpoints.map((_, i) => i).filter((i) => i !== lead);
  const clients = others.map((i) => new TestClient(t.endpoints[i]!, 2000));
  const t0 = performance.now();
  await t.kill(lead, 'SIGKILL');
  let doneAt: number | undefined;
  const pending: Array<Promise<void>> = [];
  // A new attempt every pollMs, alternating members, each with its own deadline: the first
  // acknowledged one ends the failover.
  for (let a = 0; doneAt === undefined && performance.now() - t0 < 20_000; a++) {
    pending.push(
      clients[a % clients.length]!.put('election', String(trial)).then(
        () => {
          doneAt ??= performance.now();
        },
        () => {},
      ),
    );
    await sleep(pollMs);
  }
  await Promise.all(pending);
  for (const c of clients) c.close();
  await t.restart(lead);
  return doneAt === undefined ? undefined : doneAt - t0;
}

export interface ElectionOptions {
  trials: number;
  sizes?: number[];
  /** Only the ranges whose label starts with one of these (e.g. '12'); default: all four. */
  ranges?: string[];
  /** Only these targets (default: raftkv and etcd). */
  targets?: Array<'raftkv' | 'etcd'>;
}

export async function election(o: ElectionOptions): Promise<void> {
  const sizes = o.sizes ?? SIZES;
  const rows: Row[] = [];
  const samples: Row[] = [];
  const ranges = RANGES.filter((r) => !o.ranges || o.ranges.some((p) => r.label.startsWith(p)));
  for (const r of ranges) {
    for (const size of sizes) {
      for (const kind of o.targets ?? (['raftkv', 'etcd'] as const)) {
        // Every row has every column, so that the printed table shows them all.
        const row: Row = { range: r.label, members: size, target: kind, setting: '', trials: 0, 'no write in 20 s': 0, 'min ms': NaN, 'p50 ms': NaN, 'max ms': NaN, note: '' };
        if (kind === 'etcd' && 'none' in r.etcd) {
          rows.push({ ...row, setting: 'n/a', trials: 0, note: r.etcd.none });
          continue;
        }
        const setting = kind === 'raftkv' ? `${r.label} (tick ${r.tickMs} ms)` : 'none' in r.etcd ? '' : `${r.etcd.label} (--heartbeat-interval ${r.etcd.heartbeatMs} --election-timeout ${r.etcd.electionMs})`;
        let t: Target;
        try {
          t = kind === 'raftkv' ? await startRaftkvTimed(size, r) : await startEtcd(size, 'none' in r.etcd ? {} : { heartbeatMs: r.etcd.heartbeatMs, electionMs: r.etcd.electionMs });
        } catch (e) {
          rows.push({ ...row, setting, note: `no first leader: ${(e as Error).message.split('\n')[0]}` });
          continue;
        }
        const times: number[] = [];
        let failed = 0;
        try {
          for (let k = 0; k < o.trials; k++) {
            const ms = await failover(t, k, r.hi < 50 ? 1 : 5);
            if (ms === undefined) failed++;
            else {
              times.push(ms);
              samples.push({ range: r.label, members: size, target: kind, 'ms to first write': ms });
            }
            await sleep(Math.max(300, r.hi * 4));
          }
        } catch (e) {
          row.note = `stopped: ${(e as Error).message.split('\n')[0]}`;
        } finally {
          await t.destroy();
        }
        times.sort((a, b) => a - b);
        const pct = (p: number): number => times[Math.min(times.length - 1, Math.floor((p / 100) * times.length))] ?? NaN;
        rows.push({ ...row, setting, trials: times.length, 'no write in 20 s': failed, 'min ms': times[0] ?? NaN, 'p50 ms': pct(50), 'max ms': times[times.length - 1] ?? NaN });
      }
    }
  }
  const md = printTable(`leader killed -> first acknowledged write, by election timeout and cluster size (${o.trials} trials each)`, rows);
  await writeResults(o.ranges || o.targets ? `election-${[...(o.ranges ?? []), ...(o.targets ?? [])].join('-')}` : 'election', { trials: o.trials, sizes, samples }, rows, { title: 'Failover time by election timeout', mark: 'point', x: { field: 'members', type: 'ordinal' }, y: { field: 'p50 ms', type: 'quantitative' }, color: { field: 'target', type: 'nominal' }, column: { field: 'range', type: 'nominal' } }, md);
}
