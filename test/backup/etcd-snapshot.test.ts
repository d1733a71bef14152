// etcd's snapshot file format (src/backup/etcd-snapshot.ts) against real etcd 3.4: a snapshot
// made by etcd is read key by key as etcd serves it, its status equals etcdctl's, and a file
// written by raftkv is read by etcdctl (status, restore) and served by etcd after a restore.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { decodeEtcdSnapshot, encodeEtcdSnapshot, snapshotStatus } from '../../src/backup/etcd-snapshot.js';
import { EtcdProcess, etcdAvailable } from './etcd-process.js';
import { freePorts } from '../support/ports.js';
import { ctl, parseBig, servedKeys } from './served-keys.js';

const pause = (): Promise<void> => new Promise((r) => setImmediate(r));
const etcdKeys = (e: { endpoint: string }, user: string[] = []) => servedKeys(e.endpoint, user);

let etcd: EtcdProcess;
let dir: string;
let snapFile: string;
let served: { rev: number; kvs: string[] };
let leaseId: string;
const ROOT = ['--user', 'root:rootpw'];

before(async () => {
  if (!etcdAvailable) return;
  dir = mkdtempSync(join(tmpdir(), 'raftkv-etcdsnap-'));
  etcd = await EtcdProcess.start();
  const c = (args: string[]) => etcd.ctl(args);
  await c(['put', 'a', '1']);
  await c(['put', 'a', '2']);
  await c(['put', 'gone', 'x']);
  await c(['put', 'big', 'v'.repeat(20_000)]); // an overflow page in etcd's file
  leaseId = /lease ([0-9a-f]+) granted/.exec(await c(['lease', 'grant', '3600']))![1]!;
  await c(['put', '--lease', leaseId, 'leased', 'l']);
  await c(['del', 'gone']);
  for (const k of ['m/1', 'm/2', 'm/3']) await c(['put', k, k]);
  await c(['del', 'm/', '--prefix']); // one revision, three sub revisions (tombstones)
  for (let i = 0; i < 300; i++) await c(['put', `k/${String(i).padStart(4, '0')}`, `value-${i}`]); // a branch page
  await c(['compact', '3']);
  await c(['put', 'a', '3']);
  await c(['user', 'add', 'root:rootpw']);
  await c(['user', 'grant-role', 'root', 'root']);
  await c(['role', 'add', 'reader']);
  await c(['role', 'grant-permission', 'reader', 'read', 'k/', '--prefix']);
  await c(['user', 'add', 'alice:alicepw']);
  await c(['user', 'grant-role', 'alice', 'reader']);
  await c(['auth', 'enable']);
  served = await etcdKeys(etcd, ROOT);
  snapFile = join(dir, 'etcd.db');
  await ctl(['--endpoints', etcd.endpoint, ...ROOT, 'snapshot', 'save', snapFile]);
  await etcd.destroy();
});

