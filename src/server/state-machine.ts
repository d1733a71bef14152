// The replicated state machine: applies committed log entries to the MVCC store, the lessor
// and the member list, deterministically. Its results are what the proposing node returns
// to the waiting client.
//
// Owns: what an entry means, and the replicated state (keys, leases, members, alarms, the
// auth store, the exactly-once table, the ConfState as of appliedIndex). Never: reads a clock, the member's
// role or anything local (every member must reach the same state from the same entries), or
// half-applies a request (an error answered means nothing changed: see MvccStore.write).

import {
  type ConfChangeV2,
  type ConfState,
  ConfChangeType,
  emptyConfState,
  type Entry,
  EntryType,
  decodeConfChangeEntry,
} from '../raft/index.js';
import type {
  AlarmResponse,
  AuthDisableResponse,
  AuthEnableResponse,
  AuthenticateResponse,
  AuthRoleAddResponse,
  AuthRoleDeleteResponse,
  AuthRoleGetResponse,
  AuthRoleGrantPermissionResponse,
  AuthRoleListResponse,
  AuthRoleRevokePermissionResponse,
  AuthStatusResponse,
  AuthUserAddResponse,
  AuthUserChangePasswordResponse,
  AuthUserDeleteResponse,
  AuthUserGetResponse,
  AuthUserGrantRoleResponse,
  AuthUserListResponse,
  AuthUserRevokeRoleResponse,
  CompactionResponse,
  DeleteRangeResponse,
  LeaseGrantResponse,
  LeaseRevokeResponse,
  PutResponse,
  ResponseHeader,
  TxnResponse,
} from '../gen/etcd/rpc.js';
import { InternalRequest } from '../gen/raftkv/entry.js';
import { MemberInfo } from '../gen/raftkv/member.js';
import { EtcdError, Errors } from '../kv/errors.js';
import { checkRequestAuth } from '../auth/apply-checks.js';
import { AuthStore } from '../auth/store.js';
import { type DeferredRange, applyDeleteInSlices, applyPut, applyTxnInSlices, oneRequestPerOp, readDeferredRanges } from '../kv/kv-ops.js';
import { LEASE_BYTES, Lessor } from '../kv/lessor.js';
import { MvccStore } from '../kv/mvcc.js';
import { type AlarmChange, AlarmStore } from './alarms.js';
import { AppliedRequests } from './applied-requests.js';
import { Membership } from './membership.js';
import { decodeStateImageAsync, encodeStateImageAsync } from './snapshot-image.js';
import { sortIndexSteps } from '../util/sort-in-steps.js';
import { compareOrdered } from '../util/compare.js';

/** A revoked lease's keys sorted in steps of this many (with pauses between) when there are more. */
const REVOKE_SORT_STEP = 5000;

const AUTH_KINDS = [
  'authEnable', 'authDisable', 'authStatus', 'authenticate', 'authUserAdd', 'authUserDelete', 'authUserGet',
  'authUserChangePassword', 'authUserGrantRole', 'authUserRevokeRole', 'authUserList', 'authRoleList',
  'authRoleAdd', 'authRoleDelete', 'authRoleGet', 'authRoleGrantPermission', 'authRoleRevokePermission',
] as const;

function hasAuthRequest(req: InternalRequest): boolean {
  return AUTH_KINDS.some((k) => req[k] !== undefined);
}

/**
 * What applying each kind of request answers (etcd's response types). The request's kind is
 * the field set in its InternalRequest; the answer to it is of the type named here.
 */
