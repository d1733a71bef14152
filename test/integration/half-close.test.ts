// A client's half-close of a stream, as etcd handles it: a Watch stream keeps watching (etcd's
// recvLoop returns on EOF, the stream lives on), and a LeaseKeepAlive stream on a follower
// answers the keepalives it forwarded to the leader before it ends.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { LeaseClient, type LeaseKeepAliveResponse, WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcd/rpc.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('half-closed streams', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => c?.destroy());

  it('a watch stream keeps delivering after the client half-closes it', async () => {
    const client = new WatchClient(c.endpoint(0), grpc.credentials.createInsecure());
    const call = client.watch();
    const got: WatchResponse[] = [];
    call.on('data', (r: WatchResponse) => got.push(r));
    call.on('error', () => undefined);
    call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('hc/'), rangeEnd: Buffer.from('hc0') } }));
    await eventually(async () => assert.ok(got.some((r) => r.created)));
    call.end();
    await c.client(1).put('hc/a', '1');
    await eventually(async () => assert.ok(got.some((r) => r.events.length === 1 && Buffer.from(r.events[0]!.kv!.key).toString() === 'hc/a')));
    call.cancel();
    client.close();
  });

  it('a follower answers forwarded keepalives before ending a half-closed stream', async () => {
    const leader = await c.waitForLeader();
    const follower = (leader + 1) % 3;
    const grant = await new Promise<bigint>((res, rej) =>
      c.client(leader).lease.leaseGrant({ TTL: 60n, ID: 0n }, (e, r) => (e ? rej(e) : res(r!.ID))),
    );
    const client = new LeaseClient(c.endpoint(follower), grpc.credentials.createInsecure());
    const call = client.leaseKeepAlive();
    const answers: LeaseKeepAliveResponse[] = [];
    const ended = new Promise<void>((res, rej) => {
      call.on('data', (r: LeaseKeepAliveResponse) => answers.push(r));
      call.on('end', () => res());
      call.on('error', rej);
    });
    call.write({ ID: grant });
    call.write({ ID: grant });
    call.end();
    await ended;
    assert.equal(answers.length, 2, 'both keepalives answered before the stream ended');
    for (const a of answers) assert.ok(a.TTL > 0n);
    client.close();
  });
});
