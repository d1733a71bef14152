// Fault-injecting TCP proxies, one per directed peer link (A -> B), so partitions are real:
// member A dials B's peer URL through A's own proxy to B (RAFTKV_PEER_DIAL_MAP). Blocking a
// link resets its connections and refuses new ones, in that direction only; the other
// direction is a separate connection (B's stream to A) and is unaffected.

import { type Server, type Socket, connect, createServer } from 'node:net';
import { freePorts } from '../support/ports.js';

class LinkProxy {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  blocked = false;

  constructor(
    readonly listenPort: number,
    readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (this.blocked) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, '127.0.0.1');
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((r, j) => {
      this.server!.once('error', j);
      this.server!.listen(this.listenPort, '127.0.0.1', () => r());
    });
  }

  block(): void {
    this.blocked = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  unblock(): void {
    this.blocked = false;
  }

  async close(): Promise<void> {
    this.block();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }
}

export class ProxyNet {
  /** links[from][to] */
  private links: LinkProxy[][] = [];

  private constructor(readonly peerPorts: number[]) {}

  /** Creates proxies for every ordered pair of members with the given peer ports. */
  static async create(peerPorts: number[]): Promise<ProxyNet> {
    const net = new ProxyNet(peerPorts);
    const n = peerPorts.length;
    const ports = await freePorts(n * n);
    for (let i = 0; i < n; i++) {
      net.links.push([]);
      for (let j = 0; j < n; j++) {
        const p = new LinkProxy(ports[i * n + j]!, peerPorts[j]!);
        if (i !== j) await p.start();
        net.links[i]!.push(p);
      }
    }
    return net;
  }

  /** RAFTKV_PEER_DIAL_MAP for member i. */
  dialMapFor(i: number, scheme: 'http' | 'https' = 'http'): string {
    return this.peerPorts
      .map((port, j) => (j === i ? '' : `${scheme}://127.0.0.1:${port}=${scheme}://127.0.0.1:${this.links[i]![j]!.listenPort}`))
      .filter(Boolean)
      .join(',');
  }

  block(from: number, to: number): void {
    this.links[from]![to]!.block();
  }

  /** Cuts both directions between every member of `a` and every member of `b`. */
  partition(a: number[], b: number[]): void {
    for (const x of a) for (const y of b) {
      this.block(x, y);
      this.block(y, x);
    }
  }

  isolate(i: number): void {
    const others = this.peerPorts.map((_, j) => j).filter((j) => j !== i);
    this.partition([i], others);
  }

  heal(): void {
    for (const row of this.links) for (const l of row) l.unblock();
  }

  describe(): string {
    const cut: string[] = [];
    this.links.forEach((row, i) => row.forEach((l, j) => l.blocked && cut.push(`${i}->${j}`)));
    return cut.length === 0 ? 'healthy' : `blocked ${cut.join(' ')}`;
  }

  async close(): Promise<void> {
    for (const row of this.links) for (const l of row) await l.close();
  }
}
