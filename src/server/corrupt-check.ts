// etcd's corruption checks (etcdserver/corrupt.go), on raftkv's HashKV (MvccStore.hashByRev:
// the same hash as etcd, a function of the replicated state only).
//
// - --experimental-initial-corrupt-check: before serving, a restarted member compares its own
//   HashKV with its peers' at its revision, and refuses to start if a peer with the same
//   compact revision has another hash (etcd's CheckInitialHashKV). raftkv's state at that
//   point is the one restored from the newest snapshot (the WAL entries after it are applied
//   once Raft runs), so that is what this check covers; the periodic check covers the rest.
// - --experimental-corrupt-check-time: every interval the leader hashes its store, asks every
//   peer for its hash at the same revision, waits for a linearizable read, hashes again, and
//   raises a CORRUPT alarm through Raft on any mismatch (etcd's monitorKVHash/checkHashKV).
//   Writes are then refused on every member (see alarms.ts) until `etcdctl alarm disarm`.
//
// Peers are asked over the peer URLs with a small gRPC service (raftkv.PeerMaintenance/HashKV,
// etcd serves the same at /members/hashkv on its peer URLs), carrying the cluster id.
// Log lines carry etcd's messages, with its zap fields as key=value pairs.

import * as grpc from '@grpc/grpc-js';
import {
  type AlarmRequest,
  AlarmRequest_AlarmAction,
  type AlarmResponse,
  AlarmType,
  type HashKVRequest,
  type HashKVResponse,
  type ResponseHeader,
} from '../gen/etcd/rpc.js';
import { PeerMaintenanceClient, PeerMaintenanceService, type PeerMaintenanceServer } from '../gen/raftkv/peer_maintenance.js';
import { toServiceError } from '../api/grpc-status.js';
import { EtcdError, Errors } from '../kv/errors.js';
import { peerChannelCredentials } from '../util/grpc-tls.js';
import { grpcTarget } from '../util/url.js';
import { hex } from '../util/ids.js';
import type { ProcessLogger } from '../util/log.js';
import { yieldToEventLoop } from '../util/yield.js';
import { alarmName } from './alarms.js';
import type { Clock, Timer } from './clock.js';
import type { ServerConfig } from './config.js';
import type { StateMachine } from './state-machine.js';

/**
 * What the checks need of the member (the EtcdServer). Declared here rather than imported, so
 * that etcd-server.ts, which starts the checks, and this module do not import each other.
 */
export interface CorruptCheckHost {
  readonly id: bigint;
  readonly clusterId: bigint;
  readonly sm: StateMachine;
  readonly cfg: Pick<ServerConfig, 'peerDialMap' | 'tls'>;
  readonly clock: Clock;
  readonly logger: ProcessLogger;
  readonly requestTimeoutMs: number;
  header(revision: bigint): ResponseHeader;
  isLeader(): boolean;
  isStopped(): boolean;
  linearizableRead(): Promise<void>;
  propose(kind: 'alarm', req: AlarmRequest): Promise<AlarmResponse>;
}


const CLUSTER_ID_MD = 'raftkv-cluster-id';
const CLUSTER_ID_MISMATCH = 'cluster ID mismatch';

const fields = (f: Record<string, unknown>): string =>
  Object.entries(f)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(',')}]` : String(v)}`)
    .join(' ');

// ------------------------------------------------------------------ the peer service

/** raftkv.PeerMaintenance, served on the peer URLs: this member's HashKV at a revision. */
export function peerMaintenanceService(s: CorruptCheckHost): [typeof PeerMaintenanceService, PeerMaintenanceServer] {
  return [
    PeerMaintenanceService,
    {
      hashKv: (call: grpc.ServerUnaryCall<HashKVRequest, HashKVResponse>, cb: grpc.sendUnaryData<HashKVResponse>): void => {
        const cid = call.metadata.get(CLUSTER_ID_MD)[0];
        if (cid !== undefined && String(cid) !== s.clusterId.toString(16)) {
          cb({ code: grpc.status.FAILED_PRECONDITION, details: CLUSTER_ID_MISMATCH }, null);
          return;
        }
        if (s.isStopped()) {
          cb(toServiceError(Errors.stopped()), null);
          return;
        }
        s.sm.store.hashByRev(call.request.revision, yieldToEventLoop).then(
          (r) => cb(null, { header: s.header(r.currentRev), hash: r.hash, compactRevision: r.compactRev }),
          (e: unknown) => {
            if (!(e instanceof EtcdError)) s.logger.warn(`failed to get hashKV: requested-revision=${call.request.revision} error=${String(e)}`);
            cb(e instanceof EtcdError ? toServiceError(e) : { code: grpc.status.INTERNAL, details: String(e) }, null);
          },
        );
      },
    },
  ];
}

