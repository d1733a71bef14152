// Backup, restore and disaster recovery with real processes (issue 19): `raftkv snapshot
// save|status|restore` on etcd's snapshot format, a restored cluster with a new cluster id,
// --force-new-cluster after quorum loss, and snapshots moved between raftkv and etcd 3.4.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdProcess, etcdAvailable } from '../backup/etcd-process.js';
import { ctl, parseBig, servedKeys } from '../backup/served-keys.js';
import { etcdctlAvailable } from '../support/etcdctl.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const runFile = promisify(execFile);
const ROOT = ['--user', 'root:rootpw'];
const flip = (b: Buffer, at: number): Buffer => {
  const c = Buffer.from(b);
  c[at]! ^= 0x01;
  return c;
};

/** `raftkv snapshot ...`; resolves to {code, stdout, stderr} (never rejects). */
async function raftkvSnapshot(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await runFile(process.execPath, [BIN, 'snapshot', ...args]);
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : 1, stdout: x.stdout ?? '', stderr: x.stderr ?? '' };
  }
}

/** Restores `file` into `<root>/m<i+1>` for each of `peerPorts`, as members m1..mN of a cluster with `token`. */
async function restoreAll(file: string, root: string, peerPorts: number[], token: string): Promise<void> {
  const cluster = peerPorts.map((p, i) => `m${i + 1}=http://127.0.0.1:${p}`).join(',');
  for (let i = 0; i < peerPorts.length; i++) {
    const r = await raftkvSnapshot(['restore', file, '--name', `m${i + 1}`, '--data-dir', join(root, `m${i + 1}`),
      '--initial-cluster', cluster, '--initial-cluster-token', token, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPorts[i]}`]);
    assert.equal(r.code, 0, r.stderr);
  }
}

const skip = !etcdctlAvailable && 'etcdctl is not installed';
const dirs: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'raftkv-backup-'));
  dirs.push(d);
  return d;
};
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('backup and recovery', { skip }, () => {
  it('save from a live cluster, delete every data dir, restore 3 members: keys, revisions, leases and auth kept; a new cluster id; old peers refused', async () => {
    const c = await ProcCluster.start({ size: 3 });
    let c2: ProcCluster | undefined;
    let old: ChildProcess | undefined;
    try {
      const ep = c.endpoints().join(',');
      const put = (k: string, v: string, extra: string[] = []) => ctl(['--endpoints', ep, 'put', ...extra, k, v]);
      for (let i = 0; i < 60; i++) await c.client(i % 3).put(`k/${String(i).padStart(3, '0')}`, `v${i}`);
      await put('k/005', 'again');
      await c.client(0).del('k/007');
      const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(['--endpoints', ep, 'lease', 'grant', '3600']))![1]!;
      await put('leased/1', 'a', ['--lease', lease]);
      await put('leased/2', 'b', ['--lease', lease]);
      await put('bin', Buffer.alloc(5000, 0x61).toString());
      for (const a of [['user', 'add', 'root:rootpw'], ['user', 'grant-role', 'root', 'root'], ['role', 'add', 'reader'],
        ['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix'], ['user', 'add', 'alice:alicepw'], ['user', 'grant-role', 'alice', 'reader'], ['auth', 'enable']]) {
        await ctl(['--endpoints', ep, ...a]);
      }
      const oldCluster = parseBig<{ header: { cluster_id: string } }>(await ctl(['--endpoints', ep, ...ROOT, 'member', 'list', '-w', 'json'])).header.cluster_id;

      // Writes and a watch go on while the backup is taken.
      const client = new Etcd3({ hosts: c.endpoints().map((e) => `http://${e}`), auth: { username: 'root', password: 'rootpw' } });
      const watcher = await client.watch().prefix('w/').create();
      let seen = 0;
      watcher.on('put', () => seen++);
      let stop = false;
      let written = 0;
      const writer = (async () => {
        while (!stop) await client.put(`w/${String(written++).padStart(5, '0')}`).value('during');
      })();
      await eventually(async () => assert.ok(written >= 20));
      const dir = tmp();
      const file = join(dir, 'backup.db');
      const saved = await raftkvSnapshot(['save', file, '--endpoints', c.endpoint(1), '--user', 'root:rootpw']);
      stop = true;
      await writer;
      await eventually(async () => assert.ok(seen >= written - 1));
      await watcher.cancel();
      client.close();
      assert.equal(saved.code, 0, saved.stderr);
      assert.match(saved.stdout, /Snapshot saved at/);
      // etcd's own tool reads it; the backup is the state at one revision, taken mid-writes.
      const st = parseBig<{ revision: number; totalKey: number }>(await ctl(['snapshot', 'status', file, '-w', 'json']));
      const atRev = await servedKeys(c.endpoint(0), [...ROOT, '--rev', String(st.revision)]);
      const served = { rev: st.revision, kvs: atRev.kvs };
      assert.ok(served.kvs.some((k) => k.startsWith(Buffer.from('w/').toString('hex'))), 'the writer\'s keys up to that revision are in it');
      const ours = (await raftkvSnapshot(['status', file, '-w', 'json'])).stdout;
      assert.deepEqual(JSON.parse(ours), JSON.parse(await ctl(['snapshot', 'status', file, '-w', 'json'])));

      // Disaster: every member gone. Keep a copy of m3's dir to play an old-cluster member later.
      const m = c.members.map((x) => ({ clientPort: x.clientPort, peerPort: x.peerPort }));
      await c.destroy(true);
      const oldM3 = join(dir, 'old-m3');
      cpSync(c.members[2]!.dataDir, oldM3, { recursive: true });
      rmSync(c.dataRoot, { recursive: true, force: true });

      // Restore: m1 and m2 on their old addresses, m3 on new ones; a new token.
      const [c3, p3] = await freePorts(2);
      const ports = [m[0]!.clientPort, m[0]!.peerPort, m[1]!.clientPort, m[1]!.peerPort, c3!, p3!];
      const root2 = tmp();
      await restoreAll(file, root2, [ports[1]!, ports[3]!, ports[5]!], 'restored-cluster');
      c2 = await ProcCluster.start({ size: 3, ports, dataRoot: root2 });
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(await eventually(async () => {
          const got = await servedKeys(c2!.endpoint(i), [...ROOT, '--consistency', 's']);
          assert.deepEqual(got, served);
          return got;
        }), served, `member ${i + 1} serves every key with its revisions, version and lease`);
      }
      assert.match(await ctl(['--endpoints', c2.endpoint(0), ...ROOT, 'lease', 'timetolive', lease, '--keys']), /granted with TTL\(3600s\).*attached keys\(\[leased\/1 leased\/2\]\)/);
      assert.match(await ctl(['--endpoints', c2.endpoint(0), '--user', 'alice:alicepw', 'get', 'k/001']), /v1/);
      await assert.rejects(ctl(['--endpoints', c2.endpoint(0), '--user', 'alice:alicepw', 'get', 'bin']), /permission denied/);
      const put2 = parseBig<{ header: { revision: number } }>(await ctl(['--endpoints', c2.endpoint(2), ...ROOT, 'put', 'after', 'restore', '-w', 'json']));
      assert.equal(Number(put2.header.revision), served.rev + 1, 'revisions go on from the backup');
      const newCluster = parseBig<{ header: { cluster_id: string }; members: unknown[] }>(await ctl(['--endpoints', c2.endpoint(0), ...ROOT, 'member', 'list', '-w', 'json']));
      assert.notEqual(newCluster.header.cluster_id, oldCluster);
      assert.equal(newCluster.members.length, 3);

      // A member of the old cluster, started on its old addresses, dials m1 and m2: refused.
      const oldArgs = ['--name', 'm3', '--data-dir', oldM3, '--listen-client-urls', `http://127.0.0.1:${m[2]!.clientPort}`,
        '--advertise-client-urls', `http://127.0.0.1:${m[2]!.clientPort}`, '--listen-peer-urls', `http://127.0.0.1:${m[2]!.peerPort}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${m[2]!.peerPort}`, '--heartbeat-interval', '50', '--election-timeout', '500',
        '--initial-cluster', m.map((x, i) => `m${i + 1}=http://127.0.0.1:${x.peerPort}`).join(',')];
      old = spawn(process.execPath, [BIN, ...oldArgs], { stdio: 'ignore' });
      await eventually(async () => assert.match(c2!.logs(), /cluster ID mismatch/), 30_000);
      const after = await servedKeys(c2.endpoint(0), ROOT);
      assert.equal(after.rev, served.rev + 1, 'the old member changed nothing');
    } finally {
      old?.kill('SIGKILL');
      await c2?.destroy();
      await c.destroy();
    }
  });

  it('--force-new-cluster after losing 2 of 3 members: every acknowledged write kept, then two member adds', async () => {
    const c = await ProcCluster.start({ size: 3 });
    try {
      for (let i = 0; i < 100; i++) await c.client(i % 3).put(`f/${String(i).padStart(3, '0')}`, `v${i}`);
      const before = await servedKeys(c.endpoint(0));
      // Quorum lost for good: every member down, two of the data dirs gone.
      for (let i = 0; i < 3; i++) await c.kill(i);
      rmSync(c.members[1]!.dataDir, { recursive: true, force: true });
      rmSync(c.members[2]!.dataDir, { recursive: true, force: true });
      c.removed.add(1);
      c.removed.add(2);
      c.opts.extraArgs = ['--force-new-cluster'];
      c.startMember(0);
      await c.waitForLeader(20_000, [0]);
      c.opts.extraArgs = [];
      assert.deepEqual(await servedKeys(c.endpoint(0)), before);
      const list = parseBig<{ members: Array<{ name: string }> }>(await ctl(['--endpoints', c.endpoint(0), 'member', 'list', '-w', 'json']));
      assert.deepEqual(list.members.map((x) => x.name), ['m1']);
      await c.client(0).put('f/after', 'forced');
      // Bring two new members in, one at a time (the first must be up before a second voter is added).
      for (let n = 0; n < 2; n++) {
        const i = await c.addMember();
        await eventually(() => c.client(0).memberAdd([c.peerUrl(i)]));
        c.startMember(i);
        await c.waitForAllServing();
        await eventually(async () => assert.equal((await c.client(i).range('f/after', { serializable: true })).kvs.length, 1));
      }
      const all = await servedKeys(c.endpoint(0));
      for (const i of [3, 4]) assert.deepEqual(await servedKeys(c.endpoint(i), ['--consistency', 's']), all);
      assert.equal(all.kvs.length, before.kvs.length + 1);
      const members = parseBig<{ members: unknown[] }>(await ctl(['--endpoints', c.endpoint(0), 'member', 'list', '-w', 'json'])).members;
      assert.equal(members.length, 3);
    } finally {
      await c.destroy();
    }
  });

  it('imports an etcd 3.4 snapshot, and etcd serves a raftkv snapshot restored by etcdctl: key by key equal', { skip: !etcdAvailable && 'etcd is not installed' }, async () => {
    const dir = tmp();
    const etcd = await EtcdProcess.start();
    let rk: ProcCluster | undefined;
    let back: EtcdProcess | undefined;
    try {
      for (let i = 0; i < 50; i++) await etcd.ctl(['put', `e/${i}`, `value ${i}`]);
      await etcd.ctl(['put', 'e/1', 'changed']);
      await etcd.ctl(['del', 'e/2']);
      const lease = /lease ([0-9a-f]+) granted/.exec(await etcd.ctl(['lease', 'grant', '3600']))![1]!;
      await etcd.ctl(['put', '--lease', lease, 'e/leased', 'x']);
      await etcd.ctl(['compact', '10']);
      for (const a of [['user', 'add', 'root:rootpw'], ['user', 'grant-role', 'root', 'root'], ['auth', 'enable']]) await etcd.ctl(a);
      const served = await servedKeys(etcd.endpoint, ROOT);
      const file = join(dir, 'etcd.db');
      await etcd.ctl([...ROOT, 'snapshot', 'save', file]);
      await etcd.destroy();

      // etcd -> raftkv
      const ports = await freePorts(2);
      const root = tmp();
      await restoreAll(file, root, [ports[1]!], 'from-etcd');
      rk = await ProcCluster.start({ size: 1, ports, dataRoot: root });
      assert.deepEqual(await servedKeys(rk.endpoint(0), ROOT), served);
      assert.match(await ctl(['--endpoints', rk.endpoint(0), ...ROOT, 'lease', 'timetolive', lease, '--keys']), /attached keys\(\[e\/leased\]\)/);
      await assert.rejects(ctl(['--endpoints', rk.endpoint(0), ...ROOT, 'get', 'e/1', '--rev', '5']), /compacted/);
      await assert.rejects(ctl(['--endpoints', rk.endpoint(0), 'get', 'e/1']), /user name is empty/);

      // raftkv -> etcd, with etcd's own tools
      const file2 = join(dir, 'raftkv.db');
      await ctl(['--endpoints', rk.endpoint(0), ...ROOT, 'snapshot', 'save', file2]);
      const [peer] = await freePorts(1);
      const restored = join(dir, 'etcd-restored');
      await ctl(['snapshot', 'restore', file2, '--name', 'r1', '--data-dir', restored,
        '--initial-cluster', `r1=http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`]);
      back = await EtcdProcess.start({ dataDir: restored, name: 'r1', peerPort: peer });
      assert.deepEqual(await servedKeys(back.endpoint, ROOT), served);
      assert.match(await back.ctl([...ROOT, 'lease', 'list']), new RegExp(lease));
    } finally {
      await back?.stop();
      await rk?.destroy();
      await etcd.destroy();
    }
  });

  it('refuses a damaged or truncated snapshot file and writes nothing', async () => {
    const c = await ProcCluster.start({ size: 1 });
    const dir = tmp();
    try {
      for (let i = 0; i < 20; i++) await c.client(0).put(`d/${i}`, 'x'.repeat(300));
      const file = join(dir, 'good.db');
      assert.equal((await raftkvSnapshot(['save', file, '--endpoints', c.endpoint(0)])).code, 0);
      const good = readFileSync(file);
      const cases: Array<[string, Buffer, string[], RegExp]> = [
        ['flipped', flip(good, 9000), [], /expected sha256 \[/],
        ['truncated', good.subarray(0, good.length - 5000), [], /snapshot missing hash but --skip-hash-check=false/],
        ['truncated-skip', good.subarray(0, good.length - 4096 * 2 - 32), ['--skip-hash-check'], /bbolt: .*(truncated|beyond end of file)/],
        ['garbage', Buffer.alloc(4096 * 3 + 32, 7), ['--skip-hash-check'], /bbolt: no valid meta page/],
      ];
      for (const [name, bytes, extra, err] of cases) {
        const f = join(dir, `${name}.db`);
        writeFileSync(f, bytes);
        const target = join(dir, `restored-${name}`);
        const r = await raftkvSnapshot(['restore', f, '--name', 'n1', '--data-dir', target, ...extra,
          '--initial-cluster', 'n1=http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380']);
        assert.notEqual(r.code, 0, name);
        assert.match(r.stderr, err, name);
        assert.equal(existsSync(target), false, `${name}: nothing written`);
      }
      assert.match((await raftkvSnapshot(['status', file, '-w', 'table'])).stdout, /\| +HASH +\| REVISION \| TOTAL KEYS \| TOTAL SIZE \|/);
    } finally {
      await c.destroy();
    }
  });
});
