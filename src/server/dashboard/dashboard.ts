// The live dashboard, served by every member on its metrics URL next to /metrics:
//   /dashboard/              the page (static/dashboard/ in the package, uPlot from node_modules)
//   /dashboard/events        server-sent events: `hello` (everything so far), then `view` (the
//                            cluster, about once a second), `point` (a chart point a second)
//                            and `cluster-event` (joined, promoted, removed, leader changes)
//   /dashboard/state.json    the cluster view once (for scripts and curl)
//
// Owns: the HTTP routes of the dashboard and its open event streams; polling the other members
// only while at least one page is open. Never: blocks on a member that does not answer (the
// view is made with short deadlines, cluster-view.ts), or lets a slow page grow a buffer
// (a page that does not read is dropped; the browser reconnects).

import { requestUrl } from '../../util/url.js';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClusterEvents } from '../cluster-events.js';
import type { Clock } from '../clock.js';
import type { ServerConfig } from '../config.js';
import { ChartHistory } from './chart-history.js';
import { type ClusterView, ClusterViewer, type ViewSource } from './cluster-view.js';
import { hex } from '../../util/ids.js';
import { PeerStatusClient } from './peer-status.js';
import type { RecentActivity } from './sample-window.js';

/** What the dashboard reads of the member (the EtcdServer; declared here to avoid an import cycle). */
export interface DashboardSource extends ViewSource {
  readonly cfg: Pick<ServerConfig, 'name' | 'tls'>;
  readonly clock: Clock;
  readonly events: ClusterEvents;
  committedIndex(): number;
}

const VIEW_EVERY_MS = 1000;
/** A page this far behind is not reading: it is dropped rather than buffered for. */
const MAX_BUFFERED_BYTES = 1 << 20;

/**
 * The package's static/dashboard/ directory, found upwards from this module so that it works
 * from src/ (tests), dist/src/ (built) and an installed package alike (tsc copies no HTML).
 */
function staticDir(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(d, 'static', 'dashboard');
    if (existsSync(join(candidate, 'index.html'))) return candidate;
    const up = dirname(d);
    if (up === d) throw new Error('static/dashboard/index.html not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
}

/** URL path -> [file, content type]. uPlot comes from its package: no CDN (machines may be offline). */
function files(): Map<string, [string, string]> {
  const dir = staticDir();
  const req = createRequire(import.meta.url);
  return new Map([
    ['/dashboard/', [join(dir, 'index.html'), 'text/html; charset=utf-8']],
    ['/dashboard/app.js', [join(dir, 'app.js'), 'text/javascript; charset=utf-8']],
    ['/dashboard/style.css', [join(dir, 'style.css'), 'text/css; charset=utf-8']],
    ['/dashboard/vendor/uPlot.iife.min.js', [req.resolve('uplot/dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8']],
    ['/dashboard/vendor/uPlot.min.css', [req.resolve('uplot/dist/uPlot.min.css'), 'text/css; charset=utf-8']],
  ]);
}

export class Dashboard {
  /** The page's files, or why they are missing (then /metrics still works; the page says why). */
  private readonly files: Map<string, [string, string]> | Error;
  private readonly cache = new Map<string, Promise<Buffer>>();
  private readonly pages = new Set<ServerResponse>();
  private readonly history: ChartHistory;
  private readonly viewer: ClusterViewer;
  private readonly peers: PeerStatusClient;
  private lastView: ClusterView | undefined;
  private polling = false;

  constructor(private readonly s: DashboardSource, recent: RecentActivity) {
    try {
      this.files = files();
    } catch (e) {
      this.files = e as Error;
    }
    this.peers = new PeerStatusClient(() => s.cfg.tls?.client, () => s.clock.wallNow());
    this.viewer = new ClusterViewer(s, this.peers, () => s.clock.wallNow());
    this.history = new ChartHistory(() => s.committedIndex(), recent, s.clock);
    this.history.start();
    this.history.onPoint((p) => this.broadcast('point', p));
    s.events.subscribe((e) => this.broadcast('cluster-event', e));
  }

  /** Answers a dashboard request; false if the path is not the dashboard's. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = requestUrl(req.url)?.pathname;
    if (path === undefined) return false;
    if (path === '/' || path === '/dashboard') {
      res.writeHead(302, { location: '/dashboard/' });
      res.end();
      return true;
    }
    if (path === '/favicon.ico') {
      res.writeHead(204);
      res.end();
      return true;
    }
    if (path === '/dashboard/events') {
      this.openStream(req, res);
      return true;
    }
    if (path === '/dashboard/state.json') {
      this.viewer.view().then(
        (v) => {
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(v));
        },
        (e: Error) => {
          res.writeHead(500);
          res.end(e.message);
        },
      );
      return true;
    }
    if (this.files instanceof Error) {
      if (!path.startsWith('/dashboard/')) return false;
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(`raftkv: the dashboard's files are missing: ${this.files.message}\n`);
      return true;
    }
    const f = this.files.get(path);
    if (!f) return false;
    const [file, type] = f;
    let body = this.cache.get(file);
    if (!body) {
      body = readFile(file);
      this.cache.set(file, body);
    }
    body.then(
      (b) => {
        res.writeHead(200, { 'content-type': type, 'content-length': b.length, 'cache-control': 'no-cache' });
        res.end(req.method === 'HEAD' ? undefined : b);
      },
      (e: Error) => {
        this.cache.delete(file);
        res.writeHead(500);
        res.end(e.message);
      },
    );
    return true;
  }

  private openStream(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    // The browser's EventSource reconnects by itself after this long.
    res.write('retry: 1000\n\n');
    this.send(res, 'hello', {
      self: hex(this.s.id),
      name: this.s.cfg.name,
      points: this.history.all(),
      events: this.s.events.recent(),
      view: this.lastView,
    });
    this.pages.add(res);
    req.on('close', () => this.pages.delete(res));
    this.startPolling();
  }

  /** One view a second while pages are open; each round waits for the previous one. */
  private startPolling(): void {
    if (this.polling) return;
    this.polling = true;
    const round = (): void => {
      if (this.pages.size === 0) {
        this.polling = false;
        return;
      }
      const t0 = this.s.clock.now();
      this.viewer
        .view()
        .then((v) => {
          this.lastView = v;
          this.broadcast('view', v);
        })
        .catch(() => {
          /* the next round tries again */
        })
        .finally(() => {
          this.s.clock.setTimeout(round, Math.max(0, VIEW_EVERY_MS - (this.s.clock.now() - t0)));
        });
    };
    round();
  }

  private broadcast(event: string, data: unknown): void {
    for (const res of this.pages) this.send(res, event, data);
  }

  private send(res: ServerResponse, event: string, data: unknown): void {
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      this.pages.delete(res);
      res.destroy();
      return;
    }
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }
}
