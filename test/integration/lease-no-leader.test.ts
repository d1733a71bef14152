// A lease's TTL asked of a member while there is no leader waits for one, as etcd's waitLeader
// does (up to the request timeout), instead of failing at once with "no leader": etcdctl, which
// retries that error, sent a hundred requests in three seconds. So does a keepalive (etcd's
// LeaseRenew), where raftkv used to end the client's keepalive stream with the error. Here the
// leader comes back while the requests wait, and they are answered.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { LeaseKeepAliveResponse, LeaseTimeToLiveResponse } from '../../src/gen/etcd/rpc.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('lease TTL without a leader', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3, heartbeatMs: 50, electionMs: 500 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('waits for a leader instead of failing at once', async () => {
    const leader = await c.waitForLeader();
    const survivor = (leader + 1) % 3;
    const granted = await new Promise<bigint>((resolve, reject) =>
      c.client(survivor).lease.leaseGrant({ TTL: 600n, ID: 0n }, (e, r) => (e ? reject(e) : resolve(r!.ID))),
    );
    const others = [0, 1, 2].filter((i) => i !== survivor);
    for (const i of others) await c.kill(i);
    // The survivor knows it has no leader (its own term moves on without one).
    await eventually(async () => assert.equal((await c.client(survivor).status()).leader, 0n), 20_000, 100);
    // Asked now, with no client-side retry (a bare gRPC call, a deadline well past the leader's return).
    const ttl = new Promise<LeaseTimeToLiveResponse>((resolve, reject) =>
      c.client(survivor).lease.leaseTimeToLive({ ID: granted, keys: false }, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (e, r) => (e ? reject(e) : resolve(r!))),
    );
    const keepAlive = c.client(survivor).lease.leaseKeepAlive();
    const renewed = new Promise<LeaseKeepAliveResponse>((resolve, reject) => {
      keepAlive.once('data', resolve);
      keepAlive.once('error', reject);
    });
    keepAlive.write({ ID: granted });
    // A quorum again: the requests are answered by the leader they waited for.
    c.startMember(others[0]!);
    const r = await ttl;
    assert.equal(r.ID, granted);
    assert.equal(r.grantedTTL, 600n);
    assert.ok(r.TTL > 0n && r.TTL <= 600n);
    const k = await renewed;
    keepAlive.cancel();
    assert.equal(k.ID, granted);
    assert.equal(k.TTL, 600n);
  });
});
