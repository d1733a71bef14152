// `npm run bench -- scale [--quick] [--sizes 100000,1000000,3000000]`: how raftkv holds up as
// the data grows, beside etcd 3.4 (3 members each, same loader): for each dataset of 100-byte
// values, the load rate, RSS per member (2 s after the load, and at rest 40 s later), on-disk
// size, a member's restart-to-first-read time (median of three), put latency while one client
// reads everything in one Range, and puts/s with 10,000 watchers on a prefix. Bounded: every loop has a count and a time limit.

import * as grpc from '@grpc/grpc-js';
import { SingleBar } from 'cli-progress';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as hdr from 'hdr-histogram-js';
import { KVClient, type RequestOp, WatchClient, WatchRequest, type WatchResponse } from '../src/gen/etcd/rpc.js';
import { TestClient } from '../test/support/client.js';
import { sleep } from '../test/support/proc-cluster.js';
import { runLoad } from './loadgen.js';
import { type Row, printTable, writeResults } from './report.js';
import { type Target, startTarget } from './targets.js';

const VALUE = Buffer.alloc(100, 'v');
const PUTS_PER_TXN = 100;
const LOADERS = 16;
const WATCHERS = 10_000;
const WATCH_STREAMS = 100;

const mib = (b: number): number => Math.round(b / 2 ** 20);

function rss(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m![1]) * 1024;
  } catch {
    return 0;
  }
}

/** A member's data dir, from its command line (raftkv and etcd both take --data-dir). */
function dataDirOf(pid: number): string | undefined {
  const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  const i = args.indexOf('--data-dir');
  return i >= 0 ? args[i + 1] : undefined;
}

const du = (dir: string): number => Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8' }).split('\t')[0]);

const key = (i: number): Buffer => Buffer.from(`scale/${String(i).padStart(8, '0')}`);

/** Loads `n` keys with LOADERS concurrent txns of PUTS_PER_TXN puts; keys/s. */
async function loadKeys(t: Target, n: number, label: string): Promise<number> {
  const leader = await t.leader();
  const client = new TestClient(t.endpoints[leader]!, 120_000, t.credentials);
  const bar = new SingleBar({ format: `${label.padEnd(30)} [{bar}] {value}/{total} keys`, hideCursor: true, clearOnComplete: true, stream: process.stderr });
  bar.start(n, 0);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: LOADERS }, async () => {
      while (next < n) {
        const from = next;
        next = Math.min(n, next + PUTS_PER_TXN);
        const success: RequestOp[] = [];
        for (let i = from; i < next; i++) success.push({ requestPut: { key: key(i), value: VALUE, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
        await client.txn({ compare: [], success, failure: [] });
        done += success.length;
        bar.update(done);
      }
    }),
  );
  bar.stop();
  client.close();
  return n / ((performance.now() - t0) / 1000);
}

/** How long the members idle after the load before RSS is read again ("at rest"). */
const REST_MS = 40_000;

/** Restarts per size, of which the median is reported. */
const RESTARTS = 3;

/** Kills a follower, restarts it, and times until it serves a read of the last key. */
async function restartToFirstRead(t: Target, n: number): Promise<number> {
  const leader = await t.leader();
  const follower = (leader + 1) % t.endpoints.length;
  await t.kill(follower);
  const t0 = performance.now();
  await t.restart(follower);
  const deadline = Date.now() + 300_000;
  for (;;) {
    // A new channel per attempt: one whose connection was refused waits out grpc-js's reconnect
    // backoff (1 s, then 1.6 s, ...), which would round each restart up to that schedule.
    const c = new TestClient(t.endpoints[follower]!, 2000, t.credentials);
    try {
      const r = await c.range(key(n - 1), { serializable: true });
      if (r.kvs.length === 1) return performance.now() - t0;
    } catch {
      /* still starting */
    } finally {
      c.close();
    }
    if (Date.now() > deadline) throw new Error('restarted member did not serve within 300 s');
    await sleep(20);
  }
}

