// The HTTP/1.1 side of the client port, as etcd serves it next to gRPC: /version, /health,
// /livez, /readyz, /metrics, and the JSON gateway under /v3/ and /v3beta/ (src/api/gateway/).
//
// Bodies, statuses and headers are etcd's (checked against etcd 3.4.23 on this machine):
// every request passes etcd's access controller first (./access-controller.ts: --host-whitelist,
// the CORS headers of --cors, OPTIONS); unknown paths get Go's "404 page not found".
// /debug/vars is Go's expvar as etcd fills it (./debug-vars.ts).
// /livez and /readyz are etcd 3.5's (3.4 has none): Kubernetes-style "ok", with `?verbose`
// listing the checks.

import type { IncomingMessage, ServerResponse } from 'node:http';
import { posix } from 'node:path';
import { AlarmType } from '../gen/etcd/rpc.js';
import { alarmName } from '../server/alarms.js';
import { API_VERSION, type EtcdServer } from '../server/etcd-server.js';
import type { ZapLevel } from '../util/log.js';
import { requestUrl } from '../util/url.js';
import { AccessController } from './access-controller.js';
import { sendText } from './gateway/replies.js';
import { debugVars } from './debug-vars.js';

/** How long /health and /readyz wait for a linearizable read (etcd's health check: 1 s). */
export const HEALTH_READ_TIMEOUT_MS = 1000;


type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** The member's access controller (--cors, --host-whitelist), refusals logged as etcd logs them. */
export function accessControllerOf(s: EtcdServer): AccessController {
  return new AccessController(s.cfg.cors, s.cfg.hostWhitelist, (msg) => s.logger.warn(msg));
}

/**
 * The request handler of the client port's HTTP/1.1 connections. `gateway`: the JSON gateway
 * (absent with --enable-grpc-gateway=false: its paths are then unknown, as in etcd).
 */
export function httpEndpoints(s: EtcdServer, gateway: Handler | undefined, access = accessControllerOf(s)): Handler {
  return (req, res) => {
    if (!access.admit(req, res)) return;
    const url = requestUrl(req.url);
    if (!url) return text(res, 400, 'Bad Request\n');
    const path = url.pathname;
    // Go's ServeMux (etcd answers OPTIONS before it): an unclean path (`//`, `.`, `..`, also
    // percent-encoded) is sent to its clean form, escaped as Go escapes a path, and the bare `/v3`
    // to its subtree. The path as sent is what is checked: the URL parser has already cleaned
    // `.` and `..` out of `url`.
    if (req.method !== 'OPTIONS') {
      const sent = goUnescape((req.url ?? '/').split('?')[0]!);
      if (sent === undefined) return text(res, 400, 'Bad Request\n');
      const clean = goCleanPath(sent);
      if (sent.startsWith('/') && clean !== sent) return redirect(req, res, `${goEscapePath(clean)}${url.search}`);
      if (gateway && path === '/v3') return redirect(req, res, `/v3/${url.search}`);
    }
    if (gateway && (path.startsWith('/v3/') || path.startsWith('/v3beta/'))) return gateway(req, res);
    switch (path) {
      case '/version':
        if (!allowMethod(req, res, 'GET')) return;
        return json(res, 200, { etcdserver: API_VERSION, etcdcluster: clusterVersion() });
      case '/health':
        if (!allowMethod(req, res, 'GET')) return;
        return void health(s, url.searchParams.get('serializable') === 'true', url.searchParams.getAll('exclude')).then((h) => {
          s.metrics?.healthChecked(h.health === 'true', h.reason?.startsWith('ALARM') ?? false);
          // etcd 3.4's body: {"health":...} alone (3.5 added the reason), an unhealthy one
          // written by Go's http.Error.
          const body = JSON.stringify({ health: h.health });
          if (h.health === 'true') text(res, 200, body);
          else sendText(res, 503, body);
        });
      case '/config/local/log':
        if (!allowMethod(req, res, 'PUT')) return;
        return setLogLevel(s, req, res);
      case '/livez':
      case '/readyz':
        return void probe(s, path === '/readyz').then((checks) => healthz(res, checks, url.searchParams.has('verbose')));
      case '/debug/vars':
        if (!allowMethod(req, res, 'GET')) return;
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' });
        return void res.end(debugVars(s.raftFullStatus()));
      case '/metrics': {
        const m = s.metrics;
        if (!m) return notFound(res);
        return void m.scrape().then(
          (body) => {
            res.writeHead(200, { 'Content-Type': m.registry.contentType });
            res.end(body);
          },
          (e: Error) => text(res, 500, `${e.message}\n`),
        );
      }
      default:
        return notFound(res);
    }
  };
}

