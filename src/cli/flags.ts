// etcd's server flags (same names, same defaults), from the command line, ETCD_* environment
// variables (env-flags.ts) or a config file (config-file.ts), parsed and validated before
// anything touches the data directory. The flags themselves are listed in flag-specs.ts.
//
// Exit codes as etcd: a flag the command line gets wrong is one line on stderr and exit code 2
// (Go's flag package); what etcd reports as "error verifying flags" (a bad environment variable
// or config file, a setting raftkv refuses) exits 1.

import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { http2CipherProblem, opensslCiphers } from '../util/cipher-suites.js';
import type { Algorithm } from 'jsonwebtoken';
import { JWT_SIGN_METHODS } from '../auth/jwt.js';
import { API_VERSION, type AuthConfig } from '../server/config.js';
import { type TlsFlags, isHttps, tlsFlagsEmpty } from '../util/tls.js';
import { etcdUrlProblem } from '../util/url.js';
import { ZAP_LEVELS, type ZapLevel } from '../util/log.js';
import { readConfigFile } from './config-file.js';
import { type StartupNotice, applyEnv } from './env-flags.js';
import { FLAG_BY_NAME, FLAG_SPECS, FlagError, kindError, parseDuration, parseGoBool } from './flag-specs.js';

export { FlagError, parseDuration };
export type { StartupNotice };

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
  /** --max-wals, --max-snapshots: files kept (0: all). */
  maxWals: number;
  maxSnapshots: number;
  maxInflightAppends: number;
  maxRequestBytes: number;
  /** --max-txn-ops: most operations in one txn (etcd's 128). */
  maxTxnOps: number;
  /** --max-concurrent-streams: HTTP/2 streams per client connection. */
  maxConcurrentStreams: number;
  /** --grpc-keepalive-min-time, --grpc-keepalive-interval, --grpc-keepalive-timeout, in ms. */
  grpcKeepAliveMinTimeMs: number;
  grpcKeepAliveIntervalMs: number;
  grpcKeepAliveTimeoutMs: number;
  /** --quota-backend-bytes as given (0: etcd's default quota). */
  quotaBackendBytes: number;
  /** --enable-grpc-gateway: serve the JSON gateway (/v3/...) on the client port. */
  enableGrpcGateway: boolean;
  /** --metrics extensive: go-grpc-prometheus' handling-time histogram too (etcd's EnableHandlingTimeHistogram). */
  extensiveMetrics: boolean;
  /** --enable-v2: accepted; raftkv serves only v3. */
  enableV2: boolean;
  /** --force-new-cluster. */
  forceNewCluster: boolean;
  /** --cors and --host-whitelist, for the HTTP side ('*': any). */
  cors: string[];
  hostWhitelist: string[];
  walSegmentBytes: number;
  leaseReads: boolean;
  listenMetricsUrls: string[];
  autoCompactionMode: 'periodic' | 'revision';
  /** periodic: milliseconds of history to keep; revision: revisions to keep; 0 = off. */
  autoCompactionRetention: number;
  /** --logger: raftkv writes zap's JSON lines for both. */
  logger: 'zap' | 'capnslog';
  /** --log-outputs: 'stderr', 'stdout' or file paths ('default' is stderr). */
  logOutputs: string[];
  logLevel: ZapLevel;
  /** Compare this member's HashKV with its peers' before serving; refuse to start on a mismatch. */
  initialCorruptCheck: boolean;
  /** Milliseconds between the leader's corruption checks (0: off). */
  corruptCheckTimeMs: number;
  /** Milliseconds between progress notifications to the watchers that ask for them (0: none). */
  watchProgressNotifyIntervalMs: number;
  /** --auth-token (simple), --auth-token-ttl (seconds), --bcrypt-cost. */
  auth: AuthConfig;
  /** Client TLS: --cert-file, --key-file, --trusted-ca-file, --client-cert-auth, --auto-tls. */
  clientTls: TlsFlags;
  /** Peer TLS: --peer-cert-file, --peer-key-file, --peer-trusted-ca-file, --peer-client-cert-auth, --peer-auto-tls. */
  peerTls: TlsFlags;
  /** --peer-cert-allowed-cn (empty: any CommonName). */
  peerCertAllowedCn?: string;
  /** --experimental-peer-skip-client-san-verification: no checkSAN on the peer port. */
  peerSkipClientSanVerify: boolean;
  /** --wal-dir: a dedicated WAL directory (absent: <data-dir>/member/wal). */
  walDir?: string;
  /** --initial-election-tick-advance (etcd's default true). */
  initialElectionTickAdvance: boolean;
  /** --experimental-warning-apply-duration, in ms. */
  warningApplyMs: number;
  /** --strict-reconfig-check: refuse membership changes that would endanger the quorum. */
  strictReconfigCheck: boolean;
  /** --unsafe-no-fsync: nothing is synced (test clusters only). */
  unsafeNoFsync: boolean;
  /**
   * --discovery (and --discovery-fallback): the initial cluster comes from this discovery
   * service; `proxy` is etcd's fallback when the cluster is full, which raftkv cannot take.
   */
  discovery?: { url: string; fallback: 'exit' | 'proxy' };
  /** --discovery-srv (and --discovery-srv-name): the initial cluster comes from DNS SRV records (./dns-discovery.ts). */
  discoverySrv?: { domain: string; serviceName: string };
  /** --experimental-enable-lease-checkpoint (-persist): the leader checkpoints leases' remaining TTL. */
  leaseCheckpoint: boolean;
  leaseCheckpointPersist: boolean;
  /** --config-file (or ETCD_CONFIG_FILE) the settings came from, if any. */
  configFile?: string;
  /** What parsing has to say (environment variables used, flags accepted but not honoured), to log once the logger exists. */
  notices: StartupNotice[];
}