/** One client reads every key in one Range while another puts back to back: put latencies. */
async function putsDuringFullRange(t: Target): Promise<{ rangeMs: number; p99: number; max: number; puts: number }> {
  const leader = await t.leader();
  const opts = { 'grpc.max_receive_message_length': -1 };
  const reader = new KVClient(t.endpoints[leader]!, t.credentials ?? grpc.credentials.createInsecure(), opts);
  const writer = new TestClient(t.endpoints[leader]!, 60_000, t.credentials);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
  let reading = true;
  let puts = 0;
  const t0 = performance.now();
  const range = new Promise<void>((res, rej) =>
    reader.range({ key: Buffer.from('scale/'), rangeEnd: Buffer.from('scale0'), limit: 0n, revision: 0n, sortOrder: 0, sortTarget: 0, serializable: false, keysOnly: false, countOnly: false, minModRevision: 0n, maxModRevision: 0n, minCreateRevision: 0n, maxCreateRevision: 0n }, new grpc.Metadata(), { deadline: Date.now() + 600_000 }, (e) => (e ? rej(e) : res())),
  ).finally(() => (reading = false));
  const putter = (async () => {
    for (let i = 0; reading && i < 1_000_000; i++) {
      const s = performance.now();
      await writer.put(`during-range/${i % 100}`, 'x');
      h.recordValue(Math.round((performance.now() - s) * 1000));
      puts++;
    }
  })();
  await range;
  const rangeMs = performance.now() - t0;
  await putter;
  reader.close();
  writer.close();
  return { rangeMs, p99: h.getValueAtPercentile(99) / 1000, max: h.maxValue / 1000, puts };
}

/**
 * Puts/s (16 clients) on a prefix that 10,000 watchers (100 streams) watch, and how many events
 * the watchers received during the run (a server that answers puts but leaves its watchers
 * behind would look fast by the first number alone).
 */
export async function putsWithWatchers(t: Target, ops: number): Promise<{ opsPerSec: number; events: number }> {
  const leader = await t.leader();
  const clients: Array<InstanceType<typeof WatchClient>> = [];
  const calls: Array<grpc.ClientDuplexStream<WatchRequest, WatchResponse>> = [];
  let created = 0;
  let events = 0;
  let counting = false;
  for (let s = 0; s < WATCH_STREAMS; s++) {
    const c = new WatchClient(t.endpoints[leader]!, t.credentials ?? grpc.credentials.createInsecure(), { 'bench.channel': s % 10 });
    const call = c.watch();
    call.on('data', (r: WatchResponse) => {
      if (r.created) created++;
      if (counting) events += r.events.length;
    });
    call.on('error', () => undefined);
    for (let w = 0; w < WATCHERS / WATCH_STREAMS; w++) call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('watched/'), rangeEnd: Buffer.from('watched0') } }));
    clients.push(c);
    calls.push(call);
  }
  const deadline = Date.now() + 60_000;
  while (created < WATCHERS && Date.now() < deadline) await sleep(50);
  const r = await runLoad({
    endpoints: [t.endpoints[leader]!],
    clients: 16,
    connections: 16,
    ops,
    maxMs: 120_000,
    keySize: 16,
    valueSize: 100,
    readRatio: 0,
    serializable: false,
    keySpace: 1000,
    prefix: 'watched/',
    credentials: t.credentials,
    onStart: () => (counting = true),
  });
  counting = false;
  for (const c of calls) c.cancel();
  for (const c of clients) c.close();
  return { opsPerSec: r.opsPerSec, events };
}

/**
 * The watch fan-out alone: puts/s with 10,000 watchers on the written prefix and the events they
 * received, raftkv and etcd alternating, `members` each (default 1), `runs` rounds of `ops` puts.
 */
