// Maintenance.HashKV, alarms and etcd's corruption checks, with Debian's etcdctl (v3.4) against
// real raftkv processes:
// - `etcdctl endpoint hashkv` gives the same hash on every member after the same writes, also
//   on a member restarted from a snapshot that then revokes a lease holding several keys;
// - `etcdctl alarm list` / `alarm disarm`, and writes refused with `etcdserver: corrupt cluster`
//   while a CORRUPT alarm is raised;
// - one member's data changed behind its back (a value in its snapshot files, CRC recomputed):
//   --experimental-initial-corrupt-check refuses to start it, and without that flag the leader's
//   --experimental-corrupt-check-time check raises CORRUPT and the cluster refuses writes.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AlarmRequest_AlarmAction, AlarmType, type AlarmResponse } from '../../src/gen/etcd/rpc.js';
import { decodeSnapshotFile, encodeSnapshotFile } from '../../src/storage/snap/snapshotter.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const available = etcdctlAvailable;
const env = etcdctlEnv;

/** etcdctl against the given endpoints; resolves with stdout, rejects with stderr in the message. */
async function ctl(endpoints: string[], args: string[], input?: string): Promise<string> {
  const p = run('etcdctl', [`--endpoints=${endpoints.join(',')}`, '--command-timeout=10s', ...args], { env });
  if (input !== undefined) p.child.stdin!.end(input);
  try {
    return (await p).stdout;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    throw new Error(`etcdctl ${args.join(' ')}: ${err.stderr ?? err.message}`);
  }
}

/** `etcdctl endpoint hashkv` on each member: endpoint -> [hash, compact revision]. */
async function hashkv(c: ProcCluster, members: number[], rev?: number): Promise<Map<string, [number, number]>> {
  const out = await ctl(
    members.map((i) => c.endpoint(i)),
    ['endpoint', 'hashkv', '-w', 'json', ...(rev !== undefined ? [`--rev=${rev}`] : [])],
  );
  const rows = JSON.parse(out) as Array<{ Endpoint: string; HashKV: { hash: number; compact_revision: number } }>;
  return new Map(rows.map((r) => [r.Endpoint, [r.HashKV.hash, r.HashKV.compact_revision]]));
}

/** The revision a put produced. */
async function putRev(endpoints: string[], key: string, value: string, ...flags: string[]): Promise<number> {
  return (JSON.parse(await ctl(endpoints, ['put', ...flags, key, value, '-w', 'json'])) as { header: { revision: number } }).header.revision;
}

/** Every member's hash at `rev` once all have applied it: they must all be the same. */
async function sameHashEverywhere(c: ProcCluster, rev: number): Promise<number> {
  const all = c.members.map((_, i) => i);
  const h = await eventually(() => hashkv(c, all, rev), 20_000, 200);
  assert.equal(h.size, 3, JSON.stringify([...h]));
  const distinct = new Set([...h.values()].map(([hash]) => hash));
  assert.equal(distinct.size, 1, `hashes differ: ${JSON.stringify([...h])}`);
  return [...distinct][0]!;
}

/** Starts member `i` with extra flags (for this start only). */
function startWith(c: ProcCluster, i: number, extra: string[]): ReturnType<ProcCluster['startMember']> {
  const base = c.opts.extraArgs ?? [];
  c.opts.extraArgs = [...base, ...extra];
  try {
    return c.startMember(i);
  } finally {
    c.opts.extraArgs = base;
  }
}

const memberLog = (c: ProcCluster, i: number): string => c.members[i]!.log.join('');

