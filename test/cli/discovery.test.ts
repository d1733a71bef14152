// etcd's --discovery: a new member learns its initial cluster from a discovery service.
//
// - the protocol (src/cli/discovery.ts) against a fake service speaking etcd's v2 keys subset
//   (test/support/fake-discovery.ts): members registering at once all get the same cluster, in
//   registration order; a late one gets `discovery: cluster is full` without registering; a
//   member registered before gets `found duplicate id`; a token the service does not know,
//   a bad size, duplicate names, and 5xx answers (retried with backoff), each as etcd's; a wait
//   answered empty or cut off is made again (and waits have no time limit of their own);
// - a member joining a running cluster with a token is refused in etcd's words;
// - three raftkv processes bootstrap a cluster from a token, with etcd's member ids (the
//   discovery URL as cluster token), and restart without asking again;
// - the same against the real discovery service, Debian's etcd-discovery (discovery.etcd.io)
//   backed by etcd 3.4 with its v2 API, when both are installed (CI installs them).

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiscoveryErrors, joinCluster } from '../../src/cli/discovery.js';
import { silentLogger } from '../../src/raft/logger.js';
import { memberId } from '../../src/util/ids.js';
import { EtcdProcess, etcdAvailable } from '../backup/etcd-process.js';
import { FakeDiscovery } from '../support/fake-discovery.js';
import { freePorts } from '../support/ports.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const DISCOVERY_BIN = '/usr/bin/discovery.etcd.io';
const noWait = { logger: silentLogger, sleep: async (): Promise<void> => {} };
const join = (token: string, name: string, port: number) => joinCluster(token, memberId([`http://127.0.0.1:${port}`], token), `${name}=http://127.0.0.1:${port}`, noWait);

describe('discovery: the protocol', () => {
  let d: FakeDiscovery;
  before(async () => {
    d = await FakeDiscovery.start();
  });
  after(async () => {
    await d.close();
  });

  it('members registering at once all get the same cluster, in registration order', async () => {
    const token = d.token(3);
    const got = await Promise.all([join(token, 'a', 1001), join(token, 'b', 1002), join(token, 'c', 1003)]);
    const order = d.registered(token);
    assert.deepEqual(order.sort(), ['a=http://127.0.0.1:1001', 'b=http://127.0.0.1:1002', 'c=http://127.0.0.1:1003']);
    for (const m of got) assert.deepEqual([...m].map(([n, u]) => `${n}=${u.join(',')}`), d.registered(token));
    // Registered under etcd's member id (hex), with the discovery URL as the cluster token.
    assert.ok(d.requests.includes(`PUT /${new URL(token).pathname.slice(1)}/${memberId(['http://127.0.0.1:1001'], token).toString(16)}?prevExist=false`));
  });

  it('a member that comes after the cluster is full is refused without registering', async () => {
    const token = d.token(1);
    await join(token, 'a', 1001);
    await assert.rejects(join(token, 'b', 1002), { message: DiscoveryErrors.fullCluster });
    assert.deepEqual(d.registered(token), ['a=http://127.0.0.1:1001']);
  });

  it('a member registered before (its data dir lost) gets etcd\'s duplicate id', async () => {
    const token = d.token(2);
    const first = join(token, 'a', 1001);
    await eventually(async () => assert.equal(d.registered(token).length, 1));
    await assert.rejects(join(token, 'a', 1001), { message: DiscoveryErrors.duplicateId });
    await join(token, 'b', 1002);
    assert.equal((await first).size, 2);
  });

  it('waits for the members still to come, however long they take', async () => {
    const token = d.token(2);
    let done = false;
    const waiting = join(token, 'a', 1001).then((m) => {
      done = true;
      return m;
    });
    await eventually(async () => assert.ok(d.requests.some((r) => r.includes('wait=true&recursive=true'))));
    assert.equal(done, false);
    await join(token, 'b', 1002);
    assert.deepEqual([...(await waiting).keys()], ['a', 'b']);
  });

  it("a token the service does not know, a bad size, duplicate names: etcd's errors", async () => {
    await assert.rejects(join(`${d.url}/no-such-token`, 'a', 1001), { message: DiscoveryErrors.badEndpoint });
    await assert.rejects(join(d.token('three'), 'a', 1001), { message: DiscoveryErrors.badSizeKey });
    const token = d.token(2);
    await assert.rejects(Promise.all([join(token, 'same', 1001), join(token, 'same', 1002)]), { message: DiscoveryErrors.duplicateName });
  });

  it('a wait answered empty (the service\'s own timeout) or cut off is made again; any 5xx is retried', async () => {
    const token = d.token(2);
    d.emptyWaits = 2;
    d.cutWaits = 1;
    const waits: number[] = [];
    const waiting = joinCluster(token, 1n, 'a=http://127.0.0.1:1001', { logger: silentLogger, sleep: async (ms) => void waits.push(ms) });
    await eventually(async () => assert.equal(d.emptyWaits + d.cutWaits, 0));
    await join(token, 'b', 1002);
    assert.deepEqual([...(await waiting).keys()], ['a', 'b']);
    assert.deepEqual(waits, [2000], 'one backoff, for the cut-off answer');
    d.unavailable = 1;
    d.unavailableStatus = 502;
    assert.deepEqual([...(await joinCluster(d.token(1), 1n, 'a=http://127.0.0.1:1001', noWait)).keys()], ['a']);
    d.unavailableStatus = 503;
  });

  it('an unreachable or unavailable service is tried again (etcd\'s backoff), then works', async () => {
    const token = d.token(1);
    d.unavailable = 2;
    const waits: number[] = [];
    const m = await joinCluster(token, 1n, 'a=http://127.0.0.1:1001', { logger: silentLogger, sleep: async (ms) => void waits.push(ms) });
    assert.deepEqual([...m.keys()], ['a']);
    assert.deepEqual(waits, [2000, 4000]);
    const [closed] = await freePorts(1);
    await assert.rejects(joinCluster(`http://127.0.0.1:${closed}/t`, 1n, 'a=http://127.0.0.1:1', { ...noWait, maxRetries: 3 }), { message: 'discovery: too many retries' });
  });
});

