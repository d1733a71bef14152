// Real raftkv member processes for tests and benchmarks: free ports, fresh data dirs, kill by
// pid (also on test failure and on process exit), so no process is ever left behind.

import type * as grpc from '@grpc/grpc-js';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TestClient } from './client.js';
import { freePorts } from './ports.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const live = new Set<ChildProcess>();
/** Processes a test stopped or killed on purpose: their exit is not worth reporting. */
const stopping = new WeakSet<ChildProcess>();
process.on('exit', () => {
  for (const c of live) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
});

export interface MemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  proc?: ChildProcess;
  log: string[];
}

export interface ClusterOptions {
  size: number;
  heartbeatMs?: number;
  electionMs?: number;
  snapshotCount?: number;
  extraArgs?: string[];
  logLevel?: string;
  dataRoot?: string;
  /** Extra node flags (e.g. --cpu-prof for profiling). */
  nodeArgs?: string[];
  /** Extra flags per member (e.g. its own --listen-metrics-urls port). */
  memberArgs?: (i: number, members: MemberSpec[]) => string[];
  /** Extra environment per member (e.g. RAFTKV_PEER_DIAL_MAP). */
  memberEnv?: (i: number, members: MemberSpec[]) => Record<string, string>;
  /** Pre-chosen ports: [client0, peer0, client1, peer1, ...]. */
  ports?: number[];
  /** 'https': every client and peer URL is https (pass the TLS flags in extraArgs). Default http. */
  scheme?: 'http' | 'https';
  /** Credentials of the test clients (default: plaintext). */
  clientCredentials?: grpc.ChannelCredentials;
  /** How members find each other instead of --initial-cluster (e.g. ['--discovery', url]). */
  bootstrapFlags?: string[];
  /** How long start() waits for a leader, and then for every member to serve (default 20 s each). */
  startTimeoutMs?: number;
}

export class ProcCluster {
  readonly members: MemberSpec[] = [];
  readonly dataRoot: string;
  private clients = new Map<number, TestClient>();

  private constructor(readonly opts: ClusterOptions) {
    this.dataRoot = opts.dataRoot ?? mkdtempSync(join(tmpdir(), 'raftkv-test-'));
  }

  /** The members (ports, data dirs) of a cluster, none started yet: see startMember. */
  static async create(opts: ClusterOptions): Promise<ProcCluster> {
    const c = new ProcCluster(opts);
    const ports = opts.ports ?? (await freePorts(opts.size * 2));
    for (let i = 0; i < opts.size; i++) {
      c.members.push({ name: `m${i + 1}`, clientPort: ports[2 * i]!, peerPort: ports[2 * i + 1]!, dataDir: join(c.dataRoot, `m${i + 1}`), log: [] });
    }
    return c;
  }

  static async start(opts: ClusterOptions): Promise<ProcCluster> {
    const c = await ProcCluster.create(opts);
    try {
      for (let i = 0; i < opts.size; i++) c.startMember(i);
      await c.waitForLeader(opts.startTimeoutMs);
      // A leader needs only a quorum; a test's first request to a member still starting would
      // fail fast with UNAVAILABLE on a loaded machine, so wait until every member serves.
      await c.waitForAllServing(opts.startTimeoutMs);
      // One that died meanwhile (say, a port it could not listen on) fails the start, with why.
      const dead = c.members.filter((_, i) => !c.isUp(i)).map((m) => m.name);
      if (dead.length > 0) throw new Error(`${dead.join(', ')} exited while the cluster started\n${c.logs()}`);
      return c;
    } catch (e) {
      // Nothing left behind by a cluster that never came up: its members and its data dirs.
      await c.destroy();
      throw e;
    }
  }