describe('HashKV and alarms with etcdctl', { skip: available ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  const eps = () => c.endpoints();
  before(async () => {
    // Frequent snapshots, so that a restarted member restores its state from one.
    c = await ProcCluster.start({ size: 3, snapshotCount: 10 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('endpoint hashkv: every member gives the same hash after the same writes (and after a compaction)', async () => {
    let rev = 0;
    for (let i = 0; i < 15; i++) rev = await putRev(eps(), `k${i % 6}`, `v${i}`);
    await ctl(eps(), ['del', 'k2']);
    rev = await putRev(eps(), 'after-del', 'x');
    const h1 = await sameHashEverywhere(c, rev);
    // At an older revision too, and the hash changes with the writes.
    const h0 = await sameHashEverywhere(c, rev - 3);
    assert.notEqual(h0, h1);
    // After a compaction: the same on every member, with the compact revision reported.
    await ctl(eps(), ['compaction', String(rev - 5)]);
    rev = await putRev(eps(), 'after-compact', 'y');
    await sameHashEverywhere(c, rev);
    const h = await hashkv(c, [0, 1, 2], rev);
    for (const [, crev] of h.values()) assert.equal(crev, rev - 6);
  });

  it('a member restored from a snapshot hashes alike after a lease with several keys is revoked', async () => {
    const lease = /lease ([0-9a-f]+) granted/.exec(await ctl(eps(), ['lease', 'grant', '600']))![1]!;
    // Attached in an order other than key order.
    for (const k of ['lk-m', 'lk-b', 'lk-x', 'lk-a']) await putRev(eps(), k, 'leased', `--lease=${lease}`);
    // Enough writes for every member to snapshot past the lease's keys.
    let rev = 0;
    for (let i = 0; i < 25; i++) rev = await putRev(eps(), `filler${i}`, 'f');
    await sameHashEverywhere(c, rev);
    // Member 2 restarts: its lessor is rebuilt from the snapshot (keys in key order).
    await c.stop(1);
    c.startMember(1);
    await c.waitForAllServing();
    await eventually(async () => assert.match(memberLog(c, 1), /restarted member [0-9a-f]+ .* after snapshot [1-9]/), 20_000, 200);
    await ctl(eps(), ['lease', 'revoke', lease]);
    rev = await putRev(eps(), 'after-revoke', 'z');
    await sameHashEverywhere(c, rev);
  });

  it('alarm list, writes refused while CORRUPT is raised, alarm disarm', async () => {
    assert.equal(await ctl(eps(), ['alarm', 'list']), '');
    // Raise CORRUPT (member 0, as etcd's checker does) and NOSPACE for a member, through the API.
    const raise = (memberID: bigint, alarm: AlarmType) =>
      new Promise<AlarmResponse>((resolve, reject) =>
        c.client(0).maint.alarm({ action: AlarmRequest_AlarmAction.ACTIVATE, memberID, alarm }, (e, r) => (e ? reject(e) : resolve(r))),
      );
    assert.deepEqual((await raise(0n, AlarmType.CORRUPT)).alarms, [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    await raise(123n, AlarmType.NOSPACE);
    // Every member lists them (etcd's text format leaves a zero member id out).
    for (let i = 0; i < 3; i++) assert.equal(await ctl([c.endpoint(i)], ['alarm', 'list']), 'memberID:123 alarm:NOSPACE \nalarm:CORRUPT \n');
    // Every member refuses writes with etcd's error; reads still work.
    for (let i = 0; i < 3; i++) {
      await assert.rejects(() => ctl([c.endpoint(i)], ['put', 'refused', 'v']), /Error: etcdserver: corrupt cluster/);
      await assert.rejects(() => ctl([c.endpoint(i)], ['del', 'k0']), /etcdserver: corrupt cluster/);
      await assert.rejects(() => ctl([c.endpoint(i)], ['lease', 'grant', '60']), /etcdserver: corrupt cluster/);
      assert.equal(await ctl([c.endpoint(i)], ['get', 'after-revoke', '--print-value-only']), 'z\n');
    }
    await assert.rejects(() => ctl(eps(), ['txn'], '\n\nput refused v\n\n'), /etcdserver: corrupt cluster/);
    // disarm: every alarm, as etcdctl does it (list, then DEACTIVATE each).
    assert.equal(await ctl(eps(), ['alarm', 'disarm']), 'memberID:123 alarm:NOSPACE \nalarm:CORRUPT \n');
    for (let i = 0; i < 3; i++) assert.equal(await ctl([c.endpoint(i)], ['alarm', 'list']), '');
    assert.equal((await ctl(eps(), ['put', 'accepted', 'v'])).trim(), 'OK');
  });
});

describe('corruption checks (a member whose data was changed behind its back)', { skip: available ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  const eps = () => c.endpoints();
  const ORIGINAL = 'original-value-of-the-victim-key';
  const ALTERED = 'ORIGINAL-value-of-the-victim-key';
  before(async () => {
    c = await ProcCluster.start({ size: 3, snapshotCount: 10, extraArgs: ['--experimental-corrupt-check-time', '1s'] });
  });
  after(async () => {
    await c?.destroy();
  });

  it('healthy: the periodic check runs and finds nothing; the initial check lets a member start', async () => {
    await putRev(eps(), 'victim', ORIGINAL);
    let rev = 0;
    for (let i = 0; i < 30; i++) rev = await putRev(eps(), `key${i}`, `value${i}`);
    await sameHashEverywhere(c, rev);
    const leader = await c.waitForLeader();
    await eventually(async () => assert.match(memberLog(c, leader), /finished peer corruption check: number-of-peers-checked=2/), 20_000, 200);
    await c.stop(0);
    startWith(c, 0, ['--experimental-initial-corrupt-check']);
    await c.waitForAllServing();
    await eventually(async () => assert.match(memberLog(c, 0), /initial corruption checking passed; no corruption/), 20_000, 200);
    assert.doesNotMatch(memberLog(c, 0), /found different hash values/);
    assert.equal(await ctl(eps(), ['alarm', 'list']), '');
  });

  it('--experimental-initial-corrupt-check refuses to start a member whose snapshot was altered', async () => {
    await c.stop(2);
    // Change the victim's value in the member's snapshot files, recomputing their CRC: a
    // corruption that storage checksums cannot see.
    const snapDir = join(c.members[2]!.dataDir, 'member', 'snap');
    let altered = 0;
    for (const name of readdirSync(snapDir).filter((n) => n.endsWith('.snap'))) {
      const file = join(snapDir, name);
      const snap = decodeSnapshotFile(readFileSync(file));
      const data = Buffer.from(snap.data);
      const at = data.indexOf(ORIGINAL);
      if (at < 0) continue;
      data.write(ALTERED, at);
      writeFileSync(file, encodeSnapshotFile({ ...snap, data }));
      altered++;
    }
    assert.ok(altered > 0, 'the victim key is in a snapshot of member 3');
    // Started by hand (not by the cluster helper, which reports a member that exits by itself).
    const r = await run(process.execPath, [resolve('dist/src/cli/raftkv.js'), ...c.args(2), '--experimental-initial-corrupt-check'], {
      timeout: 60_000,
    }).then(
      () => ({ code: 0, log: '' }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: e.code, log: `${e.stdout ?? ''}${e.stderr ?? ''}` }),
    );
    const log = r.log;
    assert.equal(r.code, 1, log);
    assert.match(log, /starting initial corruption check/);
    assert.match(log, /found different hash values from remote peer/);
    assert.match(log, /[0-9a-f]+ found data inconsistency with peers/);
    assert.doesNotMatch(log, /serving clients/);
    // The rest of the cluster goes on.
    assert.equal((await ctl([c.endpoint(0), c.endpoint(1)], ['put', 'still', 'ok'])).trim(), 'OK');
  });

  it('without it, the leader\'s periodic check raises CORRUPT and every member refuses writes', async () => {
    c.members[2]!.log.length = 0;
    c.startMember(2);
    await c.waitForAllServing();
    // The restarted member serves the altered value (it is not read through Raft: serializable).
    assert.equal(await ctl([c.endpoint(2)], ['get', 'victim', '--print-value-only', '--consistency=s']), `${ALTERED}\n`);
    await eventually(async () => assert.equal(await ctl(eps(), ['alarm', 'list']), 'alarm:CORRUPT \n'), 30_000, 300);
    const logs = c.members.map((_, i) => memberLog(c, i)).join('\n');
    assert.match(logs, /same compact revision then hashes must match|found hash mismatch/);
    assert.match(logs, /alarm raised: alarm=CORRUPT from=0/);
    for (let i = 0; i < 3; i++) {
      await assert.rejects(() => ctl([c.endpoint(i)], ['put', 'refused', 'v']), /Error: etcdserver: corrupt cluster/);
    }
    // Members disagree on the hash at the same revision: endpoint hashkv shows it.
    const rev = (JSON.parse(await ctl(eps(), ['get', 'victim', '-w', 'json'])) as { header: { revision: number } }).header.revision;
    const h = await eventually(() => hashkv(c, [0, 1, 2], rev), 20_000, 200);
    assert.equal(new Set([...h.values()].map(([hash]) => hash)).size, 2, JSON.stringify([...h]));
  });
});