export async function watchFanoutExperiment(o: { quick: boolean; members?: number; runs?: number; ops?: number }): Promise<void> {
  const rows: Row[] = [];
  const runs = o.runs ?? (o.quick ? 1 : 2);
  for (let run = 1; run <= runs; run++) {
    for (const kind of ['raftkv', 'etcd'] as const) {
      const t = await startTarget(kind, o.members ?? 1);
      try {
        const r = await putsWithWatchers(t, o.ops ?? (o.quick ? 1000 : 2000));
        rows.push({ run, target: kind, 'puts/s': Math.round(r.opsPerSec), 'events received': r.events });
        process.stderr.write(`watch fan-out run ${run} ${kind}: ${Math.round(r.opsPerSec)} puts/s, ${r.events} events received\n`);
      } finally {
        await t.destroy();
      }
    }
  }
  const md = printTable('puts/s with 10,000 watchers (100 streams) on the written prefix, 16 clients', rows);
  await writeResults('watch-fanout', { members: o.members ?? 1, ops: o.ops ?? (o.quick ? 1000 : 2000) }, rows, { title: 'Puts/s with 10,000 watchers', mark: 'bar', x: { field: 'run', type: 'ordinal' }, y: { field: 'puts/s', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}

export async function scaleExperiment(o: { quick: boolean; sizes?: number[] }): Promise<void> {
  const sizes = o.sizes ?? (o.quick ? [100_000, 1_000_000] : [100_000, 1_000_000, 3_000_000]);
  const rows: Row[] = [];
  for (const n of sizes) {
    for (const kind of ['raftkv', 'etcd'] as const) {
      // Every size with the defaults a user gets: 3 M keys of 100 B are ~0.9 GB by raftkv's cost
      // model, inside the default quota (2 GiB, at most half of Node's default ~4 GiB heap).
      // (Before keys and values were strings they were ~2.2 GB and needed an 8 GiB heap.)
      const t = await startTarget(kind, 3);
      try {
        const loadRate = await loadKeys(t, n, `${kind} load ${n}`);
        await sleep(2000);
        const pids = t.pids();
        const rssMiB = pids.map((p) => mib(rss(p)));
        // And at rest: right after the load, much of a Node member's RSS is garbage (the requests
        // in flight, promoted) that V8's memory reducer returns once the member has been idle
        // ~30 s; Go's scavenger returns etcd's over minutes. Both are reported.
        await sleep(REST_MS);
        const restRssMiB = pids.map((p) => mib(rss(p)));
        const dirs = pids.map(dataDirOf).filter((d): d is string => d !== undefined);
        const diskMiB = dirs.length ? Math.round(dirs.reduce((s, d) => s + mib(du(d)), 0) / dirs.length) : 0;
        const during = await putsDuringFullRange(t);
        // The median of three restarts (one follower each time): a single one varies by a third
        // on this shared machine.
        const restarts: number[] = [];
        for (let i = 0; i < RESTARTS; i++) {
          restarts.push(await restartToFirstRead(t, n));
          await sleep(1500);
        }
        const restartMs = [...restarts].sort((a, b) => a - b)[RESTARTS >> 1]!;
        const watchPuts = (await putsWithWatchers(t, o.quick ? 2000 : 10_000)).opsPerSec;
        rows.push({
          target: kind,
          keys: n,
          'load keys/s': Math.round(loadRate),
          'RSS MiB/member (max)': Math.max(...rssMiB),
          'RSS MiB/member at rest (max)': Math.max(...restRssMiB),
          'disk MiB/member': diskMiB,
          'restart→read ms': Math.round(restartMs),
          'restarts ms': restarts.map((x) => Math.round(x)).join(' '),
          'full Range ms': Math.round(during.rangeMs),
          'put p99 ms during Range': Math.round(during.p99 * 10) / 10,
          'put max ms during Range': Math.round(during.max),
          'puts/s with 10k watchers': Math.round(watchPuts),
        });
        console.error(`  ${kind} ${n}: ${JSON.stringify(rows.at(-1))}`);
      } finally {
        await t.destroy();
      }
    }
  }
  for (const r of rows) {
    if (r.target !== 'raftkv') continue;
    const e = rows.find((x) => x.target === 'etcd' && x.keys === r.keys);
    if (!e) continue;
    r['RSS vs etcd'] = Number(r['RSS MiB/member (max)']) / Number(e['RSS MiB/member (max)']);
    r['RSS at rest vs etcd'] = Number(r['RSS MiB/member at rest (max)']) / Number(e['RSS MiB/member at rest (max)']);
    r['restart vs etcd'] = Number(r['restart→read ms']) / Number(e['restart→read ms']);
  }
  const md = printTable(`data scale: 3 members each, 100-byte values${o.quick ? ' (quick)' : ''}`, rows);
  await writeResults('scale', { sizes, quick: o.quick }, rows, { title: 'RSS per member vs keys', mark: 'bar', x: { field: 'keys', type: 'ordinal' }, y: { field: 'RSS MiB/member (max)', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}
