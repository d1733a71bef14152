// The lessor's countdown as etcd reports it: LeaseTimeToLive's TTL is the remaining time cut to
// whole seconds toward zero (etcd: int64(Remaining().Seconds())), not rounded up.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Lessor } from '../../src/kv/lessor.js';

describe('Lessor', () => {
  it('reports the remaining TTL as etcd does: whole seconds cut toward zero', () => {
    let now = 1000;
    const l = new Lessor(1n, () => now);
    l.grant(7n, 10n);
    // A follower has no countdown: it reports the granted TTL.
    assert.equal(l.remaining(7n), 10n);
    l.promote(); // the leader counts down from now
    assert.equal(l.remaining(7n), 10n);
    now += 1; // etcdctl lease timetolive right after a grant of 10 s: remaining(9s)
    assert.equal(l.remaining(7n), 9n);
    now += 9_998; // 1 ms left
    assert.equal(l.remaining(7n), 0n);
    now += 501; // expired 0.5 s ago, not revoked yet: int64(-0.5) is 0
    assert.equal(l.remaining(7n), 0n);
    now += 1_000; // 1.5 s ago: -1, as etcd says
    assert.equal(l.remaining(7n), -1n);
  });

  it("checks a grant's TTL before its id, as etcd's lessor.Grant does", () => {
    const l = new Lessor(1n, () => 0);
    l.grant(7n, 10n);
    // An existing id with a TTL over etcd's MaxLeaseTTL (9,000,000,000 s): "too large", not "exists".
    assert.throws(() => l.grant(7n, 9_000_000_001n), /etcdserver: too large lease TTL/);
    assert.throws(() => l.grant(7n, 10n), /etcdserver: lease already exists/);
  });

  it('a new leader gives every lease its TTL and an election timeout more (etcd\'s Promote)', () => {
    let now = 1000;
    const l = new Lessor(1n, () => now);
    l.grant(7n, 5n);
    l.promote(1000);
    now += 1;
    assert.equal(l.remaining(7n), 5n); // 5.999 s left
    now += 5_998;
    assert.deepEqual(l.expired(), []);
    now += 2;
    assert.deepEqual(l.expired(), [7n]);
  });

  describe('lease checkpoints (etcd\'s --experimental-enable-lease-checkpoint)', () => {
    const on = { intervalMs: 60_000, persist: true };

    it('the leader checkpoints a long lease once per interval, with the seconds left rounded up', () => {
      let now = 0;
      const l = new Lessor(1n, () => now, on);
      l.promote();
      l.grant(1n, 600n); // more than one interval to go: scheduled
      l.grant(2n, 60n); // not more than one interval (60 s): never checkpointed, as etcd's
      now = 59_999;
      assert.deepEqual(l.dueCheckpoints(1000), []);
      now = 60_000.5;
      assert.deepEqual(l.dueCheckpoints(1000), [{ ID: 1n, remainingTTL: 540n }]);
      // Taken: not due again until its checkpoint is applied, which schedules the next.
      now = 200_000;
      assert.deepEqual(l.dueCheckpoints(1000), []);
      l.checkpoint(1n, 540n);
      now = 259_999;
      assert.deepEqual(l.dueCheckpoints(1000), []);
      now = 260_000;
      assert.deepEqual(l.dueCheckpoints(1000), [{ ID: 1n, remainingTTL: 340n }]);
    });

    it('a new leader counts down from the checkpoint, not from the full TTL', () => {
      let now = 0;
      const follower = new Lessor(1n, () => now, on);
      follower.grant(1n, 600n);
      follower.checkpoint(1n, 300n); // applied from the log
      now = 1_000;
      follower.promote(1_000);
      assert.equal(follower.remaining(1n), 301n); // 300 s and the election timeout
      // Without checkpoints (etcd's default) the countdown restarts from the TTL.
      const plain = new Lessor(1n, () => now);
      plain.grant(1n, 600n);
      plain.promote(1_000);
      assert.equal(plain.remaining(1n), 601n);
    });

    it('a renewal must clear a set checkpoint first; after it the full TTL counts again', () => {
      let now = 0;
      const l = new Lessor(1n, () => now, on);
      l.promote();
      l.grant(1n, 600n);
      assert.equal(l.mustClearCheckpoint(1n), false); // none set: renewed at once
      l.checkpoint(1n, 300n);
      assert.equal(l.mustClearCheckpoint(1n), true);
      l.checkpoint(1n, 0n); // the clearing entry, applied
      assert.equal(l.mustClearCheckpoint(1n), false);
      assert.equal(l.renew(1n), 600n);
      assert.equal(l.remaining(1n), 600n);
      // A lessor without checkpoints never proposes clearing (etcd: no checkpointer).
      const off = new Lessor(1n, () => now);
      off.grant(1n, 600n);
      off.checkpoint(1n, 300n);
      assert.equal(off.mustClearCheckpoint(1n), false);
    });

    it('a lease just renewed (its full TTL left) is not checkpointed then but later; a revoked one is dropped', () => {
      let now = 0;
      const l = new Lessor(1n, () => now, on);
      l.promote();
      l.grant(1n, 600n);
      l.grant(2n, 600n);
      now = 60_000;
      l.renew(1n);
      l.revoke(2n);
      assert.deepEqual(l.dueCheckpoints(1000), []);
      // The renewed one is due again an interval later (then with less than its TTL left).
      now = 119_999;
      assert.deepEqual(l.dueCheckpoints(1000), []);
      now = 120_000;
      assert.deepEqual(l.dueCheckpoints(1000), [{ ID: 1n, remainingTTL: 540n }]);
    });

    it('an expired lease (its revocation on the way) is not checkpointed to 0, which would clear it', () => {
      let now = 0;
      const l = new Lessor(1n, () => now, { intervalMs: 60_000, persist: false });
      l.promote();
      l.grant(1n, 600n);
      l.checkpoint(1n, 61n); // a new leader would count 61 s
      now = 61_000;
      l.promote(); // counts down from the checkpoint: expires at 122 s
      now = 125_000;
      assert.deepEqual(l.expired(), [1n]);
      assert.deepEqual(l.dueCheckpoints(1000), []);
    });

    it('at most `limit` per call, in due order; nothing on a follower; a failed batch is due again', () => {
      let now = 0;
      const l = new Lessor(1n, () => now, on);
      l.promote();
      for (let i = 1n; i <= 5n; i++) {
        l.grant(i, 600n);
        now += 10;
      }
      now = 120_000;
      const first = l.dueCheckpoints(2);
      assert.deepEqual(first.map((c) => c.ID), [1n, 2n]);
      assert.deepEqual(l.dueCheckpoints(10).map((c) => c.ID), [3n, 4n, 5n]);
      l.retryCheckpoints(first);
      now = 179_999;
      assert.deepEqual(l.dueCheckpoints(10), []);
      now = 180_000;
      assert.deepEqual(l.dueCheckpoints(10).map((c) => c.ID), [1n, 2n]);
      l.demote();
      l.retryCheckpoints([{ ID: 3n, remainingTTL: 1n }]);
      now = 1_000_000;
      assert.deepEqual(l.dueCheckpoints(10), []);
    });

    it('state images keep checkpoints only when they persist', () => {
      const now = (): number => 0;
      const persisted = new Lessor(1n, now, on);
      persisted.grant(1n, 600n);
      persisted.grant(2n, 600n);
      persisted.checkpoint(1n, 300n);
      assert.deepEqual(persisted.toImage(), [['1', '600', '300'], ['2', '600']]);
      const restored = new Lessor(1n, now, on);
      restored.restore(persisted.toImage());
      assert.equal(restored.leases.get(1n)?.remainingTTL, 300n);
      const notPersisted = new Lessor(1n, now, { intervalMs: 60_000, persist: false });
      notPersisted.restore(persisted.toImage());
      assert.deepEqual(notPersisted.toImage(), [['1', '600'], ['2', '600']]);
    });
  });
});
