// The membership and leadership events every member records as they happen (the dashboard's
// live list, src/server/cluster-events.ts), on in-process members (manual clock, in-memory
// network): a learner joins, is promoted, is removed; a leader is elected and then loses its
// place. Leader changes are counted as etcd counts them: only when a new leader is known.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { ClusterEvent } from '../../src/server/cluster-events.js';
import { hex } from '../../src/util/ids.js';
import { withCluster } from '../support/inproc-cluster.js';

const about = (events: readonly ClusterEvent[], id: bigint): string[] => events.filter((e) => e.member === hex(id)).map((e) => e.kind);

it('records joined, promoted, removed and leader changes on every member', async () => {
  await withCluster({ size: 3, seed: 7 }, async (c) => {
    const leader = await c.waitForLeader();
    for (const m of c.running()) {
      assert.deepEqual(about(m.server.events.recent(), leader.id).slice(-1), [m === leader ? 'became-leader' : 'new-leader']);
      assert.equal(m.counters.leaderChanges, 1, `${m.name} counts one leader change`);
    }

    const n4 = await c.addMember('n4', { learner: true });
    await c.until(() => leader.server.sm.appliedIndex === n4.server.sm.appliedIndex, { ticks: 100, what: 'n4 catches up' });
    await c.run(leader.server.members.promote(n4.id), { ticks: 50, what: 'promote n4' });
    await c.removeMember('n4');
    await c.settle();
    for (const m of c.running().filter((x) => x.name !== 'n4')) {
      assert.deepEqual(about(m.server.events.recent(), n4.id), ['joined-as-learner', 'promoted', 'removed'], m.name);
      const e = m.server.events.recent().find((x) => x.kind === 'promoted')!;
      assert.ok(e.index! > 0 && e.term > 0);
    }

    // The leader stops: the others see it gone (a leaderless term), then a new leader.
    await c.stop(leader);
    const next = await c.waitForLeader();
    assert.notEqual(next.id, leader.id);
    for (const m of c.running()) {
      const kinds = m.server.events.recent().filter((e) => e.kind !== 'joined' && e.kind !== 'joined-as-learner' && e.kind !== 'promoted' && e.kind !== 'removed');
      assert.deepEqual(kinds.slice(-1).map((e) => [e.kind, e.member]), [[m === next ? 'became-leader' : 'new-leader', hex(next.id)]], m.name);
      assert.equal(m.counters.leaderChanges, 2, `${m.name} counts two leader changes`);
    }
  });
});
