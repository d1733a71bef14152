// `raftkv gateway start`: etcd 3.4's L4 gateway (`etcd gateway start`, etcdmain/gateway.go), a
// TCP proxy to the cluster's client endpoints (src/proxy/tcp-proxy.ts), with etcd's flags:
//
//   raftkv gateway start [--endpoints 127.0.0.1:2379,...] [--listen-addr 127.0.0.1:23790]
//                        [--retry-delay 1m0s] [--discovery-srv <domain> [--discovery-srv-name <n>]
//                        [--insecure-discovery] [--trusted-ca-file <ca>]]
//
// Endpoints come from --endpoints (schemes dropped: nothing above TCP is looked at) or, with
// --discovery-srv, from the _etcd-client-ssl and _etcd-client SRV records of the domain — the
// https ones checked by a TLS handshake against --trusted-ca-file unless --insecure-discovery,
// as etcd's discoverEndpoints. An endpoint that resolves to the gateway's own listen address
// would loop and is refused at start, in etcd's words. systemd is told once listening.

import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { connect as tlsConnect } from 'node:tls';
import { type ZapLogger, createLogger } from '../util/log.js';
import { TcpProxy, type ProxyEndpoint } from '../proxy/tcp-proxy.js';
import { parseDuration } from './flag-specs.js';
import { notifySystemd } from './sd-notify.js';
import { type SrvResolver, systemResolver } from './dns-discovery.js';

/** A start-up failure etcd reports with fmt.Println: on stdout, not stderr. */
class StdoutError extends Error {}

interface StartFlags {
  listenAddr: string;
  endpoints: string[];
  retryDelay: string;
  discoverySrv: string;
  discoverySrvName: string;
  insecureDiscovery: boolean;
  trustedCaFile: string;
}

/** Runs `raftkv gateway <args>`; resolves to the exit code once the gateway could not start (never while it serves). */
export async function gatewayCommand(args: string[]): Promise<number> {
  const program = new Command('raftkv gateway').exitOverride().configureOutput({ writeErr: (s) => process.stderr.write(s) });
  // Go's StringSlice: comma-separated, and a repeated flag adds to the list.
  const slice = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...v.split(',').map((s) => s.trim()).filter(Boolean)];
  let started: Promise<never> | undefined;
  program
    .command('start')
    .description('start the gateway')
    .option('--listen-addr <addr>', 'listen address', '127.0.0.1:23790')
    .option('--endpoints <list>', 'comma separated etcd cluster endpoints (default [127.0.0.1:2379])', slice)
    .option('--retry-delay <duration>', 'duration of delay before retrying failed endpoints', '1m0s')
    .option('--discovery-srv <domain>', 'DNS domain used to bootstrap initial cluster', '')
    .option('--discovery-srv-name <name>', 'service name to query when using DNS discovery', '')
    .option('--insecure-discovery', 'accept insecure SRV records', false)
    .option('--trusted-ca-file <file>', 'path to the client server TLS CA file for verifying the discovered endpoints when discovery-srv is provided.', '')
    // cobra's words for an unknown flag.
    .configureOutput({ writeErr: (s) => process.stderr.write(s.replace(/^error: unknown option '([^']*)'.*/s, 'Error: unknown flag: $1\n')) })
    .action((o: StartFlags) => {
      started = start({ ...o, endpoints: o.endpoints ?? ['127.0.0.1:2379'] });
    });
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1;
    throw e;
  }
  if (!started) {
    program.outputHelp();
    return 0;
  }
  try {
    return await started;
  } catch (e) {
    (e instanceof StdoutError ? process.stdout : process.stderr).write(`${(e as Error).message}\n`);
    return 1;
  }
}

