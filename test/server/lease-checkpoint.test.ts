// Lease checkpoints (etcd's --experimental-enable-lease-checkpoint), on complete members in one
// process (test/support/inproc-cluster.ts: a ManualClock, so minutes pass in ticks):
//
// - the leader records a long lease's remaining TTL through the log once per interval, on every
//   member, and a new leader counts down from it: a lease whose leaders keep changing still
//   expires (without checkpoints each new leader grants it its full TTL again, etcd's default);
// - a keepalive to the leader first clears the checkpoint through the log, so the next leader
//   counts from the renewal, not from the stale checkpoint;
// - a restarted member gets the checkpoint back from its WAL (from a snapshot image only when
//   checkpoints persist: test/server/state-image.test.ts).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MessageType } from '../../src/raft/index.js';
import { type InProcCluster, type InProcMember, withCluster } from '../support/inproc-cluster.js';
import { LEASE_REVOKE_RATE } from '../../src/server/leader-duties.js';

/** One tick is a heartbeat (100 ms); the interval is 2 s here (etcd's 5 min), the TTL 60 s. */
const INTERVAL_MS = 2_000;
const TTL = 60n;
const LEASE = 0x1234n;

async function grantAndAge(c: InProcCluster, seconds: number): Promise<InProcMember> {
  const L = await c.waitIdle();
  await c.run(L.server.propose('leaseGrant', { ID: LEASE, TTL }));
  await c.tick(seconds * 10);
  await c.settle();
  return c.leader()!;
}

async function moveLeader(c: InProcCluster, from: InProcMember): Promise<InProcMember> {
  const to = c.running().find((m) => m !== from)!;
  await c.run(from.server.transferLeadership(to.id));
  await c.until(() => c.leader() === to, { what: 'the new leader' });
  return to;
}

const remainingOnEvery = (c: InProcCluster): bigint[] => c.running().map((m) => m.server.lessor.leases.get(LEASE)!.remainingTTL);

describe('lease checkpoints', () => {
  for (const seed of [1, 2, 3]) {
    it(`a new leader counts down from the last checkpoint, not the full TTL (seed ${seed})`, async () => {
      await withCluster({ size: 3, seed, leaseCheckpoint: { intervalMs: INTERVAL_MS, persist: false } }, async (c) => {
        const L = await grantAndAge(c, 20);
        // Checkpointed every 2 s on every member: 40 s left, give or take one interval.
        for (const r of remainingOnEvery(c)) assert.ok(r >= 38n && r <= 42n, `checkpointed remaining ${r}`);
        const L2 = await moveLeader(c, L);
        // The new leader's countdown: the checkpoint plus one election timeout (etcd's Promote).
        const left = L2.server.lessor.remaining(LEASE);
        assert.ok(left >= 37n && left <= 43n, `remaining on the new leader ${left}, want ~40 (not ${TTL})`);
      });
    });
  }

  it('without checkpoints (etcd\'s default) a new leader gives the lease its full TTL again', async () => {
    await withCluster({ size: 3, seed: 1 }, async (c) => {
      const L = await grantAndAge(c, 20);
      assert.deepEqual(remainingOnEvery(c), [0n, 0n, 0n]);
      const L2 = await moveLeader(c, L);
      assert.ok(L2.server.lessor.remaining(LEASE) >= TTL);
    });
  });

  it('a lease whose leader keeps changing still expires', async () => {
    await withCluster({ size: 3, seed: 4, leaseCheckpoint: { intervalMs: INTERVAL_MS, persist: false } }, async (c) => {
      await grantAndAge(c, 0);
      // A leader change every 15 s: without checkpoints the lease would never expire.
      for (let i = 0; i < 6; i++) {
        await c.tick(150);
        await c.settle();
        const L = c.leader();
        if (!L?.server.lessor.exists(LEASE)) break;
        await moveLeader(c, L);
      }
      await c.until(() => c.running().every((m) => !m.server.lessor.exists(LEASE)), { ticks: 300, what: 'the lease revoked' });
    });
  });

  it('a keepalive clears the checkpoint through the log first; the next leader counts from the renewal', async () => {
    await withCluster({ size: 3, seed: 5, leaseCheckpoint: { intervalMs: INTERVAL_MS, persist: false } }, async (c) => {
      const L = await grantAndAge(c, 20);
      assert.ok(remainingOnEvery(c).every((r) => r > 0n));
      assert.equal(await c.run(L.server.renewLease(LEASE)), TTL);
      await c.settle();
      assert.deepEqual(remainingOnEvery(c), [0n, 0n, 0n]);
      const L2 = await moveLeader(c, L);
      assert.ok(L2.server.lessor.remaining(LEASE) >= TTL - 1n, `remaining ${L2.server.lessor.remaining(LEASE)} after a renewal`);
    });
  });

  it('a restarted member has the checkpoint back from its WAL', async () => {
    await withCluster({ size: 3, seed: 6, leaseCheckpoint: { intervalMs: INTERVAL_MS, persist: false } }, async (c) => {
      const L = await grantAndAge(c, 4);
      const F = c.running().find((m) => m !== L)!;
      const before = F.server.lessor.leases.get(LEASE)!.remainingTTL;
      assert.ok(before > 0n);
      // Time stands still while the restart settles, so no newer checkpoint comes meanwhile.
      await c.restart(F);
      await c.settle();
      assert.equal(F.server.lessor.leases.get(LEASE)?.remainingTTL, before);
    });
  });

  it("a new leader starts the countdowns only once it has applied its term's first entry (etcd's Promote)", async () => {
    await withCluster({ size: 3, seed: 7, leaseCheckpoint: { intervalMs: INTERVAL_MS, persist: false } }, async (c) => {
      const L = await grantAndAge(c, 4);
      const T = c.running().find((m) => m !== L)!;
      // T's appends are held: elected, it cannot commit (nor apply) an entry of its term yet,
      // so a checkpoint the old leader committed may still be unapplied here.
      const held = c.net.hold((m) => m.from === T.id && m.type === MessageType.MsgApp);
      await c.run(L.server.transferLeadership(T.id), { what: 'transfer' });
      assert.ok(T.server.isLeader());
      assert.equal(T.server.lessor.isPrimary(), false, 'no countdown before the term\'s first entry is applied');
      held.end();
      await c.until(() => T.server.lessor.isPrimary(), { what: 'the lessor promoted' });
      const left = T.server.lessor.remaining(LEASE);
      assert.ok(left >= 55n && left <= 59n, `remaining ${left} (the checkpoint and an election timeout, not ${TTL})`);
    });
  });
});

