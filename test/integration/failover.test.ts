// Real processes: kill -9 of the leader, restarts from the data dir, a full-cluster restart.

import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('failover with real processes', () => {
  let c: ProcCluster | undefined;
  after(async () => {
    await c?.destroy();
  });

  it('kill -9 the leader: a new leader is elected, acknowledged writes survive, the old leader catches up', async () => {
    c = await ProcCluster.start({ size: 3 });
    const acked: string[] = [];
    const leader = await c.waitForLeader();
    for (let i = 0; i < 50; i++) {
      await c.client(leader).put(`k${i}`, `v${i}`);
      acked.push(`k${i}`);
    }
    await c.kill(leader, 'SIGKILL');
    const others = [0, 1, 2].filter((i) => i !== leader);
    const newLeader = await c.waitForLeader(20_000, others);
    assert.notEqual(newLeader, leader);
    // Writes go on with one member down.
    for (let i = 50; i < 80; i++) {
      await eventually(() => c!.client(newLeader).put(`k${i}`, `v${i}`));
      acked.push(`k${i}`);
    }
    for (const k of acked) assert.equal(await c.client(others[0]!).get(k), `v${k.slice(1)}`);
    // The killed member restarts from its data dir and catches up.
    c.startMember(leader);
    await eventually(async () => assert.equal(await c!.client(leader).get('k79', true), 'v79'), 20_000);
    for (const k of acked) assert.equal(await c.client(leader).get(k, true), `v${k.slice(1)}`);
  });

  it('all members restarted at once keep every acknowledged write', async () => {
    assert.ok(c);
    await c.client(0).put('durable', 'yes');
    await Promise.all(c.members.map((_, i) => c!.stop(i)));
    for (let i = 0; i < 3; i++) c.startMember(i);
    await c.waitForLeader();
    await c.waitForAllServing();
    assert.equal(await eventually(() => c!.client(1).get('durable')), 'yes');
    assert.equal(await c.client(2).get('k0'), 'v0');
    const st = await c.client(0).status();
    assert.ok(st.raftIndex > 80n);
  });

  it('all members killed with SIGKILL at once keep every acknowledged write', async () => {
    assert.ok(c);
    const lead = await c.waitForLeader();
    for (let i = 0; i < 20; i++) await c.client(lead).put(`crash${i}`, String(i));
    await Promise.all(c.members.map((_, i) => c!.kill(i, 'SIGKILL')));
    for (let i = 0; i < 3; i++) c.startMember(i);
    await c.waitForLeader();
    await c.waitForAllServing();
    for (let i = 0; i < 20; i++) assert.equal(await eventually(() => c!.client(i % 3).get(`crash${i}`)), String(i));
  });
});
