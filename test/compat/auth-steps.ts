// Differential steps for auth (./differential.ts runs them): users, roles, permissions, auth
// enable/disable and Authenticate, made as root, as another user or with no token, mixed with
// the KV, Txn, lease, compaction and watch steps of differential.ts made as one of the users —
// so every permission check (a range against a role's key ranges, a txn's every op, a watch, a
// lease revoke over keys) and every error text (user or role not found, permission denied, the
// root rules) is compared with etcd 3.4's.
//
// Tokens: a step made "as" a user carries a token that user got from Authenticate with the
// password the sequence last set (none if that fails: the step then goes without, and the
// failure is part of its outcome). A token is kept until the user is added, deleted or given a
// new password, or auth is enabled or disabled — when etcd drops simple tokens — so that the
// costly bcrypt of Authenticate runs only when it must.

import { Permission_Type } from '../../src/gen/etcd/auth.js';
import type { RequestOp, TxnRequest } from '../../src/gen/etcd/rpc.js';
import { SeededRand } from '../../src/raft/rand.js';
import { type Known, type Outcome, type Step, StepGenerator, type Steps, type Target, failure, header, learn as learnKv, prefixEnd, runStep } from './differential.js';

type AdminStep =
  | { kind: 'user-add'; name: string; password: string; noPassword: boolean }
  | { kind: 'user-delete'; name: string }
  | { kind: 'user-get'; name: string }
  | { kind: 'user-list' }
  | { kind: 'user-passwd'; name: string; password: string }
  | { kind: 'user-grant'; user: string; role: string }
  | { kind: 'user-revoke'; user: string; role: string }
  | { kind: 'role-add'; name: string }
  | { kind: 'role-delete'; name: string }
  | { kind: 'role-get'; name: string }
  | { kind: 'role-list' }
  | { kind: 'role-grant'; role: string; key: Buffer; rangeEnd: Buffer; permType: Permission_Type }
  | { kind: 'role-revoke'; role: string; key: Buffer; rangeEnd: Buffer }
  | { kind: 'enable' }
  | { kind: 'disable' }
  | { kind: 'authenticate'; name: string; password: string };

/** A step and the user whose token it carries (undefined: no token). */
export type AuthStep = { as: string | undefined } & (AdminStep | { kind: 'kv'; step: Step });

const USERS = ['root', 'alice', 'bob', ''];
const ROLES = ['root', 'r1', 'r2', ''];
const PASSWORDS = ['pw', 'pw2', ''];
const PERM_KEYS = ['a', 'a1', 'b', 'b/', 'c', '\x00'].map((k) => Buffer.from(k, 'latin1'));

/** Whether a range of the step is empty or inverted: an end that is set, not "\0", and not after the key. */
function hasEmptyRange(step: Step): boolean {
  const empty = (key: Buffer, end: Buffer): boolean => end.length > 0 && !(end.length === 1 && end[0] === 0) && Buffer.compare(end, key) <= 0;
  const inOps = (ops: RequestOp[]): boolean =>
    ops.some(
      (op) =>
        (op.requestRange !== undefined && empty(op.requestRange.key, op.requestRange.rangeEnd)) ||
        (op.requestDeleteRange !== undefined && empty(op.requestDeleteRange.key, op.requestDeleteRange.rangeEnd)) ||
        (op.requestTxn !== undefined && inTxn(op.requestTxn)),
    );
  const inTxn = (t: TxnRequest): boolean => t.compare.some((c) => empty(c.key, c.rangeEnd)) || inOps(t.success) || inOps(t.failure);
  switch (step.kind) {
    case 'range':
      return empty(step.req.key, step.req.rangeEnd);
    case 'delete':
    case 'watch':
      return empty(step.key, step.rangeEnd);
    case 'txn':
      return inTxn(step.req);
    default:
      return false;
  }
}

/** The steps every sequence starts with: a root, a user with a role, auth on. */
function setup(): AuthStep[] {
  return [
    { as: undefined, kind: 'user-add', name: 'root', password: 'pw', noPassword: false },
    { as: undefined, kind: 'user-grant', user: 'root', role: 'root' },
    { as: undefined, kind: 'user-add', name: 'alice', password: 'pw', noPassword: false },
    { as: undefined, kind: 'role-add', name: 'r1' },
    { as: undefined, kind: 'role-grant', role: 'r1', key: Buffer.from('a'), rangeEnd: Buffer.from('c'), permType: Permission_Type.READWRITE },
    { as: undefined, kind: 'user-grant', user: 'alice', role: 'r1' },
    { as: undefined, kind: 'enable' },
  ];
}

/**
 * The passwords the sequences set on the servers under test, by user: kept from one sequence
 * to the next (they go on with the same servers), forgotten with forgetPasswords for new ones.
 */
const passwordsSet = new Map<string, string>();

/** For new servers: no user has a password yet. */
export function forgetPasswords(): void {
  passwordsSet.clear();
}

export class AuthStepGenerator {
  private readonly r: SeededRand;
  private readonly kv: StepGenerator;
  private readonly start = setup();
  /** The passwords set so far (what a user authenticates with); shared by the runner. */
  readonly passwords = passwordsSet;

