// The space quota (etcd's --quota-backend-bytes) and the NOSPACE alarm, end to end on 3 real
// members: writes past the quota are refused with etcd's error and raise the alarm through the
// log, so every member refuses growth while reads, deletes and compaction go on; compaction,
// defragmentation and `alarm disarm` restore writes (etcd's runbook, with etcdctl).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const QUOTA = 300_000;
const NOSPACE = 'etcdserver: mvcc: database space exceeded';

describe('space quota and NOSPACE alarm', { skip: !etcdctlAvailable }, () => {
  let c: ProcCluster;
  const ctl = (...args: string[]) => run('etcdctl', ['--endpoints', c.endpoints().join(','), ...args], { env: etcdctlEnv });
  before(async () => {
    c = await ProcCluster.start({ size: 3, extraArgs: ['--quota-backend-bytes', String(QUOTA)] });
  });
  after(async () => c?.destroy());

  it('refuses growth past the quota on every member until compact + defrag + disarm', async () => {
    const value = Buffer.alloc(1000, 'v');
    let refused: Error | undefined;
    let written = 0;
    for (let i = 0; i < 1000 && !refused; i++) {
      try {
        await c.client(i % 3).put(`big/${String(i).padStart(4, '0')}`, value);
        written++;
      } catch (e) {
        refused = e as Error;
      }
    }
    assert.ok(refused, 'a put was refused before 1000 puts of 1 KB');
    assert.match(refused.message, new RegExp(NOSPACE));
    assert.ok(written > 100, `only ${written} puts fit in ${QUOTA} bytes`);

    // The alarm is replicated: listed by every member, and every member refuses puts.
    for (let i = 0; i < 3; i++) {
      const list = await eventually(async () => {
        const r = await run('etcdctl', ['--endpoints', c.endpoint(i), 'alarm', 'list'], { env: etcdctlEnv });
        assert.match(r.stdout, /alarm:NOSPACE/);
        return r.stdout;
      });
      assert.match(list, /^memberID:\d+ alarm:NOSPACE $/m);
      await assert.rejects(c.client(i).put('one/more', 'x'), new RegExp(NOSPACE), `member ${i} refuses puts`);
    }
    const status = JSON.parse((await ctl('endpoint', 'status', '-w', 'json')).stdout) as Array<{ Status: { dbSize: number; errors?: string[] } }>;
    for (const s of status) {
      assert.ok(s.Status.dbSize >= QUOTA * 0.9, `dbSize ${s.Status.dbSize} shown in endpoint status`);
      assert.ok(s.Status.errors?.some((e) => e.includes('alarm:NOSPACE')), 'endpoint status lists the alarm');
    }

    // Reads and deletes go on.
    assert.equal((await c.client(0).get('big/0000'))?.length, 1000);
    const del = await ctl('del', '--prefix', 'big/');
    assert.equal(del.stdout.trim(), String(written));
    // Disarming alone is not enough while the DB size is still over the quota (as etcd).
    await ctl('alarm', 'disarm');
    await assert.rejects(c.client(0).put('still/full', 'x'), new RegExp(NOSPACE));
    // The runbook: compact, defrag every member, disarm.
    const rev = (await c.client(0).status()).header!.revision;
    await ctl('compaction', String(rev));
    const defrag = await ctl('defrag', '--cluster');
    assert.equal(defrag.stdout.match(/Finished defragmenting/g)?.length, 3);
    await ctl('alarm', 'disarm');
    assert.equal((await ctl('alarm', 'list')).stdout.trim(), '');
    await eventually(async () => {
      await c.client(1).put('after/disarm', 'ok');
    });
    assert.equal(await c.client(2).get('after/disarm'), 'ok');
    const after = JSON.parse((await ctl('endpoint', 'status', '-w', 'json')).stdout) as Array<{ Status: { dbSize: number } }>;
    for (const s of after) assert.ok(s.Status.dbSize < QUOTA / 10, `dbSize ${s.Status.dbSize} after defrag`);
  });

  it('counts leases in the DB size: leases granted without end are refused with NOSPACE too', async () => {
    // Before, a lease was counted nowhere: leases alone grew a member's heap without bound.
    const lease = c.client(0).lease;
    const grant = (): Promise<bigint> =>
      new Promise((resolve, reject) => lease.leaseGrant({ TTL: 600n, ID: 0n }, (e, r) => (e ? reject(e) : resolve(r!.ID))));
    const revoke = (ID: bigint): Promise<unknown> => new Promise((resolve, reject) => lease.leaseRevoke({ ID }, (e, r) => (e ? reject(e) : resolve(r))));
    const ids: bigint[] = [];
    let refused: Error | undefined;
    for (let i = 0; i < 5000 && !refused; i++) {
      try {
        ids.push(await grant());
      } catch (e) {
        refused = e as Error;
      }
    }
    assert.ok(refused, `${ids.length} leases granted, none refused`);
    assert.match(refused.message, new RegExp(NOSPACE));
    assert.ok(ids.length > 300, `only ${ids.length} leases fit in ${QUOTA} bytes`);
    const size = JSON.parse((await ctl('endpoint', 'status', '-w', 'json')).stdout) as Array<{ Status: { dbSize: number } }>;
    for (const s of size) assert.ok(s.Status.dbSize >= QUOTA * 0.9, `dbSize ${s.Status.dbSize} counts the leases`);
    // Revoked, defragmented and disarmed: leases are granted again.
    for (const id of ids) await revoke(id);
    await ctl('defrag', '--cluster');
    await ctl('alarm', 'disarm');
    await eventually(async () => {
      await revoke(await grant());
    });
  });
});
