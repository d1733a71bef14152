// The auth store: users, roles, key permissions, the enabled flag and the auth revision —
// etcd 3.4's auth/store.go, as replicated state. Every member reaches the same store from the
// same log entries (the state machine calls the mutators when it applies an Auth request), and
// it is saved in the snapshot image header (toImage/restore).
//
// Owns: what each Auth request does and refuses (etcd's errors), and the permission decisions
// (isOpPermitted, isAdminPermitted). Never: hashes or checks passwords (bcrypt is slow: the
// member that receives a request hashes before proposing, see ./frontend.ts), holds tokens
// (member-local, ./tokens.ts), or reads a clock.

import { goSort } from '../util/go-sort.js';
import { Permission_Type } from '../gen/etcd/auth.js';
import type { Permission } from '../gen/etcd/auth.js';
import { Errors } from '../kv/errors.js';

export const ROOT_USER = 'root';
export const ROOT_ROLE = 'root';

export interface AuthUser {
  name: string;
  /** The bcrypt hash ('' for a --no-password user). */
  password: string;
  /** Sorted, as etcd keeps them. */
  roles: string[];
  noPassword: boolean;
}

export interface AuthPerm {
  permType: Permission_Type;
  key: Buffer;
  rangeEnd: Buffer;
}

export interface AuthRole {
  name: string;
  /** Sorted by key, as etcd keeps them. */
  perms: AuthPerm[];
}

/** What the snapshot image header holds of the auth store (absent in older snapshots: auth off, revision 1). */
export interface AuthImage {
  enabled: boolean;
  /** AuthStore.switched, when true (absent in older images: taken as `enabled`). */
  switched?: boolean;
  revision: string;
  users: Array<{ name: string; password: string; roles: string[]; noPassword?: boolean }>;
  /** [permType, key base64, rangeEnd base64] */
  roles: Array<{ name: string; perms: Array<[number, string, string]> }>;
}

/** What applying an Auth request changed beyond the store, for the member-local token keeper. */
export type AuthEvent = { kind: 'disabled' } | { kind: 'userChanged'; user: string } | { kind: 'token'; user: string; token: string };

const cmpBuf = (a: Buffer, b: Buffer): number => Buffer.compare(a, b);
const cmpStr = (a: string, b: string): number => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** A half-open key interval; end undefined = no upper bound. */
interface Interval {
  begin: Buffer;
  end: Buffer | undefined;
}

function permInterval(p: AuthPerm): Interval {
  if (p.rangeEnd.length === 1 && p.rangeEnd[0] === 0) return { begin: p.key, end: undefined };
  if (p.rangeEnd.length > 0) return { begin: p.key, end: p.rangeEnd };
  return { begin: p.key, end: Buffer.concat([p.key, Buffer.from([0])]) }; // a single key
}

/** Whether the union of `ivs` covers [key, rangeEnd) (etcd's range semantics: empty = the key, "\0" = to the end). */
export function covered(ivs: Interval[], key: Buffer, rangeEnd: Buffer | undefined): boolean {
  const end = rangeEnd === undefined || rangeEnd.length === 0 ? undefined : rangeEnd;
  if (end === undefined) {
    // A single key.
    return ivs.some((iv) => cmpBuf(iv.begin, key) <= 0 && (iv.end === undefined || cmpBuf(key, iv.end) < 0));
  }
  const target = end.length === 1 && end[0] === 0 ? undefined : end;
  // An empty or inverted range ([key, end) with end <= key) reads nothing, but etcd's check is
  // its interval tree's Contains, which for such an interval finds the permissions holding
  // `key` itself: it is allowed as the key alone would be, and denied otherwise (found by
  // test/compat's differential run against etcd 3.4).
  if (target !== undefined && cmpBuf(key, target) >= 0) return covered(ivs, key, undefined);
  const sorted = [...ivs].sort((a, b) => cmpBuf(a.begin, b.begin));
  let pos = key; // everything below pos is covered
  for (const iv of sorted) {
    if (cmpBuf(iv.begin, pos) > 0) break; // a gap at pos
    if (iv.end === undefined) return true;
    if (cmpBuf(iv.end, pos) > 0) pos = iv.end;
    if (target !== undefined && cmpBuf(pos, target) >= 0) return true;
  }
  return false;
}

export class AuthStore {
  enabled = false;
  /**
   * Whether auth has ever been enabled or disabled: etcd writes its `authEnabled` key then, and a
   * database never switched has none (an etcd snapshot's key count and hash tell them apart).
   */
  switched = false;
  /** etcd's auth revision: starts at 1 (NewAuthStore commits once), bumped by every change. */
  revision = 1n;
  readonly users = new Map<string, AuthUser>();
  readonly roles = new Map<string, AuthRole>();
  /** Hears what applying a request changed for tokens (set by the member; not replicated state). */
  onEvent: ((e: AuthEvent) => void) | undefined;

