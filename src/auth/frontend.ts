// A member's side of auth: who the caller of a request is (the `token` metadata etcd's
// clients send), its simple tokens, password hashing and checking (bcrypt on a worker thread,
// ./bcrypt-pool.ts, so heartbeats go on while many clients authenticate), and proposing requests with the
// caller's user name and auth revision (etcd's RequestHeader), re-checked and re-proposed when
// the auth store moved on before the request was applied (etcd's ErrAuthOldRevision loop).
//
// One per EtcdServer (authOf). The replicated part is src/auth/store.ts; the decisions per
// request are src/auth/apply-checks.ts.

import type * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { AuthenticateResponse } from '../gen/etcd/rpc.js';
import type { InternalRequest } from '../gen/raftkv/entry.js';
import { EtcdError, ErrorCode, Errors } from '../kv/errors.js';
import { DEFAULT_AUTH } from '../server/config.js';
import type { EtcdServer } from '../server/etcd-server.js';
import type { RequestKind, RequestResults } from '../server/state-machine.js';
import { type AuthInfo, NO_AUTH } from './apply-checks.js';
import { BcryptPool } from './bcrypt-pool.js';
import { type CancellableCall, callCancelled, cancellationOf } from '../api/call-cancellation.js';
import type { AuthEvent } from './store.js';
import { JwtTokens } from './jwt.js';
import { SimpleTokens } from './tokens.js';

const OLD_REVISION = Errors.authOldRevision().message;
const MAX_RETRIES = 16;

const frontends = new WeakMap<EtcdServer, AuthFrontend>();

/**
 * Who is calling: a gRPC call (its metadata, and its TLS peer certificate for
 * --client-cert-auth), or just metadata.
 */
export type Caller =
  | grpc.Metadata
  | { metadata: grpc.Metadata; getAuthContext?: () => { sslPeerCertificate?: PeerCertificate } | undefined };

/** The auth frontend of a member (made on first use: before the member serves clients). */
export function authOf(s: EtcdServer): AuthFrontend {
  let f = frontends.get(s);
  if (!f) {
    f = new AuthFrontend(s);
    frontends.set(s, f);
  }
  return f;
}

export class AuthFrontend {
  readonly tokens: SimpleTokens;
  /** --auth-token jwt: stateless signed tokens instead of simple ones. */
  private readonly jwt: JwtTokens | undefined;
  readonly bcryptCost: number;
  private readonly bcrypt = new BcryptPool(() => Errors.tooManyRequests());
  /**
   * Entries up to this index were committed before this process started: applying them again
   * (replaying the log after a restart) must not bring back tokens, which live in memory only.
   */
  private readonly bootIndex: number;

  constructor(private readonly s: EtcdServer) {
    const cfg = s.cfg.auth ?? DEFAULT_AUTH;
    this.bcryptCost = cfg.bcryptCost;
    this.tokens = new SimpleTokens(cfg.tokenTtlSec * 1000, () => s.clock.now());
    this.jwt = cfg.token === 'jwt' && cfg.jwt ? new JwtTokens(cfg.jwt) : undefined;
    let boot = 0;
    try {
      boot = s.committedIndex();
    } catch {
      boot = 0; // not initialised (a test making services without a node)
    }
    this.bootIndex = boot;
    s.sm.auth.onEvent = (e) => this.onEvent(e);
  }

  private onEvent(e: AuthEvent): void {
    switch (e.kind) {
      case 'disabled':
        this.tokens.clear();
        break;
      case 'userChanged':
        this.tokens.invalidateUser(e.user);
        break;
      case 'token':
        if (!this.jwt && SimpleTokens.indexOf(e.token) > this.bootIndex) this.tokens.assign(e.user, e.token);
        break;
    }
  }

  /**
   * The caller of a request: NO_AUTH without a token; `etcdserver: invalid auth token` for a
   * token this member does not know (expired, from before a restart, or from an index this
   * member has not applied within the request timeout) — with auth off too, as etcd's
   * AuthInfoFromCtx answers: disabling auth drops every token, so a client still sending one
   * is told so rather than served.
   */
  async authInfo(caller: Caller): Promise<AuthInfo> {
    const md = metadataOf(caller);
    const raw = tokenOf(md);
    if (raw === undefined) return this.certInfo(caller);
    const token = typeof raw === 'string' ? raw : raw.toString();
    const store = this.s.sm.auth;
    if (this.jwt) return this.jwtInfo(token);
    let user = this.tokens.user(token);
    if (user === undefined) {
      // One made on another member may not be applied here yet: wait for it (as etcd's
      // isValidSimpleToken), also if this member has not applied `auth enable` yet either.
      // An unknown token is refused auth on or off: disabling drops them all.
      const index = SimpleTokens.indexOf(token);
      if (!Number.isFinite(index)) throw Errors.invalidAuthToken();
      if (index > this.s.sm.appliedIndex) {
        // etcd's indexWaiter: up to the request timeout, woken by the apply.
        await this.s.waitApplied(index, this.s.requestTimeoutMs);
        user = this.tokens.user(token);
      }
      if (user === undefined) throw Errors.invalidAuthToken();
    }
    return { username: user, revision: store.revision };
  }

