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
});
