// etcd's JSON gateway (grpc-gateway, as etcd 3.4 serves it on the client port): HTTP/1.1 POSTs
// under /v3/ (and /v3beta/) with JSON bodies, answered by the same service implementations
// gRPC clients reach, called in process by their gRPC method path. Routes: ./routes.ts; JSON:
// ./jsonpb.ts on the proto schema (./schema.ts); one request's call: ./call-runner.ts (call
// objects: ./calls.ts); what is written back: ./replies.ts. Every shape, status and error text
// is etcd 3.4.23's (checked with curl).
//
// Nothing a client sends can throw out of the handler: a bad body is a 400 with Go's message,
// an unexpected failure a 500.
//
// The schema (built from the description generated with the code, ./schema.ts, a few ms) is
// loaded when the first JSON request comes, or when the member calls warm() once it has replayed
// its log — not before the member serves: a restarted member's first gRPC read waits for nothing
// of the JSON gateway's.

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { posix } from 'node:path';
import type { TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { WebSocketServer } from 'ws';
import type { EtcdServer } from '../../server/etcd-server.js';
import { type ClientService, GRPC_OVERHEAD_BYTES } from '../client-server.js';
import { CallRunner, type Target } from './call-runner.js';
import { sendError, sendText } from './replies.js';
import { GATEWAY_ROUTES } from './routes.js';
import { chooseSubprotocol, serveWebSocket } from './websocket.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The gateway's HTTP handler; warm(): load the schema now rather than at the first request;
 * upgrade(): takes a WebSocket upgrade on a gateway path (./websocket.ts, etcd's wsproxy),
 * false for any other upgrade (the caller serves it as the plain request it also is).
 */
export interface Gateway extends Handler {
  warm(): Promise<void>;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
}

/** etcd's refusal of a TLS client certificate with a CommonName at the gateway under auth. */
const GATEWAY_CN_REFUSED = 'CommonName of client sending a request against gateway will be ignored and not used as expected';

export function createGateway(s: EtcdServer, services: ClientService[]): Gateway {
  let targets: Map<string, Target> | undefined;
  let loading: Promise<void> | undefined;
  const load = (): Promise<void> =>
    (loading ??= import('./schema.js').then(({ apiSchema }) => {
      const schema = apiSchema();
      const found = new Map<string, Target>();
      for (const [def, impl] of services) {
        for (const [name, m] of Object.entries(def as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
          const h = (impl as Record<string, unknown>)[name];
          const ms = schema.method(m.path);
          if (typeof h === 'function' && ms) found.set(m.path, { def: m, impl: h as Target['impl'], schema: ms });
        }
      }
      targets = found;
    }));
  /** What the gRPC server accepts (etcd's gateway passes bodies on to it: the same limit). */
  const maxMessage = s.cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES;
  // A body's binary form is smaller than its JSON; past this much JSON stop keeping it.
  const maxBody = 4 * maxMessage + 1024 * 1024;

  // (CORS headers and OPTIONS: the access controller in front, ../access-controller.ts.)
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://gateway').pathname);
    } catch {
      return sendText(res, 400, 'Bad Request');
    }
    path = v3Path(path);
    // (An unclean path never gets here: the client port's mux redirects it, as Go's does.)
    const grpcPath = GATEWAY_ROUTES.get(path);
    if (grpcPath === undefined) return sendText(res, 404, 'Not Found');
    if (req.method !== 'POST') return sendText(res, 405, 'Method Not Allowed');
    if (cnRefused(s, req)) return sendText(res, 400, GATEWAY_CN_REFUSED);
    if (!targets) {
      // The first JSON request (before warm()): it waits for the schema. Its body is not read
      // meanwhile (no 'data' listener yet: the stream buffers, and TCP pushes back).
      load()
        .then(() => serve(req, res, grpcPath, targets!))
        .catch((e: unknown) => fail(res, e));
      return;
    }
    serve(req, res, grpcPath, targets);
  };

  const serve = (req: IncomingMessage, res: ServerResponse, grpcPath: string, targets: Map<string, Target>): void => {
    const target = targets.get(grpcPath);
    if (!target) {
      // Not served by this member: what gRPC answers for a service it does not have.
      req.resume();
      return sendError(res, { code: grpc.status.UNIMPLEMENTED, message: `unknown service ${grpcPath.split('/')[1]}` }, true);
    }
    const call = new CallRunner(req, res, target, grpcPath, maxMessage, maxBody);
    res.on('close', () => call.clientGone());
    call.start();
  };

  const fail = (res: ServerResponse, e: unknown): void => {
    s.logger.warn(`gateway request failed: ${(e as Error)?.stack ?? String(e)}`);
    sendError(res, { code: grpc.status.INTERNAL, message: (e as Error)?.message ?? String(e) }, false);
  };

  const gateway = (req: IncomingMessage, res: ServerResponse): void => {
    try {
      handle(req, res);
    } catch (e) {
      fail(res, e);
    }
  };

  // Routes whose request is a stream (Watch, LeaseKeepAlive): over a WebSocket they read every
  // message, the others only the first.
  const streamingRequests = new Set<string>();
  for (const [def] of services) {
    for (const m of Object.values(def as Record<string, grpc.MethodDefinition<unknown, unknown>>)) if (m.requestStream) streamingRequests.add(m.path);
  }
  let wss: WebSocketServer | undefined;
  const upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean => {
    if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://gateway').pathname;
    } catch {
      return false;
    }
    path = v3Path(path);
    if (!path.startsWith('/v3/')) return false;
    const grpcPath = GATEWAY_ROUTES.get(posix.normalize(path));
    // ws's limit on one message: the largest body the gateway takes.
    wss ??= new WebSocketServer({ noServer: true, maxPayload: maxBody, handleProtocols: (_offered, r) => chooseSubprotocol(r) });
    wss.handleUpgrade(req, socket, head, (ws) => serveWebSocket(ws, req, grpcPath !== undefined && streamingRequests.has(grpcPath), gateway));
    return true;
  };
  return Object.assign(gateway, { warm: load, upgrade });
}

/** /v3beta/ is /v3/ (etcd rewrites it before routing). */
function v3Path(path: string): string {
  return path.startsWith('/v3beta/') ? `/v3/${path.slice('/v3beta/'.length)}` : path;
}

function cnRefused(s: EtcdServer, req: IncomingMessage): boolean {
  const socket = req.socket as TLSSocket;
  if (typeof socket.getPeerCertificate !== 'function' || !socket.authorized) return false;
  if (!s.cfg.tls?.client?.clientCertAuth || !s.sm.auth.enabled) return false;
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn.length > 0 : Array.isArray(cn) && cn.length > 0;
}

