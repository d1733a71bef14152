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
import { scrape, total } from '../support/prometheus-text.js';

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

describe('a keepalive stream cancelled while it waits for a leader', () => {
  let c: ProcCluster;
  before(async () => {
    // Member 0 campaigns slowly (a 5 s election timeout, the others' 500 ms): with the others gone
    // it soon has no leader, and once they are back one of them leads (first to campaign), so a
    // renewal of member 0 is forwarded.
    c = await ProcCluster.start({ size: 3, heartbeatMs: 50, electionMs: 500, memberArgs: (i) => (i === 0 ? ['--election-timeout', '5000'] : []) });
  });
  after(async () => {
    await c?.destroy();
  });

  it('leaves no stream open to the leader once one is back', async (t) => {
    await c.waitForLeader();
    const granted = await new Promise<bigint>((resolve, reject) => c.client(0).lease.leaseGrant({ TTL: 600n, ID: 0n }, (e, r) => (e ? reject(e) : resolve(r!.ID))));
    await c.kill(1);
    await c.kill(2);
    await eventually(async () => assert.equal((await c.client(0).status()).leader, 0n), 20_000, 100);
    const keepAlive = c.client(0).lease.leaseKeepAlive();
    keepAlive.on('error', () => {});
    keepAlive.write({ ID: granted });
    await new Promise((r) => setTimeout(r, 300));
    keepAlive.cancel();
    c.startMember(1);
    c.startMember(2);
    const leader = await c.waitForLeader();
    // Member 0 leading (it rarely does) would renew itself: nothing forwarded to look at.
    if (leader === 0) return t.skip('member 0 became the leader');
    // Member 0's waiting renewal sees the leader within a heartbeat or two; give it time to act.
    await new Promise((r) => setTimeout(r, 1000));
    // Every keepalive stream the leader was asked to serve has ended (none forwarded for a client that left).
    const open = async (i: number): Promise<number> => {
      const s = await scrape(`http://${c.endpoint(i)}/metrics`);
      const m = { grpc_service: 'etcdserverpb.Lease', grpc_method: 'LeaseKeepAlive' };
      return total(s, 'grpc_server_started_total', m) - total(s, 'grpc_server_handled_total', m);
    };
    assert.equal(await open(leader), 0);
  });
});

describe('a keepalive and a TTL asked of a follower right after the leader died', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3, heartbeatMs: 50, electionMs: 500 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('are answered by the next leader (asked again while the dead one cannot be reached), as etcd answers them', async () => {
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const granted = await new Promise<bigint>((resolve, reject) =>
      c.client(follower).lease.leaseGrant({ TTL: 600n, ID: 0n }, (e, r) => (e ? reject(e) : resolve(r!.ID))),
    );
    // Asked of a follower still taking the dead leader for the leader (it notices an election
    // timeout later): the forwarded requests find nobody at its address.
    await c.kill(leader);
    const ttl = new Promise<LeaseTimeToLiveResponse>((resolve, reject) =>
      c.client(follower).lease.leaseTimeToLive({ ID: granted, keys: false }, new grpc.Metadata(), { deadline: Date.now() + 30_000 }, (e, r) => (e ? reject(e) : resolve(r!))),
    );
    const keepAlive = c.client(follower).lease.leaseKeepAlive();
    const renewed = new Promise<LeaseKeepAliveResponse>((resolve, reject) => {
      keepAlive.once('data', resolve);
      keepAlive.once('error', reject);
      keepAlive.once('end', () => reject(new Error('the keepalive stream ended unanswered')));
    });
    keepAlive.write({ ID: granted });
    const r = await ttl;
    assert.deepEqual([r.ID, r.grantedTTL], [granted, 600n]);
    const k = await renewed;
    keepAlive.cancel();
    assert.deepEqual([k.ID, k.TTL], [granted, 600n]);
  });
});
