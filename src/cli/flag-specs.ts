// Every flag raftkv accepts: etcd 3.4's server flags (etcdmain/config.go, same names, same
// defaults) and raftkv's own few. One table feeds the command line (flags.ts), the ETCD_*
// environment variables (env-flags.ts) and the config file's keys (config-file.ts), so the
// three can never disagree on what exists.

/** How a value is parsed, as Go's flag package would (flag.Set). */
export type FlagKind = 'string' | 'bool' | 'uint' | 'int' | 'duration';

/**
 * What raftkv does with a flag (the README's table): honoured; accepted with etcd's default
 * behaviour or no effect; or refused when set, because ignoring it would be unsafe.
 */
export type FlagSupport = 'honoured' | 'accepted' | 'refused-if-set';

export interface FlagSpec {
  name: string;
  kind: FlagKind;
  /** The default as a string, as Go's flag would parse it ('' = unset). */
  def: string;
  help: string;
  support: FlagSupport;
  /**
   * The key in a config file (etcd's embed.Config yaml names): the flag's name by default; a
   * path inside client-transport-security / peer-transport-security for the TLS flags; false
   * where a file cannot set it.
   */
  yaml?: string | false;
  /** The config file holds a YAML list (etcd's []string fields); the command line a comma list. */
  yamlList?: boolean;
  /** etcd's IgnoredFlag: accepted with a warning, hidden from the help. */
  ignored?: boolean;
  /** raftkv's own flag (not etcd's). */
  raftkv?: boolean;
}

const f = (name: string, kind: FlagKind, def: string, support: FlagSupport, help: string, more: Partial<FlagSpec> = {}): FlagSpec => ({
  name,
  kind,
  def,
  support,
  help,
  ...more,
});

/** etcd's IgnoredFlag names (flags of etcd 2 that etcd 3.4 still accepts and ignores). */
const IGNORED = [
  'cluster-active-size', 'cluster-remove-delay', 'cluster-sync-interval', 'config', 'force', 'max-result-buffer',
  'max-retry-attempts', 'peer-heartbeat-interval', 'peer-election-timeout', 'retry-interval', 'snapshot', 'v', 'vv',
];

