// One HTTP request's call to a service method: reads the body (whole for unary and
// server-streaming methods, message by message for client streams), turns it into the
// request(s), calls the implementation with a call object (./calls.ts) and writes the answer
// (./replies.ts). Streams keep etcd's half-close behaviour (see below); nothing thrown in an
// event handler escapes to the process.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import * as grpc from '@grpc/grpc-js';
import { ServiceCall, metadataOf } from './calls.js';
import { type GoJson, GoJsonSyntaxError, decodeNext } from './go-json.js';
import { JsonpbError, decodeMessage, emptyMessage, encodeMessage, encodeMessageInSlices } from './jsonpb.js';
import { type CallStatus, endStream, sendError, sendResult, sendResultPieces, statusOf, streamLine } from './replies.js';
import type { MethodSchema } from './schema.js';
import type { CountingDeserializer, CountingSerializer } from '../grpc-metrics.js';
import { preEncodedParts } from '../sliced-encoding.js';
import { yieldToEventLoop } from '../../util/yield.js';
import { receivedTooLargeText } from '../receive-limit-text.js';

/** A method the gateway can call: its gRPC definition, implementation and message schemas. */
export interface Target {
  def: grpc.MethodDefinition<unknown, unknown>;
  impl: (...args: unknown[]) => unknown;
  schema: MethodSchema;
}

/**
 * etcd's Watch server goes on after the client half-closes (its receive loop returns, the
 * stream lives until the client leaves), and the gateway half-closes as soon as the body is
 * read: so a watch is not told the body ended. Other streams are (LeaseKeepAlive answers what
 * it was sent, then ends).
 */
const IGNORES_HALF_CLOSE = new Set(['/etcdserverpb.Watch/Watch']);

/**
 * etcd's LeaseKeepAlive answers each request before it reads the next, so the gateway's
 * half-close reaches it after the last answer. raftkv's answers a follower's keepalives through
 * the leader, asynchronously, and ends the stream at the half-close: so the half-close is
 * passed on once every request has its answer (else a keepalive sent to a follower would get
 * an empty 200).
 */
const HALF_CLOSE_AFTER_ANSWERS = new Set(['/etcdserverpb.Lease/LeaseKeepAlive']);

const MAX_TIMER_MS = 2 ** 31 - 1;
/** A call whose `Grpc-Timeout` passed, as Go's context reports it. */
const DEADLINE_PASSED: CallStatus = { code: grpc.status.DEADLINE_EXCEEDED, message: 'context deadline exceeded' };
const TIMEOUT_UNIT_NS: Record<string, bigint> = { H: 3_600_000_000_000n, M: 60_000_000_000n, S: 1_000_000_000n, m: 1_000_000n, u: 1000n, n: 1n };

/**
 * grpc-gateway's timeoutDecode: an integer (strconv.ParseInt) and a unit (H M S m u n), as Go's
 * time.Duration — in nanoseconds, wrapping at 64 bits as Go's multiplication does; undefined if
 * it cannot be read. 0 is no deadline; a negative one has passed already.
 */
export function grpcTimeoutNs(v: string): bigint | undefined {
  if (v.length < 2) return undefined;
  const unit = TIMEOUT_UNIT_NS[v[v.length - 1]!];
  const n = v.slice(0, -1);
  if (unit === undefined || !/^[+-]?\d+$/.test(n)) return undefined;
  const big = BigInt(n);
  if (big > 2n ** 63n - 1n || big < -(2n ** 63n)) return undefined;
  return BigInt.asIntN(64, big * unit);
}

