// A leaner server path for the hot unary KV calls (Range, Put, DeleteRange, Txn).
//
// Why: grpc-js's server spends, per unary call, an interceptor chain, a stream decoder, a
// promise-based (de)compression step, a per-call metrics recorder and several listener
// objects; a bare grpc-js unary server costs 65–80 µs of CPU per call on this machine, this
// path 49–58 µs (measured, see the README). More important, it writes a large answer (a Range
// of millions of keys, encoded in slices by ./sliced-encoding.ts) as it was encoded, slice by
// slice with the stream's backpressure, where grpc-js must first join the slices into one
// buffer and then copy that buffer once more to frame it: two copies of hundreds of MB in one
// turn of the event loop, a stall of every heartbeat and every other client.
//
// How: the front door hands HTTP/2 connections to grpc-js's own http2 server (its connection
// injector). That server is made by grpc-js's `createHttp2Server` method, which is wrapped for
// the duration of `createConnectionInjector` so that the server's 'stream' events for the
// paths below come here; everything else (other methods, compressed requests) still goes to
// grpc-js, on the same connection. If grpc-js no longer has that method, nothing is wrapped and
// grpc-js serves every call, as before (test/api/lean-unary.test.ts notices).
//
// What it keeps of gRPC's rules, as grpc-js applies them: content-type `application/grpc*`,
// length-prefixed messages with the receive limit (RESOURCE_EXHAUSTED, with etcd's grpc-go text),
// exactly one request message (UNIMPLEMENTED otherwise, grpc-js's texts), `grpc-timeout`
// (DEADLINE_EXCEEDED), the client going away (the call is cancelled: `cancelled` and the
// 'cancelled' event, which the services use), metadata from the headers, the TLS peer
// certificate for auth, and trailers-only errors as grpc-js's; the headers and trailers of an
// answer are grpc-go's (fewer than grpc-js's: see RESPONSE_HEADERS).
// The service implementations (with their metrics) are the ones grpc-js calls.

import * as grpc from '@grpc/grpc-js';
import type { Http2Server, IncomingHttpHeaders, ServerHttp2Stream, ServerStreamResponseOptions } from 'node:http2';
import { ServiceCall } from './gateway/calls.js';
import type { CountingSerializer } from './grpc-metrics.js';
import { preEncodedParts } from './sliced-encoding.js';
import { receivedTooLargeText } from './receive-limit-text.js';

export interface LeanMethod {
  path: string;
  deserialize(b: Buffer): unknown;
  serialize(v: unknown): Buffer;
  /** Counts a response sent as encoded beforehand, where `serialize` (which counts) is not called. */
  sentPreEncoded(bytes: number): void;
  handler: (call: ServiceCall, cb: (err: unknown, value?: unknown) => void) => void;
}

/** The largest answer sent: etcd's grpc.MaxSendMsgSize(math.MaxInt32). */
const MAX_SEND_BYTES = 2 ** 31 - 1;