function urlList(flag: string, v: string): string[] {
  const urls = v.split(',').map((x) => x.trim()).filter((x) => x.length > 0);
  if (urls.length === 0) throw new FlagError(`invalid value "${v}" for flag --${flag}: no URL given`);
  for (const u of urls) {
    // etcd's rule and words (types.NewURLs); raftkv listens on TCP only, not on unix sockets.
    const problem = etcdUrlProblem(u, ['http', 'https']);
    if (problem) throw new FlagError(`invalid value "${v}" for flag --${flag}: ${problem}`);
    try {
      new URL(u);
    } catch {
      throw new FlagError(`invalid value "${v}" for flag --${flag}: "${u}" is not a URL`);
    }
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
    throw new FlagError(`invalid value "${v}" for flag --auto-compaction-mode: must be "periodic" or "revision"`, 1);
  }
  return v;
}

/** etcd's retention syntax: a Go duration, or a bare number (hours for periodic). */
function retention(mode: string, v: string): number {
  const bad = () => new FlagError(`invalid value "${v}" for flag --auto-compaction-retention`, 1);
  if (/^\d+$/.test(v)) return mode === 'revision' ? Number(v) : Number(v) * 3600_000;
  if (mode === 'revision') throw bad();
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(v);
  if (!m || v === '') throw bad();
  return (Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0)) * 1000;
}

/** A Go bool flag's value (strconv.ParseBool). */
function boolFlag(flag: string, v: string): boolean {
  const b = parseGoBool(v);
  if (b === undefined) throw new FlagError(`invalid boolean value "${v}" for flag --${flag}`);
  return b;
}

/** `{ [key]: v }` when the flag was given a value, `{}` when it is empty (no key at all). */
const optional = <K extends string>(key: K, v: string): { [k in K]?: string } => (v ? ({ [key]: v } as { [k in K]?: string }) : {});

/** --cors: '*', or URLs by etcd's rule (its flag is a UniqueURLs with '*' as the exception). */
function corsList(v: string): string[] {
  if (v === '*' || v === '') return v === '' ? [] : ['*'];
  for (const u of v.split(',')) {
    const problem = etcdUrlProblem(u);
    if (problem) throw new FlagError(`invalid value "${v}" for flag --cors: ${problem}`);
  }
  return uniqueList(v);
}

/** A comma list as etcd's UniqueStringsValue keeps it: trimmed, without empties or repeats. */
const uniqueList = (v: string): string[] => [...new Set(v.split(',').map((x) => x.trim()).filter(Boolean))];

