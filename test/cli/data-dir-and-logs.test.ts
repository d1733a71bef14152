// What an operator coming from etcd sees of a member's data dir and log (found side by side with
// etcd 3.4.23 in the seventeenth session):
//
// - the data dir's contents are the member's user's alone, as etcd makes them (0700 dirs, 0600
//   WAL and snapshot files: they hold every key), and an existing data dir others may read is
//   warned about in etcd's words;
// - a data dir etcd wrote (its bbolt database in member/snap/db) is refused with how to move it,
//   not with "corrupt record" from its WAL;
// - a port already in use fails the start in Go's words before anything is written (etcd opens
//   its listeners first), where it used to leave a new data dir and WAL behind;
// - the log names members in hex, as `etcdctl member list` does — the Raft lines too — and has
//   etcd's "added member" and "received signal; shutting down" lines.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { dataDirPermissionWarning } from '../../src/storage/dir-lock.js';
import { ProcCluster } from '../support/proc-cluster.js';
import { freePorts } from '../support/ports.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
const root = mkdtempSync(join(tmpdir(), 'raftkv-datadir-'));
after(() => rmSync(root, { recursive: true, force: true }));

describe('data dir and log, as an etcd operator expects them', () => {
  it("a member's data dir is its user's alone; its log names members in hex and has etcd's lines", async () => {
    const c = await ProcCluster.start({ size: 1, snapshotCount: 5 });
    try {
      for (let i = 0; i < 12; i++) await c.client(0).put(`k${i}`, 'v'); // past a snapshot
      const id = (await c.client(0).status()).header!.memberId.toString(16);
      // Stopped first: no snapshot is being written (a .tmp file) while the files are looked at.
      await c.stop(0);
      const member = join(c.members[0]!.dataDir, 'member');
      assert.deepEqual([mode(member), mode(join(member, 'wal')), mode(join(member, 'snap'))], ['700', '700', '700']);
      for (const dir of ['wal', 'snap']) {
        for (const f of readdirSync(join(member, dir))) assert.equal(mode(join(member, dir, f)), '600', `${dir}/${f}`);
      }
      assert.ok(readdirSync(join(member, 'snap')).some((f) => f.endsWith('.snap')), 'a snapshot was written');
      const log = c.members[0]!.log.join('\n');
      assert.match(log, new RegExp(`"msg":"${id} became leader at term \\d+"`), 'Raft names members in hex');
      assert.match(log, new RegExp(`"msg":"added member ${id} \\[http://127.0.0.1:${c.members[0]!.peerPort}\\] to cluster [0-9a-f]+"`));
      assert.match(log, /"msg":"received signal; shutting down".*"signal":"terminated"/);
    } finally {
      await c.destroy();
    }
  });

  it('--max-wals and --max-snapshots keep what they say (0: everything), and a restart reads no WAL before its snapshot', async () => {
    // Small segments and frequent snapshots, so that 240 puts make many of both: values of 500 B,
    // so that the 20 entries between two snapshots span several segments.
    const val = (i: number): string => `v${i}-${'x'.repeat(500)}`;
    let retention = ['--max-wals', '0', '--max-snapshots', '0'];
    const c = await ProcCluster.start({
      size: 1,
      snapshotCount: 20,
      extraArgs: ['--wal-segment-bytes', '4096', '--snapshot-catchup-entries', '5'],
      memberArgs: () => retention,
    });
    const member = join(c.members[0]!.dataDir, 'member');
    const files = (dir: string, ext: string) => readdirSync(join(member, dir)).filter((f) => f.endsWith(ext)).sort();
    const restart = async () => {
      c.startMember(0);
      await c.waitForLeader();
    };
    try {
      for (let i = 0; i < 240; i++) await c.client(0).put(`k${i}`, val(i));
      await c.stop(0);
      const wals = files('wal', '.wal');
      const snaps = files('snap', '.snap');
      assert.ok(snaps.length >= 8, `${snaps.length} snapshot files kept`);
      assert.ok(wals.length >= 5, `${wals.length} WAL files kept`);
      assert.equal(wals[0], '0000000000000000-0000000000000001.wal', 'the first segment is still there');

      // A restart reads no segment wholly before its newest snapshot.
      const before = c.members[0]!.log.length;
      await restart();
      assert.equal(await c.client(0).get('k239'), val(239));
      assert.match(c.members[0]!.log.slice(before).join(''), /wal: reading from [0-9a-f-]+\.wal: the \d+ segments before it hold only entries before the snapshot at \d+/);
      await c.stop(0);

      // The newest snapshot damaged: the member falls back to the one before and replays the WAL
      // after it, which --max-wals 0 kept (with the log released at once it could not). Started
      // with lower limits, it deletes nothing before it knows which snapshot it starts from
      // (it used to purge at open, by the damaged snapshot's name: entries missing).
      retention = ['--max-wals', '2', '--max-snapshots', '1'];
      const newest = join(member, 'snap', snaps[snaps.length - 1]!);
      const b = readFileSync(newest);
      b[b.length - 2]! ^= 0xff;
      writeFileSync(newest, b);
      await restart();
      for (const i of [0, 150, 239]) assert.equal(await c.client(0).get(`k${i}`), val(i));
      const log = c.members[0]!.log.join('');
      assert.match(log, /snap: skipping .*: /);
      assert.match(log, /restarted member [0-9a-f]+ in cluster [0-9a-f]+ at commit \d+, term \d+, \d+ WAL entries after snapshot \d+/);

      // The lowered limits apply from its next snapshot on.
      for (let i = 240; i < 270; i++) await c.client(0).put(`k${i}`, val(i));
      assert.equal(await c.client(0).get("k100"), val(100));
      await c.stop(0);
      assert.equal(files('snap', '.snap').length, 1);
      assert.ok(files('wal', '.wal').length < wals.length, `${files('wal', '.wal').length} WAL files left`);
      assert.match(c.members[0]!.log.join(''), /purged file .*\.wal successfully/);
      await restart();
      assert.equal(await c.client(0).get("k269"), val(269));
    } finally {
      await c.destroy();
    }
  });

  it("an existing data dir others may read is warned about in etcd's words", () => {
    const dir = join(root, 'open');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    assert.equal(
      dataDirPermissionWarning(dir),
      `check file permission: directory "${dir}" exist, but the permission is "drwxr-xr-x". The recommended permission is "-rwx------" to prevent possible unprivileged access to the data.`,
    );
    chmodSync(dir, 0o700);
    assert.equal(dataDirPermissionWarning(dir), undefined);
    assert.equal(dataDirPermissionWarning(join(root, 'absent')), undefined);
  });

  it("a data dir etcd wrote is refused with how to move it, not as a corrupt WAL", async () => {
    const dir = join(root, 'etcd-data');
    mkdirSync(join(dir, 'member', 'snap'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dir, 'member', 'wal'), { mode: 0o700 });
    writeFileSync(join(dir, 'member', 'snap', 'db'), Buffer.alloc(4096));
    writeFileSync(join(dir, 'member', 'wal', '0000000000000000-0000000000000000.wal'), Buffer.alloc(4096, 7));
    const [client, peer] = await freePorts(2);
    const r = spawnSync(process.execPath, [BIN, '--data-dir', dir, '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `default=http://127.0.0.1:${peer}`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /holds etcd's data \(.*member\/snap\/db is etcd's bbolt database\), which raftkv does not run on: restore it into a new data dir with `raftkv snapshot restore .*--skip-hash-check`/);
    assert.doesNotMatch(r.stderr, /corrupt/);
  });

  it("a port in use fails the start in Go's words, before the data dir is made", async () => {
    const [client, peer] = await freePorts(2);
    const holder = createServer();
    await new Promise<void>((r) => holder.listen(peer, '127.0.0.1', r));
    try {
      const dir = join(root, 'never-made');
      const r = spawnSync(process.execPath, [BIN, '--data-dir', dir, '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
        '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `default=http://127.0.0.1:${peer}`], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`listen tcp 127.0.0.1:${peer}: bind: address already in use`));
      assert.equal(existsSync(dir), false, 'nothing written');
    } finally {
      await new Promise((r) => holder.close(r));
    }
  });
});
