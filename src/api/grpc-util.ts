// Adapters between async handlers and grpc-js callbacks, with etcd-style error statuses.
// Nothing a client sends can throw out of a handler: unexpected errors become INTERNAL. The
// mapping of etcd errors to gRPC statuses is in grpc-status.ts.

import type * as grpc from '@grpc/grpc-js';
import { EtcdError, Errors } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { toServiceError } from './grpc-status.js';
import { endWhenLeaderless } from './leaderless-streams.js';
import { authOf, withAuthStoreErrors } from '../auth/frontend.js';
import { type EncoderWithWriter, encodeKept } from '../util/kept-writer.js';

export { fromServiceError, toServiceError } from './grpc-status.js';

/**
 * V8 keeps a typed array of up to this many bytes on its heap; reading `.buffer` of one moves
 * its bytes to a new off-heap store, which costs more than copying them into Buffer's pool.
 */
const IN_HEAP_MAX_BYTES = 64;

/**
 * The encoded bytes as a Buffer, copied only when small. The generated serializers' `Buffer.from(u8)`
 * copies every response once more before grpc-js copies it into its frame; measured (CPU per
 * serialize): a wrap saves 5-15% from ~100 B up, and costs ~15% on a 28 B PutResponse, hence both.
 */
export function encodedBuffer(u8: Uint8Array): Buffer {
  return u8.byteLength <= IN_HEAP_MAX_BYTES ? Buffer.from(u8) : Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
}

// `any`: a definition's serializers take its own message types (parameters are contravariant).
type Methods = Record<string, grpc.MethodDefinition<any, any>>;
type ResponseOf<M> = M extends { responseDeserialize: (b: Buffer) => infer R } ? R : never;

/**
 * A generated service definition whose response serializers skip the generated code's second
 * copy (encodedBuffer); the bytes are the same. `encoders`: each method's response type, all
 * of them (the generated definitions do not name it; the compiler checks every one matches).
 */
export function withoutResponseCopies<D extends Methods>(def: D, encoders: { [K in keyof D]: EncoderWithWriter<ResponseOf<D[K]>> }): D {
  const out: Methods = {};
  for (const [name, m] of Object.entries(def)) {
    const enc = encoders[name as keyof D];
    out[name] = { ...m, responseSerialize: (v: ResponseOf<D[keyof D]>) => encodedBuffer(encodeKept(enc, v)) };
  }
  return out as D;
}

export type Handler<Req, Res> = (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Promise<Res>;

/**
 * A unary handler with etcd's interceptor checks. `admin`: with auth on, only a caller whose
 * token (the `token` metadata) names a user with the root role (etcd's IsAdminPermitted);
 * 'auth-store-errors': refused with the auth store's own errors, as etcd's maintenance server
 * refuses (asAuthStoreError).
 */
export function unary<Req, Res>(s: EtcdServer, f: Handler<Req, Res>, opts: { learnerOk?: boolean; admin?: boolean | 'auth-store-errors' } = {}) {
  return (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>): void => {
    let p: Promise<Res>;
    try {
      checkCall(s, call.metadata, opts.learnerOk ?? false);
      if (opts.admin && authOf(s).checksCaller(call)) {
        const checked = authOf(s).requireAdmin(call);
        p = (opts.admin === 'auth-store-errors' ? withAuthStoreErrors(checked) : checked).then(() => f(call.request, call));
      } else p = f(call.request, call);
    } catch (e) {
      cb(toServiceError(e), null);
      return;
    }
    p.then(
      (res) => cb(null, res),
      (e: unknown) => {
        if (!(e instanceof EtcdError)) s.logger.warn(`request failed: ${(e as Error)?.stack ?? String(e)}`);
        cb(toServiceError(e), null);
      },
    );
  };
}

/** etcd's interceptor checks: a stopped server, learners, and require-leader metadata. */
export function checkCall(s: EtcdServer, md: grpc.Metadata, learnerOk: boolean): void {
  if (s.isStopped()) throw Errors.stopped();
  if (!learnerOk && s.isLearner()) throw Errors.notSupportedForLearner();
  const req = md.get('hasleader')[0];
  if (req === 'true' && s.leader() === 0n) throw Errors.noLeader();
}

/**
 * The caller's token alone, for a call forwarded to another member (tokens are valid on every
 * member): etcd reads it from `token`, or from `authorization` (what the JSON gateway sets).
 */
export function tokenMetadata(md: grpc.Metadata): grpc.Metadata {
  const out = new (md.constructor as typeof grpc.Metadata)();
  for (const name of ['token', 'authorization']) {
    const t = md.get(name)[0];
    if (t !== undefined) out.set(name, t);
  }
  return out;
}

/**
 * Applies the interceptor checks to a streaming call; on failure ends it with the error. One
 * that requires a leader is also ended later if its member goes without one for long
 * (leaderless-streams.ts, etcd's monitorLeader).
 */
export function guardStream(s: EtcdServer, call: grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>, learnerOk = false): boolean {
  try {
    checkCall(s, call.metadata, learnerOk);
    endWhenLeaderless(s, call);
    return true;
  } catch (e) {
    call.emit('error', toServiceError(e));
    return false;
  }
}