export function buildCommand(): Command {
  const cmd = new Command('raftkv')
    .description('raftkv: a Raft key-value store speaking the etcd v3 API (one cluster member).\nEvery flag can also be set as an ETCD_* environment variable (--data-dir: ETCD_DATA_DIR).')
    .helpOption('-h, --help', 'show this help')
    .allowExcessArguments(false);
  for (const s of FLAG_SPECS) {
    const help = s.def && s.kind !== 'bool' ? `${s.help} (default: ${s.def})` : s.help;
    const o = new Option(s.kind === 'bool' ? `--${s.name} [bool]` : `--${s.name} <${s.kind === 'string' ? 'value' : s.kind}>`, help);
    cmd.addOption(s.ignored ? o.hideHelp() : o);
  }
  return cmd;
}

/**
 * Go's flag package also takes single-dash long flags (-name, -data-dir=x), as old unit files
 * write them: they become --name, --data-dir=x. A value that follows a flag needing one is
 * left alone (`--name -x` names the member "-x").
 */
function normalizeArgv(argv: string[]): string[] {
  const out: string[] = [];
  let valueNext = false;
  for (const a of argv) {
    if (valueNext) {
      out.push(a);
      valueNext = false;
      continue;
    }
    const arg = /^-[a-z][a-z0-9-]+(=.*)?$/s.test(a) ? `-${a}` : a;
    const m = /^--([a-z0-9-]+)$/.exec(arg);
    const spec = m ? FLAG_BY_NAME.get(m[1]!) : undefined;
    valueNext = spec !== undefined && spec.kind !== 'bool';
    out.push(arg);
  }
  return out;
}

/** The flags given on the command line, by name, as strings ('true' for a bare bool flag). */
function parseCommandLine(argv: string[]): Map<string, string> {
  const cmd = buildCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: (s) => process.stdout.write(s) });
  cmd.parse(normalizeArgv(argv), { from: 'user' });
  const given = new Map<string, string>();
  for (const o of cmd.options) {
    const key = o.attributeName();
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    const v = cmd.getOptionValue(key) as string | boolean;
    given.set(o.long!.slice(2), v === true ? 'true' : String(v));
  }
  return given;
}

