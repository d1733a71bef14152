// A member started the way Debian's etcd unit starts etcd (ETCD_* variables from the unit and
// /etc/default/etcd, more flags in DAEMON_ARGS) serves etcdctl; its logs go where
// --log-outputs says, as zap's JSON lines; --max-txn-ops is enforced; and its data dir is its
// own: a second process is refused at once, and after kill -9 a restart takes the lock over.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LOCK_FILE } from '../../src/storage/dir-lock.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { freePorts } from '../support/ports.js';
import { eventually } from '../support/proc-cluster.js';

const BIN = resolve('dist/src/cli/raftkv.js');

/** Parses an EnvironmentFile as systemd does for these simple lines (comments, KEY=value). */
function environmentFile(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || line.startsWith('#')) continue;
    const i = line.indexOf('=');
    env[line.slice(0, i)] = line.slice(i + 1);
  }
  return env;
}

interface Proc {
  child: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) c.kill('SIGKILL');
});

function start(args: string[], env: Record<string, string>): Proc {
  // Only PATH and HOME from the test's environment: a stray ETCD_* there must not change the member.
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...env } });
  started.add(child);
  const out: string[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => out.push(d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => {
    started.delete(child);
    r(code);
  }));
  return { child, out, exited };
}

async function kill(p: Proc | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  await p.exited;
}

describe('a member configured as a Debian unit configures etcd', { skip: etcdctlAvailable ? false : 'etcdctl not installed' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'raftkv-unit-'));
  const dataDir = join(root, 'default');
  const logFile = join(root, 'etcd.log');
  let client = 0;
  let peer = 0;
  let env: Record<string, string> = {};
  let daemonArgs: string[] = [];
  let member: Proc | undefined;
  const ctl = async (args: string[], input?: string): Promise<string> => {
    const p = run('etcdctl', [`--endpoints=127.0.0.1:${client}`, '--command-timeout=10s', ...args], { env: etcdctlEnv });
    if (input !== undefined) p.child.stdin!.end(input);
    return (await p).stdout;
  };
  const serving = () => eventually(() => ctl(['endpoint', 'health']), 30_000, 200);

  before(async () => {
    [client, peer] = (await freePorts(2)) as [number, number];
    // The unit's Environment= lines, then /etc/default/etcd.
    env = {
      ETCD_NAME: 'host1',
      ETCD_DATA_DIR: dataDir,
      ...environmentFile(`## etcd(1) daemon options
# ETCD_SNAPSHOT_COUNT=100000
ETCD_LISTEN_PEER_URLS=http://127.0.0.1:${peer}
ETCD_LISTEN_CLIENT_URLS=http://127.0.0.1:${client}
ETCD_INITIAL_ADVERTISE_PEER_URLS=http://127.0.0.1:${peer}
ETCD_ADVERTISE_CLIENT_URLS=http://127.0.0.1:${client}
ETCD_INITIAL_CLUSTER=host1=http://127.0.0.1:${peer}
ETCD_INITIAL_CLUSTER_STATE=new
ETCD_INITIAL_CLUSTER_TOKEN=etcd-cluster-1
ETCD_HEARTBEAT_INTERVAL=50
ETCD_ELECTION_TIMEOUT=500
ETCD_AUTO_COMPACTION_RETENTION=1
`),
    };
    // DAEMON_ARGS: the flags this task added, as a unit file would carry them.
    daemonArgs = [
      '--logger', 'zap', '--log-level', 'info', '--log-outputs', `stderr,${logFile}`,
      '--enable-grpc-gateway', '--max-txn-ops', '3', '--max-concurrent-streams', '1000',
      '--grpc-keepalive-min-time', '5s', '--grpc-keepalive-interval', '2h', '--grpc-keepalive-timeout', '20s',
      '--quota-backend-bytes', '8589934592', '--enable-v2=false', '--max-wals', '5', '--max-snapshots', '5',
      '--strict-reconfig-check', '--pre-vote', '--initial-election-tick-advance', '--metrics', 'basic',
    ];
    member = start(daemonArgs, env);
    await serving();
  });
  after(async () => {
    await kill(member, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it('serves etcdctl put/get; its stderr is zap JSON lines naming the variables it used', async () => {
    assert.equal((await ctl(['put', 'unit-key', 'v1'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'unit-key']), 'unit-key\nv1\n');
    const lines = member!.out.join('').trim().split('\n');
    const first = JSON.parse(lines[0]!) as Record<string, string>;
    assert.deepEqual(Object.keys(first).slice(0, 4), ['level', 'ts', 'caller', 'msg']);
    const msgs = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    assert.ok(msgs.includes('recognized and used environment variable ETCD_NAME=host1'), msgs.join('\n'));
    assert.ok(msgs.includes(`recognized and used environment variable ETCD_DATA_DIR=${dataDir}`));
  });

  it('--log-outputs with a file path: the same JSON lines appended there', () => {
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    assert.ok(lines.length > 3, lines.join('\n'));
    for (const l of lines) {
      const j = JSON.parse(l) as Record<string, unknown>;
      assert.ok(['debug', 'info', 'warn', 'error'].includes(j.level as string), l);
      assert.match(j.ts as string, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}(Z|[+-]\d{4})$/);
      assert.equal(typeof j.msg, 'string');
      assert.equal(typeof j.caller, 'string');
      assert.equal(j.name, 'host1');
    }
  });

  it("--max-txn-ops 3: a txn of 4 operations gets etcd's error; one of 3 commits", async () => {
    await assert.rejects(() => ctl(['txn'], '\nput t1 1\nput t2 2\nput t3 3\nput t4 4\n\n\n'), /etcdserver: too many operations in txn request/);
    assert.match(await ctl(['txn'], '\nput t1 1\nput t2 2\nput t3 3\n\n\n'), /SUCCESS/);
  });

  it('a second process on the live data dir is refused at once, before the WAL; the first serves on', async () => {
    const [c2, p2] = await freePorts(2);
    const second = start(
      ['--listen-client-urls', `http://127.0.0.1:${c2}`, '--advertise-client-urls', `http://127.0.0.1:${c2}`, '--listen-peer-urls', `http://127.0.0.1:${p2}`],
      { ETCD_DATA_DIR: dataDir, ETCD_NAME: 'host1', ETCD_INITIAL_CLUSTER: `host1=http://127.0.0.1:${p2}`, ETCD_INITIAL_ADVERTISE_PEER_URLS: `http://127.0.0.1:${p2}` },
    );
    try {
      assert.equal(await second.exited, 1, second.out.join(''));
      assert.ok(second.out.join('').includes(`raftkv: data dir ${dataDir} is in use by another process (pid ${member!.child.pid}`), second.out.join(''));
      assert.doesNotMatch(second.out.join(''), /started new member|restarted/);
    } finally {
      await kill(second, 'SIGKILL');
    }
    assert.equal((await ctl(['put', 'after-second', 'v2'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'unit-key']), 'unit-key\nv1\n');
  });

  it('after kill -9 the lock is stale: a restart takes it over and has the data', async () => {
    await kill(member, 'SIGKILL');
    assert.ok(existsSync(join(dataDir, LOCK_FILE)), 'kill -9 leaves the lock file behind');
    member = start(daemonArgs, env);
    await serving();
    assert.equal(await ctl(['get', 'after-second']), 'after-second\nv2\n');
    assert.equal(JSON.parse(readFileSync(join(dataDir, LOCK_FILE), 'utf8')).pid, member.child.pid);
  });

  it('a graceful stop releases the lock and ends by the signal, as etcd re-raises it', async () => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      if (signal === 'SIGTERM') {
        member = start(daemonArgs, env);
        await serving();
      }
      const stopped = member!;
      await kill(stopped, signal);
      // Killed by the signal (143 / 130 in a shell), after the member's own shutdown ran.
      assert.equal(stopped.child.signalCode, signal, `exit status ${stopped.child.exitCode}`);
      assert.match(stopped.out.join(''), /"msg":"stopped"/);
      assert.equal(existsSync(join(dataDir, LOCK_FILE)), false);
    }
  });
});

