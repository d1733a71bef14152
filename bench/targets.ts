// Benchmark targets: a raftkv cluster, a real etcd cluster (Debian's etcd-server, fresh data
// dirs, default fsync), and a non-replicated baseline (one raftkv member, same storage).

import * as grpc from '@grpc/grpc-js';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestCerts, memberTlsArgs } from '../test/support/certs.js';
import { TestClient } from '../test/support/client.js';
import { ProcCluster, sleep } from '../test/support/proc-cluster.js';
import { freePorts } from '../test/support/ports.js';

export interface Target {
  kind: 'raftkv' | 'etcd' | 'baseline';
  size: number;
  endpoints: string[];
  /** Index (into endpoints) of the current leader. */
  leader(): Promise<number>;
  pids(): number[];
  kill(i: number, signal?: NodeJS.Signals): Promise<void>;
  restart(i: number): Promise<void>;
  destroy(): Promise<void>;
  /** raftkv only: each member's data directory. */
  dataDirs?(): string[];
  /** With TargetOptions.tls: the clients' credentials (CA + client certificate). */
  credentials?: grpc.ChannelCredentials;
}

export interface TargetOptions {
  heartbeatMs?: number;
  electionMs?: number;
  /** Extra raftkv flags (ignored for etcd). */
  extraArgs?: string[];
  snapshotCount?: number;
  /**
   * Client and peer mTLS with these certificates (test/support/certs.ts), the same flags for
   * raftkv and etcd: https URLs, --cert-file/--key-file/--trusted-ca-file/--client-cert-auth
   * and their --peer-* twins.
   */
  tls?: TestCerts;
  /** `--auth-token` for raftkv and etcd alike (e.g. 'simple'); both default to simple. */
  authToken?: string;
  /** Node flags for raftkv members (e.g. a larger heap for big datasets; ignored for etcd). */
  nodeArgs?: string[];
  /** Environment variables for raftkv members, over the bench's own (ignored for etcd). */
  env?: Record<string, string>;
}

const authTokenArgs = (o: TargetOptions): string[] => (o.authToken ? ['--auth-token', o.authToken] : []);

/** etcd's TLS flags (raftkv takes the same) for `certs`. */
export function tlsArgs(certs: TestCerts): string[] {
  return memberTlsArgs(certs);
}

/** The load clients' credentials for `certs` (plaintext without). */
export function tlsCredentials(certs: TestCerts | undefined): grpc.ChannelCredentials | undefined {
  if (!certs) return undefined;
  const pem = (f: string) => readFileSync(f);
  return grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert));
}

export async function startRaftkv(size: number, o: TargetOptions = {}): Promise<Target> {
  const c = await ProcCluster.start({
    size,
    heartbeatMs: o.heartbeatMs ?? 100,
    electionMs: o.electionMs ?? 1000,
    logLevel: 'warn',
    extraArgs: [...(o.tls ? tlsArgs(o.tls) : []), ...authTokenArgs(o), ...(o.extraArgs ?? [])],
    snapshotCount: o.snapshotCount,
    nodeArgs: o.nodeArgs,
    memberEnv: o.env ? () => o.env! : undefined,
    scheme: o.tls ? 'https' : 'http',
    clientCredentials: tlsCredentials(o.tls),
  });
  return {
    kind: size === 1 ? 'baseline' : 'raftkv',
    size,
    endpoints: c.endpoints(),
    leader: () => c.waitForLeader(30_000),
    pids: () => c.members.map((m) => m.proc?.pid ?? 0).filter((p) => p > 0),
    kill: (i, s) => c.kill(i, s ?? 'SIGKILL'),
    restart: async (i) => {
      c.startMember(i);
    },
    destroy: () => c.destroy(),
    dataDirs: () => c.members.map((m) => m.dataDir),
    credentials: tlsCredentials(o.tls),
  };
}

