// etcd's discovery (--discovery <url>, etcdserver/api/v2discovery): a new member learns its
// initial cluster from a discovery service (discovery.etcd.io, or Debian's etcd-discovery)
// instead of --initial-cluster. The URL names a token; the service speaks etcd's v2 keys
// protocol under it:
//
//   GET  <url>/_config/size                   how many members the cluster is to have
//   GET  <url>                                the members registered so far (a directory)
//   PUT  <url>/<member id>?prevExist=false    value=<name>=<peer url>,...: register this one
//   GET  <url>?wait=true&recursive=true&waitIndex=N   the next registration after index N
//
// The first `size` members registered (by creation index) form the cluster; a member that
// finds them all there before itself gets `discovery: cluster is full`. Every member computes
// the same member ids, with the discovery URL as the cluster token (etcd's rule).
//
// Owns: the protocol, its retries (connection failures, 5xx answers and answers cut off, with
// etcd's backoff: 2, 4, ... 256 s) and etcd's errors and log lines. Never: decides anything about
// the member's data (bootstrap.ts asks only when it has no WAL).

import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { Logger } from '../raft/logger.js';
import { etcdUrlProblem } from '../util/url.js';

/** etcd's v2discovery errors, with its texts. */
export const DiscoveryErrors = {
  invalidUrl: 'discovery: invalid URL',
  badSizeKey: 'discovery: size key is bad',
  duplicateId: 'discovery: found duplicate id',
  duplicateName: 'discovery: found duplicate name',
  fullCluster: 'discovery: cluster is full',
  badEndpoint: 'discovery: bad discovery endpoint',
} as const;

export class DiscoveryError extends Error {}

/** A v2 keys node, as the service answers it. */
interface V2Node {
  key: string;
  value?: string;
  nodes?: V2Node[];
  createdIndex: number;
  modifiedIndex: number;
}

/** A v2 error body ({"errorCode":105,"message":"Key already exists",...}). */
interface V2Error {
  errorCode: number;
  message: string;
  cause?: string;
  index?: number;
}

/** The v2 error codes the protocol reacts to (etcd's client.ErrorCode*). */
const NODE_EXIST = 105;

/** etcd's v2 client.DefaultRequestTimeout, for every request but the waits. */
const REQUEST_TIMEOUT_MS = 5_000;
/** etcd's maxExpoentialRetries: backoff doubles up to 2^8 s. */
const MAX_EXPONENT = 8;

/** A 200 with no body: what etcd's v2 server answers a wait that timed out (the client waits again). */
class EmptyAnswer extends Error {
  constructor() {
    super('discovery: the service answered with an empty body');
  }
}

/** The service could not be reached, or gave no whole answer: tried again after a backoff (etcd's ClusterError). */
class Unreachable extends Error {}

export interface DiscoveryOptions {
  logger: Logger;
  /** Waits between retries (tests pass a short one). */
  sleep?: (ms: number) => Promise<void>;
  /** Retries before giving up (etcd: 2^32-1, i.e. for ever). */
  maxRetries?: number;
}

/** Base name of a v2 key (Go's path.Base). */
const base = (key: string): string => key.slice(key.lastIndexOf('/') + 1);

/**
 * etcd's JoinCluster: registers member `id` (hex, as etcd names it) with `self` (its
 * `name=peer-url,...` entries) and resolves with the initial cluster once `size` members have
 * registered: name -> peer URLs, in registration order.
 */
export async function joinCluster(durl: string, id: bigint, self: string, o: DiscoveryOptions): Promise<Map<string, string[]>> {
  const d = new Discovery(durl, id, o);
  await d.checkCluster(); // fast path: a full cluster is refused without registering
  await d.createSelf(self);
  const { nodes, size, index } = await d.checkCluster();
  return nodesToCluster(await d.waitNodes(nodes, size, index), size);
}

class Discovery {
  private retries = 0;
  private readonly root: string;
  /** The token's path, e.g. /fd8871ab4bd9d3c9205a202b3bafa196. */
  private readonly cluster: string;
  private readonly selfKey: string;

