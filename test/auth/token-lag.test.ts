// A simple token made on one member is good on a member that has not applied it yet: that
// member waits for the token's index (etcd's isValidSimpleToken) — also when it has not applied
// `auth enable` yet either, and an unknown token is refused whether auth is on or off.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import bcrypt from 'bcryptjs';
import { authOf } from '../../src/auth/frontend.js';
import { MessageType } from '../../src/raft/index.js';
import { withCluster } from '../support/inproc-cluster.js';

it('a member behind the leader waits for a new token (and the auth enable before it) instead of refusing it', async () => {
  await withCluster({ size: 3, seed: 11 }, async (c) => {
    const L = await c.waitIdle();
    const F = c.members().find((m) => m !== L)!;
    const auth = authOf(L.server);
    const nobody = new grpc.Metadata();
    await c.run(auth.propose(nobody, 'authUserAdd', { name: 'root', password: '', hashedPassword: bcrypt.hashSync('pw', 4), options: { noPassword: false } }));
    await c.run(auth.propose(nobody, 'authUserGrantRole', { user: 'root', role: 'root' }));
    await c.settle();

    const garbage = new grpc.Metadata();
    garbage.set('token', 'garbage');
    await assert.rejects(authOf(F.server).authInfo(garbage), /invalid auth token/, 'auth off: an unknown token is refused');

    // F hears nothing more from the leader: the enable and the token are applied elsewhere only.
    const toF = c.net.hold((m) => m.type === MessageType.MsgApp && m.to === F.id);
    await c.run(auth.propose(nobody, 'authEnable', {}));
    const { token } = await c.run(auth.authenticate('root', 'pw'), { ticks: 2000 });
    assert.equal(F.server.sm.auth.enabled, false);
    const md = new grpc.Metadata();
    md.set('token', token);
    const asked = authOf(F.server).authInfo(md);
    let settled = false;
    void asked.then(() => (settled = true), () => (settled = true));
    await c.settle();
    assert.equal(settled, false, 'F waits for the token rather than refusing it');
    toF.end();
    assert.equal((await c.run(asked, { what: 'the token known on F' })).username, 'root');
  });
});

it('a token from an index far ahead waits for the apply without polling, and is refused at the request timeout', async () => {
  await withCluster({ size: 1, seed: 12 }, async (c) => {
    const L = await c.waitIdle();
    const auth = authOf(L.server);
    const nobody = new grpc.Metadata();
    await c.run(auth.propose(nobody, 'authUserAdd', { name: 'root', password: '', hashedPassword: bcrypt.hashSync('pw', 4), options: { noPassword: false } }));
    await c.run(auth.propose(nobody, 'authUserGrantRole', { user: 'root', role: 'root' }));
    await c.run(auth.propose(nobody, 'authEnable', {}));
    // bcrypt runs on a worker thread, in real time: the clock is moved while it works.
    const authenticated = auth.authenticate('root', 'pw');
    let done = false;
    void authenticated.finally(() => (done = true));
    for (let i = 0; !done && i < 2000; i++) {
      await c.tick(1);
      await new Promise<void>((r) => setTimeout(r, 5));
    }
    const { token } = await authenticated;
    // The same token's form, from an index this member will not reach: it can only wait.
    const far = token.replace(/\.\d+$/, `.${L.server.sm.appliedIndex + 1_000_000}`);
    assert.notEqual(far, token);
    let timers = 0;
    const clockSetTimeout = c.clock.setTimeout.bind(c.clock);
    c.clock.setTimeout = (f, ms) => {
      timers++;
      return clockSetTimeout(f, ms);
    };
    try {
      const waits = Array.from({ length: 50 }, () => {
        const md = new grpc.Metadata();
        md.set('token', far);
        return auth.authInfo(md).then(() => 'valid', (e: Error) => e.message);
      });
      // Two seconds of the member's clock (20 heartbeat ticks): the waiters sleep.
      await c.tick(20);
      // Before: each waiter polled every 5 ms (400 timers each over two seconds).
      assert.ok(timers < 200, `${timers} timers set while 50 tokens waited`);
      await c.tick(Math.ceil(L.server.requestTimeoutMs / 100));
      assert.deepEqual(new Set(await Promise.all(waits)), new Set(['etcdserver: invalid auth token']));
    } finally {
      c.clock.setTimeout = clockSetTimeout;
    }
  });
});