async function start(o: StartFlags, resolver: SrvResolver = systemResolver(process.env.RAFTKV_DNS_SERVERS?.split(',').filter(Boolean))): Promise<never> {
  const logger = createLogger({ level: 'info', outputs: ['stderr'] });
  const retryMs = parseDuration('retry-delay', o.retryDelay);
  let endpoints = o.discoverySrv ? await discoverEndpoints(o, resolver, logger) : [];
  // No endpoints discovered: the ones given.
  if (endpoints.length === 0) endpoints = o.endpoints.map((e) => ({ ...splitHostPort(stripScheme(e)), priority: 0, weight: 0 }));
  const listen = splitHostPort(o.listenAddr, `failed to validate listen address: ${o.listenAddr}`);
  // Go's LookupHost of an empty host (":23790") is the local host's.
  const listenAddrs = new Set(await resolver.addresses(listen.host || 'localhost').catch(() => Promise.reject(new StdoutError(`failed to resolve listen host: ${listen.host}`))));
  for (const e of endpoints) {
    const addrs = await resolver.addresses(e.host).catch(() => Promise.reject(new StdoutError(`failed to resolve endpoint host: ${e.host}`)));
    if (e.port !== listen.port) continue;
    for (const a of addrs) {
      if (listenAddrs.has(a)) throw new StdoutError(`SRV or endpoint (${e.host}:${e.port}->${a}:${e.port}) should not resolve to the gateway listen addr (${o.listenAddr})`);
    }
  }
  if (endpoints.length === 0) throw new StdoutError('no endpoints found');
  const proxy = new TcpProxy({ endpoints, monitorIntervalMs: retryMs, logger });
  await proxy.listen(listen.host, listen.port).catch((e: NodeJS.ErrnoException) => {
    throw new Error(e.code === 'EADDRINUSE' ? `listen tcp ${o.listenAddr}: bind: address already in use` : `listen tcp ${o.listenAddr}: ${e.message}`);
  });
  await notifySystemd(logger);
  // Serves until the process is stopped (no handler: SIGTERM ends it, as etcd's gateway).
  return new Promise<never>(() => {});
}

/** etcd's discoverEndpoints: the client SRV records of the domain, https ones checked unless --insecure-discovery. */
async function discoverEndpoints(o: StartFlags, resolver: SrvResolver, logger: Pick<ZapLogger, 'log'>): Promise<ProxyEndpoint[]> {
  const suffix = o.discoverySrvName ? `-${o.discoverySrvName}` : '';
  const found: { url: string; srv: ProxyEndpoint }[] = [];
  const errors: string[] = [];
  for (const [service, scheme] of [[`etcd-client-ssl${suffix}`, 'https'], [`etcd-client${suffix}`, 'http']] as const) {
    try {
      for (const r of await resolver.resolveSrv(`_${service}._tcp.${o.discoverySrv}`)) {
        const host = r.name.replace(/\.$/, '');
        found.push({ url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${r.port}`, srv: { host, port: r.port, priority: r.priority, weight: r.weight } });
      }
    } catch (e) {
      errors.push(`lookup _${service}._tcp.${o.discoverySrv}: ${(e as Error).message}`);
    }
  }
  if (errors.length === 2) throw new Error(`dns lookup errors: ${errors[0]} and ${errors[1]}`);
  const urls = found.map((f) => f.url);
  logger.log('info', 'discovered cluster from SRV', { 'srv-server': o.discoverySrv, endpoints: urls });
  if (o.insecureDiscovery) return found.map((f) => f.srv);
  // transport.ValidateSecureEndpoints: only https endpoints that complete a TLS handshake.
  logger.log('info', 'validating discovered SRV endpoints', { 'srv-server': o.discoverySrv, endpoints: urls });
  const ca = o.trustedCaFile ? readFileSync(o.trustedCaFile) : undefined;
  const valid: ProxyEndpoint[] = [];
  const problems: string[] = [];
  for (const f of found) {
    if (!f.url.startsWith('https://')) {
      problems.push(`${f.url} is insecure`);
      continue;
    }
    try {
      await tlsHandshake(f.srv, o.discoverySrv, ca);
      valid.push(f.srv);
    } catch (e) {
      problems.push(`${f.url}: ${(e as Error).message}`);
    }
  }
  const validUrls = valid.map((v) => `https://${v.host}:${v.port}`);
  if (problems.length > 0) logger.log('warn', 'failed to validate discovered endpoints', { 'srv-server': o.discoverySrv, endpoints: validUrls, error: problems.join(', ') });
  else logger.log('info', 'using validated discovered SRV endpoints', { 'srv-server': o.discoverySrv, endpoints: validUrls });
  return valid;
}

function tlsHandshake(e: ProxyEndpoint, serverName: string, ca: Buffer | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: e.host, port: e.port, servername: serverName, ca }, () => {
      s.destroy();
      resolve();
    });
    s.once('error', reject);
  });
}

function stripScheme(ep: string): string {
  try {
    const u = new URL(ep);
    if (u.host) return u.host;
  } catch {
    /* host:port */
  }
  return ep;
}

/** Go's net.SplitHostPort for host:port and [v6]:port. */
function splitHostPort(s: string, error = `error parsing endpoint "${s}"`): { host: string; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d{1,5})$/.exec(s);
  if (!m || Number(m[3]) > 65535) throw new StdoutError(error);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}