/** The longest delay a timer takes (Node fires a longer one at once). */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The hot methods served here (the rest of the API stays with grpc-js). */
export const LEAN_PATHS = ['/etcdserverpb.KV/Range', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/DeleteRange', '/etcdserverpb.KV/Txn'];

/** The methods of `services` whose path is in `paths`, with their (instrumented) handlers. */
export function leanMethods(services: Array<[grpc.ServiceDefinition, grpc.UntypedServiceImplementation]>, paths = LEAN_PATHS): Map<string, LeanMethod> {
  const out = new Map<string, LeanMethod>();
  for (const [def, impl] of services) {
    for (const [name, m] of Object.entries(def)) {
      if (!paths.includes(m.path) || m.requestStream || m.responseStream || typeof impl[name] !== 'function') continue;
      out.set(m.path, {
        path: m.path,
        deserialize: m.requestDeserialize as (b: Buffer) => unknown,
        serialize: m.responseSerialize as (v: unknown) => Buffer,
        sentPreEncoded: (m.responseSerialize as CountingSerializer).countSent ?? (() => {}),
        handler: impl[name] as unknown as LeanMethod['handler'],
      });
    }
  }
  return out;
}

type GrpcServerInternals = { createHttp2Server?: (this: unknown, creds: unknown) => Http2Server };

/**
 * Runs `create` (which calls grpcServer.createConnectionInjector) with grpc-js's http2 server
 * routing the `methods` here. Returns what `create` returned, and whether the lean path is on.
 */
export function withLeanUnary<T>(
  grpcServer: grpc.Server,
  methods: Map<string, LeanMethod>,
  opts: { maxReceiveBytes: number; maxSendBytes?: number },
  create: () => T,
): { result: T; lean: boolean } {
  const server = grpcServer as unknown as GrpcServerInternals;
  const original = server.createHttp2Server;
  if (typeof original !== 'function' || methods.size === 0) return { result: create(), lean: false };
  server.createHttp2Server = function (this: unknown, creds: unknown): Http2Server {
    const h2 = original.call(this, creds);
    const emit = h2.emit.bind(h2) as (event: string | symbol, ...args: unknown[]) => boolean;
    (h2 as { emit: typeof emit }).emit = (event, ...args) => {
      if (event === 'stream') {
        const stream = args[0] as ServerHttp2Stream;
        const headers = args[1] as IncomingHttpHeaders;
        const m = methods.get(String(headers[':path']));
        if (m && servable(headers)) {
          serveUnary(stream, headers, m, opts.maxReceiveBytes, opts.maxSendBytes ?? MAX_SEND_BYTES);
          return true;
        }
        // grpc-js's `| 0` wraps a deadline past a timer's reach (24.8 days) negative, failing
        // the call at once: such a deadline, which no call lives to see, is taken off.
        const ms = timeoutMs(headers['grpc-timeout']);
        if (ms !== undefined && ms > MAX_TIMER_MS) delete headers['grpc-timeout'];
        // What grpc-js answers carries no `date` either (grpc-go sends none; see RESPOND).
        const respond = stream.respond.bind(stream);
        stream.respond = (h, o) => respond(h, { ...o, sendDate: false } as ServerStreamResponseOptions);
      }
      return emit(event, ...args);
    };
    return h2;
  };
  try {
    return { result: create(), lean: true };
  } finally {
    // Only the injector's server is ours to change: the prototype's method is back for any other.
    delete (server as { createHttp2Server?: unknown }).createHttp2Server;
  }
}

/** Requests grpc-js would also take, without compression (those still go to grpc-js). */
function servable(h: IncomingHttpHeaders): boolean {
  const ct = h['content-type'];
  if (typeof ct !== 'string' || !ct.startsWith('application/grpc')) return false;
  const enc = h['grpc-encoding'];
  return enc === undefined || enc === 'identity';
}

const DEADLINE_REGEX = /(\d{1,8})\s*([HMSmun])/;
const DEADLINE_UNIT_MS: Record<string, number> = { H: 3600000, M: 60000, S: 1000, m: 1, u: 0.001, n: 0.000001 };

/** A grpc-timeout header's milliseconds (grpc-js's reading of it); undefined if it is absent or not one. */
function timeoutMs(timeout: string | string[] | undefined): number | undefined {
  if (typeof timeout !== 'string') return undefined;
  const match = DEADLINE_REGEX.exec(timeout);
  return match ? Number(match[1]) * DEADLINE_UNIT_MS[match[2]!]! : undefined;
}

/**
 * What grpc-go (etcd) answers with, and no more: its headers are `:status` and `content-type`
 * (no `grpc-encoding` when it does not compress, no `grpc-accept-encoding` without compressors
 * registered, which etcd has none of), and no `date`, which Node's HTTP/2 adds to every response
 * unless told not to; an answer's trailers are its `grpc-status` (grpc-go adds an empty
 * `grpc-message`, which the spec makes optional). Every header is work on both ends of every
 * call: in a micro-benchmark of Node's HTTP/2 alone (40,000 calls, 64 clients, three alternating
 * pairs), without `date` the server spent 48.8–50.3 µs of CPU per call against 50.1–51.6; with
 * these headers and trailers against grpc-js's four and two, 46.5–47.2 against 47.5–49.4, and
 * its client answered 13,586–14,599 calls/s against 12,843–13,454. grpc-js's own path (the
 * other methods) still sends its set.
 */
const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc',
};
const OK_TRAILERS = { 'grpc-status': '0' };
const RESPOND = { waitForTrailers: true, sendDate: false } as const;
const RESPOND_TRAILERS_ONLY = { endStream: true, sendDate: false } as const;