export const FLAG_SPECS: readonly FlagSpec[] = [
  f('config-file', 'string', '', 'honoured', 'Path to the server configuration file. Note that if a configuration file is provided, other command line flags and environment variables will be ignored.', { yaml: false }),
  // member
  f('name', 'string', 'default', 'honoured', 'Human-readable name for this member.'),
  f('data-dir', 'string', '', 'honoured', 'Path to the data directory (default: ${name}.etcd).'),
  f('wal-dir', 'string', '', 'honoured', 'Path to the dedicated wal directory.'),
  f('snapshot-count', 'uint', '100000', 'honoured', 'Number of committed transactions to trigger a snapshot to disk.'),
  f('heartbeat-interval', 'uint', '100', 'honoured', 'Time (in milliseconds) of a heartbeat interval.'),
  f('election-timeout', 'uint', '1000', 'honoured', 'Time (in milliseconds) for an election to timeout.'),
  f('initial-election-tick-advance', 'bool', 'true', 'honoured', 'Whether to fast-forward initial election ticks on boot for faster election.'),
  f('listen-peer-urls', 'string', 'http://localhost:2380', 'honoured', 'List of URLs to listen on for peer traffic.'),
  f('listen-client-urls', 'string', 'http://localhost:2379', 'honoured', 'List of URLs to listen on for client traffic.'),
  f('listen-metrics-urls', 'string', '', 'honoured', 'List of URLs to listen on for the metrics and health endpoints.'),
  // raftkv's default is 2, not etcd's 5: a raftkv snapshot file holds the whole key space (etcd's
  // holds its v2 store; its keys live in bbolt), so five would be five copies of the data on disk.
  f('max-snapshots', 'uint', '2', 'honoured', 'Maximum number of snapshot files to retain (0 is unlimited).'),
  f('max-wals', 'uint', '5', 'honoured', 'Maximum number of wal files to retain (0 is unlimited).'),
  f('quota-backend-bytes', 'int', '0', 'honoured', 'Raise alarms when backend size exceeds the given quota (0 defaults to low space quota).'),
  f('backend-batch-interval', 'duration', '0', 'accepted', 'BackendBatchInterval is the maximum time before commit the backend transaction.'),
  f('backend-batch-limit', 'int', '0', 'accepted', 'BackendBatchLimit is the maximum operations before commit the backend transaction.'),
  f('max-txn-ops', 'uint', '128', 'honoured', 'Maximum number of operations permitted in a transaction.'),
  f('max-request-bytes', 'uint', '1572864', 'honoured', 'Maximum client request size in bytes the server will accept.'),
  f('max-concurrent-streams', 'uint', '4294967295', 'honoured', 'Maximum concurrent streams that each client can open at a time.'),
  f('grpc-keepalive-min-time', 'duration', '5s', 'accepted', 'Minimum duration interval that a client should wait before pinging server.'),
  f('grpc-keepalive-interval', 'duration', '2h', 'honoured', 'Frequency duration of server-to-client ping to check if a connection is alive (0 to disable).'),
  f('grpc-keepalive-timeout', 'duration', '20s', 'honoured', 'Additional duration of wait before closing a non-responsive connection (0 to disable).'),
  // clustering
  f('initial-advertise-peer-urls', 'string', 'http://localhost:2380', 'honoured', "List of this member's peer URLs to advertise to the rest of the cluster."),
  f('initial-cluster', 'string', '', 'honoured', 'Initial cluster configuration for bootstrapping (default: ${name}=${initial-advertise-peer-urls}).'),
  f('initial-cluster-state', 'string', 'new', 'honoured', "Initial cluster state ('new' or 'existing')."),
  f('initial-cluster-token', 'string', 'etcd-cluster', 'honoured', 'Initial cluster token for the etcd cluster during bootstrap.'),
  f('advertise-client-urls', 'string', 'http://localhost:2379', 'honoured', "List of this member's client URLs to advertise to the public."),
  f('discovery', 'string', '', 'honoured', 'Discovery URL used to bootstrap the cluster.'),
  f('discovery-fallback', 'string', 'proxy', 'accepted', "Expected behavior ('exit' or 'proxy') when discovery services fails."),
  f('discovery-proxy', 'string', '', 'accepted', 'HTTP proxy to use for traffic to discovery service (raftkv: a warning, the service is reached directly).'),
  f('discovery-srv', 'string', '', 'honoured', 'DNS srv domain used to bootstrap the cluster.'),
  f('discovery-srv-name', 'string', '', 'honoured', 'Suffix to the dns srv name queried when bootstrapping.'),
  f('strict-reconfig-check', 'bool', 'true', 'honoured', 'Reject reconfiguration requests that would cause quorum loss.'),
  f('pre-vote', 'bool', 'false', 'accepted', 'Enable to run an additional Raft election phase (raftkv always runs Pre-Vote).'),
  f('auto-compaction-retention', 'string', '0', 'honoured', "Auto compaction retention length: a duration for periodic ('1h', '30m'; a bare number is hours), a count for revision. 0 means disable auto compaction."),
  f('auto-compaction-mode', 'string', 'periodic', 'honoured', "Interpret 'auto-compaction-retention' one of: periodic|revision."),
  f('enable-v2', 'bool', 'false', 'accepted', 'Accept etcd V2 client requests (raftkv serves only v3: a warning when true).'),
  // proxy (etcd's v2 proxy: raftkv is never one)
  f('proxy', 'string', 'off', 'refused-if-set', "Proxy mode setting ('off', 'readonly' or 'on'); raftkv runs only as a member ('off')."),
  f('proxy-failure-wait', 'uint', '5000', 'accepted', 'Time (in milliseconds) an endpoint will be held in a failed state.'),
  f('proxy-refresh-interval', 'uint', '30000', 'accepted', 'Time (in milliseconds) of the endpoints refresh interval.'),
  f('proxy-dial-timeout', 'uint', '1000', 'accepted', 'Time (in milliseconds) for a dial to timeout.'),
  f('proxy-write-timeout', 'uint', '5000', 'accepted', 'Time (in milliseconds) for a write to timeout.'),
  f('proxy-read-timeout', 'uint', '0', 'accepted', 'Time (in milliseconds) for a read to timeout.'),
  // security
  f('cert-file', 'string', '', 'honoured', 'Path to the client server TLS cert file.', { yaml: 'client-transport-security.cert-file' }),
  f('key-file', 'string', '', 'honoured', 'Path to the client server TLS key file.', { yaml: 'client-transport-security.key-file' }),
  f('client-cert-auth', 'bool', 'false', 'honoured', 'Enable client cert authentication.', { yaml: 'client-transport-security.client-cert-auth' }),
  f('client-crl-file', 'string', '', 'honoured', 'Path to the client certificate revocation list file.'),
  f('client-cert-allowed-hostname', 'string', '', 'honoured', 'Allowed TLS hostname for client cert authentication.'),
  f('trusted-ca-file', 'string', '', 'honoured', 'Path to the client server TLS trusted CA cert file.', { yaml: 'client-transport-security.trusted-ca-file' }),
  f('auto-tls', 'bool', 'false', 'honoured', 'Client TLS using generated certificates.', { yaml: 'client-transport-security.auto-tls' }),
  f('peer-cert-file', 'string', '', 'honoured', 'Path to the peer server TLS cert file.', { yaml: 'peer-transport-security.cert-file' }),
  f('peer-key-file', 'string', '', 'honoured', 'Path to the peer server TLS key file.', { yaml: 'peer-transport-security.key-file' }),
  f('peer-client-cert-auth', 'bool', 'false', 'honoured', 'Enable peer client cert authentication.', { yaml: 'peer-transport-security.client-cert-auth' }),
  f('peer-trusted-ca-file', 'string', '', 'honoured', 'Path to the peer server TLS trusted CA file.', { yaml: 'peer-transport-security.trusted-ca-file' }),
  f('peer-auto-tls', 'bool', 'false', 'honoured', 'Peer TLS using generated certificates.', { yaml: 'peer-transport-security.auto-tls' }),
  f('peer-crl-file', 'string', '', 'honoured', 'Path to the peer certificate revocation list file.'),
  f('peer-cert-allowed-cn', 'string', '', 'honoured', 'Allowed CN for inter peer authentication.'),
  f('peer-cert-allowed-hostname', 'string', '', 'honoured', 'Allowed TLS hostname for inter peer authentication.'),
  f('cipher-suites', 'string', '', 'honoured', 'Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated by Node).', { yamlList: true }),
  f('experimental-peer-skip-client-san-verification', 'bool', 'false', 'honoured', 'Skip verification of SAN field in client certificate for peer connections.'),
  f('cors', 'string', '*', 'honoured', 'Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all).'),
  f('host-whitelist', 'string', '*', 'honoured', 'Comma-separated acceptable hostnames from HTTP client requests, if server is not secure (empty means allow all).'),
  // logging
  f('logger', 'string', 'zap', 'honoured', "Specify 'zap' for structured logging or 'capnslog' (raftkv writes zap's JSON lines for both)."),
  f('log-output', 'string', 'default', 'honoured', "[TO BE DEPRECATED IN v3.5] use '--log-outputs'.", { yamlList: true }),
  f('log-outputs', 'string', 'default', 'honoured', "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets.", { yamlList: true }),
  f('debug', 'bool', 'false', 'honoured', "[TO BE DEPRECATED IN v3.5] Enable debug-level logging for etcd. Use '--log-level=debug' instead."),
  f('log-level', 'string', 'info', 'honoured', 'Configures log level. Only supports debug, info, warn, error, panic, or fatal.'),
  f('log-package-levels', 'string', '', 'accepted', "[TO BE DEPRECATED IN v3.5] Specify a particular log level for each etcd package (eg: 'etcdmain=CRITICAL,etcdserver=DEBUG')."),
  f('version', 'bool', 'false', 'honoured', 'Print the version and exit.', { yaml: false }),
  // profiling and monitoring
  f('enable-pprof', 'bool', 'false', 'accepted', 'Enable runtime profiling data via HTTP server (not available in raftkv: a warning when true).'),
  f('metrics', 'string', 'basic', 'honoured', "Set level of detail for exported metrics, specify 'extensive' to include histogram metrics."),
  // auth
  f('auth-token', 'string', 'simple', 'honoured', "Specify auth token type and options: 'simple' or 'jwt,pub-key=<path>,priv-key=<path>,sign-method=<RS256|ES256|...>[,ttl=<duration>]'."),
  f('bcrypt-cost', 'uint', '10', 'honoured', 'Specify bcrypt algorithm cost factor for auth password hashing (4-31).'),
  f('auth-token-ttl', 'uint', '300', 'honoured', 'The lifetime in seconds of the auth token.'),
  // gateway
  f('enable-grpc-gateway', 'bool', 'true', 'honoured', 'Enable GRPC gateway.'),
  // experimental
  f('experimental-initial-corrupt-check', 'bool', 'false', 'honoured', 'Enable to check data corruption before serving any client/peer traffic.'),
  f('experimental-corrupt-check-time', 'duration', '0s', 'honoured', 'Duration of time between cluster corruption check passes.'),
  f('experimental-enable-v2v3', 'string', '', 'accepted', 'v3 prefix for serving emulated v2 state (raftkv serves only v3: a warning when set).'),
  f('experimental-backend-bbolt-freelist-type', 'string', 'array', 'accepted', 'ExperimentalBackendFreelistType specifies the type of freelist that boltdb backend uses(array and map are supported types).'),
  f('experimental-enable-lease-checkpoint', 'bool', 'false', 'honoured', 'Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change.'),
  f('experimental-enable-lease-checkpoint-persist', 'bool', 'false', 'honoured', 'Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases. Requires experimental-enable-lease-checkpoint to be enabled.'),
  f('experimental-compaction-batch-limit', 'int', '1000', 'accepted', 'Sets the maximum revisions deleted in each compaction batch.'),
  f('experimental-watch-progress-notify-interval', 'duration', '10m', 'honoured', 'Duration of periodic watch progress notifications.'),
  f('experimental-warning-apply-duration', 'duration', '100ms', 'honoured', 'Time duration after which a warning is generated if request takes more time.'),
  // unsafe
  f('force-new-cluster', 'bool', 'false', 'honoured', 'Force to create a new one-member cluster.'),
  f('unsafe-no-fsync', 'bool', 'false', 'honoured', 'Disables fsync, unsafe, will cause data loss.'),
  // raftkv's own
  f('snapshot-catchup-entries', 'uint', '5000', 'honoured', 'Entries kept after a snapshot for slow followers (raftkv-specific).', { raftkv: true }),
  f('wal-segment-bytes', 'uint', String(64 * 1024 * 1024), 'honoured', 'WAL segment size before rotation (raftkv-specific).', { raftkv: true }),
  f('max-inflight-appends', 'uint', '1', 'honoured', 'Append messages the leader keeps in flight to one follower; entries proposed meanwhile go out together once one is acknowledged (raftkv-specific; etcd: 512).', { raftkv: true }),
  f('lease-reads', 'bool', 'false', 'honoured', 'Serve linearizable reads on the leader lease, without a heartbeat round: faster, but assumes bounded clock drift (raftkv-specific; default: ReadIndex).', { raftkv: true }),
  ...IGNORED.map((name) => f(name, 'bool', '', 'accepted', '', { ignored: true, yaml: false })),
];

