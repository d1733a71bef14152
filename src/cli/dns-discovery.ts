// etcd's DNS discovery (--discovery-srv <domain>, pkg/srv): a new member's initial cluster is
// read from SRV records — _etcd-server-ssl._tcp.<domain> for https peers and
// _etcd-server._tcp.<domain> for http ones (with --discovery-srv-name <n>, the services end in
// -<n>). Each record's target and port is a peer URL; the one that resolves to this member's
// own advertised peer address is named --name, the others 0, 1, ... (they publish their names
// once they run). The cluster token stays --initial-cluster-token.
//
// etcd 3.4 (embed.Config.GetDNSClusterNames) uses only the https records and fails when there
// are none; raftkv takes both kinds, and fails only when neither is found — what etcd's own
// documentation describes, and a superset of what 3.4 accepts.
//
// Owns: the lookups and the mapping, with etcd's errors. Never: retries (DNS is asked once per
// bootstrap; the process exits 1 if it fails, as etcd's).

import { Resolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { Logger } from '../raft/logger.js';
import { joinHostPort, urlHost, urlPort } from '../util/url.js';

/** What the mapping needs of DNS (the real one below; tests give their own). */
export interface SrvResolver {
  resolveSrv(name: string): Promise<Array<{ name: string; port: number; priority: number; weight: number }>>;
  /** Addresses of a host (getaddrinfo, /etc/hosts included, as Go's net.ResolveTCPAddr). */
  addresses(host: string): Promise<string[]>;
}

/**
 * The system's resolver; `servers` (raftkv's RAFTKV_DNS_SERVERS, e.g. 127.0.0.1:5353) sends the
 * SRV queries to those servers instead of /etc/resolv.conf's.
 */
export function systemResolver(servers?: string[]): SrvResolver {
  const r = new Resolver();
  if (servers && servers.length > 0) r.setServers(servers);
  return {
    resolveSrv: (name) => r.resolveSrv(name),
    addresses: async (host) => (isIP(host) ? [host] : (await lookup(host, { all: true })).map((a) => a.address)),
  };
}

/**
 * etcd's GetDNSClusterNames and srv.GetCluster: the initial cluster, name -> peer URLs, from the
 * SRV records of `domain`. `apurls`: this member's --initial-advertise-peer-urls.
 */
export async function srvCluster(
  domain: string,
  serviceName: string,
  name: string,
  apurls: string[],
  resolver: SrvResolver,
  logger: Logger,
): Promise<Map<string, string[]>> {
  // This member's advertised peer addresses, resolved, to find its own record.
  const mine = new Map<string, URL>();
  for (const s of apurls) {
    // An address and port as one comparable string (Go's TCPAddr.String()).
    const u = new URL(s);
    for (const a of await resolver.addresses(urlHost(u))) mine.set(joinHostPort(a, urlPort(u)), u);
  }
  const suffix = serviceName ? `-${serviceName}` : '';
  const parts: string[] = [];
  let tempName = 0;
  const errors: string[] = [];
  for (const [service, scheme] of [[`etcd-server-ssl${suffix}`, 'https'], [`etcd-server${suffix}`, 'http']] as const) {
    let records: Awaited<ReturnType<SrvResolver['resolveSrv']>>;
    try {
      // Go's LookupSRV order: by priority, then (raftkv: deterministically) by weight.
      records = (await resolver.resolveSrv(`_${service}._tcp.${domain}`)).sort((a, b) => a.priority - b.priority || b.weight - a.weight);
    } catch (e) {
      errors.push(`error querying DNS SRV records for _${service} ${(e as Error).message}`);
      continue;
    }
    const found: string[] = [];
    let problem: string | undefined;
    for (const srv of records) {
      const target = srv.name.replace(/\.$/, '');
      let addrs: string[];
      try {
        addrs = await resolver.addresses(target);
      } catch (e) {
        problem = (e as Error).message;
        continue;
      }
      const self = addrs.map((a) => mine.get(joinHostPort(a, srv.port))).find((u) => u !== undefined);
      const targetHostPort = joinHostPort(target, srv.port);
      if (self && self.protocol !== `${scheme}:`) {
        problem = `bootstrap at ${scheme}://${targetHostPort} from DNS for ${service} has scheme mismatch with expected peer ${self.href.replace(/\/$/, '')}`;
        continue;
      }
      found.push(`${self ? name : String(tempName++)}=${scheme}://${targetHostPort}`);
    }
    if (found.length === 0) {
      errors.push(`error querying DNS SRV records for _${service} ${problem ?? 'no records'}`);
      continue;
    }
    logger.info(`get cluster for ${service} SRV: ${found.join(',')}`);
    parts.push(...found);
  }
  if (parts.length === 0) throw new Error(`failed to resolve during SRV discovery: ${errors.join('; ')}`);
  for (const p of parts) logger.info(`got bootstrap from DNS for etcd-server: ${p}`);
  const cluster = new Map<string, string[]>();
  for (const p of parts) {
    const eq = p.indexOf('=');
    cluster.set(p.slice(0, eq), [...(cluster.get(p.slice(0, eq)) ?? []), p.slice(eq + 1)]);
  }
  if (!cluster.has(name)) throw new Error(`cannot find local etcd member "${name}" in SRV records`);
  return cluster;
}
