// etcd's server flags (same names, same defaults), parsed and validated before anything
// touches the data directory. A bad flag is one line on stderr and exit code 2.

import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { Algorithm } from 'jsonwebtoken';
import { JWT_SIGN_METHODS } from '../auth/jwt.js';
import type { AuthConfig } from '../server/config.js';
import { type TlsFlags, tlsFlagsEmpty } from '../util/tls.js';

export interface Flags {
  name: string;
  dataDir: string;
  listenClientUrls: string[];
  advertiseClientUrls: string[];
  listenPeerUrls: string[];
  initialAdvertisePeerUrls: string[];
  initialCluster: Map<string, string[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  heartbeatInterval: number;
  electionTimeout: number;
  snapshotCount: number;
  snapshotCatchUpEntries: number;
  maxRequestBytes: number;
  walSegmentBytes: number;
  leaseReads: boolean;
  listenMetricsUrls: string[];
  autoCompactionMode: 'periodic' | 'revision';
  /** periodic: milliseconds of history to keep; revision: revisions to keep; 0 = off. */
  autoCompactionRetention: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Compare this member's HashKV with its peers' before serving; refuse to start on a mismatch. */
  initialCorruptCheck: boolean;
  /** Milliseconds between the leader's corruption checks (0: off). */
  corruptCheckTimeMs: number;
  /** --auth-token (simple), --auth-token-ttl (seconds), --bcrypt-cost. */
  auth: AuthConfig;
  /** Client TLS: --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls. */
  clientTls: TlsFlags;
  /** Peer TLS: --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-auto-tls. */
  peerTls: TlsFlags;
  /** --peer-cert-allowed-cn (empty: any CommonName). */
  peerCertAllowedCn?: string;
}

export class FlagError extends Error {}

function urlList(flag: string, v: string): string[] {
  const urls = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (urls.length === 0) throw new FlagError(`invalid value "${v}" for flag --${flag}: no URL given`);
  for (const u of urls) {
    let p: URL;
    try {
      p = new URL(u);
    } catch {
      throw new FlagError(`invalid value "${v}" for flag --${flag}: "${u}" is not a URL`);
    }
    if (p.protocol !== 'http:' && p.protocol !== 'https:') {
      throw new FlagError(`invalid value "${v}" for flag --${flag}: URL scheme must be http or https`);
    }
    if (!p.port) throw new FlagError(`invalid value "${v}" for flag --${flag}: URL "${u}" has no port`);
  }
  return urls;
}

function positiveInt(flag: string, v: string, min = 1): number {
  if (!/^\d+$/.test(v.trim())) throw new FlagError(`invalid value "${v}" for flag --${flag}: must be an integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new FlagError(`invalid value "${v}" for flag --${flag}: must be >= ${min}`);
  return n;
}

function parseInitialCluster(v: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new FlagError(`invalid value "${v}" for flag --initial-cluster: expected name=url[,name=url...]`);
    const name = part.slice(0, eq);
    const url = urlList('initial-cluster', part.slice(eq + 1))[0]!;
    m.set(name, [...(m.get(name) ?? []), url]);
  }
  if (m.size === 0) throw new FlagError('invalid value "" for flag --initial-cluster: empty');
  return m;
}

function compactionMode(v: string): 'periodic' | 'revision' {
  if (v !== 'periodic' && v !== 'revision') {
    throw new FlagError(`invalid value "${v}" for flag --auto-compaction-mode: must be "periodic" or "revision"`);
  }
  return v;
}

/** etcd's retention syntax: a Go duration, or a bare number (hours for periodic). */
function retention(mode: string, v: string): number {
  const bad = () => new FlagError(`invalid value "${v}" for flag --auto-compaction-retention`);
  if (/^\d+$/.test(v)) return mode === 'revision' ? Number(v) : Number(v) * 3600_000;
  if (mode === 'revision') throw bad();
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') throw bad();
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
}

const DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration (time.ParseDuration: '5s', '1m30s', '1.5h', '300ms', '0'), in milliseconds. */
export function parseDuration(flag: string, v: string): number {
  const bad = (why: string) => new FlagError(`invalid value "${v}" for flag --${flag}: ${why}`);
  const t = v.trim();
  if (t === '0' || t === '+0') return 0;
  if (t.startsWith('-')) throw bad('must not be negative');
  const body = t.startsWith('+') ? t.slice(1) : t;
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let ms = 0;
  let pos = 0;
  while (pos < body.length) {
    part.lastIndex = pos;
    const m = part.exec(body);
    if (!m) throw bad(/^[\d.]+$/.test(body.slice(pos)) ? 'missing unit in duration' : 'invalid duration');
    ms += Number(m[1]) * DURATION_UNITS[m[2]!]!;
    pos = part.lastIndex;
  }
  if (body.length === 0) throw bad('invalid duration');
  return ms > 0 ? Math.max(1, Math.round(ms)) : 0;
}

/** A Go bool flag's value (strconv.ParseBool); a bare flag is true. */
function boolFlag(flag: string, v: string | boolean | undefined): boolean {
  if (v === undefined || v === false) return false;
  if (v === true) return true;
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new FlagError(`invalid boolean value "${v}" for flag --${flag}`);
}

export function buildCommand(): Command {
  return new Command('raftkv')
    .description('raftkv: a Raft key-value store speaking the etcd v3 API (one cluster member)')
    .option('--name <string>', 'human-readable name for this member', 'default')
    .option('--data-dir <path>', 'path to the data directory (default: ${name}.etcd)')
    .option('--listen-client-urls <urls>', 'URLs to listen on for client traffic', 'http://localhost:2379')
    .option('--advertise-client-urls <urls>', 'client URLs to advertise to the rest of the cluster', 'http://localhost:2379')
    .option('--listen-peer-urls <urls>', 'URLs to listen on for peer traffic', 'http://localhost:2380')
    .option('--initial-advertise-peer-urls <urls>', "this member's peer URLs to advertise to the rest of the cluster", 'http://localhost:2380')
    .option('--initial-cluster <name=url,...>', 'initial cluster configuration for bootstrapping (default: ${name}=${initial-advertise-peer-urls})')
    .addOption(new Option('--initial-cluster-state <state>', "'new' or 'existing'").default('new'))
    .option('--initial-cluster-token <token>', 'initial cluster token for the cluster during bootstrap', 'etcd-cluster')
    .option('--heartbeat-interval <ms>', 'time (in milliseconds) of a heartbeat interval', '100')
    .option('--election-timeout <ms>', 'time (in milliseconds) for an election to timeout', '1000')
    .option('--snapshot-count <n>', 'number of committed transactions to trigger a snapshot to disk', '100000')
    .option('--snapshot-catchup-entries <n>', 'entries kept after a snapshot for slow followers', '5000')
    .option('--max-request-bytes <n>', 'maximum client request size in bytes the server will accept', '1572864')
    .option('--listen-metrics-urls <urls>', 'URLs to serve /metrics and /health on (HTTP)')
    .option('--wal-segment-bytes <n>', 'WAL segment size before rotation (raftkv-specific)', String(64 * 1024 * 1024))
    .option('--lease-reads', 'serve linearizable reads on the leader lease, without a heartbeat round: faster, but assumes bounded clock drift (raftkv-specific; default: ReadIndex)')
    .option('--auto-compaction-mode <mode>', "interpret --auto-compaction-retention as 'periodic' (a duration) or 'revision'", 'periodic')
    .option('--auto-compaction-retention <value>', "history to keep: a duration for periodic ('1h', '30m', '45s'; a bare number is hours), a count for revision; 0 disables", '0')
    .option('--log-level <level>', 'log level: debug, info, warn, error', 'info')
    .option('--experimental-initial-corrupt-check [bool]', "enable to check data corruption before serving any client/peer traffic (compares this member's HashKV with its peers')")
    .option('--experimental-corrupt-check-time <duration>', "duration of time between cluster corruption check passes ('5s', '1m'; 0s disables)", '0s')
    .option('--cert-file <path>', 'path to the client server TLS cert file')
    .option('--key-file <path>', 'path to the client server TLS key file')
    .option('--trusted-ca-file <path>', 'path to the client server TLS trusted CA cert file')
    .option('--client-cert-auth [bool]', 'enable client cert authentication')
    .option('--auto-tls [bool]', 'client TLS using generated certificates')
    .option('--peer-cert-file <path>', 'path to the peer server TLS cert file')
    .option('--peer-key-file <path>', 'path to the peer server TLS key file')
    .option('--peer-trusted-ca-file <path>', 'path to the peer server TLS trusted CA file')
    .option('--peer-client-cert-auth [bool]', 'enable peer client cert authentication')
    .option('--peer-auto-tls [bool]', 'peer TLS using generated certificates')
    .option('--peer-cert-allowed-cn <cn>', 'allowed CN for inter peer authentication')
    .option('--auth-token <type>', "specify auth token type: 'simple' or 'jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|ES256|...>[,ttl=<duration>]'", 'simple')
    .option('--auth-token-ttl <seconds>', 'the lifetime in seconds of the auth token', '300')
    .option('--bcrypt-cost <n>', 'specify bcrypt algorithm cost factor for auth password hashing (4-31)', '10')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false);
}

/** --auth-token, --auth-token-ttl, --bcrypt-cost (etcd's defaults: simple, 300 s, 10). */
function authFlags(token: string, ttl: string, cost: string): AuthConfig {
  const [type, ...opts] = token.split(',').map((x) => x.trim());
  const bcryptCost = positiveInt('bcrypt-cost', cost);
  if (bcryptCost < 4 || bcryptCost > 31) throw new FlagError(`invalid value "${cost}" for flag --bcrypt-cost: must be between 4 and 31`);
  const tokenTtlSec = positiveInt('auth-token-ttl', ttl);
  if (type === 'simple' && opts.length === 0) return { token: 'simple', tokenTtlSec, bcryptCost };
  if (type !== 'jwt') throw new FlagError(`invalid value "${token}" for flag --auth-token: unknown token type (simple or jwt,...)`);
  // etcd's jwt options: pub-key, priv-key, sign-method, ttl (a Go duration, default 5m).
  const o = new Map<string, string>();
  for (const kv of opts) {
    const i = kv.indexOf('=');
    if (i < 0) throw new FlagError(`invalid value "${token}" for flag --auth-token: option "${kv}" is not key=value`);
    o.set(kv.slice(0, i), kv.slice(i + 1));
  }
  for (const k of o.keys()) {
    if (!['pub-key', 'priv-key', 'sign-method', 'ttl'].includes(k)) throw new FlagError(`invalid value "${token}" for flag --auth-token: unknown option "${k}"`);
  }
  const signMethod = o.get('sign-method') as Algorithm | undefined;
  if (!signMethod || !JWT_SIGN_METHODS.includes(signMethod)) {
    throw new FlagError(`invalid value "${token}" for flag --auth-token: sign-method must be one of ${JWT_SIGN_METHODS.join(', ')}`);
  }
  const read = (k: string): string => {
    const path = o.get(k);
    if (!path) throw new FlagError(`invalid value "${token}" for flag --auth-token: ${k} is required`);
    try {
      return readFileSync(path, 'utf8');
    } catch (e) {
      throw new FlagError(`invalid value "${token}" for flag --auth-token: cannot read ${k} ${path}: ${(e as Error).message}`);
    }
  };
  const ttlMs = o.has('ttl') ? parseDuration('auth-token', o.get('ttl')!) : 5 * 60 * 1000;
  if (ttlMs < 1000) throw new FlagError(`invalid value "${token}" for flag --auth-token: ttl must be at least 1s`);
  return { token: 'jwt', tokenTtlSec, bcryptCost, jwt: { pubKey: read('pub-key'), privKey: read('priv-key'), signMethod, ttlSec: Math.floor(ttlMs / 1000) } };
}

/** Parses argv (without node and script). Throws FlagError or CommanderError with one-line text. */
export function parseFlags(argv: string[]): Flags {
  const cmd = buildCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: (s) => process.stdout.write(s) });
  cmd.parse(argv, { from: 'user' });
  const o = cmd.opts<Record<string, string>>();
  const name = o.name!;
  if (name.length === 0) throw new FlagError('invalid value "" for flag --name: must not be empty');
  const state = o.initialClusterState;
  if (state !== 'new' && state !== 'existing') {
    throw new FlagError(`invalid value "${state}" for flag --initial-cluster-state: must be "new" or "existing"`);
  }
  const level = o.logLevel;
  if (level !== 'debug' && level !== 'info' && level !== 'warn' && level !== 'error') {
    throw new FlagError(`invalid value "${level}" for flag --log-level: must be debug, info, warn or error`);
  }
  const heartbeat = positiveInt('heartbeat-interval', o.heartbeatInterval!);
  const election = positiveInt('election-timeout', o.electionTimeout!);
  if (election < 5 * heartbeat) {
    throw new FlagError(`--election-timeout[${election}ms] should be at least as 5 times as --heartbeat-interval[${heartbeat}ms]`);
  }
  if (election > 50000) throw new FlagError(`--election-timeout[${election}ms] is too long, and should be set less than 50000ms`);
  const advertisePeer = urlList('initial-advertise-peer-urls', o.initialAdvertisePeerUrls!);
  const cluster = parseInitialCluster(o.initialCluster ?? `${name}=${advertisePeer.join(`,${name}=`)}`);
  const mine = cluster.get(name);
  if (!mine) throw new FlagError(`invalid value for flag --initial-cluster: it has no member named "${name}" (--name)`);
  if ([...mine].sort().join(',') !== [...advertisePeer].sort().join(',')) {
    throw new FlagError(
      `--initial-cluster has ${name}=${mine.join(',')} but missing from --initial-advertise-peer-urls=${advertisePeer.join(',')}`,
    );
  }
  const b = (flag: string, v: unknown) => boolFlag(flag, v as string | boolean | undefined);
  const clientTls: TlsFlags = {
    certFile: o.certFile,
    keyFile: o.keyFile,
    trustedCaFile: o.trustedCaFile,
    clientCertAuth: b('client-cert-auth', o.clientCertAuth),
    autoTls: b('auto-tls', o.autoTls),
  };
  const peerTls: TlsFlags = {
    certFile: o.peerCertFile,
    keyFile: o.peerKeyFile,
    trustedCaFile: o.peerTrustedCaFile,
    clientCertAuth: b('peer-client-cert-auth', o.peerClientCertAuth),
    autoTls: b('peer-auto-tls', o.peerAutoTls),
  };
  // etcd's TLSInfo: both files or neither.
  for (const [t, cert, key] of [[clientTls, 'cert-file', 'key-file'], [peerTls, 'peer-cert-file', 'peer-key-file']] as const) {
    if (Boolean(t.certFile) !== Boolean(t.keyFile)) {
      throw new FlagError(`KeyFile and CertFile must both be present[key: ${t.keyFile ?? ''}, cert: ${t.certFile ?? ''}] (--${key}, --${cert})`);
    }
  }
  const listenClientUrls = urlList('listen-client-urls', o.listenClientUrls!);
  const listenPeerUrls = urlList('listen-peer-urls', o.listenPeerUrls!);
  // etcd (embed): an https URL needs a key/cert pair, given or made by auto TLS.
  for (const u of listenClientUrls) {
    if (u.startsWith('https://') && tlsFlagsEmpty(clientTls) && !clientTls.autoTls) {
      throw new FlagError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${u} with HTTPS scheme`);
    }
  }
  for (const u of listenPeerUrls) {
    if (u.startsWith('https://') && tlsFlagsEmpty(peerTls) && !peerTls.autoTls) {
      throw new FlagError(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${u} with HTTPS scheme`);
    }
  }
  return {
    name,
    dataDir: o.dataDir ?? `${name}.etcd`,
    listenClientUrls,
    advertiseClientUrls: urlList('advertise-client-urls', o.advertiseClientUrls!),
    listenPeerUrls,
    initialAdvertisePeerUrls: advertisePeer,
    initialCluster: cluster,
    initialClusterState: state,
    initialClusterToken: o.initialClusterToken!,
    heartbeatInterval: heartbeat,
    electionTimeout: election,
    snapshotCount: positiveInt('snapshot-count', o.snapshotCount!),
    snapshotCatchUpEntries: positiveInt('snapshot-catchup-entries', o.snapshotCatchupEntries!, 1),
    maxRequestBytes: positiveInt('max-request-bytes', o.maxRequestBytes!),
    walSegmentBytes: positiveInt('wal-segment-bytes', o.walSegmentBytes!, 4096),
    leaseReads: Boolean(o.leaseReads),
    listenMetricsUrls: o.listenMetricsUrls ? urlList('listen-metrics-urls', o.listenMetricsUrls) : [],
    autoCompactionMode: compactionMode(o.autoCompactionMode!),
    autoCompactionRetention: retention(o.autoCompactionMode!, o.autoCompactionRetention!),
    logLevel: level,
    initialCorruptCheck: boolFlag('experimental-initial-corrupt-check', o.experimentalInitialCorruptCheck as string | boolean | undefined),
    corruptCheckTimeMs: parseDuration('experimental-corrupt-check-time', o.experimentalCorruptCheckTime!),
    auth: authFlags(o.authToken!, o.authTokenTtl!, o.bcryptCost!),
    clientTls,
    peerTls,
    peerCertAllowedCn: o.peerCertAllowedCn || undefined,
  };
}

export { CommanderError };