/** One HTTP request's call: reads the body, calls the method, writes the answer. */
export class CallRunner {
  private readonly decoder = new StringDecoder('utf8');
  private text = '';
  private parsed = 0;
  private bodyBytes = 0;
  private overflow = false;
  private call: ServiceCall | undefined;
  private finished = false;
  /** The client's deadline from `Grpc-Timeout` (Date.now() ms), and its timer. */
  private deadline: number | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly req: IncomingMessage,
    private readonly res: ServerResponse,
    private readonly target: Target,
    private readonly grpcPath: string,
    private readonly maxMessage: number,
    private readonly maxBody: number,
  ) {}

  start(): void {
    const streamingRequest = this.target.def.requestStream;
    // grpc-gateway's AnnotateContext: the call's deadline, or a 400 for a value it cannot read.
    const timeout = this.req.headers['grpc-timeout'];
    const ns = typeof timeout === 'string' && timeout !== '' ? grpcTimeoutNs(timeout) : 0n;
    if (ns === undefined || ns < 0n) {
      // Unreadable, or a deadline already past: the call is never made (etcd: 400, or 504 at once).
      this.finished = true;
      this.req.resume();
      const st =
        ns === undefined
          ? { code: grpc.status.INVALID_ARGUMENT, message: `invalid grpc-timeout: ${String(timeout)}` }
          : DEADLINE_PASSED;
      return sendError(this.res, st, false);
    }
    const ms = Number(ns) / 1e6;
    // Beyond a timer's range (~24.8 days) it is as good as none.
    if (ns > 0n && ms <= MAX_TIMER_MS) {
      this.deadline = Date.now() + ms;
      this.deadlineTimer = setTimeout(() => this.guarded(() => this.deadlineExceeded()), ms);
      this.res.once('close', () => clearTimeout(this.deadlineTimer));
    }
    this.req.on('data', (chunk: Buffer) => {
      if (this.overflow) {
        if (!streamingRequest) this.bodyBytes += chunk.length; // for the size in the error
        return;
      }
      // A unary body is kept whole; a stream's only until its messages are read off.
      this.bodyBytes = streamingRequest ? this.text.length - this.parsed + chunk.length : this.bodyBytes + chunk.length;
      if (this.bodyBytes > this.maxBody) {
        this.overflow = true;
        this.text = '';
        this.parsed = 0;
        // A stream's message this large can only fail the stream (gRPC's limit), as it is.
        if (streamingRequest) this.guarded(() => this.failStream(this.tooLarge(this.bodyBytes)));
        return;
      }
      this.text += this.decoder.write(chunk);
      if (streamingRequest) this.guarded(() => this.pump(false));
    });
    this.req.on('end', () => {
      this.bodyEnded = true;
      if (streamingRequest && this.overflow) return;
      this.text += this.decoder.end();
      this.guarded(() => (streamingRequest ? this.pump(true) : this.unaryOrServerStream()));
    });
    this.req.on('error', () => this.clientGone());
    if (streamingRequest) this.open(undefined);
  }

  /**
   * Runs `f` from an event handler: whatever it throws (a service failing in its 'data'
   * handler, an answer that cannot be written) ends this call with INTERNAL, never the process.
   */
  private guarded(f: () => void): void {
    try {
      f();
    } catch (e) {
      const st = { code: grpc.status.INTERNAL, message: (e as Error)?.message ?? String(e) };
      const streamed = this.target.def.requestStream || this.target.def.responseStream;
      this.finished = true;
      this.call?.cancel();
      if (streamed && this.res.headersSent) endStream(this.res, st);
      else sendError(this.res, st, false);
    }
  }

  /**
   * The deadline passed first: the call is cancelled and answered as a gRPC client's own
   * deadline fails it (no trailers from the server).
   */
  private deadlineExceeded(): void {
    if (this.finished) return;
    this.finished = true;
    this.call?.cancel();
    if (this.target.def.requestStream || this.target.def.responseStream) endStream(this.res, DEADLINE_PASSED);
    else sendError(this.res, DEADLINE_PASSED, false);
  }

  /**
   * Ends a streaming call with `st` (the service is told the client went away): the stream's
   * error object, after what was sent, as etcd's gateway writes a stream its member failed
   * (a first message too large is a 429 with that body, not a unary call's error).
   */
  private failStream(st: CallStatus): void {
    if (this.finished) return;
    this.finished = true;
    this.call?.cancel();
    endStream(this.res, st);
  }

  /** The client closed the connection before the answer was complete. */
  clientGone(): void {
    if (this.res.writableFinished) return;
    this.finished = true;
    this.call?.cancel();
  }

  private tooLarge(size: number): CallStatus {
    return { code: grpc.status.RESOURCE_EXHAUSTED, message: receivedTooLargeText(size, this.maxMessage) };
  }

  /** The request as the method's message, or the status refusing it. */
  private toRequest(v: GoJson | undefined): { request: unknown; size?: number } | { error: CallStatus; fromServer: boolean } {
    let request: Record<string, unknown> | undefined;
    try {
      request = v === undefined ? undefined : decodeMessage(this.target.schema.request, v);
    } catch (e) {
      if (e instanceof JsonpbError) return { error: { code: grpc.status.INVALID_ARGUMENT, message: e.message }, fromServer: false };
      throw e;
    }
    request ??= emptyMessage(this.target.schema.request);
    // Only a large body can be over the limit; measure its binary form as gRPC would.
    if (v && v.raw.length > this.maxMessage) {
      const size = this.target.def.requestSerialize(request).length;
      if (size > this.maxMessage) return { error: this.tooLarge(size), fromServer: true };
      return { request, size };
    }
    return { request };
  }

  /** Unary and server-streaming methods: the whole body is the one request. */
  private unaryOrServerStream(): void {
    if (this.finished) return;
    if (this.overflow) return sendError(this.res, this.tooLarge(this.bodyBytes), true);
    let first: { value: GoJson; end: number } | undefined;
    try {
      first = decodeNext(this.text, 0);
    } catch (e) {
      if (e instanceof GoJsonSyntaxError) return sendError(this.res, { code: grpc.status.INVALID_ARGUMENT, message: e.message }, false);
      throw e;
    }
    const r = this.toRequest(first?.value);
    if ('error' in r) return sendError(this.res, r.error, r.fromServer);
    if (this.target.def.responseStream) {
      this.open(r.request, r.size);
      return;
    }
    const call = new ServiceCall(metadataOf(this.req), this.req.socket, this.grpcPath);
    if (this.deadline !== undefined) call.setDeadline(this.deadline);
    call.request = r.request;
    this.call = call;
    this.countRequest(r.request, r.size);
    this.target.impl(call, (err: unknown, response: unknown) =>
      this.guarded(() => {
        if (this.finished) return;
        if (err) {
          this.finished = true;
          return sendError(this.res, statusOf(err), true);
        }
        this.countResponse(response);
        this.finished = true;
        if (preEncodedParts(response)) {
          // A large answer (its protobuf was encoded in slices too: ../sliced-encoding.ts).
          encodeMessageInSlices(this.target.schema.response, response as object, yieldToEventLoop).then(
            (pieces) => sendResultPieces(this.res, pieces),
            (e: unknown) => sendError(this.res, { code: grpc.status.INTERNAL, message: (e as Error)?.message ?? String(e) }, false),
          );
          return;
        }
        sendResult(this.res, encodeMessage(this.target.schema.response, response as object));
      }),
    );
  }

  /** Starts a streaming method; its answers go out line by line. */
  private open(request: unknown, size?: number): void {
    const res = this.res;
    const call = new ServiceCall(metadataOf(this.req), this.req.socket, this.grpcPath, {
      write: (msg, cb) => {
        if (this.finished) {
          if (cb) queueMicrotask(cb);
          return true;
        }
        // Called from the service's own callbacks (a watch delivering events): never throws.
        let json: string;
        try {
          json = encodeMessage(this.target.schema.response, msg as object);
        } catch (e) {
          this.finished = true;
          endStream(res, { code: grpc.status.INTERNAL, message: (e as Error)?.message ?? String(e) });
          queueMicrotask(() => this.call?.cancel());
          if (cb) queueMicrotask(cb);
          return true;
        }
        this.answers++;
        this.countResponse(msg);
        const more = streamLine(res, json, cb);
        if (this.endDeferred && this.answers >= this.requestsSent) queueMicrotask(() => this.passHalfClose());
        return more;
      },
      end: () => {
        if (this.finished) return;
        this.finished = true;
        endStream(res);
      },
      fail: (status) => {
        if (this.finished) return;
        this.finished = true;
        endStream(res, statusOf(status));
      },
      // A service that cannot send (its client does not read) stops taking messages: neither
      // those already in the body read so far (pump) nor more from the connection (flow control
      // then holds the client back, as etcd's gateway, a gRPC client of its member, is held).
      pause: () => {
        if (this.paused) return;
        this.paused = true;
        this.req.pause();
      },
      resume: () => {
        if (!this.paused) return;
        this.paused = false;
        this.req.resume();
        queueMicrotask(() => this.guarded(() => this.pump(this.bodyEnded)));
      },
    });
    if (this.deadline !== undefined) call.setDeadline(this.deadline);
    res.on('drain', () => call.emit('drain'));
    call.request = request;
    this.call = call;
    if (!this.target.def.requestStream) this.countRequest(request, size);
    this.target.impl(call);
  }

  /**
   * etcd's gateway is a gRPC client of its own member, so its messages are counted as gRPC's
   * (etcd_network_client_grpc_*_bytes_total, grpc_server_msg_*_total): here by the size of their
   * protobuf encoding (src/api/grpc-metrics.ts).
   */
  private countRequest(request: unknown, size?: number): void {
    const count = (this.target.def.requestDeserialize as CountingDeserializer).countReceived;
    // A large body was measured already (toRequest): not encoded a second time.
    if (count) count(size ?? this.target.def.requestSerialize(request).length);
  }

  private countResponse(response: unknown): void {
    const serialize = this.target.def.responseSerialize as CountingSerializer;
    if (!serialize.countSent) return;
    const parts = preEncodedParts(response);
    // A large answer encoded in slices is counted by their sizes (never joined for this); any
    // other is encoded, which counts it.
    if (parts) serialize.countSent(parts.reduce((n, p) => n + p.length, 0));
    else serialize(response);
  }

  /**
   * A streaming request body: every complete JSON value in it is one message (grpc-gateway
   * decodes the body as a stream of values). A bad first message fails the call (Unknown, as
   * etcd's gateway answers); a bad later one ends the requests, as the end of the body does.
   */
  private pump(atEnd: boolean): void {
    const call = this.call!;
    if (this.finished || this.halfClosed) return;
    for (;;) {
      if (this.paused) return;
      let next: { value: GoJson; end: number } | undefined;
      let error: CallStatus | undefined;
      try {
        next = decodeNext(this.text, this.parsed);
      } catch (e) {
        if (!(e instanceof GoJsonSyntaxError)) throw e;
        if (e.eof && !atEnd) return; // the rest of the value is still to come
        error = { code: grpc.status.UNKNOWN, message: e.message };
      }
      if (next) {
        const r = this.toRequest(next.value);
        // Refused by the server (gRPC's receive limit), first message or not: the member fails
        // the stream, and etcd's gateway writes that error and ends the body.
        if ('error' in r && r.fromServer) return this.failStream(r.error);
        if ('error' in r) error = { code: grpc.status.UNKNOWN, message: r.error.message };
        else {
          this.parsed = next.end;
          // Keep what is left only: a long-lived stream's body does not grow without bound.
          if (this.parsed > 65536) {
            this.text = this.text.slice(this.parsed);
            this.parsed = 0;
          }
          this.requestsSent++;
          this.countRequest(r.request, r.size);
          call.emit('data', r.request);
          if (this.finished) return;
          continue;
        }
      }
      if (error) {
        if (this.requestsSent === 0) {
          // The first message could not be read: the call fails (and the stream is dropped).
          this.finished = true;
          call.cancel();
          sendError(this.res, error, false);
          return;
        }
        this.halfClose();
        return;
      }
      if (atEnd) this.halfClose();
      return;
    }
  }

  private requestsSent = 0;
  private answers = 0;
  /** The service paused the client's messages (ServiceCall.pause): none are passed on. */
  private paused = false;
  /** The request body has ended (its last messages may still wait in `text` while paused). */
  private bodyEnded = false;
  private halfClosed = false;
  /** The half-close waits for answers still to come (HALF_CLOSE_AFTER_ANSWERS). */
  private endDeferred = false;

  private halfClose(): void {
    if (this.halfClosed) return;
    this.halfClosed = true;
    // Whatever follows a bad message is ignored, as etcd's gateway stops reading there.
    this.text = '';
    this.parsed = 0;
    if (IGNORES_HALF_CLOSE.has(this.grpcPath)) return;
    if (HALF_CLOSE_AFTER_ANSWERS.has(this.grpcPath) && this.answers < this.requestsSent) {
      this.endDeferred = true;
      return;
    }
    this.passHalfClose();
  }

  private endPassed = false;

  private passHalfClose(): void {
    this.endDeferred = false;
    if (this.endPassed || this.finished) return;
    this.endPassed = true;
    this.call?.emit('end');
  }
}