after(async () => {
  await etcd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('reads an etcd 3.4 snapshot: every key with its revisions, version and lease, the compaction, leases and auth', { skip: !etcdAvailable }, async () => {
  const st = await decodeEtcdSnapshot(readFileSync(snapFile), pause);
  const kvs = st.store.range(Buffer.from([0]), Buffer.from([0])).kvs.map((k) =>
    [Buffer.from(k.key).toString('hex'), k.createRevision, k.modRevision, k.version, Buffer.from(k.value).toString('hex'), k.lease.toString()].join(' '),
  );
  assert.deepEqual(kvs, served.kvs.map((l) => l));
  assert.equal(st.store.currentRev, BigInt(served.rev));
  assert.equal(st.store.compactRev, 3n);
  // History above the compaction is kept: `a` at revision 2 is gone, at 3+ readable.
  assert.throws(() => st.store.range(Buffer.from('a'), undefined, { revision: 2n }), /compacted/);
  assert.deepEqual(st.leases, [{ id: BigInt(`0x${leaseId}`), ttl: 3600n, remainingTTL: 0n }]);
  assert.equal(st.auth.enabled, true);
  assert.deepEqual(st.auth.users.map((u) => [u.name, u.roles]), [['alice', ['reader']], ['root', ['root']]]);
  assert.match(st.auth.users[0]!.password, /^\$2a\$/);
  // etcd keeps no record of the root role (it is implicit).
  assert.deepEqual(st.auth.roles.map((r) => r.name), ['reader']);
  assert.equal(st.members.length, 1);
  assert.equal(st.members[0]!.peerUrls[0], etcd.peerUrl);
  assert.ok(st.consistentIndex > 300n);
});

it('reports the same status as etcdctl snapshot status', { skip: !etcdAvailable }, async () => {
  const theirs = parseBig<{ hash: number; revision: number; totalKey: number; totalSize: number }>(await ctl(['snapshot', 'status', snapFile, '-w', 'json']));
  const ours = await snapshotStatus(readFileSync(snapFile), pause);
  assert.deepEqual({ hash: ours.hash, revision: Number(ours.revision), totalKey: ours.totalKey, totalSize: ours.totalSize }, theirs);
});

it('writes a snapshot etcdctl reads (same hash) and restores, and etcd then serves key by key', { skip: !etcdAvailable }, async () => {
  const st = await decodeEtcdSnapshot(readFileSync(snapFile), pause);
  const ours = join(dir, 'raftkv.db');
  writeFileSync(ours, Buffer.concat(await encodeEtcdSnapshot(st, pause)));
  const theirs = parseBig<{ hash: number; revision: number; totalKey: number }>(await ctl(['snapshot', 'status', snapFile, '-w', 'json']));
  const back = parseBig<{ hash: number; revision: number; totalKey: number }>(await ctl(['snapshot', 'status', ours, '-w', 'json']));
  assert.deepEqual([back.hash, back.revision, back.totalKey], [theirs.hash, theirs.revision, theirs.totalKey], 'the same buckets, keys and values');
  const [peerPort] = await freePorts(1);
  const restored = join(dir, 'restored');
  await ctl(['snapshot', 'restore', ours, '--name', 'r1', '--data-dir', restored,
    '--initial-cluster', `r1=http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`]);
  const e2 = await EtcdProcess.start({ dataDir: restored, name: 'r1', peerPort });
  try {
    assert.deepEqual(await etcdKeys(e2, ROOT), served);
    assert.match(await e2.ctl([...ROOT, 'lease', 'list']), new RegExp(leaseId));
    // Auth came along: alice reads k/ but not a.
    assert.match(await e2.ctl(['--user', 'alice:alicepw', 'get', 'k/0001']), /value-1/);
    await assert.rejects(e2.ctl(['--user', 'alice:alicepw', 'get', 'a']), /permission denied/);
    // And etcd writes to the bbolt file raftkv wrote.
    await e2.ctl([...ROOT, 'put', 'after-restore', 'yes']);
    assert.match(await e2.ctl([...ROOT, 'get', 'after-restore']), /yes/);
  } finally {
    await e2.stop();
  }
});

it('carries a lease checkpoint (RemainingTTL) both ways, as etcd writes it when checkpoints persist', { skip: !etcdAvailable }, async () => {
  const st = await decodeEtcdSnapshot(readFileSync(snapFile), pause);
  st.leases[0]!.remainingTTL = 300n;
  const back = await decodeEtcdSnapshot(Buffer.concat(await encodeEtcdSnapshot(st, pause)), pause);
  assert.deepEqual(back.leases, [{ id: BigInt(`0x${leaseId}`), ttl: 3600n, remainingTTL: 300n }]);
});

it('refuses a damaged or truncated snapshot with etcd\'s errors', { skip: !etcdAvailable }, async () => {
  const file = readFileSync(snapFile);
  const flipped = Buffer.from(file);
  flipped[Math.floor(file.length / 2)]! ^= 0x01;
  await assert.rejects(decodeEtcdSnapshot(flipped, pause), /expected sha256 \[/);
  await assert.rejects(decodeEtcdSnapshot(file.subarray(0, file.length - 1000), pause), /snapshot missing hash but --skip-hash-check=false/);
  await assert.rejects(decodeEtcdSnapshot(file.subarray(0, file.length - 8192 - 32), pause, true), /truncated|beyond end of file/);
});

it("writes the auth keys etcd's database holds: no authEnabled key if auth was never switched, a 0 once disabled", { skip: !etcdAvailable }, async () => {
  const fresh = await EtcdProcess.start();
  const never = join(dir, 'never-etcd.db');
  const switched = join(dir, 'switched-etcd.db');
  try {
    await fresh.ctl(['put', 'a', '1']);
    await ctl(['--endpoints', fresh.endpoint, 'snapshot', 'save', never]);
    await fresh.ctl(['user', 'add', 'root:pw']);
    await fresh.ctl(['auth', 'enable']);
    await fresh.ctl(['--user', 'root:pw', 'auth', 'disable']);
    await ctl(['--endpoints', fresh.endpoint, 'snapshot', 'save', switched]);
  } finally {
    await fresh.destroy();
  }
  // The hash covers every bucket's keys and values; the sizes differ (etcd's file has free pages).
  const status = async (f: string) => {
    const s = parseBig<{ hash: number; revision: number; totalKey: number }>(await ctl(['snapshot', 'status', f, '-w', 'json']));
    return [s.hash, s.revision, s.totalKey];
  };
  for (const theirs of [never, switched]) {
    const st = await decodeEtcdSnapshot(readFileSync(theirs), pause);
    assert.equal(st.auth.enabled, false);
    const ours = `${theirs}.raftkv`;
    writeFileSync(ours, Buffer.concat(await encodeEtcdSnapshot(st, pause)));
    assert.deepEqual(await status(ours), await status(theirs), theirs);
  }
});