interface PeerHashKV {
  id: bigint;
  eps: string[];
  resp?: HashKVResponse;
  /** Why no answer: the peer is behind (future), we are behind (compacted), another cluster, or anything else. */
  err?: { kind: 'future' | 'compacted' | 'cluster-id' | 'other'; message: string };
}

function errKind(e: grpc.ServiceError): NonNullable<PeerHashKV['err']>['kind'] {
  if (e.details === Errors.futureRev().message) return 'future';
  if (e.details === Errors.compacted().message) return 'compacted';
  if (e.details === CLUSTER_ID_MISMATCH) return 'cluster-id';
  return 'other';
}

/** Asks every other member (all at once; each over its peer URLs in turn) for its HashKV at `rev`. */
async function getPeerHashKVs(s: CorruptCheckHost, rev: bigint): Promise<PeerHashKV[]> {
  const dial = s.cfg.peerDialMap;
  const peers = [...s.sm.membership.members.values()].filter((m) => m.id !== s.id && m.peerUrls.length > 0);
  return Promise.all(
    peers.map(async (m): Promise<PeerHashKV> => {
      let last: PeerHashKV['err'];
      for (const ep of m.peerUrls) {
        const target = dial?.get(ep) ?? dial?.get(ep.replace(/\/$/, '')) ?? ep;
        const c = new PeerMaintenanceClient(grpcTarget(target), peerChannelCredentials(ep, s.cfg.tls));
        try {
          const md = new grpc.Metadata();
          md.set(CLUSTER_ID_MD, s.clusterId.toString(16));
          const resp = await new Promise<HashKVResponse>((resolve, reject) =>
            c.hashKv({ revision: rev }, md, { deadline: Date.now() + s.requestTimeoutMs }, (err, res) => (err ? reject(err) : resolve(res))),
          );
          return { id: m.id, eps: m.peerUrls, resp };
        } catch (e) {
          const se = e as grpc.ServiceError;
          last = { kind: errKind(se), message: se.details || se.message };
          s.logger.warn(
            `failed hash kv request: ${fields({ 'local-member-id': hex(s.id), 'requested-revision': rev, 'remote-peer-endpoint': ep, error: last.message })}`,
          );
        } finally {
          c.close();
        }
      }
      return { id: m.id, eps: m.peerUrls, err: last };
    }),
  );
}

// ------------------------------------------------------------------ at start

/**
 * etcd's CheckInitialHashKV: compares this member's HashKV with its peers' at this member's
 * revision. Throws (the member must not start) if a peer with the same compact revision has
 * another hash; a peer that is behind, unreachable or compacted past us is only logged.
 */
export async function initialCorruptCheck(s: CorruptCheckHost): Promise<void> {
  const lg = s.logger;
  lg.info(`starting initial corruption check: ${fields({ 'local-member-id': hex(s.id), timeout: `${s.requestTimeoutMs}ms` })}`);
  const { hash: h, currentRev: rev, compactRev: crev } = await s.sm.store.hashByRev(0n, yieldToEventLoop);
  const peers = await getPeerHashKVs(s, rev);
  let mismatch = 0;
  const local = { 'local-member-id': hex(s.id), 'local-member-revision': rev, 'local-member-compact-revision': crev, 'local-member-hash': h };
  for (const p of peers) {
    if (p.resp) {
      const f = fields({
        ...local,
        'remote-peer-id': hex(p.resp.header?.memberId ?? p.id),
        'remote-peer-endpoints': p.eps,
        'remote-peer-revision': p.resp.header?.revision ?? 0n,
        'remote-peer-compact-revision': p.resp.compactRevision,
        'remote-peer-hash': p.resp.hash,
      });
      if (h !== p.resp.hash) {
        if (crev === p.resp.compactRevision) {
          lg.warn(`found different hash values from remote peer: ${f}`);
          mismatch++;
        } else {
          lg.warn(`found different compact revision values from remote peer: ${f}`);
        }
      }
      continue;
    }
    const f = fields({ ...local, 'remote-peer-id': hex(p.id), 'remote-peer-endpoints': p.eps, error: p.err?.message });
    switch (p.err?.kind) {
      case 'future':
        lg.warn(`cannot fetch hash from slow remote peer: ${f}`);
        break;
      case 'compacted':
        lg.warn(`cannot fetch hash from remote peer; local member is behind: ${f}`);
        break;
      case 'cluster-id':
        lg.warn(`cluster ID mismatch: ${f}`);
        break;
      default:
        break; // unreachable: logged by getPeerHashKVs
    }
  }
  if (mismatch > 0) throw new Error(`${hex(s.id)} found data inconsistency with peers`);
  lg.info(`initial corruption checking passed; no corruption: ${fields({ 'local-member-id': hex(s.id) })}`);
}