export function etcdAvailable(): boolean {
  try {
    execFileSync('etcd', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs Debian's etcd-server if etcd is missing (the benchmark's baseline). */
export function ensureEtcd(): void {
  if (etcdAvailable()) return;
  if (existsSync('/usr/bin/apt-get')) {
    execFileSync('bash', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server'], { stdio: 'inherit' });
  }
  if (!etcdAvailable()) throw new Error('etcd is not installed and could not be installed (apt-get install etcd-server)');
}

export async function startEtcd(size: number, o: TargetOptions = {}): Promise<Target> {
  ensureEtcd();
  const root = mkdtempSync(join(tmpdir(), 'etcd-bench-'));
  const ports = await freePorts(size * 2);
  const members = Array.from({ length: size }, (_, i) => ({ name: `e${i + 1}`, client: ports[2 * i]!, peer: ports[2 * i + 1]! }));
  const http = o.tls ? 'https' : 'http';
  const cluster = members.map((m) => `${m.name}=${http}://127.0.0.1:${m.peer}`).join(',');
  const procs: Array<ChildProcess | undefined> = [];
  const start = (i: number): void => {
    const m = members[i]!;
    const p = spawn(
      'etcd',
      [
        '--name', m.name,
        '--data-dir', join(root, m.name),
        '--listen-client-urls', `${http}://127.0.0.1:${m.client}`,
        '--advertise-client-urls', `${http}://127.0.0.1:${m.client}`,
        '--listen-peer-urls', `${http}://127.0.0.1:${m.peer}`,
        '--initial-advertise-peer-urls', `${http}://127.0.0.1:${m.peer}`,
        ...(o.tls ? tlsArgs(o.tls) : []),
        ...authTokenArgs(o),
        '--initial-cluster', cluster,
        '--initial-cluster-state', 'new',
        '--heartbeat-interval', String(o.heartbeatMs ?? 100),
        '--election-timeout', String(o.electionMs ?? 1000),
        '--log-level', 'error',
        '--logger', 'zap',
      ],
      { stdio: 'ignore', env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch === 'x64' ? '' : process.arch } },
    );
    procs[i] = p;
  };
  for (let i = 0; i < size; i++) start(i);
  const endpoints = members.map((m) => `127.0.0.1:${m.client}`);
  const credentials = tlsCredentials(o.tls);
  const clients = endpoints.map((e) => new TestClient(e, 2000, credentials));
  const leader = async (): Promise<number> => {
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      for (let i = 0; i < size; i++) {
        if (!procs[i] || procs[i]!.exitCode !== null || procs[i]!.signalCode !== null) continue;
        try {
          const st = await clients[i]!.status();
          if (st.leader !== 0n && st.leader === st.header?.memberId) return i;
        } catch {
          /* starting */
        }
      }
      await sleep(100);
    }
    throw new Error('etcd: no leader');
  };
  const kill = async (i: number, s: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const p = procs[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    if (s === 'SIGSTOP' || s === 'SIGCONT') {
      p.kill(s);
      return;
    }
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(s);
    await done;
  };
  const target: Target = {
    kind: 'etcd',
    size,
    endpoints,
    leader,
    pids: () => procs.map((p) => p?.pid ?? 0).filter((x) => x > 0),
    kill,
    credentials,
    restart: async (i) => start(i),
    destroy: async () => {
      for (const c of clients) c.close();
      for (let i = 0; i < size; i++) {
        procs[i]?.kill('SIGCONT');
        await kill(i, 'SIGKILL');
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
  try {
    await leader();
  } catch (e) {
    // Nothing left behind by a cluster that never came up (as ProcCluster.start).
    await target.destroy();
    throw e;
  }
  return target;
}

export async function startTarget(kind: Target['kind'], size: number, o: TargetOptions = {}): Promise<Target> {
  if (kind === 'etcd') return startEtcd(size, o);
  if (kind === 'baseline') return startRaftkv(1, o);
  return startRaftkv(size, o);
}