/** Established TCP connections whose local port is `port` (the server's side), from /proc/net/tcp{,6}. */
function establishedOn(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols[1]?.endsWith(`:${hex}`) && cols[3] === '01') n++;
    }
  }
  return n;
}

describe('--grpc-keepalive-interval/--grpc-keepalive-timeout', { skip: etcdctlAvailable && existsSync('/proc/net/tcp') ? false : 'needs etcdctl and /proc/net/tcp' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'raftkv-keepalive-'));
  let member: Proc | undefined;
  let watcher: ChildProcess | undefined;
  after(async () => {
    watcher?.kill('SIGKILL');
    await kill(member, 'SIGKILL');
    rmSync(root, { recursive: true, force: true });
  });

  it("drop a client that stops answering the server's pings, releasing its watch stream", async () => {
    const [client, peer] = (await freePorts(2)) as [number, number];
    member = start(
      [
        '--name', 'k1', '--data-dir', join(root, 'k1'),
        '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
        '--initial-cluster', `k1=http://127.0.0.1:${peer}`, '--heartbeat-interval', '50', '--election-timeout', '500',
        '--grpc-keepalive-interval', '300ms', '--grpc-keepalive-timeout', '300ms',
      ],
      {},
    );
    const ep = `--endpoints=127.0.0.1:${client}`;
    await eventually(() => run('etcdctl', [ep, 'endpoint', 'health'], { env: etcdctlEnv }), 30_000, 200);
    // A watcher that is live (it has seen an event), then frozen: its process answers nothing.
    watcher = spawn('etcdctl', [ep, 'watch', 'ka-key'], { env: etcdctlEnv, stdio: ['ignore', 'pipe', 'ignore'] });
    started.add(watcher);
    let seen = '';
    watcher.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
    await eventually(async () => {
      await run('etcdctl', [ep, 'put', 'ka-key', 'v'], { env: etcdctlEnv });
      if (!seen.includes('PUT')) throw new Error('watch has not seen the put yet');
    }, 30_000, 200);
    assert.ok(establishedOn(client) > 0);
    watcher.kill('SIGSTOP');
    // The server pings, gets no answer, and closes the connection (and with it the watch).
    await eventually(async () => {
      if (establishedOn(client) > 0) throw new Error(`still ${establishedOn(client)} connection(s) on the client port`);
    }, 30_000, 200);
    watcher.kill('SIGKILL');
    started.delete(watcher);
  });
});
