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
