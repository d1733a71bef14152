// What etcd 3.4's gateway (grpc-gateway v1.9.5 behind etcd's HTTP mux) writes back: statuses,
// headers and bodies, checked against etcd 3.4.23 with curl.
//
// - a unary answer: 200, application/json, `Grpc-Metadata-Content-Type: application/grpc`;
// - a failed call: `{"error":msg,"message":msg,"code":grpcCode}` with the HTTP status of the
//   gRPC code, and the gRPC trailer as an HTTP trailer (`Grpc-Trailer-Content-Type`);
// - a body the gateway cannot read: the same shape, InvalidArgument, no trailer;
// - a stream: one `{"result":...}` line per message, and an error as
//   `{"error":{"grpc_code":..,"http_code":..,"message":..,"http_status":..}}`;
// - unknown paths and methods: Go's plain-text "Not Found" / "Method Not Allowed".

import { STATUS_CODES, type ServerResponse } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import { goString } from './jsonpb.js';

/** grpc-gateway v1's HTTPStatusFromCode. */
export function httpStatusOf(code: grpc.status): number {
  switch (code) {
    case grpc.status.OK:
      return 200;
    case grpc.status.CANCELLED:
      return 408;
    case grpc.status.UNKNOWN:
      return 500;
    case grpc.status.INVALID_ARGUMENT:
      return 400;
    case grpc.status.DEADLINE_EXCEEDED:
      return 504;
    case grpc.status.NOT_FOUND:
      return 404;
    case grpc.status.ALREADY_EXISTS:
      return 409;
    case grpc.status.PERMISSION_DENIED:
      return 403;
    case grpc.status.UNAUTHENTICATED:
      return 401;
    case grpc.status.RESOURCE_EXHAUSTED:
      return 429;
    case grpc.status.FAILED_PRECONDITION:
      return 412;
    case grpc.status.ABORTED:
      return 409;
    case grpc.status.OUT_OF_RANGE:
      return 400;
    case grpc.status.UNIMPLEMENTED:
      return 501;
    case grpc.status.INTERNAL:
      return 500;
    case grpc.status.UNAVAILABLE:
      return 503;
    case grpc.status.DATA_LOSS:
      return 500;
    default:
      return 500;
  }
}

/** A gRPC status as the gateway sees it. */
export interface CallStatus {
  code: grpc.status;
  message: string;
}

/** What a service passes to its callback or emits as 'error', as a status. */
export function statusOf(err: unknown): CallStatus {
  const e = err as { code?: unknown; details?: unknown; message?: unknown } | undefined;
  const code = typeof e?.code === 'number' ? (e.code as grpc.status) : grpc.status.UNKNOWN;
  const message = typeof e?.details === 'string' ? e.details : typeof e?.message === 'string' ? e.message : String(err);
  return { code, message };
}

const ERROR_BODY = (st: CallStatus): string => {
  const m = goString(st.message);
  return `{"error":${m},"message":${m},"code":${st.code}}`;
};

/** A unary call's answer. */
export function sendResult(res: ServerResponse, json: string): void {
  sendResultPieces(res, [Buffer.from(json, 'utf8')]);
}

/** A unary call's answer given as pieces of its JSON (a large one, encoded in slices). */
export function sendResultPieces(res: ServerResponse, body: readonly Buffer[]): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(200, {
    'Content-Type': 'application/json',
    'Grpc-Metadata-Content-Type': 'application/grpc',
    'Content-Length': body.reduce((n, b) => n + b.length, 0),
  });
  for (let i = 0; i < body.length - 1; i++) res.write(body[i]);
  res.end(body[body.length - 1]);
}

/**
 * A failed call (`fromServer`: the server answered it, so its trailer is passed on) or a
 * request the gateway refused before calling.
 */
export function sendError(res: ServerResponse, st: CallStatus, fromServer: boolean): void {
  if (res.headersSent || res.destroyed) return;
  const body = ERROR_BODY(st);
  if (fromServer) {
    res.writeHead(httpStatusOf(st.code), { 'Content-Type': 'application/json', Trailer: 'Grpc-Trailer-Content-Type' });
    res.write(body);
    res.addTrailers({ 'Grpc-Trailer-Content-Type': 'application/grpc' });
    res.end();
    return;
  }
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(httpStatusOf(st.code), { 'Content-Type': 'application/json', 'Content-Length': buf.length });
  res.end(buf);
}

/** Go's http.Error: a plain-text status line. */
export function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent || res.destroyed) return;
  const buf = Buffer.from(`${text}\n`, 'utf8');
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': buf.length });
  res.end(buf);
}

/** The headers of a streamed answer (sent with its first line, or with an error). */
function startStream(res: ServerResponse, status: number): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'Content-Type': 'application/json', 'Grpc-Metadata-Content-Type': 'application/grpc', 'Transfer-Encoding': 'chunked' });
}

/** One message of a stream; false when the client is slower than the stream (wait for 'drain'). */
export function streamLine(res: ServerResponse, json: string, cb?: () => void): boolean {
  if (res.writableEnded || res.destroyed) {
    if (cb) queueMicrotask(cb);
    return true;
  }
  startStream(res, 200);
  // The callback runs once the line is flushed, or with an error when the connection is gone.
  return cb ? res.write(`{"result":${json}}\n`, () => cb()) : res.write(`{"result":${json}}\n`);
}

/** The end of a stream: the error chunk of a failed one (no line break after it, as etcd). */
export function endStream(res: ServerResponse, st?: CallStatus): void {
  if (res.writableEnded || res.destroyed) return;
  if (st) {
    const http = httpStatusOf(st.code);
    startStream(res, http);
    res.end(
      `{"error":{"grpc_code":${st.code},"http_code":${http},"message":${goString(st.message)},"http_status":${goString(STATUS_CODES[http] ?? '')}}}`,
    );
    return;
  }
  // Ended without a message: gRPC sent no headers either (a trailers-only answer), so no
  // Grpc-Metadata-Content-Type, as etcd.
  if (!res.headersSent) res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
  res.end();
}
