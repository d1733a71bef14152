// etcd's WebSocket front of the JSON gateway (tmc/grpc-websocket-proxy's wsproxy, which etcd
// 3.4 puts before every /v3/ route): a browser, which cannot stream a request body, opens a
// WebSocket on a gateway path and talks to the route as if over one long POST — each message it
// sends is a line of the request body, each line of the answer comes back as a text message.
// A Watch over a WebSocket is thus a live stream of creates and cancels one way and events the
// other.
//
// What wsproxy does, and so this: the request is a POST to the same path and query, carrying only
// the Origin and Referer headers, and an Authorization made from a "Bearer, <token>" subprotocol
// (answered with the "Bearer" subprotocol) or a `token` cookie ("Bearer <value>"). The answer's
// status and headers are dropped: the client sees the lines (an error is its JSON line). When the
// route's answer ends the connection is closed; when the client closes it, the call is
// cancelled. A unary route reads one message (grpc-gateway decodes one JSON value and does not
// wait for the body to end); a streaming one (Watch, LeaseKeepAlive) every message until the
// client closes.

import { PassThrough, Writable } from 'node:stream';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import type { WebSocket } from 'ws';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** wsproxy's transformSubProtocolHeader: "Bearer, <token>" → "Bearer <token>" (else ""). */
function authorizationOf(subprotocols: string): string {
  const i = subprotocols.indexOf('Bearer,');
  return i < 0 ? '' : `Bearer ${subprotocols.slice(i + 'Bearer,'.length).trim()}`;
}

/** A cookie's value (Go's r.Cookie: the first one of that name). */
function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}

/** The headers wsproxy passes on to the route, as raw [name, value, ...] pairs. */
function forwardedHeaders(req: IncomingMessage): string[] {
  const raw: string[] = [];
  for (const name of ['Origin', 'Referer']) {
    const v = req.headers[name.toLowerCase()];
    if (typeof v === 'string') raw.push(name, v);
  }
  let auth: string | undefined;
  const protocols = req.headers['sec-websocket-protocol'];
  if (typeof protocols === 'string' && protocols !== '') auth = authorizationOf(protocols);
  const token = cookie(req.headers.cookie, 'token');
  if (token !== undefined) auth = `Bearer ${token}`;
  if (auth !== undefined) raw.push('Authorization', auth);
  return raw;
}

/** The subprotocol wsproxy answers: "Bearer" when the client's list starts with it. */
export function chooseSubprotocol(req: IncomingMessage): string | false {
  return (req.headers['sec-websocket-protocol'] ?? '').startsWith('Bearer') ? 'Bearer' : false;
}

/**
 * The route's answer, line by line into text messages. A Writable, so that the gateway's
 * backpressure (write() false, then 'drain') follows the WebSocket's: a line's write completes
 * when the socket took it.
 */
class LinesToMessages extends Writable {
  headersSent = false;
  statusCode = 200;
  private readonly decoder = new StringDecoder('utf8');
  private partial = '';

  constructor(private readonly ws: WebSocket) {
    super({ decodeStrings: false });
  }

  // What the gateway calls on a ServerResponse; the status and headers go nowhere (wsproxy).
  setHeader(): this {
    return this;
  }
  writeHead(status: number): this {
    this.statusCode = status;
    this.headersSent = true;
    return this;
  }
  addTrailers(): void {}

  override _write(chunk: Buffer | string, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.headersSent = true;
    const lines = (this.partial + (typeof chunk === 'string' ? chunk : this.decoder.write(chunk))).split('\n');
    this.partial = lines.pop()!;
    this.send(lines, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    // An error chunk ends without a line break; it is a message too.
    const last = this.partial + this.decoder.end();
    this.send(last ? [last] : [], (e) => {
      this.ws.close(1000);
      cb(e);
    });
  }

  private send(lines: string[], cb: (e?: Error | null) => void): void {
    const out = lines.filter((l) => l.length > 0);
    if (out.length === 0 || this.ws.readyState !== this.ws.OPEN) return cb();
    out.forEach((l, i) => this.ws.send(l, i === out.length - 1 ? (e?: Error) => cb(e ?? null) : undefined));
  }
}

/** Runs one gateway route over `ws` (the upgrade `req` was accepted for it). */
export function serveWebSocket(ws: WebSocket, req: IncomingMessage, streamingRequest: boolean, handler: Handler): void {
  const rawHeaders = forwardedHeaders(req);
  const headers: Record<string, string> = {};
  for (let i = 0; i < rawHeaders.length; i += 2) headers[rawHeaders[i]!.toLowerCase()] = rawHeaders[i + 1]!;
  const body = Object.assign(new PassThrough(), { method: 'POST', url: req.url, headers, rawHeaders, socket: req.socket, httpVersion: '1.1' });
  const res = new LinesToMessages(ws);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (body.writableEnded) return;
    body.write(isBinary ? data : data.toString('utf8'));
    // The gateway stopped reading (its service cannot send): stop reading the socket too, so
    // that the client is held back by TCP rather than its messages queued here.
    if (!body.write('\n') && !ws.isPaused) {
      ws.pause();
      body.once('drain', () => ws.resume());
    }
    if (!streamingRequest) body.end();
  });
  ws.on('close', () => {
    if (!body.writableEnded) body.end();
    if (!res.writableFinished) res.destroy();
  });
  ws.on('error', () => ws.terminate());
  handler(body as unknown as IncomingMessage, res as unknown as ServerResponse);
}
