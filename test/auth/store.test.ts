// The auth store as the state machine applies it: etcd's management rules and errors, the
// permission decisions (prefixes, ranges, both txn branches, lease keys), the auth revision
// checked at apply (a permission change between propose and apply is respected), and auth
// state in snapshot images (an image without it — written before auth existed — loads, auth off).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Permission_Type } from '../../src/gen/etcd/auth.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { AuthStore, covered } from '../../src/auth/store.js';
import { SimpleTokens } from '../../src/auth/tokens.js';
import { EntryType } from '../../src/raft/index.js';
import type { StateMachine } from '../../src/server/state-machine.js';
import { newStateMachine, applyNow } from '../support/state-machine.js';

const noPause = async (): Promise<void> => {};
const b = (s: string): Buffer => Buffer.from(s);

/** Applies one request as `user` at `rev`; answers the outcome. */
function apply(sm: StateMachine, req: Partial<InternalRequest>, user = '', rev = 0n) {
  const index = sm.appliedIndex + 1;
  const data = InternalRequest.encode(InternalRequest.fromPartial({ ...req, id: BigInt(index), username: user, authRevision: rev })).finish();
  return applyNow(sm, { term: 1, index, type: EntryType.Normal, data }).outcome;
}
function ok(sm: StateMachine, req: Partial<InternalRequest>, user = '', rev = 0n) {
  const o = apply(sm, req, user, rev);
  if (!o.ok) assert.fail(`refused: ${o.error.message}`);
  return o.value;
}
function err(sm: StateMachine, req: Partial<InternalRequest>, user = '', rev = 0n): string {
  const o = apply(sm, req, user, rev);
  assert.equal(o.ok, false, 'expected a refusal');
  return o.ok ? '' : o.error.message;
}

/** root (root role), alice reading app/, bob writing app/, auth on. */
function setup(): StateMachine {
  const sm = newStateMachine();
  ok(sm, { authUserAdd: { name: 'root', password: '', hashedPassword: 'h', options: undefined } });
  assert.equal(err(sm, { authEnable: {} }), 'etcdserver: root user does not have root role');
  ok(sm, { authUserGrantRole: { user: 'root', role: 'root' } });
  for (const [role, t] of [['reader', Permission_Type.READ], ['writer', Permission_Type.READWRITE]] as const) {
    ok(sm, { authRoleAdd: { name: role } });
    ok(sm, { authRoleGrantPermission: { name: role, perm: { permType: t, key: b('app/'), rangeEnd: b('app0') } } });
  }
  ok(sm, { authUserAdd: { name: 'alice', password: '', hashedPassword: 'h', options: undefined } });
  ok(sm, { authUserGrantRole: { user: 'alice', role: 'reader' } });
  ok(sm, { authUserAdd: { name: 'bob', password: '', hashedPassword: 'h', options: undefined } });
  ok(sm, { authUserGrantRole: { user: 'bob', role: 'writer' } });
  ok(sm, { authEnable: {} });
  return sm;
}