  constructor(
    durl: string,
    id: bigint,
    private readonly o: DiscoveryOptions,
  ) {
    const u = new URL(durl);
    this.cluster = u.pathname.replace(/\/+$/, '') || '/';
    this.root = `${u.protocol}//${u.host}`;
    this.selfKey = `${this.cluster}/${id.toString(16)}`;
  }

  /** The size, the members registered (by creation index) and the index the answer was made at. */
  async checkCluster(): Promise<{ nodes: V2Node[]; size: number; index: number }> {
    for (;;) {
      try {
        return await this.checkOnce();
      } catch (e) {
        if (!(e instanceof Unreachable)) throw e;
        await this.backoff('cluster status check', e);
      }
    }
  }

  private async checkOnce(): Promise<{ nodes: V2Node[]; size: number; index: number }> {
    const configKey = `${this.cluster}/_config`;
    const sizeAnswer = await this.request('GET', `${configKey}/size`);
    if (!sizeAnswer.ok) throw new DiscoveryError(v2ErrorText(sizeAnswer.error));
    const sizeText = sizeAnswer.node.value ?? '';
    const size = /^\d+$/.test(sizeText) ? Number(sizeText) : NaN;
    if (!Number.isSafeInteger(size)) throw new DiscoveryError(DiscoveryErrors.badSizeKey);
    const dir = await this.request('GET', this.cluster);
    if (!dir.ok) throw new DiscoveryError(v2ErrorText(dir.error));
    const nodes = (dir.node.nodes ?? []).filter((n) => base(n.key) !== '_config').sort((a, b) => a.createdIndex - b.createdIndex);
    // Registered too late: `size` others came first (etcd's ErrFullCluster).
    for (let i = 0; i < nodes.length; i++) {
      if (base(nodes[i]!.key) === base(this.selfKey)) break;
      if (i >= size - 1) throw new DiscoveryError(DiscoveryErrors.fullCluster);
    }
    return { nodes, size, index: dir.index };
  }

  /** Registers this member; an existing registration of its id is etcd's ErrDuplicateID. */
  async createSelf(contents: string): Promise<void> {
    const r = await this.request('PUT', `${this.selfKey}?prevExist=false`, contents);
    if (!r.ok) {
      if (r.error.errorCode === NODE_EXIST) throw new DiscoveryError(DiscoveryErrors.duplicateId);
      throw new DiscoveryError(v2ErrorText(r.error));
    }
  }

  /** Waits until `size` members have registered (etcd's waitNodes), watching the token. */
  async waitNodes(nodes: V2Node[], size: number, index: number): Promise<V2Node[]> {
    const all = nodes.slice(0, size);
    for (const n of all) {
      this.o.logger.info(base(n.key) === base(this.selfKey) ? `found self ${base(n.key)} from discovery server` : `found peer ${base(n.key)} from discovery server`);
    }
    let after = index;
    while (all.length < size) {
      this.o.logger.info(`found ${all.length} peer(s) from discovery server; waiting for ${size - all.length} more`);
      let r: Answer;
      try {
        r = await this.request('GET', `${this.cluster}?wait=true&recursive=true&waitIndex=${after + 1}`, undefined, false);
      } catch (e) {
        if (e instanceof EmptyAnswer) continue; // the wait timed out on the service's side: again
        if (!(e instanceof Unreachable)) throw e;
        await this.backoff('waiting for other nodes', e);
        const again = await this.checkCluster();
        return this.waitNodes(again.nodes, again.size, again.index);
      }
      if (!r.ok) throw new DiscoveryError(v2ErrorText(r.error));
      // As etcd's: whatever changed under the token counts as the next member.
      this.o.logger.info(`found peer ${base(r.node.key)} from discovery server`);
      all.push(r.node);
      after = r.node.modifiedIndex;
    }
    this.o.logger.info(`found ${all.length} needed peer(s) from discovery server`);
    return all;
  }

