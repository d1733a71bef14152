// The call objects the gateway (and the lean unary path, ../lean-unary.ts) hand to the gRPC
// service implementations, in place of grpc-js's server calls: the services run unchanged, in
// process (etcd's gateway dials its own gRPC port; the answers are the same, without the
// loopback connection).
//
// What the services use of a grpc-js call: `request`, `metadata`, `getAuthContext()` (the TLS
// peer certificate, for --client-cert-auth), `cancelled` and the 'cancelled' event (the client
// went away), and for streams write(msg, cb)/end(), 'data'/'end' events from the client,
// pause()/resume() of those, 'drain', and emit('error', status) to fail the stream. The write
// callback and pause/resume are what a service's backpressure rests on (a watch stream counts
// its responses in flight by the callbacks; a keepalive stream stops reading while its answers
// wait): without them a client that does not read made the member queue without bound.

import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

/** grpc-gateway's incoming header mapping: `Authorization` as is, `Grpc-Metadata-X` as `x`. */
export function metadataOf(req: IncomingMessage): grpc.Metadata {
  const md = new grpc.Metadata();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!.toLowerCase();
    const value = raw[i + 1]!;
    let key: string | undefined;
    if (name === 'authorization') key = 'authorization';
    else if (name.startsWith('grpc-metadata-') && name.length > 'grpc-metadata-'.length) key = name.slice('grpc-metadata-'.length);
    if (key === undefined || key.endsWith('-bin')) continue;
    try {
      md.add(key, value);
    } catch {
      /* a key gRPC would not carry */
    }
  }
  return md;
}

/** The verified client certificate of a connection, as grpc-js's getAuthContext() gives it. */
export function tlsAuthContext(socket: unknown): { transportSecurityType?: string; sslPeerCertificate?: PeerCertificate } {
  const tls = socket as TLSSocket | undefined;
  if (!tls || typeof tls.getPeerCertificate !== 'function') return {};
  const cert = tls.authorized ? tls.getPeerCertificate() : undefined;
  return { transportSecurityType: 'ssl', sslPeerCertificate: cert && Object.keys(cert).length > 0 ? cert : undefined };
}

/** The client connection a call came in on (a socket, or an HTTP/2 session's view of one). */
export type CallConnection = { remoteAddress?: string; remotePort?: number } | undefined;

/**
 * A server call of any kind (unary, server streaming or bidirectional), as raftkv's own front
 * ends hand it to the service implementations in grpc-js's place: the JSON gateway, and the
 * lean unary path (../lean-unary.ts).
 */
export class ServiceCall extends EventEmitter {
  cancelled = false;
  request: unknown;
  private deadline = Infinity;

  constructor(
    readonly metadata: grpc.Metadata,
    private readonly connection: CallConnection,
    private readonly path: string,
    /** Where a streaming call's messages, end and failure go, and how the client's messages are held back. */
    private readonly sink?: {
      write(msg: unknown, cb?: () => void): boolean;
      end(): void;
      fail(status: unknown): void;
      pause?(): void;
      resume?(): void;
    },
  ) {
    super();
    // A service fails a stream by emitting 'error' with its status (grpc-js then ends it).
    this.on('error', (status: unknown) => this.sink?.fail(status));
  }

  /** The verified client certificate of a TLS connection, as grpc-js's getAuthContext() gives it. */
  getAuthContext(): ReturnType<typeof tlsAuthContext> {
    return tlsAuthContext(this.connection);
  }

  getPeer(): string {
    return this.connection ? `${this.connection.remoteAddress ?? ''}:${this.connection.remotePort ?? ''}` : 'unknown';
  }

  getPath(): string {
    return this.path;
  }

  getDeadline(): number {
    return this.deadline;
  }

  /** The client's deadline (grpc-timeout), in Date.now() milliseconds. */
  setDeadline(ms: number): void {
    this.deadline = ms;
  }

  sendMetadata(): void {
    /* headers are written with the first answer */
  }

  /** Sends a message; `cb` runs once the transport has taken it (or it was dropped: the call ended). */
  write(msg: unknown, cb?: () => void): boolean {
    if (this.sink) return this.sink.write(msg, cb);
    if (cb) queueMicrotask(cb);
    return true;
  }

  /** Stops passing the client's messages on ('data') until resume(). */
  pause(): void {
    this.sink?.pause?.();
  }

  resume(): void {
    this.sink?.resume?.();
  }

  end(): void {
    this.sink?.end();
    // What a grpc-js stream emits when it ends well (per-call metrics listen for it).
    this.emit('finish');
  }

  /** The client went away: what grpc-js does when a call is cancelled. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}
