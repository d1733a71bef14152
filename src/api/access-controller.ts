// etcd's accessController (embed/serve.go), in front of every HTTP/1.1 request on the client
// port (/health, /version, /metrics, the JSON gateway and its WebSockets):
//  - --host-whitelist: on a connection without TLS, a request whose Host is not listed is
//    refused with 421 and etcd's text (DNS rebinding, CVE-2018-5702); '*' or an empty list
//    allows any host. Over TLS every host is allowed.
//  - --cors: the CORS headers are added when the list allows '*' (with origin '*') or holds
//    the request's Origin (with that origin); an empty list allows any origin.
// An OPTIONS request is answered 200 after that, as etcd answers it before its mux.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { sendText } from './gateway/replies.js';

/** The headers etcd's addCORSHeader writes, but for the origin. */
const corsHeaders = (origin: string): Record<string, string> => ({
  'Access-Control-Allow-Methods': 'POST, GET, OPTIONS, PUT, DELETE',
  'Access-Control-Allow-Origin': origin,
  'Access-Control-Allow-Headers': 'accept, content-type, authorization',
});

/** etcd's errCVE20185702. */
export function rebindingRefusal(host: string): string {
  return `
etcd received your request, but the Host header was unrecognized.

To fix this, choose one of the following options:
- Enable TLS, then any HTTPS request will be allowed.
- Add the hostname you want to use to the whitelist in settings.
  - e.g. etcd --host-whitelist ${JSON.stringify(host)}

This requirement has been added to help prevent "DNS Rebinding" attacks (CVE-2018-5702).
`;
}

/** Go's httputil.GetHostname: the Host header without its port (a bracketed IPv6 unbracketed). */
export function hostnameOf(hostHeader: string): string {
  const m = /^\[([^\]]*)\]:(\d*)$/.exec(hostHeader) ?? /^([^:]*):(\d*)$/.exec(hostHeader);
  if (m) return m[1]!;
  return hostHeader;
}

export class AccessController {
  private readonly cors: ReadonlySet<string>;
  private readonly hosts: ReadonlySet<string>;

  constructor(
    cors: string[] = ['*'],
    hostWhitelist: string[] = ['*'],
    private readonly warn: (msg: string) => void = () => undefined,
  ) {
    this.cors = new Set(cors);
    this.hosts = new Set(hostWhitelist);
  }

  originAllowed(origin: string): boolean {
    return this.cors.size === 0 || this.cors.has('*') || this.cors.has(origin);
  }

  hostWhitelisted(host: string): boolean {
    return this.hosts.size === 0 || this.hosts.has('*') || this.hosts.has(host);
  }

  /** The Host of a plaintext request that is not whitelisted, or undefined if it may go on. */
  private refusedHost(req: IncomingMessage): string | undefined {
    if ((req.socket as Partial<TLSSocket>).encrypted) return undefined;
    const host = hostnameOf(req.headers.host ?? '');
    if (this.hostWhitelisted(host) || (isIP(host) === 6 && this.hostWhitelisted(`[${host}]`))) return undefined;
    this.warn(`rejecting HTTP request to prevent DNS rebinding attacks (host ${JSON.stringify(host)})`);
    return host;
  }

  /**
   * Applies the checks to a request: false when it was answered here (refused, or OPTIONS);
   * otherwise the CORS headers are set and the caller serves it.
   */
  admit(req: IncomingMessage, res: ServerResponse): boolean {
    const refused = this.refusedHost(req);
    if (refused !== undefined) {
      sendText(res, 421, rebindingRefusal(refused));
      return false;
    }
    const origin = this.cors.has('*') ? '*' : req.headers.origin;
    if (origin !== undefined && this.originAllowed(origin)) for (const [k, v] of Object.entries(corsHeaders(origin))) res.setHeader(k, v);
    if (req.method === 'OPTIONS') {
      res.writeHead(200, { 'Content-Length': 0 }).end();
      return false;
    }
    return true;
  }

  /** The same for an upgrade request (a gateway WebSocket): a refused one is answered 421 on the socket. */
  admitUpgrade(req: IncomingMessage, socket: Duplex): boolean {
    const refused = this.refusedHost(req);
    if (refused === undefined) return true;
    const body = Buffer.from(`${rebindingRefusal(refused)}\n`);
    socket.end(`HTTP/1.1 421 Misdirected Request\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.toString()}`);
    return false;
  }
}