describe('lease renewal on the leader', () => {
  it('a keepalive of an expired lease waits for its revocation and answers that it is gone (etcd)', async () => {
    await withCluster({ size: 3, seed: 8 }, async (c) => {
      const L = await c.waitIdle();
      await c.run(L.server.propose('leaseGrant', { ID: 9n, TTL: 3n }));
      // The leader's appends are held: the revocation it proposes once the lease expires cannot commit.
      const held = c.net.hold((m) => m.from === L.id && m.type === MessageType.MsgApp);
      await c.tick(40);
      assert.ok(L.server.lessor.isExpired(9n));
      let answer: bigint | undefined | null = null;
      void L.server.renewLease(9n).then((a) => (answer = a));
      await c.tick(3);
      await c.settle();
      assert.equal(answer, null, 'an expired lease is not renewed');
      held.end();
      await c.until(() => answer !== null, { what: 'the answer' });
      assert.equal(answer, 0n, "etcd's answer for a lease that is gone");
      assert.equal(L.server.lessor.exists(9n), false);
    });
  });
});

describe('expired leases', () => {
  it("are revoked at etcd's rate (1,000 a second), not all in one turn", async () => {
    await withCluster({ size: 1, seed: 4 }, async (c) => {
      const L = await c.waitIdle();
      const n = 2_500;
      // Granted together: they expire in the same tick.
      await c.run(Promise.all(Array.from({ length: n }, (_, i) => L.server.propose('leaseGrant', { ID: BigInt(i + 1), TTL: 5n }))));
      const left = (): number => L.server.lessor.leases.size;
      await c.until(() => left() < n, { ticks: 200, what: 'the first revokes' });
      // Half a second (5 ticks) at a time: at most 500 more each time (before: all at once).
      const seen: number[] = [left()];
      while (left() > 0 && seen.length < 20) {
        await c.tick(5);
        seen.push(left());
      }
      assert.equal(left(), 0, `all revoked in the end: ${seen.join(' ')}`);
      assert.ok(n - seen[0]! <= LEASE_REVOKE_RATE / 2, `first tick revoked ${n - seen[0]!}`);
      for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1]! - seen[i]! <= LEASE_REVOKE_RATE / 2 + 1, `revoked per half second: ${seen.join(' ')}`);
    });
  });
});