/** Parses argv (without node and script) and the environment. Throws FlagError or CommanderError with one-line text. */
export function parseFlags(argv: string[], env: NodeJS.ProcessEnv = process.env): Flags {
  const given = parseCommandLine(argv);
  if (given.has('version') && boolFlag('version', given.get('version')!)) {
    process.stdout.write(`raftkv Version: ${packageVersion()}\netcd API Version: ${API_VERSION}\nNode Version: ${process.version}\nNode OS/Arch: ${process.platform}/${process.arch}\n`);
    throw new CommanderError(0, 'commander.version', 'version');
  }
  const notices: StartupNotice[] = [];
  // As etcd: ETCD_CONFIG_FILE is read first, since a file means the rest of the environment is ignored.
  const configFile = given.get('config-file') || env.ETCD_CONFIG_FILE || '';
  if (configFile) {
    const values = readConfigFile(configFile);
    notices.push({
      level: 'info',
      msg: 'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided',
      fields: { path: configFile },
    });
    try {
      return { ...fromValues(values, notices, true), configFile };
    } catch (e) {
      if (e instanceof FlagError) throw new FlagError(`config file ${configFile}: ${e.message}`, 1);
      throw e;
    }
  }
  for (const [name, v] of given) {
    const spec = FLAG_BY_NAME.get(name)!;
    if (spec.ignored) {
      notices.push({ level: 'warn', msg: `flag "-${name}" is no longer supported - ignoring.` });
      continue;
    }
    if (spec.kind === 'duration') parseDuration(name, v); // its own wording ('missing unit in duration')
    const why = kindError(spec, v);
    if (why) throw new FlagError(spec.kind === 'bool' ? `invalid boolean value "${v}" for flag --${name}` : `invalid value "${v}" for flag --${name}: ${why}`);
  }
  const values = new Map(given);
  applyEnv(values, new Set(given.keys()), env, notices);
  return fromValues(values, notices, false);
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The settings (flag name -> value; absent: the default) validated into Flags. */
function fromValues(values: ReadonlyMap<string, string>, notices: StartupNotice[], fromFile: boolean): Flags {
  const v = (name: string): string => values.get(name) ?? FLAG_BY_NAME.get(name)!.def;
  const isSet = (name: string): boolean => values.has(name) && values.get(name) !== '';
  const b = (name: string): boolean => boolFlag(name, v(name) || 'false');
  const warn = (msg: string): void => void notices.push({ level: 'warn', msg });

  refuseUnsupported(isSet, v);
  const name = v('name');
  if (name.length === 0) throw new FlagError('invalid value "" for flag --name: must not be empty');
  const state = v('initial-cluster-state');
  if (state !== 'new' && state !== 'existing') {
    throw new FlagError(`invalid value "${state}" for flag --initial-cluster-state: must be "new" or "existing"`);
  }
  const logging = loggingFlags(v, isSet, b, notices);
  const heartbeat = positiveInt('heartbeat-interval', v('heartbeat-interval'));
  const election = positiveInt('election-timeout', v('election-timeout'));
  if (election < 5 * heartbeat) {
    throw new FlagError(`--election-timeout[${election}ms] should be at least as 5 times as --heartbeat-interval[${heartbeat}ms]`, 1);
  }
  if (election > 50000) throw new FlagError(`--election-timeout[${election}ms] is too long, and should be set less than 50000ms`, 1);
  const advertisePeer = urlList('initial-advertise-peer-urls', v('initial-advertise-peer-urls'));
  // With --discovery the cluster is learned at bootstrap (./discovery.ts): until then it is
  // this member alone, and the discovery URL is the cluster token (etcd's PeerURLsMapAndToken).
  const discovery = isSet('discovery') ? discoveryFlags(v, isSet, warn) : undefined;
  const discoverySrv = isSet('discovery-srv') ? { domain: v('discovery-srv'), serviceName: v('discovery-srv-name') } : undefined;
  const cluster = parseInitialCluster((!discovery && !discoverySrv && v('initial-cluster')) || `${name}=${advertisePeer.join(`,${name}=`)}`);
  const mine = cluster.get(name);
  // etcd's words (etcdserver's VerifyBootstrap).
  if (!mine) throw new FlagError(`couldn't find local name "${name}" in the initial cluster configuration`, 1);
  if ([...mine].sort().join(',') !== [...advertisePeer].sort().join(',')) {
    throw new FlagError(
      `--initial-cluster has ${name}=${mine.join(',')} but missing from --initial-advertise-peer-urls=${advertisePeer.join(',')}`,
      1,
    );
  }
  // Go's StringsFromFlag: split at commas, nothing trimmed (" TLS_..." is an unknown suite).
  const suites = v('cipher-suites') === '' ? [] : v('cipher-suites').split(',');
  let ciphers: string | undefined;
  try {
    ciphers = suites.length > 0 ? opensslCiphers(suites) : undefined;
  } catch (e) {
    throw new FlagError((e as Error).message, 1);
  }
  const clientTls: TlsFlags = {
    certFile: v('cert-file') || undefined,
    keyFile: v('key-file') || undefined,
    trustedCaFile: v('trusted-ca-file') || undefined,
    clientCertAuth: b('client-cert-auth'),
    autoTls: b('auto-tls'),
    ...optional('crlFile', v('client-crl-file')),
    ...optional('allowedHostname', v('client-cert-allowed-hostname')),
    ...optional('ciphers', ciphers ?? ''),
  };
  const peerTls: TlsFlags = {
    certFile: v('peer-cert-file') || undefined,
    keyFile: v('peer-key-file') || undefined,
    trustedCaFile: v('peer-trusted-ca-file') || undefined,
    clientCertAuth: b('peer-client-cert-auth'),
    autoTls: b('peer-auto-tls'),
    ...optional('crlFile', v('peer-crl-file')),
    ...optional('allowedHostname', v('peer-cert-allowed-hostname')),
    ...optional('ciphers', ciphers ?? ''),
  };

  // etcd's TLSInfo: both files or neither.
  for (const [t, cert, key] of [[clientTls, 'cert-file', 'key-file'], [peerTls, 'peer-cert-file', 'peer-key-file']] as const) {
    if (Boolean(t.certFile) !== Boolean(t.keyFile)) {
      throw new FlagError(`KeyFile and CertFile must both be present[key: ${t.keyFile ?? ''}, cert: ${t.certFile ?? ''}] (--${key}, --${cert})`, 1);
    }
  }
  const listenClientUrls = urlList('listen-client-urls', v('listen-client-urls'));
  const listenPeerUrls = urlList('listen-peer-urls', v('listen-peer-urls'));
  // etcd's ErrUnsetAdvertiseClientURLsFlag: the default advertised URL (localhost) would send
  // clients of a member listening elsewhere to the wrong place. Not for a config file, as etcd.
  if (!fromFile && isSet('listen-client-urls') && !isSet('advertise-client-urls')) {
    throw new FlagError('--advertise-client-urls is required when --listen-client-urls is set explicitly', 1);
  }
  // etcd's TLSInfo.baseConfig, made when the peer port is TLS (it then fails to start, exit 1).
  if (v('peer-cert-allowed-cn') && peerTls.allowedHostname && listenPeerUrls.some(isHttps)) {
    throw new FlagError(`AllowedCN and AllowedHostname are mutually exclusive (cn="${v('peer-cert-allowed-cn')}", hostname="${peerTls.allowedHostname}")`, 1);
  }
  // etcd's https client server is Go's HTTP/2 server, which needs an AES-128-GCM suite.
  const http2Problem = listenClientUrls.some(isHttps) ? http2CipherProblem(suites) : undefined;
  if (http2Problem) throw new FlagError(http2Problem, 1);
  // etcd (embed): an https URL needs a key/cert pair, given or made by auto TLS.
  for (const u of listenClientUrls) {
    if (u.startsWith('https://') && tlsFlagsEmpty(clientTls) && !clientTls.autoTls) {
      throw new FlagError(`TLS key/cert (--cert-file, --key-file) must be provided for client url ${u} with HTTPS scheme`, 1);
    }
  }
  for (const u of listenPeerUrls) {
    if (u.startsWith('https://') && tlsFlagsEmpty(peerTls) && !peerTls.autoTls) {
      throw new FlagError(`TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url ${u} with HTTPS scheme`, 1);
    }
  }
  const ms = (flag: string): number => parseDuration(flag, v(flag));
  const keepAliveMinTimeMs = ms('grpc-keepalive-min-time');
  acceptedButNotHonoured(v, isSet, b, warn, keepAliveMinTimeMs);
  const maxConcurrentStreams = Number(v('max-concurrent-streams'));
  if (!/^\d+$/.test(v('max-concurrent-streams')) || maxConcurrentStreams > 0xffffffff) {
    throw new FlagError(`invalid value "${v('max-concurrent-streams')}" for flag --max-concurrent-streams: value out of range`);
  }
  // etcd's embed.Config.Validate.
  const leaseCheckpoint = b('experimental-enable-lease-checkpoint');
  const leaseCheckpointPersist = b('experimental-enable-lease-checkpoint-persist');
  if (leaseCheckpointPersist && !leaseCheckpoint) {
    throw new FlagError('setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint', 1);
  }
  if (leaseCheckpoint && !leaseCheckpointPersist) {
    warn('Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist');
  }
  const unsafeNoFsync = b('unsafe-no-fsync');
  if (unsafeNoFsync) warn('--unsafe-no-fsync: the WAL and snapshots are written without fsync; a crash of the machine can lose acknowledged writes');
  const quota = v('quota-backend-bytes');
  if (!/^[+-]?\d+$/.test(quota) || !Number.isSafeInteger(Number(quota))) throw new FlagError(`invalid value "${quota}" for flag --quota-backend-bytes: parse error`);
  return {
    name,
    dataDir: v('data-dir') || `${name}.etcd`,
    listenClientUrls,
    advertiseClientUrls: urlList('advertise-client-urls', v('advertise-client-urls')),
    listenPeerUrls,
    initialAdvertisePeerUrls: advertisePeer,
    initialCluster: cluster,
    initialClusterState: state,
    initialClusterToken: discovery?.url ?? v('initial-cluster-token'),
    discovery,
    discoverySrv,
    heartbeatInterval: heartbeat,
    electionTimeout: election,
    snapshotCount: positiveInt('snapshot-count', v('snapshot-count')),
    snapshotCatchUpEntries: positiveInt('snapshot-catchup-entries', v('snapshot-catchup-entries'), 1),
    maxRequestBytes: positiveInt('max-request-bytes', v('max-request-bytes')),
    maxTxnOps: positiveInt('max-txn-ops', v('max-txn-ops'), 0),
    maxConcurrentStreams,
    grpcKeepAliveMinTimeMs: keepAliveMinTimeMs,
    grpcKeepAliveIntervalMs: ms('grpc-keepalive-interval'),
    grpcKeepAliveTimeoutMs: ms('grpc-keepalive-timeout'),
    quotaBackendBytes: Number(quota),
    enableGrpcGateway: b('enable-grpc-gateway'),
    // As etcd: 'extensive' adds the histogram, anything else is the basic set.
    extensiveMetrics: v('metrics') === 'extensive',
    enableV2: b('enable-v2'),
    forceNewCluster: b('force-new-cluster'),
    cors: corsList(v('cors')),
    hostWhitelist: uniqueList(v('host-whitelist')),
    walSegmentBytes: positiveInt('wal-segment-bytes', v('wal-segment-bytes'), 4096),
    maxWals: positiveInt('max-wals', v('max-wals'), 0),
    maxSnapshots: positiveInt('max-snapshots', v('max-snapshots'), 0),
    unsafeNoFsync,
    strictReconfigCheck: b('strict-reconfig-check'),
    leaseReads: b('lease-reads'),
    maxInflightAppends: positiveInt('max-inflight-appends', v('max-inflight-appends'), 1),
    listenMetricsUrls: isSet('listen-metrics-urls') ? urlList('listen-metrics-urls', v('listen-metrics-urls')) : [],
    autoCompactionMode: compactionMode(v('auto-compaction-mode')),
    autoCompactionRetention: retention(v('auto-compaction-mode'), v('auto-compaction-retention')),
    ...logging,
    initialCorruptCheck: b('experimental-initial-corrupt-check'),
    corruptCheckTimeMs: ms('experimental-corrupt-check-time'),
    watchProgressNotifyIntervalMs: ms('experimental-watch-progress-notify-interval'),
    auth: authFlags(v('auth-token'), v('auth-token-ttl'), v('bcrypt-cost'), warn),
    clientTls,
    peerTls,
    peerCertAllowedCn: v('peer-cert-allowed-cn') || undefined,
    peerSkipClientSanVerify: b('experimental-peer-skip-client-san-verification'),
    walDir: v('wal-dir') || undefined,
    initialElectionTickAdvance: b('initial-election-tick-advance'),
    warningApplyMs: ms('experimental-warning-apply-duration'),
    leaseCheckpoint,
    leaseCheckpointPersist,
    notices,
  };
}

/**
 * Settings raftkv cannot honour and must not ignore: ignoring them would bootstrap another
 * cluster than the one asked for.
 */
function refuseUnsupported(isSet: (n: string) => boolean, v: (n: string) => string): void {
  // etcd's ErrConflictBootstrapFlags (embed.Config.Validate).
  if (['initial-cluster', 'discovery', 'discovery-srv'].filter(isSet).length > 1) {
    throw new FlagError('multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"', 1);
  }
  const proxy = v('proxy');
  if (!['off', 'readonly', 'on'].includes(proxy)) throw new FlagError(`invalid value "${proxy}" for flag --proxy: valid values are "off", "readonly", "on"`);
  if (proxy !== 'off') throw new FlagError(`raftkv runs only as a cluster member, not as etcd's v2 proxy (--proxy=${proxy})`, 1);
  const fallback = v('discovery-fallback');
  if (!['exit', 'proxy'].includes(fallback)) throw new FlagError(`invalid value "${fallback}" for flag --discovery-fallback: valid values are "proxy", "exit"`);
}

/** --discovery and the flags that go with it. */
function discoveryFlags(v: (n: string) => string, isSet: (n: string) => boolean, warn: (msg: string) => void): NonNullable<Flags['discovery']> {
  const url = v('discovery');
  let u: URL | undefined;
  try {
    u = new URL(url);
  } catch {
    /* below */
  }
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) throw new FlagError(`invalid value "${url}" for flag --discovery: not an http(s) URL`, 1);
  if (isSet('discovery-proxy')) warn('--discovery-proxy is ignored: raftkv reaches the discovery service directly');
  return { url, fallback: v('discovery-fallback') === 'exit' ? 'exit' : 'proxy' };
}

