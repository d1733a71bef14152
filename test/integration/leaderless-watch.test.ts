// A watch that requires a leader (etcdctl watch, clientv3's WithRequireLeader) is ended with
// `etcdserver: no leader` once its member has been without a leader for three election timeouts,
// as etcd's monitorLeader ends it; a watch that did not ask stays open. Real processes, etcdctl.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { WatchClient, WatchRequest, type WatchResponse } from '../../src/gen/etcd/rpc.js';
import { etcdctlAvailable, etcdctlEnv } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('a watch that requires a leader, on a member cut off from the others', { skip: !etcdctlAvailable && 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  let ctl: ChildProcess | undefined;
  let plain: InstanceType<typeof WatchClient> | undefined;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => {
    if (ctl?.exitCode === null) ctl.kill('SIGKILL');
    plain?.close();
    await c?.destroy();
  });

  it("is ended with etcd's 'no leader' (etcdctl exits), while a watch that did not ask stays open", async () => {
    const leader = await c.waitForLeader();
    const f = [0, 1, 2].find((i) => i !== leader)!;
    ctl = spawn('etcdctl', [`--endpoints=${c.endpoint(f)}`, 'watch', '--prefix', 'lw/'], { env: etcdctlEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    ctl.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    ctl.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = once(ctl, 'exit');
    // A watch without the require-leader metadata, on the same member.
    plain = new WatchClient(c.endpoint(f), grpc.credentials.createInsecure());
    const call = plain.watch();
    const got: WatchResponse[] = [];
    let plainError: grpc.ServiceError | undefined;
    call.on('data', (r: WatchResponse) => got.push(r));
    call.on('error', (e: grpc.ServiceError) => (plainError = e));
    call.write(WatchRequest.fromPartial({ createRequest: { key: Buffer.from('lw/'), rangeEnd: Buffer.from('lw0') } }));
    await eventually(async () => {
      await c.client(leader).put('lw/a', '1');
      assert.match(out, /lw\/a/);
      assert.ok(got.some((r) => r.events.length > 0));
    });

    for (const i of [0, 1, 2]) if (i !== f) await c.kill(i);
    let bound: NodeJS.Timeout | undefined;
    const [code] = (await Promise.race([exited, new Promise((_, rej) => (bound = setTimeout(() => rej(new Error(`etcdctl still watching: ${out}`)), 30_000)))]).finally(() =>
      clearTimeout(bound),
    )) as [number];
    assert.notEqual(code, 0);
    assert.match(out, /watch was canceled \(etcdserver: no leader\)/);
    assert.equal(plainError, undefined, 'the watch that did not ask for a leader is still open');
    call.cancel();
  });
});