  /**
   * Whether the caller has anything to be checked: auth is on, or it sent a token (which etcd
   * checks with auth off too). When not, readerOf answers undefined without a look.
   */
  checksCaller(caller: Caller): boolean {
    return this.s.sm.auth.enabled || hasToken(caller);
  }

  /**
   * The caller a read served by this member is checked as (etcd's doSerialize), or undefined
   * with auth off — after its token, if it sent one, was found valid (authInfo).
   */
  async readerOf(caller: Caller): Promise<AuthInfo | undefined> {
    if (!this.checksCaller(caller)) return undefined;
    const ai = await this.authInfo(caller);
    return this.s.sm.auth.enabled ? ai : undefined;
  }

  /**
   * The caller, without waiting (for a stream's synchronous handlers): a token from an index
   * this member has not applied yet is invalid here.
   */
  authInfoNow(caller: Caller): AuthInfo {
    const md = metadataOf(caller);
    const raw = tokenOf(md);
    if (raw === undefined) return this.certInfo(caller);
    if (this.jwt) return this.jwtInfo(typeof raw === 'string' ? raw : raw.toString());
    const user = this.tokens.user(typeof raw === 'string' ? raw : raw.toString());
    if (user === undefined) throw Errors.invalidAuthToken(); // auth on or off, as authInfo
    return { username: user, revision: this.s.sm.auth.revision };
  }

  /**
   * No token: with --client-cert-auth, the CommonName of the client's verified certificate is
   * the user (etcd's AuthInfoFromTLS), at the current auth revision; otherwise nobody.
   */
  private certInfo(caller: Caller): AuthInfo {
    if (!this.s.cfg.tls?.client?.clientCertAuth || isMetadata(caller)) return NO_AUTH;
    let cn: string | string[] | undefined;
    try {
      cn = caller.getAuthContext?.()?.sslPeerCertificate?.subject?.CN;
    } catch {
      cn = undefined;
    }
    const name = Array.isArray(cn) ? cn[0] : cn;
    if (!name) return NO_AUTH;
    return { username: name, revision: this.s.sm.auth.revision };
  }

  /** A JWT's user and the auth revision it was signed at (an older one is refused when checked). */
  private jwtInfo(token: string): AuthInfo {
    const c = this.jwt!.verify(token);
    if (!c) throw Errors.invalidAuthToken(); // auth on or off, as etcd's tokenJWT.info
    return { username: c.username, revision: c.revision };
  }

  /** etcd's IsAdminPermitted for requests checked before they are served (not through the log). */
  async requireAdmin(caller: Caller): Promise<void> {
    const ai = await this.readerOf(caller);
    if (ai) this.s.sm.auth.isAdminPermitted(ai.username);
  }

  /**
   * Proposes a request as the caller of `md`; if the auth store changed between the check of
   * the token and the apply, checks the caller again and proposes again (etcd's raftRequest loop).
   */
  async propose<K extends RequestKind>(caller: Caller, kind: K, body: NonNullable<InternalRequest[K]>): Promise<RequestResults[K]> {
    for (let i = 0; ; i++) {
      const ai = await this.authInfo(caller);
      try {
        return await this.s.propose(kind, body, { username: ai.username, authRevision: ai.revision });
      } catch (e) {
        // A JWT keeps the revision it was signed at: only a new token helps (the client's job).
        if (!(e instanceof EtcdError) || e.message !== OLD_REVISION || i >= MAX_RETRIES || this.jwt) throw e;
      }
    }
  }

  /** bcrypt, on this member, before proposing: the log never carries a clear password. */
  hash(password: string): Promise<string> {
    return this.bcrypt.hash(password, this.bcryptCost);
  }