describe('auth store', () => {
  it('AuthEnable needs a root user with the root role', () => {
    const sm = newStateMachine();
    assert.equal(err(sm, { authEnable: {} }), 'etcdserver: root user does not exist');
    assert.equal(sm.auth.enabled, false);
  });

  it("management requests follow etcd's rules and errors", () => {
    const sm = setup();
    const rev = sm.auth.revision;
    const root = (req: Partial<InternalRequest>) => ok(sm, req, 'root', sm.auth.revision);
    const rootErr = (req: Partial<InternalRequest>) => err(sm, req, 'root', sm.auth.revision);
    assert.equal(rootErr({ authUserAdd: { name: 'alice', password: '', hashedPassword: 'x', options: undefined } }), 'etcdserver: user name already exists');
    assert.equal(rootErr({ authUserAdd: { name: '', password: '', hashedPassword: 'x', options: undefined } }), 'etcdserver: user name is empty');
    assert.equal(rootErr({ authUserDelete: { name: 'root' } }), 'etcdserver: invalid auth management');
    assert.equal(rootErr({ authUserRevokeRole: { name: 'root', role: 'root' } }), 'etcdserver: invalid auth management');
    assert.equal(rootErr({ authUserGrantRole: { user: 'alice', role: 'nope' } }), 'etcdserver: role name not found');
    assert.equal(rootErr({ authUserGet: { name: 'nobody' } }), 'etcdserver: user name not found');
    assert.equal(rootErr({ authRoleAdd: { name: 'reader' } }), 'etcdserver: role name already exists');
    assert.equal(rootErr({ authRoleRevokePermission: { role: 'reader', key: b('zz'), rangeEnd: b('') } }), 'etcdserver: permission is not granted to the role');
    // A grant without a permission (etcd 3.4 panics on it; 3.5's error), before the role is looked up.
    assert.equal(rootErr({ authRoleGrantPermission: { name: 'reader', perm: undefined } }), 'etcdserver: permission not given');
    assert.equal(rootErr({ authRoleGrantPermission: { name: 'nope', perm: undefined } }), 'etcdserver: permission not given');
    assert.equal(rootErr({ authUserRevokeRole: { name: 'alice', role: 'writer' } }), 'etcdserver: role is not granted to the user');
    assert.equal(sm.auth.revision, rev, 'a refused request changes nothing');
    assert.deepEqual(root({ authUserList: {} }), { header: (root({ authUserList: {} }) as { header: unknown }).header, users: ['alice', 'bob', 'root'] });
    // Not admin: refused before anything else; a user may read itself, a role holder its role.
    assert.equal(err(sm, { authUserList: {} }, 'alice', sm.auth.revision), 'etcdserver: permission denied');
    assert.equal(err(sm, { authUserList: {} }), 'etcdserver: user name is empty');
    assert.deepEqual((ok(sm, { authUserGet: { name: 'alice' } }, 'alice', sm.auth.revision) as { roles: string[] }).roles, ['reader']);
    assert.equal(err(sm, { authUserGet: { name: 'bob' } }, 'alice', sm.auth.revision), 'etcdserver: permission denied');
    assert.equal((ok(sm, { authRoleGet: { role: 'reader' } }, 'alice', sm.auth.revision) as { perm: unknown[] }).perm.length, 1);
    const st = root({ authStatus: {} }) as { enabled: boolean; authRevision: bigint };
    assert.equal(st.enabled, true);
    assert.equal(st.authRevision, sm.auth.revision);
    // Deleting a role revokes it from its users (etcd 3.4).
    root({ authRoleDelete: { role: 'writer' } });
    assert.deepEqual(sm.auth.users.get('bob')!.roles, []);
  });

  it('writes are decided at apply against the permissions as of that entry', () => {
    const sm = setup();
    const rev = sm.auth.revision;
    ok(sm, { put: { key: b('app/a'), value: b('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'bob', rev);
    assert.equal(err(sm, { put: { key: b('app/a'), value: b('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'alice', rev), 'etcdserver: permission denied');
    assert.equal(err(sm, { put: { key: b('other'), value: b('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'bob', rev), 'etcdserver: permission denied');
    assert.equal(err(sm, { put: { key: b('app/a'), value: b('2'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }), 'etcdserver: user name is empty');
    assert.equal(err(sm, { deleteRange: { key: b('app/'), rangeEnd: b('app1'), prevKv: false } }, 'bob', rev), 'etcdserver: permission denied');
    ok(sm, { deleteRange: { key: b('app/'), rangeEnd: b('app0'), prevKv: true } }, 'bob', rev);
    // A txn: every compare and both branches, whichever is taken.
    const txn = { compare: [], success: [{ requestPut: { key: b('app/t'), value: b('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }], failure: [{ requestDeleteRange: { key: b('x'), rangeEnd: b(''), prevKv: false } }] };
    assert.equal(err(sm, { txn }, 'bob', rev), 'etcdserver: permission denied');
    assert.equal(sm.store.range(b('app/t'), undefined).kvs.length, 0);
    ok(sm, { txn }, 'root', rev);
    // A permission revoked after bob's request was checked (at `rev`) but before it is applied.
    ok(sm, { authUserRevokeRole: { name: 'bob', role: 'writer' } }, 'root', rev);
    assert.equal(err(sm, { put: { key: b('app/b'), value: b('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'bob', rev), 'etcdserver: revision of auth store is old');
    assert.equal(err(sm, { put: { key: b('app/b'), value: b('1'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'bob', sm.auth.revision), 'etcdserver: permission denied');
  });

  it('a lease revoke needs WRITE on every key of the lease', () => {
    const sm = setup();
    const rev = () => sm.auth.revision;
    ok(sm, { leaseGrant: { TTL: 100n, ID: 7n } }, 'bob', rev());
    ok(sm, { put: { key: b('app/l'), value: b('1'), lease: 7n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'bob', rev());
    ok(sm, { put: { key: b('other'), value: b('1'), lease: 7n, prevKv: false, ignoreValue: false, ignoreLease: false } }, 'root', rev());
    assert.equal(err(sm, { leaseRevoke: { ID: 7n } }, 'bob', rev()), 'etcdserver: permission denied');
    ok(sm, { leaseRevoke: { ID: 7n } }, 'root', rev());
  });

  it('auth state is in the snapshot image; an image without it loads with auth off', async () => {
    const sm = setup();
    ok(sm, { authUserAdd: { name: 'np', password: '', hashedPassword: '', options: { noPassword: true } } }, 'root', sm.auth.revision);
    const img = await sm.imageAsync(noPause);
    const other = newStateMachine();
    await other.restoreAsync(img.data, img.index, noPause);
    assert.equal(other.auth.enabled, true);
    assert.equal(other.auth.revision, sm.auth.revision);
    assert.deepEqual(other.auth.toImage(), sm.auth.toImage());
    assert.equal(other.auth.users.get('np')!.noPassword, true);
    // Once disabled, the image still says auth was switched (etcd keeps its authEnabled key, 0).
    assert.equal(newStateMachine().auth.toImage().switched, undefined);
    ok(sm, { authDisable: {} }, 'root', sm.auth.revision);
    const off = await sm.imageAsync(noPause);
    await other.restoreAsync(off.data, off.index, noPause);
    assert.deepEqual([other.auth.enabled, other.auth.switched], [false, true]);
    // A header of an older raftkv (no `auth`): the store is empty and off.
    const header = { version: 3, currentRev: '1', compactRev: '0', leases: [], members: { members: [], removed: [] } };
    await other.restoreAsync(Buffer.from(`${JSON.stringify(header)}\n`), 9, noPause);
    assert.equal(other.auth.enabled, false);
    assert.equal(other.auth.users.size, 0);
    assert.equal(other.auth.revision, 1n);
  });

  it('Authenticate assigns the token <prefix>.<index> on apply; AuthDisable drops tokens', () => {
    const sm = setup();
    const tokens = new SimpleTokens(300_000, () => 0);
    sm.auth.onEvent = (e) => {
      if (e.kind === 'token') tokens.assign(e.user, e.token);
      if (e.kind === 'disabled') tokens.clear();
    };
    const r = ok(sm, { authenticate: { name: 'alice', simpleToken: 'abcdefghijklmnop' } }) as { token: string };
    assert.equal(r.token, `abcdefghijklmnop.${sm.appliedIndex}`);
    assert.equal(tokens.user(r.token), 'alice');
    assert.equal(err(sm, { authenticate: { name: 'nobody', simpleToken: 'x' } }), 'etcdserver: authentication failed, invalid user ID or password');
    ok(sm, { authDisable: {} }, 'root', sm.auth.revision);
    assert.equal(tokens.user(r.token), undefined);
    assert.equal(err(sm, { authenticate: { name: 'alice', simpleToken: 'y' } }), 'etcdserver: authentication is not enabled');
  });

  it('simple tokens expire after their TTL without use', () => {
    let now = 0;
    const t = new SimpleTokens(1000, () => now);
    t.assign('u', 'a.1');
    now = 900;
    assert.equal(t.user('a.1'), 'u');
    now = 1800; // used at 900: still alive
    assert.equal(t.user('a.1'), 'u');
    now = 2900;
    assert.equal(t.user('a.1'), undefined);
  });

  it("grants and revokes permissions as etcd's RoleGrantPermission does: the first at the key is updated, or one more is added", () => {
    const st = new AuthStore();
    st.roleAdd('r');
    const grant = (type: Permission_Type, k: string, e: string) => st.roleGrantPermission('r', { permType: type, key: b(k), rangeEnd: b(e) });
    const list = () => st.roles.get('r')!.perms.map((p) => `${p.permType}:${p.key.toString()}:${p.rangeEnd.toString()}`);
    grant(Permission_Type.READ, 'b', '');
    grant(Permission_Type.READ, 'a1', '\0');
    grant(Permission_Type.READWRITE, 'a1', '');
    // The first permission at a1 has another range end: etcd adds a second (a1, '') rather than
    // updating the one it has.
    grant(Permission_Type.WRITE, 'a1', '');
    assert.deepEqual(list(), ['0:a1:\0', '2:a1:', '1:a1:', '0:b:']);
    // The first at b has the same key and end: updated in place.
    grant(Permission_Type.WRITE, 'b', '');
    assert.deepEqual(list(), ['0:a1:\0', '2:a1:', '1:a1:', '1:b:']);
    // A revoke takes every permission with that key and end.
    st.roleRevokePermission('r', b('a1'), b(''));
    assert.deepEqual(list(), ['0:a1:\0', '1:b:']);
    assert.throws(() => st.roleRevokePermission('r', b('a1'), b('')), /permission is not granted to the role/);
  });

  it('range coverage: keys, ranges, prefixes and unions of permissions', () => {
    const iv = (k: string, e?: string) => ({ begin: b(k), end: e === undefined ? undefined : b(e) });
    const perms = [iv('a', 'c'), iv('c', 'e'), iv('x', 'x\0')];
    assert.ok(covered(perms, b('b'), undefined));
    assert.ok(covered(perms, b('a'), b('e')), 'adjacent permissions cover their union');
    assert.ok(!covered(perms, b('a'), b('f')));
    assert.ok(covered(perms, b('x'), undefined));
    assert.ok(!covered(perms, b('x'), b('y')));
    assert.ok(!covered(perms, b('a'), b('\0')), 'to the end of the keyspace');
    assert.ok(covered([iv('a')], b('a'), b('\0')));
    assert.ok(covered([iv('a')], b('zzz'), undefined));
    // An empty or inverted range is allowed as its first key alone would be (etcd's Contains
    // finds the permissions holding it): [d, b) within [c, e) yes, [z, b) outside every one no.
    assert.ok(covered(perms, b('d'), b('b')));
    assert.ok(covered(perms, b('d'), b('d')));
    assert.ok(!covered(perms, b('z'), b('b')));
    assert.ok(!covered(perms, b('f'), b('f')));
  });
});