/** The cluster version etcd reports: major.minor.0 of the API the members speak. */
const clusterVersion = (): string => API_VERSION.replace(/^(\d+\.\d+)\..*$/, '$1.0');

export interface HealthBody {
  health: 'true' | 'false';
  reason?: string;
}

/**
 * etcd's /health: false while an alarm is raised (except those in `exclude`, as etcd 3.5's
 * `?exclude=NOSPACE`), without a leader, or when a linearizable read does not finish in time
 * (skipped with `?serializable=true`). The reason is etcd 3.5's.
 */
export async function health(s: EtcdServer, serializable: boolean, exclude: string[] = []): Promise<HealthBody> {
  if (s.isStopped()) return { health: 'false', reason: 'STOPPED' };
  const alarms = s.sm.alarms.get(AlarmType.NONE).filter((a) => !exclude.includes(alarmName(a.alarm)));
  if (alarms.length > 0) return { health: 'false', reason: `ALARM ${alarms.map((a) => alarmName(a.alarm)).join(',')}` };
  if (s.leader() === 0n) return { health: 'false', reason: 'RAFT NO LEADER' };
  if (!serializable && (await linearizableReadFails(s)) !== undefined) return { health: 'false', reason: 'RANGE ERROR' };
  return { health: 'true' };
}

/** One named check of /livez or /readyz: undefined when it passes, else why it failed. */
type Check = [name: string, failure: string | undefined];

async function probe(s: EtcdServer, ready: boolean): Promise<Check[]> {
  // Alive: the process serves and its state machine answers a local read.
  const checks: Check[] = [['serializable_read', s.isStopped() ? 'member stopped' : undefined]];
  if (!ready) return checks;
  checks.push(['data_corruption', s.sm.alarms.has(AlarmType.CORRUPT) ? 'alarm CORRUPT raised' : undefined]);
  checks.push(['linearizable_read', s.leader() === 0n ? 'no leader' : await linearizableReadFails(s)]);
  return checks;
}

function healthz(res: ServerResponse, checks: Check[], verbose: boolean): void {
  const failed = checks.some(([, f]) => f !== undefined);
  const lines = verbose || failed ? checks.map(([n, f]) => (f === undefined ? `[+]${n} ok` : `[-]${n} failed: ${f}`)) : [];
  lines.push(failed ? 'healthz check failed' : 'ok');
  text(res, failed ? 503 : 200, `${lines.join('\n')}\n`);
}

/** Why a linearizable read does not finish within HEALTH_READ_TIMEOUT_MS, or undefined if it does. */
async function linearizableReadFails(s: EtcdServer): Promise<string | undefined> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    t = setTimeout(() => reject(new Error('timed out')), HEALTH_READ_TIMEOUT_MS);
  });
  try {
    await Promise.race([s.linearizableRead(), timeout]);
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    clearTimeout(t);
  }
}

// With their length, as Go's server sends a small answer (not chunked).
function json(res: ServerResponse, status: number, body: unknown): void {
  const b = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': b.length });
  res.end(b);
}

function text(res: ServerResponse, status: number, body: string): void {
  const b = Buffer.from(body);
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': b.length });
  res.end(b);
}