  private async backoff(step: string, e: Error): Promise<void> {
    this.retries++;
    if (this.retries > (this.o.maxRetries ?? 0xffffffff)) throw new DiscoveryError('discovery: too many retries');
    const seconds = 2 ** Math.min(this.retries, MAX_EXPONENT);
    this.o.logger.warn(`failed to reach discovery server ${this.root}: ${e.message}`);
    this.o.logger.info(`retry connecting to discovery service ${this.root} (${step}) in ${seconds}s`);
    await (this.o.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))))(seconds * 1000);
  }

  /**
   * One v2 request. Resolves with the node and the X-Etcd-Index of a 200/201 answer, or the v2
   * error of another; throws Unreachable when the service could not be reached or gave no whole
   * answer (a connection failure, a 5xx, a body cut off: retried, as etcd's client retries its
   * cluster errors), and badEndpoint for an answer that is not the v2 protocol's JSON.
   */
  private async request(method: 'GET' | 'PUT', path: string, value?: string, timeout = true): Promise<Answer> {
    const { status, headers, body } = await this.exchange(method, path, value, timeout);
    if (status >= 500) throw new Unreachable(`${method} ${path}: ${status}`);
    if ((status === 200 || status === 201) && body.length === 0) throw new EmptyAnswer();
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new DiscoveryError(DiscoveryErrors.badEndpoint);
    }
    if (status === 200 || status === 201) {
      const node = (parsed as { node?: V2Node } | null)?.node;
      if (!node || typeof node.key !== 'string') throw new DiscoveryError(DiscoveryErrors.badEndpoint);
      return { ok: true, node, index: Number(headers['x-etcd-index'] ?? 0) };
    }
    const err = parsed as Partial<V2Error> | null;
    if (typeof err?.errorCode !== 'number') throw new DiscoveryError(DiscoveryErrors.badEndpoint);
    return { ok: false, error: err as V2Error };
  }

  /**
   * The HTTP exchange, through node:http(s): a wait may last as long as the other members take
   * to come (hours), which fetch's fixed 300-second body timeout would cut. Plain requests time
   * out after etcd's 5 s.
   */
  private exchange(method: string, path: string, value: string | undefined, timeout: boolean): Promise<{ status: number; headers: IncomingHttpHeaders; body: string }> {
    const body = value === undefined ? undefined : new URLSearchParams({ value }).toString();
    return new Promise((resolve, reject) => {
      const unreachable = (e: Error): void => reject(new Unreachable(e.message));
      const req = (this.root.startsWith('https:') ? httpsRequest : httpRequest)(
        `${this.root}${path}`,
        { method, headers: body === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', unreachable);
          res.on('aborted', () => unreachable(new Error('the answer was cut off')));
        },
      );
      req.on('error', unreachable);
      if (timeout) req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
      req.end(body);
    });
  }
}

/** A v2 answer: the node and the X-Etcd-Index of a 200/201, or the v2 error of another status. */
type Answer = { ok: true; node: V2Node; index: number } | { ok: false; error: V2Error };

/** etcd's client.Error text: "105: Key already exists (/key) [9]". */
function v2ErrorText(e: V2Error): string {
  return `${e.errorCode}: ${e.message} (${e.cause ?? ''}) [${e.index ?? 0}]`;
}

/** etcd's nodesToCluster: the registered `name=url` values as one map, one name per member. */
function nodesToCluster(nodes: V2Node[], size: number): Map<string, string[]> {
  const cluster = new Map<string, string[]>();
  for (const n of nodes) {
    for (const part of (n.value ?? '').split(',')) {
      const eq = part.indexOf('=');
      const url = part.slice(eq + 1);
      if (eq <= 0 || etcdUrlProblem(url) !== undefined) throw new DiscoveryError(DiscoveryErrors.invalidUrl);
      const name = part.slice(0, eq);
      cluster.set(name, [...(cluster.get(name) ?? []), url]);
    }
  }
  if (cluster.size !== size) throw new DiscoveryError(DiscoveryErrors.duplicateName);
  return cluster;
}
