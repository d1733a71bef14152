// A leader that stops on purpose hands leadership over first (etcd's TransferLeadership in
// EtcdServer.Stop), so the cluster has a leader again at once rather than after an election
// timeout:
//
// - in-process (ManualClock): the most caught-up voter takes over and leads; a learner is never
//   chosen; a leader alone, or a member that does not lead, hands nothing over; when the chosen
//   member cannot take over (cut off), the attempt ends within Raft's own give-up (an election
//   timeout), not the request timeout, so stopping a whole cluster is not held up;
// - a leader process stopped with SIGTERM: when it has exited, the others already follow a new
//   leader (without the handover they would still name the old one until their election
//   timeout ran out).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withCluster } from '../support/inproc-cluster.js';
import { ProcCluster } from '../support/proc-cluster.js';

describe('leadership handover before stopping', () => {
  for (const seed of [1, 2, 3]) {
    it(`the most caught-up voter takes over (seed ${seed})`, async () => {
      await withCluster({ size: 3, seed }, async (c) => {
        const L = await c.waitIdle();
        await c.run(c.put(L, 'k', 'v'));
        const to = await c.run(L.server.handOverLeadership(), { what: 'handover' });
        assert.ok(to !== undefined && to !== L.id);
        await c.until(() => c.leader()?.id === to, { what: 'the new leader leads' });
        // The member handed over to does not hand over again unless it is asked (it leads).
        assert.equal(await c.run(c.member(to).server.handOverLeadership().then(() => c.leader()?.id !== to)), true);
      });
    });
  }

  it('a learner is never chosen; a leader alone and a follower hand nothing over', async () => {
    await withCluster({ size: 1, seed: 4 }, async (c) => {
      const L = await c.waitIdle();
      assert.equal(await c.run(L.server.handOverLeadership()), undefined);
      await c.addMember('n2', { learner: true });
      await c.waitIdle();
      assert.equal(await c.run(L.server.handOverLeadership()), undefined, 'only a learner to hand over to');
      assert.equal(c.leader(), L);
      assert.equal(await c.member('n2').server.handOverLeadership(), undefined);
    });
  });

  it('gives up within an election timeout when the chosen member cannot take over', async () => {
    await withCluster({ size: 3, seed: 5 }, async (c) => {
      const L = await c.waitIdle();
      for (const m of c.running()) if (m !== L) c.net.isolate(m.id);
      const done = L.server.handOverLeadership();
      let result: bigint | undefined | null = null;
      void done.then((r) => (result = r));
      const ticks = await c.until(() => result !== null, { ticks: 30, what: 'the handover to end' });
      assert.equal(result, undefined);
      assert.ok(ticks <= c.electionTicks + 3, `took ${ticks} ticks`);
    });
  });

  it('a leader process stopped with SIGTERM has handed over when it exits', async () => {
    const c = await ProcCluster.start({ size: 3 });
    try {
      const l = await c.waitForLeader();
      const oldId = (await c.client(l).status()).leader;
      await c.stop(l);
      for (const i of [0, 1, 2].filter((j) => j !== l)) {
        const lead = (await c.client(i).status()).leader;
        assert.ok(lead !== 0n && lead !== oldId, `member ${i} follows ${lead.toString(16)} (the stopped one was ${oldId.toString(16)})`);
      }
      assert.ok(c.members[l]!.log.some((x) => x.includes('leadership transfer finished')), 'the leader logged the handover');
    } finally {
      await c.destroy();
    }
  });
});
