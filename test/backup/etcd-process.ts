// A real etcd 3.4 member (Debian's etcd-server, /usr/bin/etcd) for the backup tests: the
// reference that raftkv's snapshots are read by and that makes snapshots raftkv must read.
// Free ports, a temp data dir, killed by pid (also when the test fails or the process exits).

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePorts } from '../support/ports.js';

const run = promisify(execFile);
export const ETCD_BIN = '/usr/bin/etcd';
export const etcdAvailable = existsSync(ETCD_BIN);
if (!etcdAvailable && process.env.CI) throw new Error('etcd is required in CI (apt-get install etcd-server)');

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export class EtcdProcess {
  private proc: ChildProcess | undefined;
  readonly log: string[] = [];

  private constructor(
    readonly name: string,
    readonly dataDir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    /** The temp dir this made for the data dir (removed by destroy), if it made one. */
    private readonly ownRoot: string | undefined,
    private readonly extraArgs: string[] = [],
  ) {}

  /**
   * Starts a one-member etcd on free ports, in `dataDir` (default: a new temp dir), and waits
   * until it serves. `dataDir` may hold a data dir made by `etcdctl snapshot restore` (then
   * `peerPort` must be the one it was restored with).
   */
  static async start(opts: { dataDir?: string; name?: string; peerPort?: number; extraArgs?: string[] } = {}): Promise<EtcdProcess> {
    const [clientPort, peer] = await freePorts(2);
    const ownRoot = opts.dataDir ? undefined : mkdtempSync(join(tmpdir(), 'raftkv-etcd-'));
    const e = new EtcdProcess(opts.name ?? 'e1', opts.dataDir ?? join(ownRoot!, 'e1'), clientPort!, opts.peerPort ?? peer!, ownRoot, opts.extraArgs);
    e.spawn();
    await e.waitServing();
    return e;
  }

  get endpoint(): string {
    return `127.0.0.1:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  private spawn(): void {
    const c = `http://127.0.0.1:${this.clientPort}`;
    const p = spawn(
      ETCD_BIN,
      [
        '--name', this.name, '--data-dir', this.dataDir,
        '--listen-client-urls', c, '--advertise-client-urls', c,
        '--listen-peer-urls', this.peerUrl, '--initial-advertise-peer-urls', this.peerUrl,
        '--initial-cluster', `${this.name}=${this.peerUrl}`,
        ...this.extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer): void => {
      this.log.push(d.toString());
      if (this.log.length > 500) this.log.splice(0, 250);
    };
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    live.add(p);
    p.on('exit', () => live.delete(p));
    this.proc = p;
  }

  private async waitServing(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.ctl(['endpoint', 'status']); // (health needs credentials once auth is on)
        return;
      } catch (e) {
        if (this.proc?.exitCode !== null || Date.now() > deadline) {
          await this.stop();
          throw new Error(`etcd did not start: ${(e as Error).message}\n${this.log.join('').split('\n').slice(-20).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** Runs etcdctl (v3) against this member; resolves to its stdout. */
  async ctl(args: string[]): Promise<string> {
    const r = await run('etcdctl', ['--endpoints', this.endpoint, ...args], { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 64 * 1024 * 1024 });
    return r.stdout;
  }

  /** Stops it and starts it again on the same data dir (`hard`: kill -9 first), and waits until it serves. */
  async restart(hard = false): Promise<void> {
    await this.stop(hard ? 'SIGKILL' : 'SIGTERM');
    this.spawn();
    await this.waitServing();
  }

  /** Stops it by pid (SIGTERM, SIGKILL after 10 s). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const done = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
    await done;
    clearTimeout(t);
  }

  async destroy(): Promise<void> {
    await this.stop();
    if (this.ownRoot) rmSync(this.ownRoot, { recursive: true, force: true });
  }
}
