// --wal-dir: a dedicated WAL directory (etcd's DedicatedWALDir, often its own disk), for a
// running member and for `raftkv snapshot restore --wal-dir`.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const run = promisify(execFile);
const BIN = resolve('dist/src/cli/raftkv.js');
const segments = (dir: string): string[] => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.wal')) : []);

describe('--wal-dir', () => {
  let c: ProcCluster;
  let root: string;
  const walDir = (i: number): string => join(root, `wal-m${i + 1}`);

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'raftkv-waldir-'));
    c = await ProcCluster.start({ size: 3, memberArgs: (i) => ['--wal-dir', walDir(i)] });
  });
  after(async () => {
    await c?.destroy();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('keeps each member\'s WAL in its own directory, none under the data dir, and replays it after a kill -9', async () => {
    const leader = await c.waitForLeader();
    for (let k = 0; k < 50; k++) await c.client(leader).put(`k${k}`, `v${k}`);
    for (let i = 0; i < 3; i++) {
      assert.ok(segments(walDir(i)).length > 0, `no segment in ${walDir(i)}`);
      assert.ok(existsSync(c.members[i]!.dataDir));
      assert.equal(existsSync(join(c.members[i]!.dataDir, 'member', 'wal')), false);
    }
    const f = (leader + 1) % 3;
    await c.kill(f);
    c.startMember(f);
    await eventually(async () => {
      const r = await c.client(f).range('k', { rangeEnd: Buffer.from('l'), serializable: true });
      assert.equal(r.kvs.length, 50);
    }, 20_000);
  });

  it('snapshot restore --wal-dir makes the WAL there, and refuses a wal dir that exists', async () => {
    const leader = await c.waitForLeader();
    const file = join(root, 'backup.db');
    await run('etcdctl', [`--endpoints=${c.endpoint(leader)}`, 'snapshot', 'save', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    const restore = (dataDir: string, wal: string) =>
      run(process.execPath, [BIN, 'snapshot', 'restore', file, '--name', 'r1', '--data-dir', dataDir, '--wal-dir', wal, '--initial-cluster', 'r1=http://127.0.0.1:1', '--initial-advertise-peer-urls', 'http://127.0.0.1:1']);
    const restoredWal = join(root, 'restored-wal');
    await restore(join(root, 'restored'), restoredWal);
    assert.ok(segments(restoredWal).length > 0);
    assert.equal(existsSync(join(root, 'restored', 'member', 'wal')), false);
    assert.ok(existsSync(join(root, 'restored', 'member', 'snap')));
    await assert.rejects(restore(join(root, 'restored2'), restoredWal), (e: { stderr?: string }) => {
      assert.match(e.stderr ?? '', new RegExp(`wal-dir "${restoredWal}" exists`));
      return true;
    });
    assert.equal(existsSync(join(root, 'restored2')), false);
  });
});
