// Alarm GET on a member that has no leader for the whole request timeout gets etcd's answer:
// etcd proposes Alarm through Raft, whose proposal never leaves a leaderless member, and its
// context's error reaches the client unconverted — Unknown "context deadline exceeded", which
// etcdctl does not retry. raftkv answers GET after a ReadIndex round, whose timeout was
// Unavailable "request timed out": etcdctl retried it, so `alarm list` and `alarm disarm` hung
// until the client's own deadline (found by a side-by-side probe with etcd 3.4.23).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AlarmRequest_AlarmAction, AlarmType } from '../../src/gen/etcd/rpc.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('alarm list without a leader', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3, heartbeatMs: 50, electionMs: 500 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('ends with etcd\'s Unknown "context deadline exceeded" after the request timeout', async () => {
    const survivor = 0;
    for (const i of [1, 2]) await c.kill(i);
    await eventually(async () => assert.equal((await c.client(survivor).status()).leader, 0n), 20_000, 100);
    const maint = c.client(survivor).maint;
    // A bare gRPC call (no client retry), with a deadline well past the member's request timeout.
    const err = await new Promise<grpc.ServiceError>((resolve, reject) =>
      maint.alarm({ action: AlarmRequest_AlarmAction.GET, memberID: 0n, alarm: AlarmType.NONE }, new grpc.Metadata(), { deadline: Date.now() + 60_000 }, (e) =>
        e ? resolve(e) : reject(new Error('answered without a leader')),
      ),
    );
    assert.deepEqual([grpc.status[err.code], err.details], ['UNKNOWN', 'context deadline exceeded']);
  });
});
