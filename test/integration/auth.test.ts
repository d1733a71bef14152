// etcd's Auth service against 3 real raftkv processes: the etcdctl recipe (user add root, role
// add, grant-permission --prefix, grant-role, auth enable), enforcement with etcd's error texts,
// the etcd3 npm client's auth, many clients authenticating at once while writes go on, a
// restart of every member, and auth disable.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Etcd3, EtcdAuthenticationFailedError, EtcdPermissionDeniedError } from 'etcd3';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';
import { tempDir } from '../support/temp-dirs.js';

describe('auth (etcdctl and the etcd3 client) against a 3-member cluster', { skip: etcdctlAvailable ? false : 'etcdctl not installed' }, () => {
  let c: ProcCluster;
  const hosts = (): string[] => c.endpoints().map((e) => `http://${e}`);
  const ctl = async (args: string[], user?: string): Promise<string> => {
    const u = user ? [`--user=${user}`] : [];
    return (await run('etcdctl', [`--endpoints=${c.endpoints().join(',')}`, '--command-timeout=15s', ...u, ...args], { env: etcdctlEnv })).stdout;
  };
  /** etcdctl's error output for a command that must fail. */
  const ctlFails = async (args: string[], user?: string): Promise<string> => {
    try {
      const out = await ctl(args, user);
      assert.fail(`etcdctl ${args.join(' ')} succeeded: ${out}`);
    } catch (e) {
      const err = e as { stderr?: string; code?: unknown };
      if (err.stderr === undefined) throw e;
      return err.stderr;
    }
  };
  const clients: Etcd3[] = [];
  const client = (auth?: { username: string; password: string }): Etcd3 => {
    const e = new Etcd3({ hosts: hosts(), auth });
    clients.push(e);
    return e;
  };

  before(async () => {
    c = await ProcCluster.start({ size: 3, extraArgs: ['--bcrypt-cost', '10'] });
  });
  after(async () => {
    for (const e of clients) e.close();
    await c?.destroy();
  });

  it('etcdctl sets up users, roles and permissions, then enables auth', async () => {
    assert.match(await ctl(['user', 'add', 'root:rootpw']), /User root created/);
    assert.match(await ctl(['role', 'add', 'reader']), /Role reader created/);
    assert.match(await ctl(['role', 'grant-permission', 'reader', 'read', 'app/', '--prefix']), /Role reader updated/);
    assert.match(await ctl(['role', 'add', 'writer']), /Role writer created/);
    await ctl(['role', 'grant-permission', 'writer', 'readwrite', 'app/', '--prefix']);
    await ctl(['user', 'add', 'alice:alicepw']);
    assert.match(await ctl(['user', 'grant-role', 'alice', 'reader']), /Role reader is granted to user alice/);
    await ctl(['user', 'add', 'bob:bobpw']);
    await ctl(['user', 'grant-role', 'bob', 'writer']);
    await ctl(['user', 'add', 'nopw', '--no-password']);
    // etcd's errors for bad management requests.
    assert.match(await ctlFails(['user', 'add', 'alice:again']), /etcdserver: user name already exists/);
    assert.match(await ctlFails(['user', 'grant-role', 'alice', 'nosuchrole']), /etcdserver: role name not found/);
    assert.match(await ctlFails(['role', 'revoke-permission', 'reader', 'zzz']), /etcdserver: permission is not granted to the role/);
    assert.match(await ctlFails(['user', 'revoke-role', 'alice', 'writer']), /etcdserver: role is not granted to the user/);
    assert.deepEqual((await ctl(['user', 'list'])).trim().split('\n'), ['alice', 'bob', 'nopw', 'root']);
    assert.deepEqual((await ctl(['role', 'list'])).trim().split('\n'), ['reader', 'writer']);
    assert.match(await ctl(['role', 'get', 'reader']), /\[app\/, app0\) \(prefix app\/\)/);
    assert.match(await ctl(['user', 'get', 'alice']), /Roles: reader/);
    await ctl(['put', 'app/x', '1']);
    await ctl(['put', 'other', 'o']);
    // etcdctl's `auth enable` adds the root role and grants it to root when it is missing.
    assert.match(await ctl(['auth', 'enable']), /Authentication Enabled/);
  });

  it('a request without credentials is refused', async () => {
    assert.match(await ctlFails(['get', 'app/x']), /etcdserver: user name is empty/);
    assert.match(await ctlFails(['put', 'app/x', '2']), /etcdserver: user name is empty/);
    assert.match(await ctlFails(['user', 'list']), /etcdserver: user name is empty/);
  });

  it('a read-only role reads its prefix and cannot write it or read elsewhere', async () => {
    assert.equal(await ctl(['get', 'app/x'], 'alice:alicepw'), 'app/x\n1\n');
    assert.equal(await ctl(['get', 'app/', '--prefix', '--print-value-only'], 'alice:alicepw'), '1\n');
    assert.match(await ctlFails(['put', 'app/x', '2'], 'alice:alicepw'), /etcdserver: permission denied/);
    assert.match(await ctlFails(['del', 'app/x'], 'alice:alicepw'), /etcdserver: permission denied/);
    assert.match(await ctlFails(['get', 'other'], 'alice:alicepw'), /etcdserver: permission denied/);
    assert.match(await ctlFails(['get', '', '--prefix'], 'alice:alicepw'), /etcdserver: permission denied/);
    assert.match(await ctlFails(['user', 'list'], 'alice:alicepw'), /etcdserver: permission denied/);
    // A txn is checked on both branches, whichever is taken.
    const txn = run('etcdctl', [`--endpoints=${c.endpoints().join(',')}`, '--user=bob:bobpw', 'txn'], { env: etcdctlEnv });
    txn.child.stdin!.end('value("app/x") = "1"\n\nput app/y 1\n\nput other 2\n\n');
    await assert.rejects(txn, (e: { stderr: string }) => /etcdserver: permission denied/.test(e.stderr));
    assert.equal(await ctl(['get', 'app/y'], 'bob:bobpw'), '');
    assert.equal(await ctl(['get', 'other', '--print-value-only'], 'root:rootpw'), 'o\n');
  });

  it('a --no-password user cannot authenticate; a wrong password gets etcd\'s error', async () => {
    assert.match(await ctlFails(['get', 'app/x'], 'alice:wrong'), /etcdserver: authentication failed, invalid user ID or password/);
    assert.match(await ctlFails(['get', 'app/x'], 'nobody:pw'), /etcdserver: authentication failed, invalid user ID or password/);
    // etcd 3.4 passes this one on as the auth store's own error (code Unknown).
    assert.match(await ctlFails(['get', 'app/x'], 'nopw:x'), /code = Unknown desc = auth: authentication failed, password was given for no password user/);
  });

  it('permissions as etcd 3.4 checks them: compaction and move-leader open, maintenance root-only with the auth store\'s errors, a refused watch says why', async () => {
    // etcd 3.4 checks no permission for Compact or MoveLeader.
    const rev = Number(JSON.parse(await ctl(['get', 'app/x', '-w', 'json'], 'alice:alicepw')).header.revision);
    assert.equal((await ctl(['compaction', String(rev - 1)], 'alice:alicepw')).trim(), `compacted revision ${rev - 1}`);
    assert.equal((await ctl(['compaction', String(rev)])).trim(), `compacted revision ${rev}`);
    assert.match(await ctlFails(['move-leader', '1234abcd'], 'alice:alicepw'), /etcdserver: bad leader transferee/);
    // Its maintenance server passes the auth store's errors on unconverted.
    assert.match(await ctlFails(['defrag'], 'alice:alicepw'), /code = Unknown desc = auth: permission denied/);
    assert.match(await ctlFails(['endpoint', 'hashkv']), /code = Unknown desc = auth: user name is empty/);
    // (A snapshot is asked of one member; refused, it writes no file.)
    const snap = run('etcdctl', [`--endpoints=${c.endpoint(0)}`, '--user=alice:alicepw', 'snapshot', 'save', join(tempDir('raftkv-auth-snap-'), 'x.db')], { env: etcdctlEnv });
    await assert.rejects(snap, (e: { stderr: string }) => /code = Unknown desc = auth: permission denied/.test(e.stderr));
    // A watch refused for want of a user says so (etcd's cancel reason), not "permission denied".
    assert.match(await ctlFails(['watch', 'app/x']), /watch was canceled \(rpc error: code = InvalidArgument desc = etcdserver: user name is empty\)/);
    assert.match(await ctlFails(['watch', 'other'], 'alice:alicepw'), /watch was canceled \(rpc error: code = PermissionDenied desc = etcdserver: permission denied\)/);
  });

  it('--user root works for everything; a read-write role writes its prefix', async () => {
    assert.equal((await ctl(['put', 'anything', 'v'], 'root:rootpw')).trim(), 'OK');
    assert.equal((await ctl(['put', 'app/y', 'bob'], 'bob:bobpw')).trim(), 'OK');
    assert.equal(await ctl(['get', 'app/y', '--print-value-only'], 'alice:alicepw'), 'bob\n');
    assert.match(await ctl(['user', 'get', 'root'], 'root:rootpw'), /Roles: root/);
    assert.match(await ctl(['endpoint', 'hashkv'], 'root:rootpw'), /127\.0\.0\.1/);
  });

  it('the etcd3 client authenticates and is held to its permissions', async () => {
    const bob = client({ username: 'bob', password: 'bobpw' });
    await bob.put('app/from-etcd3').value('hi');
    assert.equal(await bob.get('app/from-etcd3').string(), 'hi');
    await assert.rejects(bob.put('other').value('x').exec(), EtcdPermissionDeniedError);
    const alice = client({ username: 'alice', password: 'alicepw' });
    assert.equal(await alice.get('app/from-etcd3').string(), 'hi');
    await assert.rejects(alice.put('app/from-etcd3').value('no').exec(), EtcdPermissionDeniedError);
    // A watch as a reader of the prefix sees the writer's put.
    const w = await alice.watch().prefix('app/w').create();
    const seen = new Promise<string>((r) => w.on('put', (kv) => r(kv.value.toString())));
    await bob.put('app/w1').value('watched');
    assert.equal(await seen, 'watched');
    await w.cancel();
    const wrong = client({ username: 'alice', password: 'nope' });
    await assert.rejects(wrong.get('app/x').string(), EtcdAuthenticationFailedError);
    // The client's role and user APIs, as root.
    const root = client({ username: 'root', password: 'rootpw' });
    const users = await root.getUsers();
    assert.deepEqual(users.map((u) => u.name).sort(), ['alice', 'bob', 'nopw', 'root']);
    const carol = await root.user('carol').create('carolpw');
    await carol.addRole('reader');
    const carolClient = client({ username: 'carol', password: 'carolpw' });
    assert.equal(await carolClient.get('app/x').string(), '1');
  });

  it('a permission revoked is respected by the next request', async () => {
    const bob = client({ username: 'bob', password: 'bobpw' });
    await bob.put('app/before').value('1');
    await ctl(['user', 'revoke-role', 'bob', 'writer'], 'root:rootpw');
    await assert.rejects(bob.put('app/after').value('1').exec(), EtcdPermissionDeniedError);
    await ctl(['user', 'grant-role', 'bob', 'writer'], 'root:rootpw');
    await bob.put('app/after').value('1');
  });

  it('20 clients authenticate at once while puts go on, with no leader change', async () => {
    const before = await c.client(0).status();
    const writer = client({ username: 'bob', password: 'bobpw' });
    let stop = false;
    let puts = 0;
    const loop = (async () => {
      while (!stop) {
        await writer.put(`app/loop/${puts % 50}`).value(String(puts));
        puts++;
      }
    })();
    const readers = Array.from({ length: 20 }, () => client({ username: 'alice', password: 'alicepw' }));
    const got = await Promise.all(readers.map((r) => r.get('app/x').string()));
    stop = true;
    await loop;
    assert.deepEqual(got, Array.from({ length: 20 }, () => '1'));
    assert.ok(puts > 0);
    const afterSt = await c.client(0).status();
    assert.equal(afterSt.leader, before.leader, 'the leader changed while clients authenticated');
    assert.equal(afterSt.raftTerm, before.raftTerm, 'the term moved while clients authenticated');
  });

  it('auth state survives a restart of every member (tokens do not: clients authenticate again)', async () => {
    const alice = client({ username: 'alice', password: 'alicepw' });
    assert.equal(await alice.get('app/x').string(), '1');
    for (let i = 0; i < 3; i++) await c.stop(i);
    for (let i = 0; i < 3; i++) c.startMember(i);
    await c.waitForLeader();
    await c.waitForAllServing();
    assert.match(await eventually(() => ctlFails(['get', 'app/x'])), /etcdserver: user name is empty/);
    assert.equal(await ctl(['get', 'app/x', '--print-value-only'], 'alice:alicepw'), '1\n');
    assert.match(await ctlFails(['put', 'app/x', '2'], 'alice:alicepw'), /etcdserver: permission denied/);
    // The etcd3 client's old token is gone with the restart: it authenticates again by itself.
    assert.equal(await eventually(() => alice.get('app/x').string()), '1');
    assert.deepEqual((await ctl(['user', 'list'], 'root:rootpw')).trim().split('\n'), ['alice', 'bob', 'carol', 'nopw', 'root']);
  });

  it('auth disable restores open access', async () => {
    assert.match(await ctlFails(['auth', 'disable'], 'alice:alicepw'), /etcdserver: permission denied/);
    assert.match(await ctl(['auth', 'disable'], 'root:rootpw'), /Authentication Disabled/);
    assert.equal((await ctl(['put', 'other', 'open'])).trim(), 'OK');
    assert.equal(await ctl(['get', 'other', '--print-value-only']), 'open\n');
    // etcd's clients ignore `authentication is not enabled` when given a user.
    assert.equal(await ctl(['get', 'app/x', '--print-value-only'], 'alice:alicepw'), '1\n');
  });
});
