// etcd's configuration surface, parsed in-process: ETCD_* environment variables for every
// flag (with etcd 3.4's precedence rules and texts), --config-file with etcd's YAML keys, the
// logging flags, and the flags raftkv refuses. The process-level behaviour (exit codes, a
// member started the Debian way) is in member-process.test.ts.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { FLAG_SPECS, flagToEnv } from '../../src/cli/flag-specs.js';
import { FlagError, parseFlags } from '../../src/cli/flags.js';
import { tempDir } from '../support/temp-dirs.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const dir = tempDir('raftkv-config-');

/** Writes a config file and returns its path. */
function configFile(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** The FlagError parseFlags throws, to check its text and exit code. */
function flagError(argv: string[], env: NodeJS.ProcessEnv = {}): FlagError {
  try {
    parseFlags(argv, env);
  } catch (e) {
    if (e instanceof FlagError) return e;
    throw e;
  }
  assert.fail(`parseFlags(${JSON.stringify(argv)}) did not fail`);
}

const msgs = (f: { notices: Array<{ msg: string }> }) => f.notices.map((n) => n.msg);

describe('ETCD_* environment variables', () => {
  it('set every kind of flag: strings, URL lists, integers, booleans, durations, lists', () => {
    const f = parseFlags([], {
      ETCD_NAME: 'envname',
      ETCD_DATA_DIR: '/var/lib/etcd/default',
      ETCD_INITIAL_CLUSTER: 'envname=http://10.0.0.1:2380,b=http://10.0.0.2:2380',
      ETCD_INITIAL_ADVERTISE_PEER_URLS: 'http://10.0.0.1:2380',
      ETCD_LISTEN_CLIENT_URLS: 'http://127.0.0.1:2379,http://10.0.0.1:2379',
      ETCD_ADVERTISE_CLIENT_URLS: 'http://10.0.0.1:2379',
      ETCD_INITIAL_CLUSTER_STATE: 'existing',
      ETCD_HEARTBEAT_INTERVAL: '200',
      ETCD_ELECTION_TIMEOUT: '2000',
      ETCD_MAX_TXN_OPS: '16',
      ETCD_QUOTA_BACKEND_BYTES: '8589934592',
      ETCD_ENABLE_GRPC_GATEWAY: 'false',
      ETCD_CLIENT_CERT_AUTH: 'true',
      ETCD_CERT_FILE: '/etc/etcd/server.crt',
      ETCD_KEY_FILE: '/etc/etcd/server.key',
      ETCD_GRPC_KEEPALIVE_INTERVAL: '1m',
      ETCD_GRPC_KEEPALIVE_TIMEOUT: '5s',
      ETCD_LOG_OUTPUTS: 'stdout,/var/log/etcd.log',
      ETCD_LOG_LEVEL: 'warn',
    });
    assert.equal(f.name, 'envname');
    assert.equal(f.dataDir, '/var/lib/etcd/default');
    assert.deepEqual([...f.initialCluster.keys()], ['envname', 'b']);
    assert.deepEqual(f.listenClientUrls, ['http://127.0.0.1:2379', 'http://10.0.0.1:2379']);
    assert.equal(f.initialClusterState, 'existing');
    assert.equal(f.heartbeatInterval, 200);
    assert.equal(f.electionTimeout, 2000);
    assert.equal(f.maxTxnOps, 16);
    assert.equal(f.quotaBackendBytes, 8 * 1024 ** 3);
    assert.equal(f.enableGrpcGateway, false);
    assert.equal(f.clientTls.clientCertAuth, true);
    assert.equal(f.clientTls.certFile, '/etc/etcd/server.crt');
    assert.equal(f.grpcKeepAliveIntervalMs, 60_000);
    assert.equal(f.grpcKeepAliveTimeoutMs, 5_000);
    assert.deepEqual(f.logOutputs, ['stdout', '/var/log/etcd.log']);
    assert.equal(f.logLevel, 'warn');
    // etcd's own line for each variable used.
    assert.ok(msgs(f).includes('recognized and used environment variable ETCD_NAME=envname'), msgs(f).join('\n'));
    assert.ok(msgs(f).includes('recognized and used environment variable ETCD_MAX_TXN_OPS=16'));
  });

  it('every flag has its variable (flag name upper-cased, - as _)', () => {
    const env: NodeJS.ProcessEnv = {};
    const specs = FLAG_SPECS.filter((s) => !s.ignored && s.def !== '' && !['config-file', 'version'].includes(s.name));
    for (const s of specs) env[flagToEnv(s.name)] = s.def;
    const f = parseFlags([], env);
    for (const s of specs) {
      assert.ok(msgs(f).includes(`recognized and used environment variable ${flagToEnv(s.name)}=${s.def}`), `${s.name}: ${msgs(f).join('\n')}`);
    }
    assert.ok(!msgs(f).some((m) => m.startsWith('unrecognized')), msgs(f).join('\n'));
  });

  it('--max-inflight-appends (raftkv\'s own): a flag or ETCD_MAX_INFLIGHT_APPENDS, at least 1', () => {
    assert.equal(parseFlags(['--max-inflight-appends', '8'], {}).maxInflightAppends, 8);
    assert.equal(parseFlags([], { ETCD_MAX_INFLIGHT_APPENDS: '512' }).maxInflightAppends, 512);
    const e = flagError(['--max-inflight-appends', '0']);
    assert.equal(e.message, 'invalid value "0" for flag --max-inflight-appends: must be >= 1');
    assert.equal(e.exitCode, 2);
  });

  it('URL flags take etcd\'s URLs (a scheme\'s default port too) and refuse others in its words', () => {
    const f = parseFlags(['--listen-client-urls', 'http://127.0.0.1:80', '--advertise-client-urls', 'https://127.0.0.1:443'], {});
    assert.deepEqual([f.listenClientUrls, f.advertiseClientUrls], [['http://127.0.0.1:80'], ['https://127.0.0.1:443']]);
    assert.equal(
      flagError(['--listen-peer-urls', 'http://127.0.0.1']).message,
      'invalid value "http://127.0.0.1" for flag --listen-peer-urls: URL address does not have the form "host:port": http://127.0.0.1',
    );
    assert.equal(flagError(['--listen-peer-urls', 'http://127.0.0.1:2380/x']).message, 'invalid value "http://127.0.0.1:2380/x" for flag --listen-peer-urls: URL must not contain a path: http://127.0.0.1:2380/x');
    assert.match(flagError(['--listen-peer-urls', 'ftp://127.0.0.1:1']).message, /URL scheme must be http or https: ftp:/);
  });

  it('defaults hold without variables; an empty variable counts as unset (a default file with KEY= lines)', () => {
    const f = parseFlags([], { ETCD_NAME: '', ETCD_MAX_TXN_OPS: '' });
    assert.equal(f.name, 'default');
    assert.equal(f.maxTxnOps, 128);
    assert.equal(f.enableGrpcGateway, true);
    assert.equal(f.grpcKeepAliveMinTimeMs, 5_000);
    assert.equal(f.grpcKeepAliveIntervalMs, 2 * 3600_000);
    assert.equal(f.grpcKeepAliveTimeoutMs, 20_000);
    assert.equal(f.maxInflightAppends, 1);
    assert.equal(f.maxConcurrentStreams, 2 ** 32 - 1);
    assert.equal(f.quotaBackendBytes, 0);
    assert.deepEqual(f.logOutputs, ['default']);
    // etcd's verifyEnv quirk, kept: an empty variable is not "used", so it is reported.
    assert.deepEqual(msgs(f), ['unrecognized environment variable ETCD_NAME=', 'unrecognized environment variable ETCD_MAX_TXN_OPS=']);
    assert.equal(parseFlags([], {}).notices.length, 0);
  });

  it('a flag on the command line and its variable both present is fatal, with etcd\'s text (exit 1)', () => {
    for (const value of ['envname', '']) {
      const e = flagError(['--name', 'flagname'], { ETCD_NAME: value });
      assert.equal(e.message, 'conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)');
      assert.equal(e.exitCode, 1);
    }
    // Other variables still apply next to other flags.
    assert.equal(parseFlags(['--name', 'flagname'], { ETCD_MAX_TXN_OPS: '9' }).maxTxnOps, 9);
  });

  it('an ETCD_ variable that is no flag is warned about; ETCDCTL_ ones are not', () => {
    const f = parseFlags([], { ETCD_NAMEE: 'typo', ETCDCTL_API: '3', HOME: '/root' });
    assert.deepEqual(
      f.notices.map((n) => [n.level, n.msg]),
      [['warn', 'unrecognized environment variable ETCD_NAMEE=typo']],
    );
  });

  it('a value the flag would refuse names the variable, exit 1 (etcd\'s "parse error")', () => {
    for (const [key, v] of [['ETCD_HEARTBEAT_INTERVAL', 'abc'], ['ETCD_ENABLE_V2', 'yes'], ['ETCD_GRPC_KEEPALIVE_TIMEOUT', '20'], ['ETCD_QUOTA_BACKEND_BYTES', '8GB']]) {
      const e = flagError([], { [key!]: v });
      assert.equal(e.message, `invalid value "${v}" for ${key}: parse error`);
      assert.equal(e.exitCode, 1);
    }
  });
});

describe('--config-file', () => {
  const tlsYaml = `# etcd.conf.yml, etcd 3.4's keys
name: n1
data-dir: /var/lib/etcd/n1
listen-peer-urls: https://10.0.0.1:2380
listen-client-urls: https://10.0.0.1:2379,https://127.0.0.1:2379
initial-advertise-peer-urls: https://10.0.0.1:2380
advertise-client-urls: https://10.0.0.1:2379
initial-cluster: n1=https://10.0.0.1:2380,n2=https://10.0.0.2:2380,n3=https://10.0.0.3:2380
initial-cluster-token: prod
initial-cluster-state: new
heartbeat-interval: 150
election-timeout: 1500
max-txn-ops: 64
quota-backend-bytes: 4294967296
enable-grpc-gateway: false
grpc-keepalive-interval: 60000000000
grpc-keepalive-timeout: "7s"
logger: zap
log-level: debug
log-outputs: [stderr, /var/log/etcd/n1.log]
auto-compaction-mode: revision
auto-compaction-retention: "1000"
client-transport-security:
  cert-file: /etc/etcd/server.crt
  key-file: /etc/etcd/server.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.crt
  auto-tls: false
peer-transport-security:
  cert-file: /etc/etcd/peer.crt
  key-file: /etc/etcd/peer.key
  client-cert-auth: true
  trusted-ca-file: /etc/etcd/ca.crt
`;

  it("reads etcd's keys, the TLS blocks included; durations in nanoseconds as etcd writes them", () => {
    const f = parseFlags(['--config-file', configFile('tls.yml', tlsYaml)], {});
    assert.equal(f.name, 'n1');
    assert.equal(f.dataDir, '/var/lib/etcd/n1');
    assert.deepEqual([...f.initialCluster.keys()], ['n1', 'n2', 'n3']);
    assert.equal(f.initialClusterToken, 'prod');
    assert.deepEqual(f.listenClientUrls, ['https://10.0.0.1:2379', 'https://127.0.0.1:2379']);
    assert.equal(f.heartbeatInterval, 150);
    assert.equal(f.maxTxnOps, 64);
    assert.equal(f.quotaBackendBytes, 4 * 1024 ** 3);
    assert.equal(f.enableGrpcGateway, false);
    assert.equal(f.grpcKeepAliveIntervalMs, 60_000);
    assert.equal(f.grpcKeepAliveTimeoutMs, 7_000);
    assert.equal(f.logLevel, 'debug');
    assert.deepEqual(f.logOutputs, ['stderr', '/var/log/etcd/n1.log']);
    assert.equal(f.autoCompactionMode, 'revision');
    assert.equal(f.autoCompactionRetention, 1000);
    assert.deepEqual(f.clientTls, { certFile: '/etc/etcd/server.crt', keyFile: '/etc/etcd/server.key', trustedCaFile: '/etc/etcd/ca.crt', clientCertAuth: true, autoTls: false });
    assert.deepEqual(f.peerTls, { certFile: '/etc/etcd/peer.crt', keyFile: '/etc/etcd/peer.key', trustedCaFile: '/etc/etcd/ca.crt', clientCertAuth: true, autoTls: false });
  });

  it('replaces the command line and the environment, saying so as etcd does (ETCD_CONFIG_FILE too)', () => {
    const path = configFile('tls2.yml', tlsYaml);
    const f = parseFlags(['--config-file', path, '--name', 'ignored', '--max-txn-ops', '1'], { ETCD_DATA_DIR: '/ignored', ETCD_BOGUS: 'x' });
    assert.equal(f.name, 'n1');
    assert.equal(f.dataDir, '/var/lib/etcd/n1');
    assert.equal(f.maxTxnOps, 64);
    assert.equal(f.configFile, path);
    assert.deepEqual(f.notices, [
      { level: 'info', msg: 'loaded server configuration, other configuration command line flags and environment variables will be ignored if provided', fields: { path } },
    ]);
    assert.equal(parseFlags([], { ETCD_CONFIG_FILE: path, ETCD_NAME: 'ignored' }).name, 'n1');
  });

  it('an empty file is every default', () => {
    assert.equal(parseFlags(['--config-file', configFile('empty.yml', '')], {}).name, 'default');
  });

  it('bad YAML, an unknown key, a wrong type, a missing file: one clear error naming the file, exit 1', () => {
    const cases: Array<[string, string, RegExp]> = [
      ['bad.yml', 'name: [unclosed\n', /^config file .*bad\.yml: invalid YAML: /],
      ['unknown.yml', 'name: n1\ninitial-cluster-stat: existing\n', /^config file .*unknown\.yml: unknown key "initial-cluster-stat"$/],
      ['flat-tls.yml', 'cert-file: /x.crt\n', /unknown key "cert-file" \(TLS settings go in the client-transport-security block\)/],
      ['tls-sub.yml', 'peer-transport-security:\n  certfile: /x\n', /unknown key "certfile" in peer-transport-security/],
      ['type.yml', 'heartbeat-interval: abc\n', /^config file .*type\.yml: invalid value "abc" for "heartbeat-interval": parse error$/],
      ['list.yml', '- a\n- b\n', /expected a mapping of etcd configuration keys/],
      ['semantic.yml', 'heartbeat-interval: 500\nelection-timeout: 1000\n', /^config file .*semantic\.yml: --election-timeout\[1000ms\] should be at least as 5 times as --heartbeat-interval\[500ms\]$/],
    ];
    for (const [name, text, re] of cases) {
      const e = flagError(['--config-file', configFile(name, text)]);
      assert.match(e.message, re, name);
      assert.equal(e.exitCode, 1, name);
    }
    const missing = flagError(['--config-file', join(dir, 'missing.yml')]);
    assert.equal(missing.message, `open ${join(dir, 'missing.yml')}: no such file or directory`);
    assert.equal(missing.exitCode, 1);
  });
});

describe('logging and other etcd 3.4 flags', () => {
  it("--log-level takes zap's levels; --logger zap or capnslog; --log-outputs as etcd checks them", () => {
    for (const l of ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal']) assert.equal(parseFlags(['--log-level', l], {}).logLevel, l);
    assert.equal(flagError(['--log-level', 'loud']).exitCode, 2);
    assert.equal(parseFlags(['--logger', 'zap'], {}).logger, 'zap');
    assert.match(parseFlags(['--logger', 'capnslog'], {}).notices[0]!.msg, /Deprecated '--logger=capnslog' flag is set/);
    assert.deepEqual([flagError(['--logger', 'glog']).message, flagError(['--logger', 'glog']).exitCode], ['unknown logger option "glog"', 1]);
    assert.deepEqual(parseFlags(['--log-outputs', 'stderr,/tmp/a.log,stderr'], {}).logOutputs, ['stderr', '/tmp/a.log']);
    assert.equal(flagError(['--log-outputs', 'default,stdout']).message, 'multi logoutput for "default" is not supported yet');
    assert.equal(parseFlags(['--debug'], {}).logLevel, 'debug');
  });

  it('Go flag syntax: -single-dash, --flag=value, bare booleans; the value after a flag is never taken for a flag', () => {
    const f = parseFlags(['-name=n9', '-max-txn-ops', '7', '--enable-v2', '--enable-grpc-gateway=false', '--initial-cluster-token', '-tok'], {});
    assert.equal(f.name, 'n9');
    assert.equal(f.maxTxnOps, 7);
    assert.equal(f.enableV2, true);
    assert.equal(f.enableGrpcGateway, false);
    assert.equal(f.initialClusterToken, '-tok');
    assert.equal(flagError(['--max-txn-ops', 'x']).message, 'invalid value "x" for flag --max-txn-ops: parse error');
  });

  it('accepted flags raftkv does not act on warn when they ask for something it does not do', () => {
    const f = parseFlags(['--enable-v2=true', '--wal-dir', '/wal', '--max-wals', '5', '--pre-vote', '--initial-election-tick-advance=false', '--backend-batch-limit', '100', '--metrics', 'extensive'], {});
    assert.deepEqual(msgs(f), [
      '--enable-v2=true is ignored: raftkv serves only the v3 API (v2 requests are not served)',
    ]);
    // --wal-dir is honoured: the WAL's own directory, as etcd's dedicated WAL dir.
    assert.equal(f.walDir, '/wal');
    assert.deepEqual([f.initialElectionTickAdvance, parseFlags([], {}).initialElectionTickAdvance], [false, true]);
    assert.deepEqual([parseFlags([], {}).warningApplyMs, parseFlags(['--experimental-warning-apply-duration', '250ms'], {}).warningApplyMs], [100, 250]);
    // --max-wals and --max-snapshots are honoured (0: keep all); raftkv keeps 2 snapshots by default.
    assert.deepEqual([f.maxWals, f.maxSnapshots], [5, 2]);
    const kept = parseFlags(['--max-wals', '0', '--max-snapshots', '7'], {});
    assert.deepEqual([kept.maxWals, kept.maxSnapshots, msgs(kept)], [0, 7, []]);
    // --metrics is honoured: 'extensive' adds the handling-time histogram, as etcd.
    assert.equal(f.extensiveMetrics, true);
    assert.equal(parseFlags(['--metrics', 'basic'], {}).extensiveMetrics, false);
    assert.equal(parseFlags([], {}).extensiveMetrics, false);
  });

  it("an invalid --bcrypt-cost and a 0 --auth-token-ttl start as etcd starts them: its defaults", () => {
    const f = parseFlags(['--bcrypt-cost', '3', '--auth-token-ttl', '0'], {});
    assert.equal(f.auth.bcryptCost, 10);
    assert.equal(f.auth.token === 'simple' && f.auth.tokenTtlSec, 300);
    assert.deepEqual(msgs(f), ['Use default bcrypt-cost 10 instead of the invalid value 3']);
    assert.equal(parseFlags(['--bcrypt-cost', '40'], {}).auth.bcryptCost, 10);
  });

  it("--listen-client-urls without --advertise-client-urls is refused as etcd refuses it (not from a config file)", () => {
    const e = flagError(['--listen-client-urls', 'http://10.0.0.1:2379']);
    assert.deepEqual([e.message, e.exitCode], ['--advertise-client-urls is required when --listen-client-urls is set explicitly', 1]);
    assert.equal(flagError([], { ETCD_LISTEN_CLIENT_URLS: 'http://10.0.0.1:2379' }).exitCode, 1);
    const f = parseFlags(['--config-file', configFile('lc.yml', 'listen-client-urls: http://10.0.0.1:2379\n')], {});
    assert.deepEqual(f.advertiseClientUrls, ['http://localhost:2379']);
  });

  it('settings that would be unsafe to ignore are refused (exit 1)', () => {
    for (const args of [['--proxy', 'on'], ['--proxy', 'readonly']]) {
      assert.equal(flagError(args).exitCode, 1, args.join(' '));
    }
  });

  it("settings etcd checks after parsing its flags (embed.Config.Validate, the TLS and cluster set-up) fail with exit code 1, as etcd's; a flag's own value, 2", () => {
    const one = [
      ['--heartbeat-interval', '500', '--election-timeout', '1000'],
      ['--election-timeout', '60000'],
      ['--name', 'x', '--initial-cluster', 'y=http://127.0.0.1:2380'],
      ['--name', 'x', '--initial-cluster', 'x=http://127.0.0.1:9999'],
      ['--cert-file', '/c.pem'],
      ['--listen-client-urls', 'https://127.0.0.1:2379', '--advertise-client-urls', 'https://127.0.0.1:2379'],
    ];
    for (const args of one) assert.equal(flagError(args).exitCode, 1, args.join(' '));
    assert.equal(flagError(['--heartbeat-interval', 'x']).exitCode, 2);
  });

  it("--discovery: the cluster is this member until the service says more, the URL its token; with --initial-cluster it is etcd's conflict (exit 1)", () => {
    const f = parseFlags(['--name', 'a', '--initial-advertise-peer-urls', 'http://10.0.0.1:2380', '--discovery', 'https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579cbf573de'], {});
    assert.deepEqual([...f.initialCluster], [['a', ['http://10.0.0.1:2380']]]);
    assert.equal(f.initialClusterToken, 'https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579cbf573de');
    assert.deepEqual(f.discovery, { url: 'https://discovery.etcd.io/3e86b59982e49066c5d813af1c2e2579cbf573de', fallback: 'proxy' });
    assert.equal(parseFlags(['--discovery', 'http://d/t', '--discovery-fallback', 'exit'], {}).discovery?.fallback, 'exit');
    assert.equal(parseFlags([], {}).discovery, undefined);
    const conflict = 'multiple discovery or bootstrap flags are set. Choose one of "initial-cluster", "discovery" or "discovery-srv"';
    for (const args of [['--discovery', 'http://d/t', '--initial-cluster', 'default=http://localhost:2380'], ['--discovery', 'http://d/t', '--discovery-srv', 'example.com']]) {
      const e = flagError(args);
      assert.deepEqual([e.exitCode, e.message], [1, conflict]);
    }
    assert.equal(flagError(['--discovery', 'not a url']).exitCode, 1);
    const srv = parseFlags(['--name', 'a', '--initial-advertise-peer-urls', 'http://10.0.0.1:2380', '--discovery-srv', 'example.com', '--discovery-srv-name', 'prod'], {});
    assert.deepEqual([srv.discoverySrv, [...srv.initialCluster], srv.initialClusterToken], [{ domain: 'example.com', serviceName: 'prod' }, [['a', ['http://10.0.0.1:2380']]], 'etcd-cluster']);
  });

  it('lease checkpoints: persist needs checkpoints (exit 1, etcd\'s text); checkpoints alone warn as etcd does', () => {
    const e = flagError(['--experimental-enable-lease-checkpoint-persist']);
    assert.equal(e.exitCode, 1);
    assert.equal(e.message, 'setting experimental-enable-lease-checkpoint-persist requires experimental-enable-lease-checkpoint');
    const alone = parseFlags(['--experimental-enable-lease-checkpoint'], {});
    assert.deepEqual([alone.leaseCheckpoint, alone.leaseCheckpointPersist], [true, false]);
    assert.ok(alone.notices.some((n) => n.level === 'warn' && n.msg === 'Detected that checkpointing is enabled without persistence. Consider enabling experimental-enable-lease-checkpoint-persist'));
    const both = parseFlags(['--experimental-enable-lease-checkpoint', '--experimental-enable-lease-checkpoint-persist'], {});
    assert.deepEqual([both.leaseCheckpoint, both.leaseCheckpointPersist, both.notices.length], [true, true, 0]);
    assert.deepEqual([parseFlags([], {}).leaseCheckpoint, parseFlags([], {}).leaseCheckpointPersist], [false, false]);
  });

  it("CRL files, allowed hostnames and Go's cipher suite names are taken (etcd's TLSInfo); an allowed CN and hostname for peers exclude each other", () => {
    const f = parseFlags(['--client-crl-file', '/c.crl', '--client-cert-allowed-hostname', 'client.example', '--peer-crl-file', '/p.crl', '--peer-cert-allowed-hostname', 'peer.example'], {});
    assert.deepEqual([f.clientTls.crlFile, f.clientTls.allowedHostname, f.peerTls.crlFile, f.peerTls.allowedHostname], ['/c.crl', 'client.example', '/p.crl', 'peer.example']);
    assert.deepEqual(
      [flagError(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_NO_SUCH_SUITE']).message, flagError(['--cipher-suites', 'TLS_NO_SUCH_SUITE']).exitCode],
      ['unexpected TLS cipher suite "TLS_NO_SUCH_SUITE"', 1],
    );
    assert.equal(parseFlags(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305'], {}).peerTls.ciphers, 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256');
    const both = ['--peer-cert-allowed-cn', 'member', '--peer-cert-allowed-hostname', 'peer.example'];
    const https = ['--listen-peer-urls', 'https://127.0.0.1:2380', '--initial-advertise-peer-urls', 'https://127.0.0.1:2380', '--peer-auto-tls'];
    const e = flagError([...both, ...https]);
    assert.deepEqual([e.message, e.exitCode], ['AllowedCN and AllowedHostname are mutually exclusive (cn="member", hostname="peer.example")', 1]);
    assert.equal(parseFlags(both, {}).peerTls.allowedHostname, 'peer.example', 'plaintext peers: etcd never builds the TLS config, and starts');
    // Go's split: a space after a comma is part of the next name; an https client URL needs an AES-128-GCM suite (Go's HTTP/2).
    assert.equal(flagError(['--cipher-suites', 'TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256']).message, 'unexpected TLS cipher suite " TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"');
    const clientHttps = ['--listen-client-urls', 'https://127.0.0.1:2379', '--advertise-client-urls', 'https://127.0.0.1:2379', '--auto-tls'];
    const h2 = flagError(['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384', ...clientHttps]);
    assert.deepEqual([h2.message, h2.exitCode], ['http2: TLSConfig.CipherSuites is missing an HTTP/2-required AES_128_GCM_SHA256 cipher (need at least one of TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)', 1]);
    assert.equal(parseFlags(['--cipher-suites', 'TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384'], {}).clientTls.ciphers, 'ECDHE-ECDSA-AES256-GCM-SHA384:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256');
    // --cors takes '*' or URLs by etcd's rule (host:port).
    assert.equal(flagError(['--cors', 'https://app.example']).message, 'invalid value "https://app.example" for flag --cors: URL address does not have the form "host:port": https://app.example');
    assert.deepEqual(parseFlags(['--cors', 'https://app.example:443'], {}).cors, ['https://app.example:443']);
  });
});

describe('the raftkv command', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH, ...env } });

  it('an unknown flag exits 2 with one line naming it', () => {
    const r = run(['--no-such-flag', '--name', 'x']);
    assert.equal(r.status, 2, r.stderr);
    assert.deepEqual(r.stderr.trim().split('\n'), ["raftkv: unknown option '--no-such-flag'"]);
  });

  it('a flag shadowed by its variable, a bad config file: one line, exit 1 (etcd\'s code)', () => {
    const shadowed = run(['--name', 'x'], { ETCD_NAME: 'y' });
    assert.equal(shadowed.status, 1);
    assert.equal(shadowed.stderr, 'raftkv: conflicting environment variable "ETCD_NAME" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)\n');
    const bad = run(['--config-file', configFile('bad-cli.yml', 'name: n1\nbogus: 1\n')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /^raftkv: config file .*bad-cli\.yml: unknown key "bogus"\n$/);
  });
});

describe("the README's table of accepted flags", () => {
  it('lists every etcd flag with the support flag-specs.ts gives it (a flag made to work cannot stay "accepted" there)', async () => {
    const { readFileSync } = await import('node:fs');
    const readme = readFileSync(resolve('README.md'), 'utf8');
    const rows = new Map<string, string>();
    for (const m of readme.matchAll(/^\| `--([a-z0-9-]+)` \| [^|]* \| (honoured|accepted|refused-if-set) \|/gm)) rows.set(m[1]!, m[2]!);
    const wrong = FLAG_SPECS.filter((s) => !s.ignored && !s.raftkv && rows.get(s.name) !== s.support).map((s) => `--${s.name}: README ${rows.get(s.name) ?? 'missing'}, flag-specs ${s.support}`);
    assert.deepEqual(wrong, []);
  });
});