  /**
   * etcd's Authenticate: the password checked here against this member's (linearizable) view of
   * the store, then the token proposed through the log; again if the store changed meanwhile.
   */
  async authenticate(name: string, password: string, caller?: Caller): Promise<AuthenticateResponse> {
    // A caller that goes away (cancelled, deadline passed) has its password check dropped if the
    // bcrypt worker has not started it: abandoned attempts do not delay the next login.
    const signal = caller && isCall(caller) ? cancellationOf(caller) : undefined;
    await this.s.linearizableRead();
    for (let i = 0; ; i++) {
      const store = this.s.sm.auth;
      if (!store.enabled) throw Errors.authNotEnabled();
      const u = store.users.get(name);
      if (!u) throw Errors.authFailed();
      if (u.noPassword) throw Errors.noPasswordUser();
      const checkedRevision = store.revision;
      const hash = u.password;
      let ok = false;
      try {
        ok = hash.length > 0 && (await this.bcrypt.compare(password, hash, signal));
      } catch (e) {
        if (e instanceof EtcdError) throw e; // too many waiting: etcd's "too many requests"
        if (signal?.aborted) throw callCancelled(); // nobody to answer
        ok = false;
      }
      if (!ok) {
        this.s.logger.warn(`authentication failed, invalid password for user ${name}`);
        throw Errors.authFailed();
      }
      // etcd proposes it as any request: a token sent along (a stale one) must be valid.
      if (caller && hasToken(caller)) await this.authInfo(caller);
      const resp = await this.s.propose('authenticate', { name, simpleToken: SimpleTokens.genPrefix() });
      if (checkedRevision === this.s.sm.auth.revision || i >= MAX_RETRIES) {
        // JWT: signed here, at the revision the password was checked at (etcd's jwt assign).
        return this.jwt ? { ...resp, token: this.jwt.sign(name, checkedRevision) } : resp;
      }
      // The user's password or existence changed while it was checked: check again.
    }
  }
}

/** A server call (grpc-js's, or the gateway's), which says when its client has gone. */
function isCall(c: Caller): c is Caller & CancellableCall {
  return typeof (c as Partial<CancellableCall>).once === 'function' && typeof (c as Partial<CancellableCall>).cancelled === 'boolean';
}

function isMetadata(c: Caller): c is grpc.Metadata {
  return typeof (c as grpc.Metadata).getMap === 'function';
}

/**
 * The caller's token: the `token` metadata etcd's clients send, else `authorization` (etcd reads
 * both, rpctypes.TokenFieldNameGRPC then TokenFieldNameSwagger; the JSON gateway passes the
 * HTTP Authorization header on as the latter). The first value, as etcd takes it from grpc-go's
 * list: Node's http2 joins a repeated header into one "a, b" value (python-etcd3 over TLS sends
 * its token twice, as call credentials and as metadata); tokens have no commas.
 */
function tokenOf(md: grpc.Metadata): grpc.MetadataValue | undefined {
  const v = md.get('token')[0] ?? md.get('authorization')[0];
  return typeof v === 'string' ? v.split(',')[0]!.trim() : v;
}

/** Whether the caller sent a token (checked even with auth off, as etcd checks it). */
function hasToken(c: Caller): boolean {
  return tokenOf(metadataOf(c)) !== undefined;
}

function metadataOf(c: Caller): grpc.Metadata {
  return isMetadata(c) ? c : c.metadata;
}

/**
 * The auth store's own error behind an auth check's etcd error: where etcd passes the error of
 * AuthInfoFromCtx / IsAdminPermitted on unconverted (its authMaintenanceServer), clients get code
 * Unknown and the auth package's text, and etcdctl prints that text. Other errors are as they are.
 */
export function asAuthStoreError(e: unknown): unknown {
  const text = e instanceof EtcdError ? AUTH_STORE_TEXTS.get(e.message) : undefined;
  return text === undefined ? e : new EtcdError(ErrorCode.UNKNOWN, text);
}

/** `check` (an auth check), failing with the auth store's own error (asAuthStoreError). */
export function withAuthStoreErrors<T>(check: Promise<T>): Promise<T> {
  return check.catch((e: unknown) => Promise.reject(asAuthStoreError(e)));
}

const AUTH_STORE_TEXTS = new Map([
  [Errors.userEmpty().message, 'auth: user name is empty'],
  [Errors.userNotFound().message, 'auth: user not found'],
  [Errors.permissionDenied().message, 'auth: permission denied'],
  [Errors.invalidAuthToken().message, 'auth: invalid auth token'],
]);
