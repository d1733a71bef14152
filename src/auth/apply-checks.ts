// Which permission each request needs, as etcd's authApplierV3 (etcdserver/apply_auth.go)
// decides it: checked when the request is applied (writes, Auth management) or before a read
// is served (the API calls checkRange / checkTxn with the caller's auth info).
//
// Admin (root role) only: AuthEnable/Disable/Status, every user and role change, UserList,
// RoleList. Compaction needs no permission, as in etcd 3.4 (its apiserver-style callers compact
// with whatever user they run as). UserGet: admin
// or the user itself; RoleGet: admin or a holder of the role. A Put/DeleteRange needs WRITE on
// its key or range (and READ with prev_kv); a Put with a lease and a LeaseRevoke need WRITE on
// every key attached to that lease; a Txn needs READ on each compare's key and the permissions
// of every operation in BOTH branches (nested txns included), whichever branch is taken.

import type { DeleteRangeRequest, PutRequest, RangeRequest, RequestOp, TxnRequest } from '../gen/etcd/rpc.js';
import type { InternalRequest } from '../gen/raftkv/entry.js';
import type { Lessor } from '../kv/lessor.js';
import type { AuthStore } from './store.js';

/** Who is asking: the user of the caller's token and the auth revision it was checked at (0: no token). */
export interface AuthInfo {
  username: string;
  revision: bigint;
}

export const NO_AUTH: AuthInfo = { username: '', revision: 0n };

export function checkRange(a: AuthStore, ai: AuthInfo, r: Pick<RangeRequest, 'key' | 'rangeEnd'>): void {
  a.isOpPermitted(ai.username, ai.revision, r.key, r.rangeEnd, 'read');
}

function checkLeaseKeys(a: AuthStore, lessor: Lessor, ai: AuthInfo, lease: bigint): void {
  const l = lessor.leases.get(lease);
  if (!l) return;
  for (const k of [...l.keys].sort()) a.isOpPermitted(ai.username, ai.revision, Buffer.from(k, 'latin1'), undefined, 'write');
}

export function checkPut(a: AuthStore, lessor: Lessor | undefined, ai: AuthInfo, r: PutRequest): void {
  a.isOpPermitted(ai.username, ai.revision, r.key, undefined, 'write');
  if (r.prevKv) a.isOpPermitted(ai.username, ai.revision, r.key, undefined, 'read');
  if (lessor && r.lease !== 0n) checkLeaseKeys(a, lessor, ai, r.lease);
}

export function checkDelete(a: AuthStore, ai: AuthInfo, r: DeleteRangeRequest): void {
  if (r.prevKv) a.isOpPermitted(ai.username, ai.revision, r.key, r.rangeEnd, 'read');
  a.isOpPermitted(ai.username, ai.revision, r.key, r.rangeEnd, 'write');
}

function checkOps(a: AuthStore, lessor: Lessor | undefined, ai: AuthInfo, ops: RequestOp[]): void {
  for (const op of ops) {
    if (op.requestRange) checkRange(a, ai, op.requestRange);
    else if (op.requestPut) checkPut(a, lessor, ai, op.requestPut);
    else if (op.requestDeleteRange) checkDelete(a, ai, op.requestDeleteRange);
    else if (op.requestTxn) checkTxn(a, lessor, ai, op.requestTxn);
  }
}

export function checkTxn(a: AuthStore, lessor: Lessor | undefined, ai: AuthInfo, t: TxnRequest): void {
  for (const c of t.compare) a.isOpPermitted(ai.username, ai.revision, c.key, c.rangeEnd, 'read');
  checkOps(a, lessor, ai, t.success);
  checkOps(a, lessor, ai, t.failure);
}

/** The checks of an entry being applied (throws etcd's error; a no-op while auth is off). */
export function checkRequestAuth(a: AuthStore, lessor: Lessor, req: InternalRequest): void {
  if (!a.enabled) return;
  const ai: AuthInfo = { username: req.username, revision: req.authRevision };
  if (
    req.authEnable ||
    req.authDisable ||
    req.authStatus ||
    req.authUserAdd ||
    req.authUserDelete ||
    req.authUserChangePassword ||
    req.authUserGrantRole ||
    req.authUserRevokeRole ||
    req.authRoleAdd ||
    req.authRoleGrantPermission ||
    req.authRoleRevokePermission ||
    req.authRoleDelete ||
    req.authUserList ||
    req.authRoleList
  ) {
    a.isAdminPermitted(ai.username);
    return;
  }
  if (req.authUserGet) {
    if (req.authUserGet.name !== ai.username) a.isAdminPermitted(ai.username);
    return;
  }
  if (req.authRoleGet) {
    if (!a.hasRole(ai.username, req.authRoleGet.role)) a.isAdminPermitted(ai.username);
    return;
  }
  if (req.put) checkPut(a, lessor, ai, req.put);
  else if (req.deleteRange) checkDelete(a, ai, req.deleteRange);
  else if (req.txn) checkTxn(a, lessor, ai, req.txn);
  else if (req.leaseRevoke) checkLeaseKeys(a, lessor, ai, req.leaseRevoke.ID);
}