/** The transport's own headers, which are not the call's metadata (grpc-js's server drops the same). */
const TRANSPORT_HEADERS = new Set(['grpc-timeout', 'grpc-encoding', 'grpc-accept-encoding', 'accept-encoding', 'te', 'content-type']);

/**
 * The call's metadata, as grpc-js reads it from the headers (`Metadata.fromHttp2Headers`), less
 * the transport's: those are left out before it rather than added and removed after, which
 * validated each of their names twice per call.
 */
function callMetadata(headers: IncomingHttpHeaders): grpc.Metadata {
  const rest: IncomingHttpHeaders = {};
  for (const key of Object.keys(headers)) if (key.charCodeAt(0) !== 0x3a /* ':' */ && !TRANSPORT_HEADERS.has(key)) rest[key] = headers[key];
  return grpc.Metadata.fromHttp2Headers(rest);
}

function serveUnary(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, m: LeanMethod, maxReceive: number, maxSend: number): void {
  stream.once('error', () => {
    /* an error is followed by 'close', which cancels the call */
  });
  const metadata = callMetadata(headers);
  const call = new ServiceCall(metadata, stream.session?.socket, m.path);
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (): boolean => {
    if (done) return false;
    done = true;
    clearTimeout(timer);
    return true;
  };
  /** An error status, as trailers only (nothing was sent yet) — grpc-js's sendStatus. */
  const fail = (code: number, details: string, md?: grpc.Metadata | null): void => {
    if (!finish() || stream.destroyed || stream.closed) return;
    if (stream.headersSent) {
      stream.close(0x08 /* NGHTTP2_CANCEL */);
      return;
    }
    stream.respond(
      { ...RESPONSE_HEADERS, 'grpc-status': code, 'grpc-message': encodeURI(details), ...(md ? md.toHttp2Headers() : {}) },
      RESPOND_TRAILERS_ONLY,
    );
  };
  stream.once('close', () => {
    finish();
    call.cancel();
  });

  const timeout = headers['grpc-timeout'];
  if (typeof timeout === 'string') {
    const ms = timeoutMs(timeout);
    if (ms === undefined) return fail(grpc.status.INTERNAL, `Invalid grpc-timeout value "${timeout}"`);
    call.setDeadline(Date.now() + ms);
    // A deadline past a timer's reach (2^31 - 1 ms, 24.8 days) is one no call lives to see: no
    // timer. (grpc-js's `| 0`, which this copied, wrapped such a deadline negative: the call
    // failed at once with DEADLINE_EXCEEDED.)
    if (ms <= MAX_TIMER_MS) {
      timer = setTimeout(() => {
        // As etcd answers it: grpc-go leaves a passed deadline to the handler, and etcd's
        // handlers return the context's error (a read waiting for its ReadIndex, a proposal
        // with no leader to take it), which grpc-go sends as UNKNOWN in Go's words. grpc-js
        // would say DEADLINE_EXCEEDED "Deadline exceeded", which clients map to another error
        // (python-etcd3: ConnectionTimeoutError).
        fail(grpc.status.UNKNOWN, 'context deadline exceeded');
        call.cancel();
      }, ms);
    }
  }

  // The request: length-prefixed messages ([flag][u32 length][bytes]); exactly one for a unary call.
  let buffered: Buffer[] = [];
  let bufferedBytes = 0;
  /** The length of the message being read, once its prefix is in; -1 before. */
  let need = -1;
  let message: Buffer | undefined;
  let extra = false;
  stream.on('data', (chunk: Buffer) => {
    if (done) return;
    buffered.push(chunk);
    bufferedBytes += chunk.length;
    for (;;) {
      if (need < 0) {
        if (bufferedBytes < 5) return;
        if (buffered[0]!.length < 5) buffered = [Buffer.concat(buffered)];
        need = buffered[0]!.readUInt32BE(1);
        // etcd's text (grpc-go's), which the methods grpc-js serves word differently.
        if (need > maxReceive) return fail(grpc.status.RESOURCE_EXHAUSTED, receivedTooLargeText(need, maxReceive));
      }
      // Joined once, when the whole message is in (never once per chunk).
      if (bufferedBytes < 5 + need) return;
      const all = buffered.length === 1 ? buffered[0]! : Buffer.concat(buffered);
      if (message) extra = true;
      else message = all.subarray(5, 5 + need);
      const rest = all.subarray(5 + need);
      buffered = rest.length > 0 ? [rest] : [];
      bufferedBytes = rest.length;
      need = -1;
    }
  });
  stream.on('end', () => {
    if (done) return;
    if (extra) return fail(grpc.status.UNIMPLEMENTED, `Received a second request message for server streaming method ${m.path}`);
    if (!message || bufferedBytes > 0) return fail(grpc.status.UNIMPLEMENTED, `Received no request message for server streaming method ${m.path}`);
    try {
      call.request = m.deserialize(message);
    } catch (e) {
      return fail(grpc.status.INTERNAL, `Error deserializing request: ${(e as Error).message}`);
    }
    try {
      m.handler(call, (err, value) => respond(err, value));
    } catch (e) {
      respond(e, undefined);
    }
  });

  const respond = (err: unknown, value: unknown): void => {
    if (err) {
      // grpc-js's serverErrorToStatus: a numeric code with its details, else UNKNOWN and the message.
      const e = err as { code?: unknown; details?: unknown; message?: string; metadata?: grpc.Metadata };
      const numeric = typeof e.code === 'number' && Number.isInteger(e.code);
      const details = numeric && typeof e.details === 'string' ? e.details : (e.message ?? 'Unknown Error');
      return fail(numeric ? (e.code as number) : grpc.status.UNKNOWN, details, e.metadata instanceof grpc.Metadata ? e.metadata : null);
    }
    if (done || stream.destroyed || stream.closed) {
      finish();
      return;
    }
    let parts: Buffer[];
    const preEncoded = preEncodedParts(value);
    try {
      parts = preEncoded ?? [m.serialize(value)];
    } catch (e) {
      return fail(grpc.status.INTERNAL, `Error serializing response: ${(e as Error).message}`);
    }
    const length = parts.reduce((n, p) => n + p.length, 0);
    // grpc-go's send limit, as etcd sets it (and as grpc-js's path has it): a client could not
    // take more, and past 4 GiB the length prefix cannot say it.
    if (length > maxSend) return fail(grpc.status.RESOURCE_EXHAUSTED, `grpc: trying to send message larger than max (${length} vs. ${maxSend})`);
    finish();
    if (preEncoded) m.sentPreEncoded(length);
    const prefix = Buffer.allocUnsafe(5);
    prefix[0] = 0;
    prefix.writeUInt32BE(length, 1);
    stream.respond(RESPONSE_HEADERS, RESPOND);
    stream.once('wantTrailers', () => stream.sendTrailers(OK_TRAILERS));
    if (parts.length === 1) {
      // A small answer: prefix and message in one write.
      stream.end(Buffer.concat([prefix, parts[0]!]));
      return;
    }
    // A large one, slice by slice as the client reads it (never one big copy).
    stream.write(prefix);
    let i = 0;
    const pump = (): void => {
      while (i < parts.length) {
        if (stream.destroyed || stream.closed) return;
        if (i === parts.length - 1) {
          stream.end(parts[i++]!);
          return;
        }
        if (!stream.write(parts[i++]!)) {
          stream.once('drain', pump);
          return;
        }
      }
    };
    pump();
  };
}