  private commit(): void {
    this.revision++;
  }

  // ------------------------------------------------------------------ enable / disable / status

  enable(): void {
    if (this.enabled) return;
    const root = this.users.get(ROOT_USER);
    if (!root) throw Errors.rootUserNotExist();
    if (!root.roles.includes(ROOT_ROLE)) throw Errors.rootRoleNotExist();
    this.enabled = true;
    this.switched = true;
  }

  disable(): void {
    if (!this.enabled) return;
    this.enabled = false;
    this.switched = true;
    this.commit();
    this.onEvent?.({ kind: 'disabled' });
  }

  // ------------------------------------------------------------------ users

  userAdd(name: string, hashedPassword: string, noPassword: boolean): void {
    if (name.length === 0) throw Errors.userEmpty();
    if (this.users.has(name)) throw Errors.userAlreadyExist();
    this.users.set(name, { name, password: noPassword ? '' : hashedPassword, roles: [], noPassword });
    this.commit();
  }

  userDelete(name: string): void {
    if (this.enabled && name === ROOT_USER) throw Errors.invalidAuthMgmt();
    if (!this.users.has(name)) throw Errors.userNotFound();
    this.users.delete(name);
    this.commit();
    this.onEvent?.({ kind: 'userChanged', user: name });
  }

  userChangePassword(name: string, hashedPassword: string): void {
    const u = this.users.get(name);
    if (!u) throw Errors.userNotFound();
    u.password = hashedPassword;
    this.commit();
    this.onEvent?.({ kind: 'userChanged', user: name });
  }

  userGrantRole(user: string, role: string): void {
    const u = this.users.get(user);
    if (!u) throw Errors.userNotFound();
    if (role !== ROOT_ROLE && !this.roles.has(role)) throw Errors.roleNotFound();
    if (u.roles.includes(role)) return; // already granted: no change, as etcd
    u.roles.push(role);
    u.roles.sort(cmpStr);
    this.commit();
  }