export interface RequestResults {
  put: PutResponse;
  deleteRange: DeleteRangeResponse;
  txn: TxnResponse;
  compaction: CompactionResponse;
  leaseGrant: LeaseGrantResponse;
  leaseRevoke: LeaseRevokeResponse;
  leaseCheckpoint: { header: ResponseHeader };
  alarm: AlarmResponse;
  memberAttributes: Record<string, never>;
  authEnable: AuthEnableResponse;
  authDisable: AuthDisableResponse;
  authStatus: AuthStatusResponse;
  authenticate: AuthenticateResponse;
  authUserAdd: AuthUserAddResponse;
  authUserDelete: AuthUserDeleteResponse;
  authUserGet: AuthUserGetResponse;
  authUserChangePassword: AuthUserChangePasswordResponse;
  authUserGrantRole: AuthUserGrantRoleResponse;
  authUserRevokeRole: AuthUserRevokeRoleResponse;
  authUserList: AuthUserListResponse;
  authRoleList: AuthRoleListResponse;
  authRoleAdd: AuthRoleAddResponse;
  authRoleDelete: AuthRoleDeleteResponse;
  authRoleGet: AuthRoleGetResponse;
  authRoleGrantPermission: AuthRoleGrantPermissionResponse;
  authRoleRevokePermission: AuthRoleRevokePermissionResponse;
}
export type RequestKind = keyof RequestResults;
export type RequestResult = RequestResults[RequestKind] | Record<string, never>;

export type ApplyOutcome = { ok: true; value: RequestResult } | { ok: false; error: EtcdError };

/**
 * Whether anyone waits on the response to request `id` of member `proposer`: when not, applying
 * it builds none (the writes and the success or failure are the same either way).
 */
export type ResponseWanted = (proposer: bigint, id: bigint) => boolean;

const ALWAYS: ResponseWanted = () => true;
/** The answer to a request applied without building its response (nobody reads it). */
const UNREAD: RequestResult = {};

/** What applying a normal entry answers (applyNormal). */
export interface Applied {
  id: bigint;
  outcome: ApplyOutcome;
  duplicate?: true;
}

/** `f` of `v`, now or once `v` resolves. */
function after<T, U>(v: T | Promise<T>, f: (v: T) => U): U | Promise<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}

export interface AppliedConfChange {
  cc: ConfChangeV2;
  member?: MemberInfo;
}

export class StateMachine {
  store = new MvccStore();
  readonly membership = new Membership();
  /** Which re-proposed requests were already applied (replicated, so every member skips alike). */
  readonly appliedRequests = new AppliedRequests();
  /** Raised alarms (CORRUPT, NOSPACE): replicated, so every member refuses the same writes. */
  readonly alarms = new AlarmStore();
  /** Users, roles, permissions and whether auth is on: replicated (src/auth/store.ts). */
  readonly auth = new AuthStore();
  /**
   * Between slices of a txn's ranges read after it was applied (readDeferredRanges): the server
   * yields to the event loop; by default only to the microtask queue.
   */
  readPause: () => Promise<void> = () => Promise.resolve();
  /** Hears of an alarm type raised or disarmed by an applied entry (for the log). */
  onAlarmChange: ((c: AlarmChange) => void) | undefined;
  /** Hears of a committed entry that does not decode, which is skipped (for the log). */
  onUndecodable: ((index: number, err: unknown) => void) | undefined;
  appliedIndex = 0;
  /** The last entry applied before a restart, replayed from the log without being counted again. */
  replayTo = 0;
  /**
   * The configuration as of appliedIndex (what the core answered to the last applied conf
   * change, or the restored snapshot's). A snapshot of this state must carry it.
   */
  confState: ConfState = emptyConfState();

  constructor(
    readonly lessor: Lessor,
    /** Fills the header of responses (ids, term); revision is set here. */
    private readonly header: () => ResponseHeader,
  ) {
    this.store.leases = lessor;
  }

  private hdr(): ResponseHeader {
    return { ...this.header(), revision: this.store.currentRev };
  }