// ------------------------------------------------------------------ periodic, on the leader

/**
 * Runs etcd's checkHashKV every `intervalMs` while this member leads (0: never), and logs the
 * alarms the state machine raises or disarms.
 */
export class CorruptionMonitor {
  private timer: Timer | undefined;
  private stopped = false;

  constructor(
    private readonly s: CorruptCheckHost,
    private readonly intervalMs: number,
  ) {
    s.sm.onAlarmChange = (c) =>
      s.logger.warn(`${c.raised ? 'alarm raised' : 'alarm disarmed'}: ${fields({ alarm: alarmName(c.alarm.alarm), from: hex(c.alarm.memberID) })}`);
  }

  start(): void {
    if (this.intervalMs <= 0) return;
    this.s.logger.info(`enabled corruption checking: ${fields({ 'local-member-id': hex(this.s.id), interval: `${this.intervalMs}ms` })}`);
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = this.s.clock.setTimeout(() => {
      if (this.stopped || !this.s.isLeader()) {
        this.schedule();
        return;
      }
      this.checkHashKV()
        .catch((e: Error) => {
          if (!this.stopped) this.s.logger.warn(`failed to check hash KV: ${fields({ error: e.message })}`);
        })
        .finally(() => this.schedule());
    }, this.intervalMs);
  }

  /** One pass of etcd's checkHashKV. */
  async checkHashKV(): Promise<void> {
    const s = this.s;
    const lg = s.logger;
    const { hash: h, currentRev: rev, compactRev: crev } = await s.sm.store.hashByRev(0n, yieldToEventLoop);
    const peers = await getPeerHashKVs(s, rev);
    // Every peer answered with at most what is committed now: once this member has applied
    // that, its revision is at least theirs.
    await s.linearizableRead();
    const { hash: h2, currentRev: rev2, compactRev: crev2 } = await s.sm.store.hashByRev(0n, yieldToEventLoop);

    let alarmed = false;
    const mismatch = (): void => {
      if (alarmed || this.stopped) return;
      alarmed = true;
      if (s.sm.alarms.has(AlarmType.CORRUPT)) return; // raised already: nothing new to log
      // As etcd 3.4: it is not clear which member is corrupt, so the alarm names member 0.
      s.propose('alarm', { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT }).catch((e: Error) =>
        lg.warn(`failed to raise the CORRUPT alarm: ${fields({ error: e.message })}`),
      );
    };

    if (h2 !== h && rev2 === rev && crev === crev2) {
      lg.warn(
        `found hash mismatch: ${fields({ 'revision-1': rev, 'compact-revision-1': crev, 'hash-1': h, 'revision-2': rev2, 'compact-revision-2': crev2, 'hash-2': h2 })}`,
      );
      mismatch();
    }

    let checked = 0;
    for (const p of peers) {
      if (!p.resp) continue;
      checked++;
      const peerRev = p.resp.header?.revision ?? 0n;
      // The leader expects a follower's latest revision to be at most its own...
      if (peerRev > rev2) {
        lg.warn(
          `revision from follower must be less than or equal to leader's: ${fields({ 'leader-revision': rev2, 'follower-revision': peerRev, 'follower-peer-id': hex(p.id) })}`,
        );
        mismatch();
      }
      // ...and its compact revision too.
      if (p.resp.compactRevision > crev2) {
        lg.warn(
          `compact revision from follower must be less than or equal to leader's: ${fields({ 'leader-compact-revision': crev2, 'follower-compact-revision': p.resp.compactRevision, 'follower-peer-id': hex(p.id) })}`,
        );
        mismatch();
      }
      // Same compact revision as the leader's first hash: the hashes must match.
      if (p.resp.compactRevision === crev && p.resp.hash !== h) {
        lg.warn(
          `same compact revision then hashes must match: ${fields({ 'leader-compact-revision': crev2, 'leader-hash': h, 'follower-compact-revision': p.resp.compactRevision, 'follower-hash': p.resp.hash, 'follower-peer-id': hex(p.id) })}`,
        );
        mismatch();
      }
    }
    lg.info(`finished peer corruption check: ${fields({ 'number-of-peers-checked': checked })}`);
  }
}