/** capnslog's levels (etcd 3.4's default logger) as the member's: ParseLevel's names and letters. */
const CAPNSLOG_LEVELS: Record<string, ZapLevel> = { CRITICAL: 'fatal', ERROR: 'error', WARNING: 'warn', NOTICE: 'info', INFO: 'info', DEBUG: 'debug', TRACE: 'debug' };

/** capnslog's ParseLevel: a level's name, its first letter, or a digit from 0 (ERROR) to 5 (TRACE). */
function capnslogName(s: string): string | undefined {
  if (/^[0-5]$/.test(s)) return ['ERROR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG', 'TRACE'][Number(s)];
  return Object.keys(CAPNSLOG_LEVELS).find((n) => n === s || n[0] === s);
}

/**
 * etcd 3.4's PUT /config/local/log: `{"Level":"DEBUG"}` (capnslog's names, any case) sets the
 * member's log level from now on (204); a body that is not that object, or an unknown level, is
 * its 400 with an etcd error body.
 */
function setLogLevel(s: EtcdServer, req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= 64 * 1024) chunks.push(c);
  });
  req.on('end', () => {
    const fail = (message: string): void => {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message }));
    };
    let level: unknown;
    try {
      // Go decodes `null` into the struct as nothing at all (an empty level).
      const body: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8')) ?? {};
      if (body === null || typeof body !== 'object' || Array.isArray(body)) return fail('Invalid json body');
      // encoding/json matches field names without regard to case.
      const key = Object.keys(body).find((k) => k.toLowerCase() === 'level');
      level = key === undefined ? '' : (body as Record<string, unknown>)[key];
      if (typeof level !== 'string') return fail('Invalid json body');
    } catch {
      return fail('Invalid json body');
    }
    const name = capnslogName(level.toUpperCase());
    if (name === undefined || !s.logger.setLevel) return fail(`Invalid log level ${level}`);
    s.logger.info(`globalLogLevel set to "${name}"`);
    s.logger.setLevel(CAPNSLOG_LEVELS[name]!);
    res.writeHead(204).end();
  });
}

/** Go's http.NotFound, as etcd's mux answers an unknown path. */
function notFound(res: ServerResponse): void {
  sendText(res, 404, '404 page not found');
}

/** etcd's allowMethod: anything but `method` is a 405 naming it in Allow (Go's http.Error). */
function allowMethod(req: IncomingMessage, res: ServerResponse, method: string): boolean {
  if (req.method === method) return true;
  res.setHeader('Allow', method);
  sendText(res, 405, 'Method Not Allowed');
  return false;
}

/** Go's html.EscapeString. */
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };

/** Go's http.Redirect as ServeMux makes it: 301, with a small HTML body for a GET. */
function redirect(req: IncomingMessage, res: ServerResponse, location: string): void {
  const get = req.method === 'GET' || req.method === 'HEAD';
  const html = get ? `<a href="${location.replace(/[<>&'"]/g, (c) => HTML_ESCAPES[c]!)}">Moved Permanently</a>.\n\n` : '';
  res.writeHead(301, { Location: location, ...(get ? { 'Content-Type': 'text/html; charset=utf-8' } : {}), 'Content-Length': Buffer.byteLength(html) });
  res.end(req.method === 'HEAD' ? undefined : html);
}

/** A path's %XX escapes decoded (Go's PathUnescape), undefined if one is malformed (Go's 400). */
function goUnescape(p: string): string | undefined {
  try {
    return decodeURIComponent(p);
  } catch {
    return undefined;
  }
}

/** A path escaped as Go's URL.EscapedPath escapes one: all but letters, digits and `-_.~$&+,/:;=@`. */
function goEscapePath(p: string): string {
  return Array.from(Buffer.from(p, 'utf8'), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.~$&+,/:;=@]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/** Go's cleanPath: path.Clean, keeping a trailing slash (ServeMux redirects to it). */
function goCleanPath(p: string): string {
  if (p === '') return '/';
  const np = posix.normalize(p.startsWith('/') ? p : `/${p}`);
  return p.endsWith('/') && np !== '/' && !np.endsWith('/') ? `${np}/` : np;
}