export const FLAG_BY_NAME: ReadonlyMap<string, FlagSpec> = new Map(FLAG_SPECS.map((s) => [s.name, s]));

/** etcd's flags.FlagToEnv: some-flag => ETCD_SOME_FLAG. */
export const flagToEnv = (name: string): string => `ETCD_${name.toUpperCase().replace(/-/g, '_')}`;

/**
 * A flag that cannot be used, one line for the user. exitCode: 2 for the command line (Go's
 * flag package exits 2), 1 for what etcd reports as "error verifying flags" (environment
 * variables, the config file, settings raftkv refuses).
 */
export class FlagError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 2,
  ) {
    super(message);
  }
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

/** strconv.ParseBool, as Go's bool flags take it. */
export function parseGoBool(v: string): boolean | undefined {
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  return undefined;
}

/** Go's flag.Set for the spec's kind: the reason it would refuse `v` ('parse error'), or undefined. */
export function kindError(spec: FlagSpec, v: string): string | undefined {
  switch (spec.kind) {
    case 'bool':
      return spec.ignored || parseGoBool(v) !== undefined ? undefined : 'parse error';
    case 'uint':
      if (!/^\+?\d+$/.test(v.trim())) return 'parse error';
      return spec.name === 'max-concurrent-streams' && Number(v) > 0xffffffff ? 'value out of range' : undefined;
    case 'int':
      return /^[+-]?\d+$/.test(v.trim()) ? undefined : 'parse error';
    case 'duration':
      try {
        parseDuration(spec.name, v);
        return undefined;
      } catch {
        return 'parse error';
      }
    default:
      return undefined;
  }
}