  userRevokeRole(name: string, role: string): void {
    if (this.enabled && name === ROOT_USER && role === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    const u = this.users.get(name);
    if (!u) throw Errors.userNotFound();
    const i = u.roles.indexOf(role);
    if (i < 0) throw Errors.roleNotGranted();
    u.roles.splice(i, 1);
    this.commit();
  }

  userGet(name: string): string[] {
    const u = this.users.get(name);
    if (!u) throw Errors.userNotFound();
    return [...u.roles];
  }

  userList(): string[] {
    return [...this.users.keys()].sort(cmpStr);
  }

  // ------------------------------------------------------------------ roles

  roleAdd(name: string): void {
    if (name.length === 0) throw Errors.roleEmpty();
    if (this.roles.has(name)) throw Errors.roleAlreadyExist();
    this.roles.set(name, { name, perms: [] });
    this.commit();
  }

  roleDelete(name: string): void {
    if (this.enabled && name === ROOT_ROLE) throw Errors.invalidAuthMgmt();
    if (!this.roles.has(name)) throw Errors.roleNotFound();
    this.roles.delete(name);
    // etcd 3.4 revokes the deleted role from every user holding it.
    for (const u of this.users.values()) {
      const i = u.roles.indexOf(name);
      if (i >= 0) u.roles.splice(i, 1);
    }
    this.commit();
  }

  roleGet(name: string): AuthPerm[] {
    const r = this.roles.get(name);
    if (!r) throw Errors.roleNotFound();
    return r.perms.map((p) => ({ ...p }));
  }

  roleList(): string[] {
    return [...this.roles.keys()].sort(cmpStr);
  }

  roleGrantPermission(name: string, perm: Permission | undefined): void {
    const r = this.roles.get(name);
    // etcd 3.5's check, before the role's: etcd 3.4 dereferences the missing permission and
    // panics, on every member, as it applies the request.
    if (!perm) throw Errors.permissionNotGiven();
    if (!r) throw Errors.roleNotFound();
    const key = Buffer.from(perm.key);
    const rangeEnd = Buffer.from(perm.rangeEnd);
    const permType = perm.permType;
    // etcd's RoleGrantPermission, to the letter: the list is sorted by key alone, and only the
    // first permission at or after the new key (sort.Search) is updated, if it has the same key
    // and range end; otherwise the new one is appended and the list sorted again by key with
    // Go's sort.Sort (not stable). So a role can hold two permissions with the same key and
    // range end, as in etcd 3.4 (found by test/compat's differential run), and every member and
    // a restore from an etcd snapshot see the list in etcd's order.
    const at = r.perms.findIndex((p) => cmpBuf(p.key, key) >= 0);
    const first = at >= 0 ? r.perms[at]! : undefined;
    if (first && first.key.equals(key) && first.rangeEnd.equals(rangeEnd)) {
      first.permType = permType;
    } else {
      r.perms.push({ permType, key, rangeEnd });
      const perms = r.perms;
      r.perms = [...goSort(perms.length, (i, j) => cmpBuf(perms[i]!.key, perms[j]!.key) < 0)].map((i) => perms[i]!);
    }
    this.commit();
  }

  roleRevokePermission(name: string, key: Buffer, rangeEnd: Buffer): void {
    const r = this.roles.get(name);
    if (!r) throw Errors.roleNotFound();
    // Every permission with this key and range end goes (etcd keeps the others, in order).
    const kept = r.perms.filter((p) => !(p.key.equals(key) && p.rangeEnd.equals(rangeEnd)));
    if (kept.length === r.perms.length) throw Errors.permissionNotGranted();
    r.perms = kept;
    this.commit();
  }

  hasRole(user: string, role: string): boolean {
    return this.users.get(user)?.roles.includes(role) ?? false;
  }

  /** etcd's Authenticate at apply (the password was checked before proposing). */
  authenticate(name: string, simpleToken: string): void {
    if (!this.enabled) throw Errors.authNotEnabled();
    const u = this.users.get(name);
    if (!u || u.noPassword) throw Errors.authFailed();
    // Every member assigns the token proposed by the member that checked the password (etcd's
    // simple tokens travel through the log, so one works on every member that applied it).
    this.onEvent?.({ kind: 'token', user: name, token: simpleToken });
  }

  // ------------------------------------------------------------------ permission checks

  /**
   * etcd's isOpPermitted: `revision` is the auth revision the caller's token was checked at (0:
   * no token). An older revision than the store's means the permissions may have changed since:
   * ErrAuthOldRevision (the server checks the caller again and retries).
   */
  isOpPermitted(user: string, revision: bigint, key: Buffer, rangeEnd: Buffer | undefined, type: 'read' | 'write'): void {
    if (!this.enabled) return;
    if (revision === 0n) throw Errors.userEmpty();
    if (revision < this.revision) throw Errors.authOldRevision();
    const u = this.users.get(user);
    if (!u) throw Errors.permissionDenied();
    if (u.roles.includes(ROOT_ROLE)) return;
    if (!covered(this.intervals(u, type), key, rangeEnd)) throw Errors.permissionDenied();
  }

  /** etcd's IsAdminPermitted: with auth on, only a user with the root role. */
  isAdminPermitted(user: string): void {
    if (!this.enabled) return;
    if (user.length === 0) throw Errors.userEmpty();
    const u = this.users.get(user);
    if (!u) throw Errors.userNotFound();
    if (!u.roles.includes(ROOT_ROLE)) throw Errors.permissionDenied();
  }

  private intervals(u: AuthUser, type: 'read' | 'write'): Interval[] {
    const out: Interval[] = [];
    for (const name of u.roles) {
      const r = this.roles.get(name);
      if (!r) continue;
      for (const p of r.perms) {
        const ok =
          p.permType === Permission_Type.READWRITE ||
          (type === 'read' && p.permType === Permission_Type.READ) ||
          (type === 'write' && p.permType === Permission_Type.WRITE);
        if (ok) out.push(permInterval(p));
      }
    }
    return out;
  }

  // ------------------------------------------------------------------ snapshot image

  toImage(): AuthImage {
    return {
      enabled: this.enabled,
      ...(this.switched ? { switched: true } : {}),
      revision: this.revision.toString(),
      // In name order: the same image on every member, whatever order entries created them in.
      users: [...this.users.values()].sort((a, b) => cmpStr(a.name, b.name)).map((u) => ({ name: u.name, password: u.password, roles: [...u.roles], noPassword: u.noPassword })),
      roles: [...this.roles.values()].sort((a, b) => cmpStr(a.name, b.name)).map((r) => ({
        name: r.name,
        perms: r.perms.map((p): [number, string, string] => [p.permType, p.key.toString('base64'), p.rangeEnd.toString('base64')]),
      })),
    };
  }

  /** Replaces the store with an image (undefined: a snapshot from before auth existed — empty, off). */
  restore(img: AuthImage | undefined): void {
    this.users.clear();
    this.roles.clear();
    this.enabled = img?.enabled ?? false;
    this.switched = img?.switched ?? this.enabled;
    this.revision = img ? BigInt(img.revision) : 1n;
    for (const u of img?.users ?? []) {
      this.users.set(u.name, { name: u.name, password: u.password, roles: [...u.roles], noPassword: u.noPassword ?? false });
    }
    for (const r of img?.roles ?? []) {
      this.roles.set(r.name, {
        name: r.name,
        perms: r.perms.map(([t, k, e]) => ({ permType: t as Permission_Type, key: Buffer.from(k, 'base64'), rangeEnd: Buffer.from(e, 'base64') })),
      });
    }
  }
}