/** Accepted etcd flags raftkv does not act on: a warning when they ask for something else than what raftkv does. */
function acceptedButNotHonoured(
  v: (n: string) => string,
  isSet: (n: string) => boolean,
  b: (n: string) => boolean,
  warn: (msg: string) => void,
  keepAliveMinTimeMs: number,
): void {
  if (b('enable-v2')) warn('--enable-v2=true is ignored: raftkv serves only the v3 API (v2 requests are not served)');
  if (isSet('experimental-enable-v2v3')) warn('--experimental-enable-v2v3 is ignored: raftkv serves only the v3 API');
  if (b('enable-pprof')) warn('--enable-pprof is ignored: raftkv has no Go profiler (use node --cpu-prof)');
  if (keepAliveMinTimeMs !== 5000) warn('--grpc-keepalive-min-time is not enforced: grpc-js has no server-side ping policy');
}

type LoggingFlags = Pick<Flags, 'logger' | 'logOutputs' | 'logLevel'>;

/** --logger, --log-outputs (and the deprecated --log-output), --log-level, --debug: etcd 3.4's setupLogging rules. */
function loggingFlags(v: (n: string) => string, isSet: (n: string) => boolean, b: (n: string) => boolean, notices: StartupNotice[]): LoggingFlags {
  const warn = (msg: string): void => void notices.push({ level: 'warn', msg });
  const logger = v('logger');
  if (logger !== 'zap' && logger !== 'capnslog') throw new FlagError(`unknown logger option "${logger}"`, 1);
  if (logger === 'capnslog') warn("Deprecated '--logger=capnslog' flag is set; use '--logger=zap' flag instead (raftkv writes zap's JSON lines either way)");
  let level = v('log-level');
  if (!(ZAP_LEVELS as readonly string[]).includes(level)) {
    throw new FlagError(`invalid value "${level}" for flag --log-level: only supports debug, info, warn, error, dpanic, panic, or fatal`);
  }
  if (b('debug')) {
    warn("Deprecated '--debug' flag is set to true (use '--log-level=debug' instead)");
    level = 'debug';
  }
  if (isSet('log-package-levels')) warn(`Deprecated '--log-package-levels=${v('log-package-levels')}' flag is set; use '--logger=zap' flag instead`);
  let outputs = uniqueList(v('log-outputs'));
  if (isSet('log-output') && v('log-output') !== 'default') {
    if (isSet('log-outputs') && v('log-outputs') !== 'default') throw new FlagError("both '--log-output' and '--log-outputs' are set; only set '--log-outputs'", 1);
    warn("'--log-output' flag has been deprecated! Please use '--log-outputs'!");
    outputs = uniqueList(v('log-output'));
  }
  if (outputs.length === 0) throw new FlagError("either '--log-output' or '--log-outputs' flag must be set", 1);
  if (outputs.length > 1 && outputs.includes('default')) throw new FlagError('multi logoutput for "default" is not supported yet', 1);
  if (outputs.includes('systemd/journal')) {
    // A unit's stderr goes to the journal: the same lines end up there.
    warn("--log-outputs=systemd/journal: raftkv writes to stderr, which systemd passes to the journal");
    outputs = [...new Set(outputs.map((o) => (o === 'systemd/journal' ? 'stderr' : o)))];
  }
  return { logger, logOutputs: outputs, logLevel: level as ZapLevel };
}

/** --auth-token, --auth-token-ttl, --bcrypt-cost (etcd's defaults: simple, 300 s, 10). */
function authFlags(token: string, ttl: string, cost: string, warn: (msg: string) => void): AuthConfig {
  const [type, ...opts] = token.split(',').map((x) => x.trim());
  // etcd's NewAuthStore: a cost bcrypt cannot use is replaced by its default, with a warning.
  let bcryptCost = positiveInt('bcrypt-cost', cost, 0);
  if (bcryptCost < 4 || bcryptCost > 31) {
    warn(`Use default bcrypt-cost 10 instead of the invalid value ${bcryptCost}`);
    bcryptCost = 10;
  }
  // etcd's simple tokens: a TTL of 0 is its default, 300 s.
  const tokenTtlSec = positiveInt('auth-token-ttl', ttl, 0) || 300;
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

export { CommanderError };
