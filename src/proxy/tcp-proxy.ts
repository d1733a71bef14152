// etcd's L4 gateway (`etcd gateway start`, proxy/tcpproxy): a TCP proxy in front of a cluster's
// client endpoints, for clients that can be given one address only. Each accepted connection is
// piped, byte for byte, to one endpoint picked as etcd picks it: the best (lowest) SRV priority
// among the active endpoints, by SRV weight where weights are given, round robin otherwise. An
// endpoint that refuses a connection is set aside ("deactivated") and the next one is tried; every
// retry interval each one set aside is dialled again and comes back if it answers. Nothing above
// TCP is looked at: TLS, HTTP/2 and gRPC pass through untouched.
//
// Owns: picking, dialling and piping. Never: buffering without bound — each direction is a
// stream pipe, so a slow reader holds back its writer (TCP backpressure), as Go's io.Copy does.

import { type Server, type Socket, connect, createServer } from 'node:net';
import type { ZapLogger } from '../util/log.js';
import { joinHostPort } from '../util/url.js';

/** An endpoint as an SRV record gives it (a plain host:port has priority and weight 0). */
export interface ProxyEndpoint {
  host: string;
  port: number;
  priority: number;
  weight: number;
}

interface Remote {
  endpoint: ProxyEndpoint;
  addr: string;
  inactive: boolean;
}

export interface TcpProxyOptions {
  endpoints: ProxyEndpoint[];
  /** How long an endpoint that refused a connection is set aside before it is dialled again (etcd's --retry-delay). */
  monitorIntervalMs: number;
  /** etcd's gateway lines (zap: its message and fields). */
  logger: Pick<ZapLogger, 'log'>;
  /** Random integer in [0, n) (tests give their own). */
  randomInt?: (n: number) => number;
}

export class TcpProxy {
  private readonly remotes: Remote[];
  /** Round-robin position among unweighted endpoints. */
  private pickCount = 0;
  private readonly server: Server;
  private monitor: NodeJS.Timeout | undefined;
  private readonly open = new Set<Socket>();
  private readonly randomInt: (n: number) => number;

  constructor(private readonly opts: TcpProxyOptions) {
    this.remotes = opts.endpoints.map((endpoint) => ({ endpoint, addr: joinHostPort(endpoint.host, String(endpoint.port)), inactive: false }));
    this.randomInt = opts.randomInt ?? ((n) => Math.floor(Math.random() * n));
    this.server = createServer((socket) => void this.serve(socket));
  }

  /** Listens on host:port; resolves once listening (rejects with the listen error). */
  async listen(host: string, port: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.opts.logger.log('info', 'ready to proxy client requests', { endpoints: this.remotes.map((r) => r.addr) });
    this.monitor = setInterval(() => this.reactivate(), monitorInterval(this.opts.monitorIntervalMs));
  }

  address(): { port: number } {
    return this.server.address() as { port: number };
  }

  close(): void {
    if (this.monitor) clearInterval(this.monitor);
    this.server.close();
    for (const s of this.open) s.destroy();
  }

  /** etcd's pick: undefined when every endpoint is set aside. */
  pick(): Remote | undefined {
    let bestPriority = Infinity;
    for (const r of this.remotes) if (!r.inactive) bestPriority = Math.min(bestPriority, r.endpoint.priority);
    const best = this.remotes.filter((r) => !r.inactive && r.endpoint.priority === bestPriority);
    if (best.length === 0) return undefined;
    const weighted = best.filter((r) => r.endpoint.weight > 0);
    const unweighted = best.filter((r) => r.endpoint.weight === 0);
    if (weighted.length > 0) {
      // RFC 2782: records of weight 0 get a very small chance when others have weights.
      if (unweighted.length > 0 && this.randomInt(100) === 1) return unweighted[this.pickCount++ % unweighted.length];
      let choose = this.randomInt(weighted.reduce((w, r) => w + r.endpoint.weight, 0));
      for (const r of weighted) {
        choose -= r.endpoint.weight;
        if (choose < 0) return r;
      }
    }
    // Round robin over all endpoints, skipping those set aside (etcd's order).
    for (let i = 0; i < this.remotes.length; i++) {
      const r = this.remotes[this.pickCount++ % this.remotes.length]!;
      if (!r.inactive && r.endpoint.priority === bestPriority) return r;
    }
    return undefined;
  }

  private async serve(client: Socket): Promise<void> {
    this.open.add(client);
    client.once('close', () => this.open.delete(client));
    // A client that goes away while an endpoint is being dialled.
    client.on('error', () => client.destroy());
    client.pause();
    let upstream: Socket | undefined;
    for (let r = this.pick(); r && !client.destroyed; r = this.pick()) {
      try {
        upstream = await dial(r.endpoint);
        break;
      } catch (e) {
        r.inactive = true;
        this.opts.logger.log('warn', 'deactivated endpoint', { address: r.addr, interval: monitorInterval(this.opts.monitorIntervalMs) / 1000, error: (e as Error).message });
      }
    }
    if (!upstream || client.destroyed) {
      upstream?.destroy();
      client.destroy();
      return;
    }
    const up = upstream;
    this.open.add(up);
    const done = (): void => {
      client.destroy();
      up.destroy();
      this.open.delete(up);
    };
    up.on('error', done).on('close', done);
    client.on('error', done).on('close', done);
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }

  /** Dials every endpoint set aside; those that answer are used again. */
  private reactivate(): void {
    for (const r of this.remotes) {
      if (!r.inactive) continue;
      dial(r.endpoint).then(
        (s) => {
          s.destroy();
          r.inactive = false;
          this.opts.logger.log('info', 'activated', { address: r.addr });
        },
        (e: unknown) =>
          this.opts.logger.log('warn', 'failed to activate endpoint (stay inactive for another interval)', {
            address: r.addr,
            interval: monitorInterval(this.opts.monitorIntervalMs) / 1000,
            error: (e as Error).message,
          }),
      );
    }
  }
}

/** etcd's TCPProxy takes 0 as 5 minutes; past a timer's reach (24.8 days) Node would fire at once. */
export function monitorInterval(ms: number): number {
  return ms <= 0 ? 5 * 60_000 : Math.min(ms, 2 ** 31 - 1);
}

function dial(e: ProxyEndpoint): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: e.host, port: e.port });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}
