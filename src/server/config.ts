// A member's configuration: etcd's flags, parsed (src/cli/flags.ts), plus what a test or the
// process injects (logger, clock, transport).

import type { MemberInfo } from '../gen/raftkv/member.js';
import type { TransportFactory } from '../transport/transport.js';
import type { ProcessLogger } from '../util/log.js';
import type { TlsConfig } from '../util/tls.js';
import type { JwtConfig } from '../auth/jwt.js';
import type { Clock } from './clock.js';
import type { WalReadAhead } from '../storage/wal/segment-read.js';
import { join } from 'node:path';

export const API_VERSION = '3.4.0';

export interface ServerConfig {
  name: string;
  dataDir: string;
  /** --wal-dir: a dedicated WAL directory (etcd's DedicatedWALDir); absent: <data-dir>/member/wal. */
  walDir?: string;
  advertiseClientUrls: string[];
  initialAdvertisePeerUrls: string[];
  /** name -> peer URLs */
  initialCluster: Map<string, string[]>;
  initialClusterState: 'new' | 'existing';
  initialClusterToken: string;
  heartbeatMs: number;
  electionMs: number;
  snapshotCount: number;
  /** Entries kept in memory and in the WAL after a snapshot, for slow followers. */
  snapshotCatchUpEntries: number;
  maxRequestBytes: number;
  /** etcd's --max-txn-ops: most operations in one txn (default 128, kv-ops.ts MAX_TXN_OPS). */
  maxTxnOps?: number;
  /** etcd's --enable-grpc-gateway: serve the JSON gateway (/v3/...) on the client port (default true). */
  enableGrpcGateway?: boolean;
  /** etcd's --quota-backend-bytes as given (0: etcd's default quota); its semantics are not implemented yet. */
  quotaBackendBytes?: number;
  /** etcd's --max-concurrent-streams: HTTP/2 streams per client connection (default 2^32-1). */
  maxConcurrentStreams?: number;
  /**
   * etcd's --grpc-keepalive-interval and --grpc-keepalive-timeout in ms (defaults 2h, 20s): the
   * server pings an idle client connection that often and drops it when the ping goes
   * unanswered that long, releasing a dead client's watch and lease streams.
   */
  grpcKeepAliveIntervalMs?: number;
  grpcKeepAliveTimeoutMs?: number;
  /** etcd's --cors and --host-whitelist for the HTTP side ('*': any; absent: any). */
  cors?: string[];
  hostWhitelist?: string[];
  walSegmentBytes?: number;
  /** etcd's --max-wals: WAL segment files kept once a snapshot covers them (0: all; storage/wal/wal.ts maxFiles). Absent: 1. */
  maxWals?: number;
  /** etcd's --max-snapshots: snapshot files kept (0: all). Absent: 2. */
  maxSnapshots?: number;
  /** etcd's --unsafe-no-fsync: the WAL and snapshots are written without any sync (storage/fatal.ts unsafeNoSync). */
  unsafeNoFsync?: boolean;
  /** The WAL's segments, already being read (the CLI starts this before loading the member's code). */
  walReadAhead?: WalReadAhead;
  /** Answer linearizable reads on the leader's lease (CheckQuorum) instead of ReadIndex rounds. */
  leaseReads?: boolean;
  /**
   * etcd's start-up tick advance (./tick-advance.ts): true or false is --initial-election-tick-advance
   * (a single-member cluster is advanced either way, as etcd's); absent, none at all (in-process tests).
   */
  initialElectionTickAdvance?: boolean;
  /** --experimental-warning-apply-duration in ms (default 100): a longer apply is warned about and counted. */
  warningApplyMs?: number;
  /** Append messages in flight to one follower (--max-inflight-appends; bootstrap.ts says why 1). */
  maxInflightAppends?: number;
  /**
   * etcd's --experimental-enable-lease-checkpoint (and -persist): the leader checkpoints long
   * leases' remaining TTL through the log every `intervalMs` (etcd's 5 min; kv/lessor.ts).
   * Absent: off.
   */
  leaseCheckpoint?: { intervalMs: number; persist: boolean };
  /** etcd's --strict-reconfig-check (default true): membership changes that would endanger the quorum are refused. */
  strictReconfigCheck?: boolean;
  /** etcd's --auto-compaction-*: the leader compacts the MVCC history (retention 0 = off). */
  autoCompaction?: { mode: 'periodic' | 'revision'; retention: number };
  /**
   * etcd's --discovery or --discovery-srv: a new member's initial cluster comes from the
   * discovery service (src/cli/discovery.ts: initialCluster then holds only this member and the
   * token is the discovery URL, as in etcd) or from SRV records (src/cli/dns-discovery.ts),
   * given this member's id and its own `name=url` entries. Not asked once the member has a WAL.
   */
  discovery?: (selfId: bigint, self: string, state: 'new' | 'existing') => Promise<Map<string, string[]>>;
  /** Members learned from a running cluster (for --initial-cluster-state existing). */
  existingMembers?: MemberInfo[];
  existingClusterId?: bigint;
  /** Advertised peer URL -> URL to dial (see TransportOptions.dialMap). */
  peerDialMap?: ReadonlyMap<string, string>;
  /**
   * etcd's --force-new-cluster: restart as the only voter of the cluster, keeping the committed
   * state (src/server/force-new-cluster.ts). Only for a member with a data dir.
   */
  forceNewCluster?: boolean;
  /** etcd's --experimental-initial-corrupt-check (run by the process before serving: corrupt-check.ts). */
  initialCorruptCheck?: boolean;
  /** etcd's --experimental-corrupt-check-time in ms: the leader's periodic HashKV comparison (0: off). */
  corruptCheckTimeMs?: number;
  /**
   * etcd's --experimental-watch-progress-notify-interval in ms (default 10 min; 0: none): how
   * often a watch stream tells its watchers created with progress_notify, that had no events
   * meanwhile, the current revision.
   */
  watchProgressNotifyIntervalMs?: number;
  /** Client and peer TLS (etcd's --cert-file, --peer-cert-file, ...), loaded (src/util/tls.ts). */
  tls?: TlsConfig;
  /**
   * etcd's --auth-token (`simple`, or `jwt,...`), --auth-token-ttl (seconds, default 300) and
   * --bcrypt-cost (default 10). Absent: those defaults.
   */
  auth?: AuthConfig;
  logger: ProcessLogger;
  /** Time (default: Node's timers). In-process test clusters pass a ManualClock. */
  clock?: Clock;
  /** The peer transport (default: gRPC streams). In-process test clusters pass an in-memory one. */
  transport?: TransportFactory;
  /** Seed of the Raft core's election-timeout randomness (default: random). */
  raftSeed?: number;
}

export interface AuthConfig {
  token: 'simple' | 'jwt';
  /** Simple tokens: seconds from the last use to expiry. */
  tokenTtlSec: number;
  bcryptCost: number;
  /** --auth-token jwt,...: keys (PEM contents), sign method, TTL in seconds. */
  jwt?: JwtConfig;
}

export const DEFAULT_AUTH: AuthConfig = { token: 'simple', tokenTtlSec: 300, bcryptCost: 10 };

/** Election timeout in ticks of one heartbeat interval (at least 2, as etcd-io/raft needs). */
export const electionTicks = (cfg: Pick<ServerConfig, 'electionMs' | 'heartbeatMs'>): number =>
  Math.max(2, Math.round(cfg.electionMs / cfg.heartbeatMs));

/** Where a member's snapshot files are: etcd's <data-dir>/member/snap. */
export function snapDirOf(cfg: { dataDir: string }): string {
  return join(cfg.dataDir, 'member', 'snap');
}

/** Where a member's WAL is: --wal-dir, or etcd's <data-dir>/member/wal. */
export function walDirOf(cfg: { dataDir: string; walDir?: string }): string {
  return cfg.walDir ?? join(cfg.dataDir, 'member', 'wal');
}