describe('discovery: raftkv members', () => {
  it("a member joining a running cluster is not given a token: etcd's error, exit 1", async () => {
    const [client, peer] = await freePorts(2);
    const dir = mkdtempSync(joinPath(tmpdir(), 'raftkv-discovery-'));
    try {
      const r = spawnSync(process.execPath, [resolve('dist/src/cli/raftkv.js'), '--data-dir', joinPath(dir, 'd'), '--discovery', 'http://127.0.0.1:1/token', '--initial-cluster-state', 'existing',
        '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`, '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /discovery URL should not be set when joining existing initial cluster/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('three members bootstrap from a token, with etcd\'s member ids, and restart without asking again', async () => {
    const d = await FakeDiscovery.start();
    const token = d.token(3);
    const c = await ProcCluster.start({ size: 3, bootstrapFlags: ['--discovery', token] });
    try {
      const ids = (await c.client(0).memberList()).members.map((m) => [m.name, m.ID]).sort();
      assert.deepEqual(ids, c.members.map((m) => [m.name, memberId([`http://127.0.0.1:${m.peerPort}`], token)]).sort());
      await c.client(1).put('k', 'v');
      const asked = d.requests.length;
      await c.stop(2);
      c.startMember(2);
      await eventually(async () => assert.equal(await c.client(2).get('k', true), 'v'));
      assert.equal(d.requests.length, asked, 'a restart does not ask the service');
      assert.ok(c.members[2]!.log.some((l) => l.includes('discovery token is ignored since cluster already initialized')));
    } finally {
      await c.destroy();
      await d.close();
    }
  });

  it('with the real discovery service (discovery.etcd.io, backed by etcd 3.4)', { skip: !(etcdAvailable && existsSync(DISCOVERY_BIN)) }, async () => {
    const etcd = await EtcdProcess.start({ extraArgs: ['--enable-v2'] });
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    let service: ChildProcess | undefined;
    let c: ProcCluster | undefined;
    try {
      service = spawn(DISCOVERY_BIN, ['-a', `127.0.0.1:${port}`, '-e', `http://${etcd.endpoint}`, '-h', url], { stdio: 'ignore' });
      const token = await eventually(async () => {
        const r = await fetch(`${url}/new?size=3`, { method: 'PUT' });
        assert.equal(r.status, 200);
        return (await r.text()).trim();
      });
      c = await ProcCluster.start({ size: 3, bootstrapFlags: ['--discovery', token] });
      const names = (await c.client(0).memberList()).members.map((m) => m.name).sort();
      assert.deepEqual(names, ['m1', 'm2', 'm3']);
      await c.client(2).put('k', 'v');
      assert.equal(await c.client(0).get('k'), 'v');
      // The service lists the three, as etcd members would have registered.
      const listed = (await (await fetch(token)).json()) as { node: { nodes: Array<{ value: string }> } };
      assert.deepEqual(listed.node.nodes.map((n) => n.value).sort(), c.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`).sort());
    } finally {
      await c?.destroy();
      service?.kill('SIGKILL');
      await etcd.destroy();
    }
  });
});
