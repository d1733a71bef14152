// The client port: gRPC (HTTP/2, h2c or h2 over TLS) and HTTP/1.1 (health, version, metrics,
// the JSON gateway) on one listener, as etcd serves both through cmux.
//
// Each connection is classified before any HTTP code sees it:
//  - plaintext: by its first bytes — the HTTP/2 connection preface starts with "PRI", which no
//    HTTP/1.1 method does;
//  - TLS (terminated here): by the negotiated ALPN protocol (`chooseProtocol`), or by the
//    first bytes when the client negotiated none.
// HTTP/2 connections go to the grpc-js server through its connection injector (grpc-js's
// public `createConnectionInjector`), after the `:authority` check of ./h2-authority.ts;
// HTTP/1.1 connections go to a node:http server. The bytes read to classify are put back
// (`unshift`), so both servers read a native socket: no stream in between on the hot path.
// The hot unary KV methods are served on the same HTTP/2 connections by ./lean-unary.ts
// (grpc-js serves the rest).
//
// Until the member's state is current (`gate`: a restart's replay of its log), connections are
// held as they arrive, unread, and served in order once it is: no answer, not even a
// serializable read or /health, comes from a state older than what the member had already
// acknowledged. etcd holds its client listeners the same way until its ReadyNotify.

import type * as grpc from '@grpc/grpc-js';
import { ServerCredentials } from '@grpc/grpc-js';
import { type Server as HttpServer, createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { type RejectedConnection, createTlsListener } from '../util/tls-server.js';
import { type TlsSide, isHttps } from '../util/tls.js';
import { listenAt } from '../util/listen.js';
import { routeH2Connection } from './h2-authority.js';
import { type LeanMethod, withLeanUnary } from './lean-unary.js';

/** Bytes that tell HTTP/2 from HTTP/1.1: the preface's "PRI". */
const H2_SNIFF = Buffer.from('PRI', 'latin1');
/**
 * A connection not routed to a server this long after it was accepted is closed: one that sends
 * "PRI" and stops, or never completes its HTTP/2 preface, holds nothing for longer.
 */
const CLASSIFY_TIMEOUT_MS = 30_000;

/**
 * The ALPN answer: gRPC clients offer only h2 (grpcio also `grpc-exp`); HTTP clients (curl,
 * browsers) offer http/1.1 too and get it, so they reach the HTTP side — grpc-js would refuse a
 * non-gRPC request on h2. A client that offers neither is refused (Node ends the handshake with
 * a no_application_protocol alert); one that offers no ALPN at all is classified by its first
 * bytes.
 */
export function chooseProtocol(offered: string[]): string | undefined {
  if (offered.includes('http/1.1')) return 'http/1.1';
  if (offered.includes('h2')) return 'h2';
  return undefined;
}

export class ClientFrontDoor {
  private readonly listeners: NetServer[] = [];
  private readonly sockets = new Set<Socket>();
  private readonly grpcConnections: grpc.ConnectionInjector;
  /** Whether the hot unary methods are served by ./lean-unary.ts (grpc-js allowed it). */
  readonly leanUnary: boolean;
  private readonly http: HttpServer;
  private readonly rejected?: (r: RejectedConnection) => void;
  /** Unsubscribes from certificate rotations (one per TLS listener). */
  private readonly unwatch: Array<() => void> = [];
  /** Connections accepted while the gate is shut, handed on in order once it opens. */
  private held: Array<[Socket, string | undefined]> | undefined;

  constructor(
    grpcServer: grpc.Server,
    httpHandler: (req: IncomingMessage, res: ServerResponse) => void,
    /**
     * Limits of the HTTP/1.1 side: the largest request head, in bytes. `lean`: the unary methods
     * served by ./lean-unary.ts instead of grpc-js, on the same connections, and their receive
     * limit (grpc-js's own for the rest).
     */
    opts: {
      maxHeaderBytes?: number;
      lean?: { methods: Map<string, LeanMethod>; maxReceiveBytes: number; maxSendBytes?: number };
      /** Takes an HTTP/1.1 upgrade (the gateway's WebSockets), or returns false to leave it. */
      upgrade?: (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean;
      /** Connections are served once this resolves (held until then); at once without it. */
      gate?: Promise<void>;
      /** Told of a TLS client refused after its handshake (allowed hostname, CRL: cert-checks.ts). */
      rejected?: (r: RejectedConnection) => void;
    } = {},
  ) {
    if (opts.gate) {
      const held: Array<[Socket, string | undefined]> = [];
      this.held = held;
      void opts.gate.then(() => {
        this.held = undefined;
        for (const [socket, alpn] of held) if (!socket.destroyed) this.route(socket, alpn);
      });
    }
    // TLS, where there is any, ends here: grpc-js gets plaintext HTTP/2 over the TLS socket
    // (its auth context still sees the TLSSocket and the client's certificate).
    const inject = (): grpc.ConnectionInjector => grpcServer.createConnectionInjector(ServerCredentials.createInsecure());
    const lean = opts.lean && opts.lean.methods.size > 0 ? withLeanUnary(grpcServer, opts.lean.methods, opts.lean, inject) : { result: inject(), lean: false };
    this.rejected = opts.rejected;
    this.grpcConnections = lean.result;
    this.leanUnary = lean.lean;
    this.http = createHttpServer({ maxHeaderSize: opts.maxHeaderBytes }, (req, res) => {
      // Go's server writes no `Connection` header on a persistent HTTP/1.1 connection, nor on an
      // HTTP/1.0 one it closes; node:http adds `keep-alive` (or `close`) to every answer. Taking
      // the header out changes only what is written: the connection is kept or closed as before.
      // Where Go does write it — `close` to a client that asked for it — node:http does too.
      if (res.shouldKeepAlive || req.httpVersion === '1.0') res.removeHeader('Connection');
      httpHandler(req, res);
    });
    // Idle keep-alive connections stay open, as Go's server keeps them (etcd sets no idle
    // timeout): Node's default closes them after 5 s, which a pooled client (etcd3gw's
    // requests.Session) can meet as a reset when it reuses one just then.
    this.http.keepAliveTimeout = 0;
    const upgrade = opts.upgrade;
    if (upgrade) {
      // Once anyone listens, node:http hands every upgrade request here, detached from its
      // parser. One nobody takes (h2c, a WebSocket off the gateway's paths) is the plain request
      // it also is, as for Go's server: its head is put back without the upgrade, and the
      // connection goes back to the HTTP server, which reads it (and its body) as usual.
      this.http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        if (upgrade(req, socket, head)) return;
        socket.unshift(Buffer.concat([headWithoutUpgrade(req), head]));
        this.http.emit('connection', socket);
      });
    }
  }

  /** Serves `url` (http or https with `tls`); resolves with the port bound. */
  listen(url: string, tls?: TlsSide): Promise<number> {
    let server: NetServer;
    if (isHttps(url)) {
      if (!tls) throw new Error(`cannot listen on TLS for ${url}: KeyFile and CertFile are not presented`);
      const l = createTlsListener(tls, {
        alpn: chooseProtocol,
        accept: (s) => this.accept(s, s.alpnProtocol || undefined),
        rejected: this.rejected,
      });
      this.unwatch.push(l.unwatch);
      server = l.server;
    } else {
      server = createNetServer((s) => this.accept(s, undefined));
    }
    this.listeners.push(server);
    return listenAt(server, url);
  }

  /** Stops accepting and drops every connection (the gRPC server's sessions are closed by its owner). */
  close(): void {
    for (const u of this.unwatch) u();
    for (const l of this.listeners) l.close();
    for (const s of this.sockets) s.destroy();
    this.http.close();
  }

  private accept(socket: Socket, alpn: string | undefined): void {
    this.sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.sockets.delete(socket));
    socket.setNoDelay(true);
    // Nothing reads a held socket: what the client sends waits in the kernel's buffers.
    if (this.held) this.held.push([socket, alpn]);
    else this.route(socket, alpn);
  }

  /** Classifies a connection and hands it to the gRPC or the HTTP server. */
  private route(socket: Socket, alpn: string | undefined): void {
    const timer = setTimeout(() => socket.destroy(), CLASSIFY_TIMEOUT_MS);
    socket.once('close', () => clearTimeout(timer));
    this.routed.set(socket, timer);
    if (alpn === 'h2') return this.toGrpc(socket, Buffer.alloc(0));
    if (alpn === 'http/1.1') return this.toHttp(socket, Buffer.alloc(0));
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = head.length ? Buffer.concat([head, chunk]) : chunk;
      const n = Math.min(head.length, H2_SNIFF.length);
      const h2 = head.subarray(0, n).equals(H2_SNIFF.subarray(0, n));
      if (h2 && head.length < H2_SNIFF.length) return; // too short to tell yet
      socket.removeListener('data', onData);
      socket.pause();
      if (h2) this.toGrpc(socket, head);
      else this.toHttp(socket, head);
    };
    socket.on('data', onData);
  }

  /** Per connection still being classified: its timeout (cleared once a server has it). */
  private readonly routed = new WeakMap<Socket, NodeJS.Timeout>();

  private handedOver(socket: Socket): void {
    clearTimeout(this.routed.get(socket));
  }

  private toGrpc(socket: Socket, head: Buffer): void {
    if (head.length === 0) {
      // ALPN said h2: read the start of the connection first, as for plaintext.
      socket.once('data', (chunk: Buffer) => {
        socket.pause();
        this.toGrpc(socket, chunk);
      });
      return;
    }
    routeH2Connection(socket, head, (route) => {
      this.handedOver(socket);
      this.grpcConnections.injectConnection(route.kind === 'native' ? socket : route.stream);
    });
  }

  private toHttp(socket: Socket, head: Buffer): void {
    this.handedOver(socket);
    if (head.length) socket.unshift(head);
    this.http.emit('connection', socket);
    socket.resume();
  }
}

/** A request's head as it came (raw header names and order), less what asked for the upgrade. */
function headWithoutUpgrade(req: IncomingMessage): Buffer {
  let head = `${req.method} ${req.url} HTTP/${req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    let value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (lower === 'upgrade') continue;
    if (lower === 'connection') {
      value = value.split(',').map((t) => t.trim()).filter((t) => t !== '' && t.toLowerCase() !== 'upgrade').join(', ');
      if (value === '') continue;
    }
    head += `${name}: ${value}\r\n`;
  }
  return Buffer.from(`${head}\r\n`, 'latin1');
}