  constructor(seed: number) {
    this.r = new SeededRand(seed);
    this.kv = new StepGenerator(seed + 1_000_003);
  }

  private pick<T>(xs: readonly T[]): T {
    return xs[this.r.intn(xs.length)]!;
  }

  /** Who makes an admin step: mostly root, sometimes a user without the root role, or nobody. */
  private admin(): string | undefined {
    const n = this.r.intn(10);
    return n < 8 ? 'root' : n < 9 ? 'alice' : undefined;
  }

  next(k: Known): AuthStep {
    const first = this.start.shift();
    if (first) return first;
    const n = this.r.intn(100);
    if (n < 40) {
      const step = this.kv.next(k);
      // etcd 3.4.23 does not check the ops of a nested txn against the user's permissions
      // (checkTxnReqsPermission skips them), so a user could write anywhere through one; raftkv
      // checks them. And an empty or inverted range ([key, end) with end <= key), which raftkv
      // allows as its first key would be, etcd decides by its interval tree's Contains, whose
      // answer for such an interval depends on the tree's shape. Such steps are made as root,
      // whom both allow, so the states stay the same.
      const nested = step.kind === 'txn' && step.req.success.concat(step.req.failure).some((op) => op.requestTxn);
      const as = nested || hasEmptyRange(step) ? 'root' : this.pick(['root', 'alice', 'alice', 'bob', undefined]);
      return { as, kind: 'kv', step };
    }
    const as = this.admin();
    const key = this.pick(PERM_KEYS);
    const rangeEnd = this.pick([Buffer.alloc(0), Buffer.alloc(0), prefixEnd(key), Buffer.from([0]), this.pick(PERM_KEYS)]);
    // Root keeps a password it can log in with, or the rest of the sequence would be refused.
    const user = this.pick(USERS);
    const password = user === 'root' ? this.pick(['pw', 'pw2']) : this.pick(PASSWORDS);
    if (n < 45) return { as, kind: 'user-add', name: user, password, noPassword: user !== 'root' && this.r.next() < 0.15 };
    if (n < 47) return { as, kind: 'user-delete', name: this.pick(USERS) };
    if (n < 50) return { as, kind: 'user-get', name: this.pick(USERS) };
    if (n < 52) return { as, kind: 'user-list' };
    if (n < 55) return { as, kind: 'user-passwd', name: user, password };
    if (n < 62) return { as, kind: 'user-grant', user: this.pick(USERS), role: this.pick(ROLES) };
    if (n < 65) return { as, kind: 'user-revoke', user: this.pick(USERS), role: this.pick(ROLES) };
    if (n < 70) return { as, kind: 'role-add', name: this.pick(ROLES) };
    if (n < 72) return { as, kind: 'role-delete', name: this.pick(ROLES) };
    if (n < 75) return { as, kind: 'role-get', name: this.pick(ROLES) };
    if (n < 77) return { as, kind: 'role-list' };
    if (n < 86) return { as, kind: 'role-grant', role: this.pick(ROLES), key, rangeEnd, permType: this.pick([Permission_Type.READ, Permission_Type.WRITE, Permission_Type.READWRITE]) };
    if (n < 90) return { as, kind: 'role-revoke', role: this.pick(ROLES), key, rangeEnd };
    if (n < 94) return { as, kind: 'enable' };
    if (n < 96) return { as, kind: 'disable' };
    // (No AuthStatus: etcd 3.4 has none — raftkv serves 3.5's, which a 3.4 client never calls.)
    return { as: undefined, kind: 'authenticate', name: this.pick(USERS), password: this.pick(PASSWORDS) };
  }

  learn(k: Known, s: AuthStep, o: Outcome): Known {
    if (s.kind === 'kv') return learnKv(k, s.step, (o as { result?: Outcome }).result);
    if ((o as { error?: string }).error !== undefined) return k;
    if (s.kind === 'user-add') this.passwords.set(s.name, s.noPassword ? '' : s.password);
    if (s.kind === 'user-passwd') this.passwords.set(s.name, s.password);
    if (s.kind === 'user-delete') this.passwords.delete(s.name);
    return k;
  }
}

/** Tokens per server and user, kept until etcd would drop them (see the header). */
const tokens = new WeakMap<Target, Map<string, string | Outcome>>();

/** A token for `user` on `t` (or the failure of Authenticate, as an outcome). */
async function tokenOf(t: Target, user: string, passwords: ReadonlyMap<string, string>): Promise<string | Outcome> {
  let mine = tokens.get(t);
  if (!mine) tokens.set(t, (mine = new Map()));
  const kept = mine.get(user);
  if (kept !== undefined) return kept;
  const saved = t.token;
  t.token = undefined;
  try {
    const r = await t.call(t.auth.authenticate.bind(t.auth), { name: user, password: passwords.get(user) ?? 'never set' });
    mine.set(user, r.token);
    return r.token;
  } catch (e) {
    const f = failure(e);
    mine.set(user, f);
    return f;
  } finally {
    t.token = saved;
  }
}

