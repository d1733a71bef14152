// A discovery service for tests (what discovery.etcd.io serves under a token): the part of
// etcd's v2 keys protocol that etcd's --discovery uses — GET a key or a directory, PUT with
// prevExist=false, and GET ?wait=true&recursive=true&waitIndex=N — with X-Etcd-Index headers
// and v2 error bodies. Tokens are made with `token(size)`. Listens on 127.0.0.1, a free port.

import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

interface Node {
  key: string;
  value?: string;
  dir?: boolean;
  createdIndex: number;
  modifiedIndex: number;
}

export class FakeDiscovery {
  private index = 0;
  private readonly keys = new Map<string, Node>();
  private readonly events: Array<{ action: string; node: Node }> = [];
  private readonly waiters: Array<() => void> = [];
  /** Answers the next `n` requests with `unavailableStatus` (etcd's client retries a 5xx). */
  unavailable = 0;
  unavailableStatus = 503;
  /** Answers the next `n` waits at once with an empty 200 (etcd's v2 server, when a wait times out). */
  emptyWaits = 0;
  /** Cuts the next `n` waits off after their headers and part of a body. */
  cutWaits = 0;
  /** Every request, as "METHOD path?query". */
  readonly requests: string[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<FakeDiscovery> {
    let self: FakeDiscovery | undefined;
    const server = createServer((req, res) => self!.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new FakeDiscovery(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return self;
  }

  /** A new token for a cluster of `size`: its URL. */
  token(size: number | string, name = `t${this.index + 1}`): string {
    this.set(`/${name}/_config/size`, String(size));
    return `${this.url}/${name}`;
  }

  /** The registered values under a token, in registration order. */
  registered(tokenUrl: string): string[] {
    const dir = new URL(tokenUrl).pathname;
    return [...this.keys.values()].filter((n) => n.key.startsWith(`${dir}/`) && !n.key.includes('/_config')).sort((a, b) => a.createdIndex - b.createdIndex).map((n) => n.value!);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  private set(key: string, value: string): Node {
    const node = { key, value, createdIndex: ++this.index, modifiedIndex: this.index };
    this.keys.set(key, node);
    this.events.push({ action: 'create', node });
    for (const w of this.waiters.splice(0)) w();
    return node;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const u = new URL(req.url ?? '/', this.url);
    this.requests.push(`${req.method} ${u.pathname}${u.search}`);
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json', 'x-etcd-index': String(this.index) });
      res.end(JSON.stringify(body));
    };
    if (this.unavailable > 0) {
      this.unavailable--;
      res.writeHead(this.unavailableStatus).end();
      return;
    }
    const key = u.pathname.replace(/\/+$/, '');
    if (req.method === 'PUT') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (u.searchParams.get('prevExist') === 'false' && this.keys.has(key)) {
          send(412, { errorCode: 105, message: 'Key already exists', cause: key, index: this.index });
          return;
        }
        send(201, { action: 'create', node: this.set(key, new URLSearchParams(body).get('value') ?? '') });
      });
      return;
    }
    if (u.searchParams.get('wait') === 'true' && this.emptyWaits > 0) {
      this.emptyWaits--;
      res.writeHead(200, { 'content-type': 'application/json', 'x-etcd-index': String(this.index) }).end();
      return;
    }
    if (u.searchParams.get('wait') === 'true' && this.cutWaits > 0) {
      this.cutWaits--;
      res.writeHead(200, { 'content-type': 'application/json', 'x-etcd-index': String(this.index) });
      res.write('{"action":"cre');
      setTimeout(() => res.destroy(), 20);
      return;
    }
    if (u.searchParams.get('wait') === 'true') {
      const from = Number(u.searchParams.get('waitIndex') ?? this.index + 1);
      const answer = (): boolean => {
        const e = this.events.find((x) => x.node.modifiedIndex >= from && (x.node.key === key || x.node.key.startsWith(`${key}/`)));
        if (e) send(200, e);
        return e !== undefined;
      };
      const waitOn = (): void => {
        if (!answer() && !res.closed) this.waiters.push(waitOn);
      };
      waitOn();
      return;
    }
    const node = this.keys.get(key);
    if (node) return send(200, { action: 'get', node });
    const children = [...this.keys.values()].filter((n) => n.key.startsWith(`${key}/`));
    if (children.length === 0) {
      // What discovery.etcd.io answers for a token it does not know: not the v2 protocol.
      res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
      return;
    }
    const direct = children.filter((n) => !n.key.slice(key.length + 1).includes('/'));
    const dirs = [...new Set(children.map((n) => n.key.slice(key.length + 1).split('/')[0]!))].filter((c) => !direct.some((n) => n.key === `${key}/${c}`));
    send(200, {
      action: 'get',
      node: { key, dir: true, nodes: [...direct, ...dirs.map((d) => ({ key: `${key}/${d}`, dir: true, createdIndex: 1, modifiedIndex: 1 }))], createdIndex: 1, modifiedIndex: 1 },
    });
  }
}
