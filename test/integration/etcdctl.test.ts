// Compatibility with Debian's etcdctl (v3.4) against 3 real raftkv processes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../support/ports.js';
import { ProcCluster } from '../support/proc-cluster.js';

const run = promisify(execFile);

async function hasEtcdctl(): Promise<boolean> {
  try {
    await run('etcdctl', ['version']);
    return true;
  } catch {
    return false;
  }
}

const available = await hasEtcdctl();
if (!available && process.env.CI) throw new Error('etcdctl is required in CI (apt-get install etcd-client)');

describe('etcdctl against a 3-member cluster', { skip: available ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  const ctl = async (args: string[], input?: string): Promise<string> => {
    const p = run('etcdctl', [`--endpoints=${c.endpoints().join(',')}`, '--command-timeout=10s', ...args], {
      env: { ...process.env, ETCDCTL_API: '3' },
    });
    if (input !== undefined) p.child.stdin!.end(input);
    return (await p).stdout;
  };
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('put, get, del', async () => {
    assert.equal((await ctl(['put', 'foo', 'bar'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'foo']), 'foo\nbar\n');
    assert.equal((await ctl(['del', 'foo'])).trim(), '1');
    assert.equal(await ctl(['get', 'foo']), '');
  });

  it('prefix get, print-value-only, keys-only, json count', async () => {
    await ctl(['put', 'dir/a', '1']);
    await ctl(['put', 'dir/b', '2']);
    assert.equal(await ctl(['get', 'dir/', '--prefix']), 'dir/a\n1\ndir/b\n2\n');
    assert.equal(await ctl(['get', 'dir/', '--prefix', '--print-value-only']), '1\n2\n');
    assert.equal(await ctl(['get', 'dir/', '--prefix', '--keys-only']), 'dir/a\n\ndir/b\n\n');
    const j = JSON.parse(await ctl(['get', 'dir/', '--prefix', '-w', 'json'])) as { count: number };
    assert.equal(j.count, 2);
  });

  it('txn (interactive form on stdin)', async () => {
    await ctl(['put', 'user', 'alice']);
    const out = await ctl(['txn'], 'value("user") = "alice"\n\nput user bob\n\nput user nobody\n\n');
    assert.equal(out, 'SUCCESS\n\nOK\n');
    assert.equal(await ctl(['get', 'user', '--print-value-only']), 'bob\n');
  });

  it('endpoint status and member list', async () => {
    const st = JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { leader: number; header: { member_id: number } } }>;
    assert.equal(st.length, 3);
    const leaders = new Set(st.map((s) => s.Status.leader));
    assert.equal(leaders.size, 1, 'all members agree on the leader');
    const ml = await ctl(['member', 'list']);
    const lines = ml.trim().split('\n');
    assert.equal(lines.length, 3);
    for (const m of c.members) assert.ok(ml.includes(`${m.name}, http://127.0.0.1:${m.peerPort}, http://127.0.0.1:${m.clientPort}`), ml);
  });

  it('member add (learner), list, remove; move-leader; snapshot save', async () => {
    const [port] = await freePorts(1);
    const added = await ctl(['member', 'add', 'extra', `--peer-urls=http://127.0.0.1:${port}`, '--learner']);
    assert.match(added, /Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)/);
    const id = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
    const list = await ctl(['member', 'list']);
    assert.match(list, new RegExp(`${id}, unstarted, , http://127.0.0.1:${port}, , true`));
    await assert.rejects(() => ctl(['member', 'promote', id]), /can only promote a learner member which is in sync with leader/);
    assert.match(await ctl(['member', 'remove', id]), new RegExp(`Member\\s+${id} removed from cluster`));
    // move-leader to a follower
    // Simple output keeps 64-bit ids exact (JSON numbers would round them):
    // "endpoint, id, version, db size, is leader, is learner, term, index, applied, errors"
    const rows = (await ctl(['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
    const hexId = rows.find((r) => r[4] === 'false')![1]!;
    assert.match(await ctl(['move-leader', hexId]), /Leadership transferred/);
    // snapshot save streams the state to a file
    const file = join(c.dataRoot, 'snap.db');
    const one = await run('etcdctl', [`--endpoints=${c.endpoint(0)}`, 'snapshot', 'save', file], { env: { ...process.env, ETCDCTL_API: '3' } });
    assert.match(one.stdout + one.stderr, /Snapshot saved at/);
    assert.ok(statSync(file).size > 0);
  });

  it('errors are etcd errors', async () => {
    await assert.rejects(() => ctl(['get', '']), /etcdserver: key is not provided/);
  });
});
