// etcd's start-up election tick advance (src/server/tick-advance.ts), on a manual clock.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/server/clock.js';
import { adjustTicks } from '../../src/server/tick-advance.js';

function host(members: number) {
  const h = { members, active: 0, ticks: 0, stopped: false };
  return {
    h,
    api: { members: () => h.members, activePeers: () => h.active, tick: () => void h.ticks++, isStopped: () => h.stopped },
  };
}

describe('initial election tick advance', () => {
  it('a single-member cluster advances electionTicks - 1 at once, flag or not', () => {
    for (const advance of [true, false]) {
      const { h, api } = host(1);
      const logs: string[] = [];
      adjustTicks(api, 10, advance, new ManualClock(), (m) => logs.push(m));
      assert.equal(h.ticks, 9);
      assert.match(logs[0]!, /^started as single-node; fast-forwarding election ticks/);
    }
  });

  it('several members: electionTicks - 2 once more than one peer is connected, checked every 50 ms', () => {
    const { h, api } = host(3);
    const clock = new ManualClock();
    const logs: string[] = [];
    adjustTicks(api, 10, true, clock, (m) => logs.push(m));
    clock.advance(200);
    assert.equal(h.ticks, 0);
    h.active = 1; // one peer is not enough (etcd's peerN > 1)
    clock.advance(200);
    assert.equal(h.ticks, 0);
    h.active = 2;
    clock.advance(50);
    assert.equal(h.ticks, 8);
    clock.advance(10_000);
    assert.equal(h.ticks, 8, 'advanced once only');
    assert.match(logs.at(-1)!, /^initialized peer connections; fast-forwarding election ticks/);
  });

  it('gives up after 5 s without peers, skips with the flag off, and stops with the member', () => {
    const lonely = host(3);
    const clock = new ManualClock();
    adjustTicks(lonely.api, 10, true, clock, () => undefined);
    clock.advance(5_100);
    lonely.h.active = 2;
    clock.advance(1_000);
    assert.equal(lonely.h.ticks, 0);
    assert.equal(clock.pending(), 0);

    const off = host(3);
    const logs: string[] = [];
    adjustTicks(off.api, 10, false, clock, (m) => logs.push(m));
    off.h.active = 2;
    clock.advance(1_000);
    assert.deepEqual([off.h.ticks, logs], [0, ['skipping initial election tick advance (election-ticks 10)']]);

    const stopped = host(3);
    const cancel = adjustTicks(stopped.api, 10, true, clock, () => undefined);
    cancel();
    stopped.h.active = 2;
    clock.advance(1_000);
    assert.equal(stopped.h.ticks, 0);
  });
});

describe('initial election tick advance in running members', () => {
  it('three members advance once their peers are connected; one with the flag off says it skips', async () => {
    const { ProcCluster, eventually } = await import('../support/proc-cluster.js');
    const c = await ProcCluster.start({ size: 3, memberArgs: (i) => (i === 2 ? ['--initial-election-tick-advance=false'] : []) });
    try {
      await eventually(async () => {
        for (const i of [0, 1]) assert.match(c.members[i]!.log.join(''), /initialized peer connections; fast-forwarding election ticks \(forward-ticks 8, election-ticks 10/);
        assert.match(c.members[2]!.log.join(''), /skipping initial election tick advance/);
      });
    } finally {
      await c.destroy();
    }
  });
});