  /**
   * Applies a normal entry. Returns the request id (0 for none) and its outcome; the outcome's
   * value is an empty stand-in when `wanted` says nobody waits on it (its state change is not).
   * A DeleteRange, a lease revoke or a Txn over many keys goes on in slices that yield (readPause)
   * after its first: then the answer is a Promise, and the entry counts as applied (appliedIndex)
   * only once it is whole. Nothing may be applied meanwhile: the caller waits for it.
   */
  applyNormal(e: Entry, wanted: ResponseWanted = ALWAYS): Applied | Promise<Applied> {
    const before = this.appliedIndex;
    this.appliedIndex = e.index;
    // Entries a restart replays were applied (and counted) before it: etcd, whose state is on
    // disk, does not apply them again, so its op counters start from what is new.
    const replaying = e.index <= this.replayTo;
    this.store.stats.muted = replaying;
    this.lessor.stats.muted = replaying;
    if (e.data.length === 0) return { id: 0n, outcome: { ok: true, value: {} } }; // leader no-op
    let req: InternalRequest;
    try {
      req = InternalRequest.decode(e.data);
    } catch (err) {
      // Never expected: what the API admits decodes here (the decoder's depth limit is far
      // above the deepest Txn that --max-txn-ops lets through). But an entry that cannot be
      // applied must not stop the member: every member holds the same bytes and skips them
      // alike, so the entry changes nothing anywhere (its proposer's caller times out). Once a
      // member died here, and again at each restart, as it replayed the same entry.
      this.onUndecodable?.(e.index, err);
      return { id: 0n, outcome: { ok: true, value: {} } };
    }
    // Every member reads a txn's ops alike, whatever its proposer sent (kv-ops.ts, oneRequestPerOp).
    if (req.txn) oneRequestPerOp(req.txn);
    switch (this.appliedRequests.admit(req.proposer, req.id, req.settledBelow)) {
      case 'duplicate':
        // A second copy of a re-proposed request: its first copy answered the client.
        return { id: 0n, outcome: { ok: true, value: {} }, duplicate: true };
      case 'settled':
        // Its proposer stopped waiting (timed out) before this copy committed: not applied.
        return { id: req.id, outcome: { ok: false, error: Errors.timeout() } };
      case 'apply':
        break;
    }
    const id = req.id;
    const failed = (err: unknown): Applied => {
      if (err instanceof EtcdError) return { id, outcome: { ok: false, error: err } };
      throw err;
    };
    let value: RequestResult | Promise<RequestResult>;
    try {
      value = this.applyRequest(req, wanted(req.proposer, id));
    } catch (err) {
      // The request's store ops, as one of etcd's mvcc transactions (failed ones too).
      this.store.stats.end();
      return failed(err);
    }
    if (!(value instanceof Promise)) {
      this.store.stats.end();
      return { id, outcome: { ok: true, value } };
    }
    // Not whole yet: a read or snapshot meanwhile must see the state before this entry.
    this.appliedIndex = before;
    const done = value
      .then((v): Applied => ({ id, outcome: { ok: true, value: v } }), failed)
      .finally(() => {
        this.appliedIndex = e.index;
        this.store.stats.end();
        this.applying = undefined;
      });
    this.applying = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  /** An entry being applied in slices (applyNormal), until it is whole. */
  private applying: Promise<void> | undefined;

  /** Resolves once no entry is being applied in slices (the state is that of appliedIndex). */
  async settled(): Promise<void> {
    while (this.applying) await this.applying;
  }

  /** `respond` false: the hot write kinds skip building their response (see applyNormal). */
  private applyRequest(req: InternalRequest, respond: boolean): RequestResult | Promise<RequestResult> {
    const s = this.store;
    // A raised alarm refuses writes here, where every member decides alike (etcd's
    // applierV3Corrupt and applierV3Capped).
    const refused = this.alarms.refusal(req);
    if (refused) throw refused;
    // With auth on, the caller's permissions are decided here, against the auth store as of
    // this entry (etcd's authApplierV3): a permission change committed between propose and
    // apply is respected (an older auth revision is refused and the member retries).
    checkRequestAuth(this.auth, this.lessor, req);
    if (req.put) {
      const put = req.put;
      const r = s.write((w) => applyPut(w, s, put));
      return respond ? { header: this.hdr(), ...r } : UNREAD;
    }
    if (req.deleteRange) {
      const del = req.deleteRange;
      return after(s.writeInSlices((w) => applyDeleteInSlices(w, del, respond), this.readPause), (r) => (respond ? { header: this.hdr(), ...r } : UNREAD));
    }
    if (req.txn) {
      const txn = req.txn;
      // Its compares and deletions over many keys go in slices (kv-ops.ts, applyTxnInSlices).
      if (!respond) return after(s.writeInSlices((w) => applyTxnInSlices(w, s, txn, false), this.readPause), () => UNREAD);
      // Ranges over many keys are read after the write, in slices (kv-ops.ts, applyTxn).
      const deferred: DeferredRange[] = [];
      return after(s.writeInSlices((w) => applyTxnInSlices(w, s, txn, true, deferred), this.readPause), (r) => {
        const res = { header: this.hdr(), ...r };
        if (deferred.length > 0) readDeferredRanges(res, s, deferred, this.readPause);
        return res;
      });
    }
    if (req.compaction) {
      s.compact(req.compaction.revision);
      // etcd's applier reads the store once for a compaction that is made (a range in its counters).
      s.stats.range();
      return { header: this.hdr() };
    }
    if (req.leaseGrant) {
      const l = this.lessor.grant(req.leaseGrant.ID, req.leaseGrant.TTL);
      // Counted in the DB size the quota is checked against (a lease is memory too).
      this.store.account(LEASE_BYTES);
      return { header: this.hdr(), ID: l.id, TTL: l.ttl, error: '' };
    }
    if (req.leaseRevoke) {
      const id = req.leaseRevoke.ID;
      // Deleted in key order, as etcd does: the order of a lease's key set differs between a
      // member that attached them one by one and one restored from a snapshot, and the
      // deletions' sub-revisions (hence HashKV) must be the same on every member.
      // Many keys are sorted in steps too (300,000 in random order: ~200 ms in one turn).
      const unsorted = this.lessor.keysOf(id);
      // The lease goes once its keys are gone (in slices, if many: until then it is still there).
      const revoked = (): RequestResult => {
        if (this.lessor.exists(id)) this.store.account(-LEASE_BYTES);
        this.lessor.revoke(id);
        return { header: this.hdr() };
      };
      return after(
        s.writeInSlices(function* (w) {
          let keys = unsorted;
          if (keys.length <= REVOKE_SORT_STEP) keys.sort();
          else {
            const order = yield* sortIndexSteps(keys.length, (i, j) => compareOrdered(unsorted[i]!, unsorted[j]!), REVOKE_SORT_STEP);
            keys = Array.from(order, (i) => unsorted[i]!);
          }
          yield* w.deleteKeysInSlices(keys, undefined, id);
          // One delete per key in etcd's counters (its lessor deletes them one by one).
          for (let i = 0; i < keys.length; i++) w.stats.delete();
        }, this.readPause),
        revoked,
      );
    }
    if (req.leaseCheckpoint) {
      for (const cp of req.leaseCheckpoint.checkpoints) this.lessor.checkpoint(cp.ID, cp.remainingTTL);
      return { header: this.hdr() };
    }
    if (req.alarm) {
      // No header: etcd's AlarmResponse has none (its applier leaves it unset).
      return { alarms: this.alarms.apply(req.alarm, this.onAlarmChange) };
    }
    if (req.memberAttributes) {
      const a = req.memberAttributes;
      this.membership.setAttributes(a.id, a.name, a.clientUrls);
      return {};
    }
    if (hasAuthRequest(req)) return this.applyAuth(req);
    return {};
  }

  private applyAuth(req: InternalRequest): RequestResult {
    const a = this.auth;
    const header = this.hdr();
    if (req.authEnable) a.enable();
    else if (req.authDisable) a.disable();
    else if (req.authStatus) return { header, enabled: a.enabled, authRevision: a.revision };
    else if (req.authenticate) {
      // etcd's simple token: the proposer's random prefix and the index it was applied at.
      const token = `${req.authenticate.simpleToken}.${this.appliedIndex}`;
      a.authenticate(req.authenticate.name, token);
      return { header, token };
    } else if (req.authUserAdd) {
      const r = req.authUserAdd;
      a.userAdd(r.name, r.hashedPassword, r.options?.noPassword ?? false);
    } else if (req.authUserDelete) a.userDelete(req.authUserDelete.name);
    else if (req.authUserGet) return { header, roles: a.userGet(req.authUserGet.name) };
    else if (req.authUserChangePassword) a.userChangePassword(req.authUserChangePassword.name, req.authUserChangePassword.hashedPassword);
    else if (req.authUserGrantRole) a.userGrantRole(req.authUserGrantRole.user, req.authUserGrantRole.role);
    else if (req.authUserRevokeRole) a.userRevokeRole(req.authUserRevokeRole.name, req.authUserRevokeRole.role);
    else if (req.authUserList) return { header, users: a.userList() };
    else if (req.authRoleList) return { header, roles: a.roleList() };
    else if (req.authRoleAdd) a.roleAdd(req.authRoleAdd.name);
    else if (req.authRoleDelete) a.roleDelete(req.authRoleDelete.role);
    else if (req.authRoleGet) return { header, perm: a.roleGet(req.authRoleGet.role) };
    else if (req.authRoleGrantPermission) a.roleGrantPermission(req.authRoleGrantPermission.name, req.authRoleGrantPermission.perm);
    else if (req.authRoleRevokePermission) {
      const r = req.authRoleRevokePermission;
      a.roleRevokePermission(r.role, Buffer.from(r.key), Buffer.from(r.rangeEnd));
    }
    return { header };
  }

  /** Decodes a conf change entry and records its membership effect. */
  applyConfChangeEntry(e: Entry): AppliedConfChange {
    this.appliedIndex = e.index;
    const cc = decodeConfChangeEntry(e.type, e.data);
    let member: MemberInfo | undefined;
    if (cc.context.length > 0) {
      try {
        member = MemberInfo.decode(cc.context);
      } catch {
        member = undefined;
      }
    }
    for (const c of cc.changes) {
      switch (c.type) {
        case ConfChangeType.AddNode:
          if (this.membership.get(c.nodeId)) this.membership.promote(c.nodeId);
          else if (member && member.id === c.nodeId) this.membership.add({ ...member, isLearner: false });
          break;
        case ConfChangeType.AddLearnerNode:
          if (member && member.id === c.nodeId) this.membership.add({ ...member, isLearner: true });
          break;
        case ConfChangeType.RemoveNode:
          this.membership.remove(c.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          if (member && member.id === c.nodeId) this.membership.updatePeerUrls(c.nodeId, member.peerUrls);
          break;
      }
    }
    return { cc, member };
  }

  isConfChange(e: Entry): boolean {
    return e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
  }

  /**
   * The snapshot image of the state at the current applied index (its format:
   * ./snapshot-image.ts), built without blocking the event loop for long.
   */
  async imageAsync(pause: () => Promise<void>): Promise<{ index: number; confState: ConfState; data: Buffer }> {
    // Not in the middle of an entry applied in slices (the exactly-once table already has it).
    await this.settled();
    // Everything is captured before the next await: the image is of one applied index.
    const index = this.appliedIndex;
    const confState = this.confState;
    const parts = {
      leases: this.lessor.toImage(),
      members: this.membership.toImage(),
      applied: this.appliedRequests.toImage(),
      alarms: this.alarms.toImage(),
      auth: this.auth.toImage(),
    };
    const data = await encodeStateImageAsync(this.store, parts, pause);
    return { index, confState, data };
  }

  /** Replaces the state with a snapshot image, parsing it in chunks that yield to the event loop. */
  async restoreAsync(data: Uint8Array, index: number, pause: () => Promise<void>, confState: ConfState = emptyConfState()): Promise<void> {
    const { header: h, store } = await decodeStateImageAsync(data, pause);
    store.onEvents = this.store.onEvents;
    store.pruneYield = this.store.pruneYield;
    store.stats = this.store.stats;
    store.leases = this.lessor;
    this.store = store;
    this.lessor.restore(h.leases);
    this.store.account(this.lessor.leases.size * LEASE_BYTES);
    this.store.forEachLeasedKey((lease, key) => this.lessor.attach(lease, key));
    this.membership.restore(h.members);
    this.appliedRequests.restore(h.applied);
    this.alarms.restore(h.alarms);
    this.auth.restore(h.auth);
    this.appliedIndex = index;
    this.confState = confState;
  }
}