  /** Polls until every running member answers Maintenance.Status. */
  async waitForAllServing(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < this.members.length; i++) {
      for (;;) {
        if (!this.isUp(i)) break;
        try {
          await this.client(i).status();
          break;
        } catch (e) {
          if (Date.now() > deadline) throw new Error(`${this.members[i]!.name} does not serve: ${(e as Error).message}\n${this.logs()}`);
          await sleep(100);
        }
      }
    }
  }

  /** Members that join later start with --initial-cluster-state existing. */
  private joined = new Set<number>();
  /** Members removed from the cluster (not part of --initial-cluster any more). */
  readonly removed = new Set<number>();

  /**
   * Prepares a new member (after `member add` through the API) and starts it with
   * --initial-cluster-state existing. Returns its index.
   */
  async addMember(): Promise<number> {
    const [clientPort, peerPort] = await freePorts(2);
    const i = this.members.length;
    this.members.push({ name: `m${i + 1}`, clientPort: clientPort!, peerPort: peerPort!, dataDir: join(this.dataRoot, `m${i + 1}`), log: [] });
    this.joined.add(i);
    return i;
  }

  peerUrl(i: number): string {
    return `${this.opts.scheme ?? 'http'}://127.0.0.1:${this.members[i]!.peerPort}`;
  }

  args(i: number): string[] {
    const m = this.members[i]!;
    const http = this.opts.scheme ?? 'http';
    const cluster = this.members
      .filter((_, j) => !this.removed.has(j))
      .map((x) => `${x.name}=${http}://127.0.0.1:${x.peerPort}`)
      .join(',');
    return [
      '--initial-cluster-state', this.joined.has(i) ? 'existing' : 'new',
      '--name', m.name,
      '--data-dir', m.dataDir,
      '--listen-client-urls', `${http}://127.0.0.1:${m.clientPort}`,
      '--advertise-client-urls', `${http}://127.0.0.1:${m.clientPort}`,
      '--listen-peer-urls', `${http}://127.0.0.1:${m.peerPort}`,
      '--initial-advertise-peer-urls', `${http}://127.0.0.1:${m.peerPort}`,
      ...(this.opts.bootstrapFlags ?? ['--initial-cluster', cluster]),
      '--heartbeat-interval', String(this.opts.heartbeatMs ?? 50),
      '--election-timeout', String(this.opts.electionMs ?? 500),
      '--snapshot-count', String(this.opts.snapshotCount ?? 100000),
      '--log-level', this.opts.logLevel ?? 'info',
      ...(this.opts.extraArgs ?? []),
      ...(this.opts.memberArgs?.(i, this.members) ?? []),
    ];
  }

  startMember(i: number): ChildProcess {
    const m = this.members[i]!;
    const p = spawn(process.execPath, [...(this.opts.nodeArgs ?? []), BIN, ...this.args(i)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(this.opts.memberEnv?.(i, this.members) ?? {}) },
    });
    const keep = (d: Buffer): void => {
      m.log.push(d.toString());
      if (m.log.length > 2000) m.log.splice(0, 1000);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    live.add(p);
    p.on('exit', (code, signal) => {
      live.delete(p);
      if (stopping.has(p)) return;
      const removed = m.log.join('').includes('permanently removed from the cluster');
      if (removed && code === 0) return; // removed from the cluster: exiting is its job
      // A member that dies on its own is the first thing to know when a test fails in CI.
      const tail = m.log.join('').split('\n').slice(-15).join('\n');
      process.stderr.write(`[proc-cluster] ${m.name} (pid ${p.pid}) exited by itself: code ${code} signal ${signal}\n${tail}\n`);
    });
    m.proc = p;
    return p;
  }

  endpoint(i: number): string {
    return `127.0.0.1:${this.members[i]!.clientPort}`;
  }

  endpoints(): string[] {
    return this.members.map((_, i) => this.endpoint(i));
  }

  client(i: number): TestClient {
    let c = this.clients.get(i);
    if (!c) {
      c = new TestClient(this.endpoint(i), 5000, this.opts.clientCredentials);
      this.clients.set(i, c);
    }
    return c;
  }

  isUp(i: number): boolean {
    const p = this.members[i]!.proc;
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /** kill -9 (or another signal) a member by pid. */
  kill(i: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const p = this.members[i]!.proc;
    if (!p || !this.isUp(i)) return Promise.resolve();
    if (signal !== 'SIGCONT') stopping.add(p);
    if (signal === 'SIGSTOP' || signal === 'SIGCONT') {
      p.kill(signal);
      return Promise.resolve();
    }
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    return done;
  }

  /** Graceful stop (SIGTERM), escalating to SIGKILL after 10s. */
  async stop(i: number): Promise<void> {
    const p = this.members[i]!.proc;
    if (!p || !this.isUp(i)) return;
    stopping.add(p);
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGCONT');
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }

  /** Index of the member that reports itself as leader, polling until `timeoutMs`. */
  async waitForLeader(timeoutMs = 20_000, among?: number[]): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    const idx = among ?? this.members.map((_, i) => i);
    while (Date.now() < deadline) {
      if (idx.every((i) => this.members[i]!.proc !== undefined && !this.isUp(i))) {
        throw new Error(`no leader: every member exited\n${this.logs()}`);
      }
      const seen = new Map<bigint, number>();
      for (const i of idx) {
        if (!this.isUp(i)) continue;
        try {
          const st = await this.client(i).status();
          if (st.leader !== 0n && st.header?.memberId === st.leader) return i;
          if (st.leader !== 0n) seen.set(st.leader, i);
        } catch {
          /* not up yet */
        }
      }
      await sleep(100);
    }
    throw new Error(`no leader within ${timeoutMs}ms\n${this.logs()}`);
  }

  logs(): string {
    return this.members.map((m) => `--- ${m.name} ---\n${m.log.join('').split('\n').slice(-30).join('\n')}`).join('\n');
  }

  async destroy(keepData = false): Promise<void> {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
    await Promise.all(this.members.map((_, i) => this.stop(i)));
    if (!keepData) rmSync(this.dataRoot, { recursive: true, force: true });
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Retries `f` until it succeeds or `timeoutMs` passes (for operations during failover). */
export async function eventually<T>(f: () => Promise<T>, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      return await f();
    } catch (e) {
      last = e;
      await sleep(stepMs);
    }
  }
  throw last instanceof Error ? last : new Error(String(last));
}