/** Drops the tokens etcd drops after a step that succeeded. */
function forget(t: Target, s: AuthStep): void {
  const mine = tokens.get(t);
  if (!mine) return;
  if (s.kind === 'enable' || s.kind === 'disable') mine.clear();
  else if (s.kind === 'user-add' || s.kind === 'user-delete' || s.kind === 'user-passwd') mine.delete(s.name);
}

async function admin(t: Target, s: AdminStep): Promise<Outcome> {
  const a = t.auth;
  switch (s.kind) {
    case 'user-add':
      return { rev: header((await t.call(a.userAdd.bind(a), { name: s.name, password: s.password, options: { noPassword: s.noPassword }, hashedPassword: '' })).header) };
    case 'user-delete':
      return { rev: header((await t.call(a.userDelete.bind(a), { name: s.name })).header) };
    case 'user-get': {
      const r = await t.call(a.userGet.bind(a), { name: s.name });
      return { rev: header(r.header), roles: r.roles };
    }
    case 'user-list': {
      const r = await t.call(a.userList.bind(a), {});
      return { rev: header(r.header), users: r.users };
    }
    case 'user-passwd':
      return { rev: header((await t.call(a.userChangePassword.bind(a), { name: s.name, password: s.password, hashedPassword: '' })).header) };
    case 'user-grant':
      return { rev: header((await t.call(a.userGrantRole.bind(a), { user: s.user, role: s.role })).header) };
    case 'user-revoke':
      return { rev: header((await t.call(a.userRevokeRole.bind(a), { name: s.user, role: s.role })).header) };
    case 'role-add':
      return { rev: header((await t.call(a.roleAdd.bind(a), { name: s.name })).header) };
    case 'role-delete':
      return { rev: header((await t.call(a.roleDelete.bind(a), { role: s.name })).header) };
    case 'role-get': {
      const r = await t.call(a.roleGet.bind(a), { role: s.name });
      return { rev: header(r.header), perms: r.perm.map((p) => ({ type: p.permType, key: p.key.toString('latin1'), end: p.rangeEnd.toString('latin1') })) };
    }
    case 'role-list': {
      const r = await t.call(a.roleList.bind(a), {});
      return { rev: header(r.header), roles: r.roles };
    }
    case 'role-grant':
      return { rev: header((await t.call(a.roleGrantPermission.bind(a), { name: s.role, perm: { permType: s.permType, key: s.key, rangeEnd: s.rangeEnd } })).header) };
    case 'role-revoke':
      return { rev: header((await t.call(a.roleRevokePermission.bind(a), { role: s.role, key: s.key, rangeEnd: s.rangeEnd })).header) };
    case 'enable':
      return { rev: header((await t.call(a.authEnable.bind(a), {})).header) };
    case 'disable':
      return { rev: header((await t.call(a.authDisable.bind(a), {})).header) };
    case 'authenticate': {
      const r = await t.call(a.authenticate.bind(a), { name: s.name, password: s.password });
      return { rev: header(r.header), token: r.token.length > 0 };
    }
  }
}

/** One auth step on one server: its outcome, with the Authenticate failure if it had no token. */
export async function runAuthStep(t: Target, s: AuthStep, passwords: ReadonlyMap<string, string>): Promise<Outcome> {
  let auth: Outcome | undefined;
  t.token = undefined;
  if (s.as !== undefined) {
    const tok = await tokenOf(t, s.as, passwords);
    if (typeof tok === 'string') t.token = tok;
    else auth = tok;
  }
  try {
    if (s.kind === 'kv') {
      const result = await runStep(t, s.step);
      // A restart drops every simple token, on both.
      if (s.step.kind === 'restart') tokens.get(t)?.clear();
      return { auth, result };
    }
    let out: Outcome;
    try {
      out = await admin(t, s);
    } catch (e) {
      return { auth, ...(failure(e) as object) };
    }
    forget(t, s);
    return { auth, ...(out as object) };
  } finally {
    t.token = undefined;
  }
}

/**
 * The difference raftkv keeps on purpose (README, "Auth"): etcd 3.4 checks a watch of every key
 * from `key` on (range end "\0") against the single key `key` only — its watch server turns the
 * range end into an empty one before the check — so a user allowed one key may watch every key
 * after it. raftkv checks the whole range and refuses such a watch as permission denied.
 */
function deviation(s: AuthStep, reference: Outcome, candidate: Outcome): string | undefined {
  if (s.kind !== 'kv' || s.step.kind !== 'watch') return undefined;
  const fromKey = s.step.rangeEnd.length === 1 && s.step.rangeEnd[0] === 0;
  const denied = (o: Outcome): boolean => JSON.stringify(o).includes('permission denied');
  return fromKey && denied(candidate) && !denied(reference) ? 'a from-key watch is checked over its whole range' : undefined;
}

/** Auth steps for runSequence. */
export function authSteps(seed: number): Steps<AuthStep> {
  const gen = new AuthStepGenerator(seed);
  return { next: (k) => gen.next(k), run: (t, s) => runAuthStep(t, s, gen.passwords), learn: (k, s, o) => gen.learn(k, s, o), deviation };
}
