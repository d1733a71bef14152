// One raftkv member, as its parts put together: bootstrap.ts (recovery), raft-node.ts (the
// Raft loop), proposals.ts (requests and their waiters), snapshots.ts, leader-duties.ts
// (lease expiry, auto-compaction, publish), state-machine.ts (what entries mean) and
// linearizable-read.ts (ReadIndex). This file wires them and is the server's face to the
// client API (src/api): typed requests, reads and introspection, nothing of the core's insides.
//
// Owns: the order of start and stop, and what each part is told when the others move (a new
// leader, an applied entry, a removed member). Never: holds protocol or storage logic itself.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import {
  type BasicStatus,
  type Status,
  ConfChangeType,
  type ConfChangeV1,
  type Entry,
  EntryType,
  MemoryStorage,
  type Message,
  NONE,
  type SoftState,
  StateType,
} from '../raft/index.js';
import type { InternalRequest } from '../gen/raftkv/entry.js';
import { AlarmRequest_AlarmAction, AlarmType, type ResponseHeader } from '../gen/etcd/rpc.js';
import { EtcdError, Errors, isRequestTimeout } from '../kv/errors.js';
import { Lessor } from '../kv/lessor.js';
import { WatchHub } from '../kv/watch-hub.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { GrpcTransportFactory } from '../transport/grpc-transport.js';
import type { Transport } from '../transport/transport.js';
import { hex } from '../util/ids.js';
import type { ProcessLogger } from '../util/log.js';
import { bootstrap, syncCallsOf } from './bootstrap.js';
import { type Clock, systemClock } from './clock.js';
import { type ServerConfig, electionTicks, snapDirOf } from './config.js';
import { adjustTicks } from './tick-advance.js';
import { ClusterEvents } from './cluster-events.js';
import { CorruptionMonitor } from './corrupt-check.js';
import { HeartbeatTimeliness } from './heartbeat-timeliness.js';
import { LeaderDuties } from './leader-duties.js';
import { LinearizableReader } from './linearizable-read.js';
import { MembershipChanges } from './membership-changes.js';
import type { Metrics } from './metrics.js';
import { Proposals } from './proposals.js';
import { applyTooFarBehind, effectiveQuota, fitsQuota, requestCost } from './quota.js';
import { RaftNode } from './raft-node.js';
import { yieldToEventLoop } from '../util/yield.js';
import { Snapshots } from './snapshots.js';
import { type Applied, type RequestKind, type RequestResults, StateMachine } from './state-machine.js';

export { API_VERSION, type ServerConfig } from './config.js';

/** etcd warns about a WAL sync slower than this (wal.warnSyncDuration). */
const SLOW_FSYNC_SECONDS = 1;

/** How long a peer must have been heard from, or connected, to count as healthy (etcd's HealthInterval). */
const HEALTH_INTERVAL_MS = 5000;

/** etcd warns about an apply slower than this: --experimental-warning-apply-duration's default (warnApplyDuration). */
export const DEFAULT_WARNING_APPLY_MS = 100;

/** etcd's warning (and slow_apply_total) for an apply that took longer than `thresholdMs`, or undefined. */
export function slowApplyWarning(seconds: number, thresholdMs: number): string | undefined {
  const ms = seconds * 1000;
  return ms > thresholdMs ? `apply request took too long: took ${Math.round(ms)}ms, expected-duration ${thresholdMs}ms` : undefined;
}

export class EtcdServer {
  id = 0n;
  clusterId = 0n;
  readonly sm: StateMachine;
  readonly watchHub: WatchHub;
  readonly clock: Clock;
  readonly requestTimeoutMs: number;
  /** Member add/remove/update/promote with etcd's checks (the Cluster API calls these). */
  readonly members: MembershipChanges;
  readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  /** Set by the process to record metrics (optional: tests run without). */
  metrics: Metrics | undefined;
  /** Membership and leadership events as they happen here (the dashboard lists them). */
  readonly events = new ClusterEvents(() => this.clock.wallNow());
  /** Requests proposed and not yet answered (etcd_server_proposals_pending). */
  private pending = 0;
  /** The leader the last SoftState named: a leader change is counted when it changes. */
  private seenLead = NONE;
  onFatal: (e: Error) => void = () => {};
  onRemoved: () => void = () => {};

  // The parts, made by init().
  private node!: RaftNode;
  private transport!: Transport;
  private proposals!: Proposals;
  private snapshots!: Snapshots;
  private duties!: LeaderDuties;
  private corruption: CorruptionMonitor | undefined;
  private readonly reader: LinearizableReader;
  /** Resolves `replayed()`: set until the log a restart found committed is applied. */
  private markReplayed: (() => void) | undefined;
  private readonly whenReplayed = new Promise<void>((resolve) => {
    this.markReplayed = resolve;
  });
  /** Whether this member, as leader, sends its heartbeats on time. */
  private readonly heartbeats: HeartbeatTimeliness;
  private readonly storage = new MemoryStorage();
  private readonly snapshotter: Snapshotter;
  private ticker: { cancel(): void } | undefined;
  private stopped = false;
  /** Whether the last soft state said this member leads. */
  private leading = false;
  private cancelTickAdvance: (() => void) | undefined;

  constructor(readonly cfg: ServerConfig) {
    this.clock = cfg.clock ?? systemClock;
    // etcd: the minimum lease TTL is 1.5 election timeouts, in whole seconds.
    const minTTL = BigInt(Math.ceil((1.5 * electionTicks(cfg) * cfg.heartbeatMs) / 1000));
    const checkpoints = cfg.leaseCheckpoint ?? { intervalMs: 0, persist: false };
    this.sm = new StateMachine(new Lessor(minTTL, () => this.clock.now(), checkpoints), () => this.header(0n));
    this.watchHub = new WatchHub(() => this.sm.store);
    // A compaction of millions of keys is pruned in slices (every member applies it at once).
    this.sm.store.pruneYield = yieldToEventLoop;
    // A txn's ranges over many keys are read after it is applied, in slices (kv-ops.ts).
    this.sm.readPause = yieldToEventLoop;
    this.sm.store.onEvents = (events, rev, writes) => this.watchHub.notify(events, rev, writes);
    this.snapshotter = new Snapshotter(snapDirOf(cfg), cfg.logger, { sync: syncCallsOf(cfg), retain: cfg.maxSnapshots });
    this.snapshotter.timings = {
      marshalled: (x) => this.metrics?.snapshotSave.marshalled(x),
      synced: (x) => this.metrics?.snapshotSave.synced(x),
      saved: (x) => this.metrics?.snapshotSave.saved(x),
    };
    this.reader = new LinearizableReader(
      { readIndex: (ctx) => this.node.readIndex(ctx), appliedIndex: () => this.sm.appliedIndex },
      Math.max(500, cfg.electionMs),
      this.clock,
    );
    this.heartbeats = new HeartbeatTimeliness(cfg.heartbeatMs, () => this.clock.now(), (msg) => cfg.logger.warn(msg));
    // etcd: 5s + 2 election timeouts.
    this.requestTimeoutMs = 5000 + 2 * cfg.electionMs;
    const quota = effectiveQuota(cfg.quotaBackendBytes);
    this.quotaBytes = quota.bytes;
    if (quota.warning) cfg.logger.warn(quota.warning);
    cfg.logger.info(`space quota ${this.quotaBytes} bytes (quota-backend-bytes; V8 heap limit ${getHeapStatistics().heap_size_limit})`);
    const server = this;
    this.members = new MembershipChanges({
      get id() {
        return server.id;
      },
      membership: this.sm.membership,
      recentlyActive: (id) => this.recentlyActive(id),
      matchOf: (id) => this.node.raw.matchOf(id),
      wallNow: () => this.clock.wallNow(),
      proposeConfChange: (cc) => this.proposeConfChange(cc),
      strictReconfigCheck: cfg.strictReconfigCheck ?? true,
    });
  }

  get logger(): ProcessLogger {
    return this.cfg.logger;
  }

  get lessor(): Lessor {
    return this.sm.lessor;
  }

  header(revision: bigint): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.id, revision, raftTerm: BigInt(this.node?.raw.term ?? 0) };
  }

  // ------------------------------------------------------------------ life cycle

  /** Opens or creates the data directory and the Raft node. Does not start ticking. */
  async init(): Promise<void> {
    const cfg = this.cfg;
    const transports = cfg.transport ?? new GrpcTransportFactory(cfg.logger, cfg.peerDialMap);
    const booted = await bootstrap(cfg, this.storage, this.sm, this.snapshotter, transports);
    this.id = booted.id;
    this.clusterId = booted.clusterId;
    this.sm.replayTo = booted.replayTo;
    this.sm.onUndecodable = (index, err) => this.logger.error(`skipped committed entry ${index}: it does not decode (${(err as Error)?.message ?? String(err)})`);
    this.transport = transports.create({
      id: this.id,
      clusterId: this.clusterId,
      handler: {
        step: (m) => this.node.step(m),
        reportUnreachable: (id) => this.node.reportUnreachable(id),
        reportSnapshot: (id, ok) => this.node.reportSnapshot(id, ok),
        members: () => ({ clusterId: this.clusterId, members: [...this.sm.membership.members.values()] }),
        isRemoved: (id) => this.sm.membership.removed.has(id),
        isMember: (id) => this.sm.membership.members.has(id) || (!this.sm.membership.removed.has(id) && booted.peers.some((m) => m.id === id)),
        onRemoved: () => this.removed(),
      },
    });
    for (const m of booted.peers) this.transport.addPeer(m.id, m.peerUrls);
    this.node = new RaftNode(booted.raw, this.storage, booted.wal, this.snapshotter, this.transport, {
      onSoftState: (ss) => this.onSoftState(ss),
      restoreSnapshot: async (s) => {
        await this.snapshots.restore(s);
        for (const m of this.sm.membership.members.values()) this.transport.addPeer(m.id, m.peerUrls);
      },
      apply: (ents) => this.apply(ents),
      onReadState: (ctx, index) => this.reader.onReadState(ctx, index),
      afterReady: () => {
        this.checkReplayed();
        this.reader.onApplied();
        this.wakeAppliedWaiters();
        this.snapshots.maybeSave();
      },
      sendSnapshot: (m) => this.snapshots.send(m, (msgs: Message[]) => this.transport.send(msgs)),
      sending: (msgs) => this.heartbeats.sending(msgs),
      observeFsync: (s) => {
        this.metrics?.walFsync.observe(s);
        // etcd's warnings, once per occurrence: a slow disk is the usual cause of lost leaders.
        if (s > SLOW_FSYNC_SECONDS) this.logger.warn(`slow fdatasync: took ${Math.round(s * 1000)}ms, expected-duration 1s`);
      },
      observeApply: (s) => {
        this.metrics?.backendCommit.observe(s);
        const slow = slowApplyWarning(s, this.cfg.warningApplyMs ?? DEFAULT_WARNING_APPLY_MS);
        if (slow) {
          this.metrics?.slowApplies.inc();
          this.logger.warn(slow);
        }
      },
      onFatal: (e) => this.onFatal(e),
    }, this.clock, cfg.logger);
    this.proposals = new Proposals(
      this.id,
      this.node,
      this.sm,
      { maxRequestBytes: cfg.maxRequestBytes, requestTimeoutMs: this.requestTimeoutMs, electionMs: cfg.electionMs },
      this.clock,
      cfg.logger,
      { retried: () => this.metrics?.proposalsRetried.inc(), failed: () => this.metrics?.proposalsFailed.inc() },
    );
    this.snapshots = new Snapshots(
      this.node,
      this.sm,
      this.snapshotter,
      { snapshotCount: cfg.snapshotCount, catchUpEntries: cfg.snapshotCatchUpEntries },
      this.clock,
      cfg.logger,
      (e) => this.onFatal(e),
      booted.snapshotIndex,
    );
    this.duties = new LeaderDuties(this.id, cfg, this.sm, this.proposals, () => this.isLeader(), this.requestTimeoutMs, this.clock, cfg.logger);
  }

  start(): void {
    this.checkReplayed();
    this.loopDelay.enable();
    this.ticker = this.clock.setInterval(() => {
      this.node.tick();
      this.proposals.reproposeStale();
    }, this.cfg.heartbeatMs);
    this.duties.start();
    this.corruption = new CorruptionMonitor(this, this.cfg.corruptCheckTimeMs ?? 0);
    this.corruption.start();
    this.node.kick();
    // Once the membership is whole (a restart replays its conf changes from the log).
    const advance = this.cfg.initialElectionTickAdvance;
    if (advance !== undefined) void this.whenReplayed.then(() => this.startTickAdvance(advance));
  }

  private startTickAdvance(advance: boolean): void {
    if (this.stopped) return;
    const host = {
      members: () => this.sm.membership.members.size,
      activePeers: () => [...this.sm.membership.members.keys()].filter((id) => id !== this.id && this.transport.activeForMs?.(id) !== undefined).length,
      tick: () => this.node.tick(),
      isStopped: () => this.stopped,
    };
    this.cancelTickAdvance = adjustTicks(host, electionTicks(this.cfg), advance, this.clock, (m) => this.cfg.logger.info(m));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.ticker?.cancel();
    this.cancelTickAdvance?.();
    this.duties?.stop();
    this.corruption?.stop();
    this.snapshots?.stop();
    this.loopDelay.disable();
    this.proposals?.stop();
    this.reader.failAll(Errors.stopped());
    this.wakeAppliedWaiters();
    this.transport?.close();
    // Let an in-flight persist finish so that nothing acknowledged is half-written.
    await this.node?.stop();
    await this.node?.wal.close();
  }

  /**
   * This member is no longer one: it stops ten heartbeats later (etcd's stopWithDelay: 1 s at
   * the default 100 ms), so that the answer to the MemberRemove that removed it reaches its
   * client — stopping at once cut that connection, and `etcdctl member remove` of the member it
   * was talking to said "transport is closing" and exited 1 (etcd: 0). Told by a peer (which
   * applied the removal first and now refuses it), it may never apply the removal itself — the
   * leader stops sending to it as it applies it — so a MemberRemove of itself waiting here is
   * answered then too: the removal is committed and applied.
   */
  private removed(): void {
    if (this.stopped || this.removing) return;
    this.removing = true;
    this.logger.warn('the member has been permanently removed from the cluster');
    this.proposals.confChangeApplied(ConfChangeType.RemoveNode, this.id);
    this.clock.setTimeout(() => this.onRemoved(), 10 * this.cfg.heartbeatMs);
  }

  /** Set once removed() ran: the stop is on its way. */
  private removing = false;

  // ------------------------------------------------------------------ what the loop reports

  private onSoftState(ss: SoftState): void {
    const leads = ss.raftState === StateType.Leader;
    // The lessor is promoted once this leader has applied its term's first entry (below, in
    // apply), and demoted as soon as it stops leading.
    if (leads && !this.leading) this.heartbeats.reset();
    if (!leads && this.sm.lessor.isPrimary()) this.sm.lessor.demote();
    this.leading = leads;
    // As etcd counts them: a new, known leader is a change; losing one is an event only.
    if (ss.lead !== this.seenLead) {
      const term = this.node.raw.basicStatus().term;
      if (ss.lead !== NONE) {
        this.metrics?.leaderChanges.inc();
        this.events.record({ kind: ss.lead === this.id ? 'became-leader' : 'new-leader', member: hex(ss.lead), term });
      } else {
        this.events.record({ kind: 'leader-lost', member: hex(this.seenLead), term });
      }
      this.seenLead = ss.lead;
    }
    this.logger.info(`raft: ${ss.raftState}, leader ${hex(ss.lead)} at term ${this.node.raw.basicStatus().term}`);
    this.proposals.onLeader(ss.lead);
    if (ss.lead !== NONE) {
      // A read asked while there was no leader was dropped by Raft: ask again now.
      this.reader.leaderKnown();
      this.duties.maybePublish();
    }
  }

  /** Only a request of this member that a caller still waits on needs its response built. */
  private readonly responseWanted = (proposer: bigint, id: bigint): boolean => proposer === this.id && this.proposals.isWaiting(id);

  /**
   * Applies committed entries in order. An entry applied in slices (a deletion over many keys:
   * StateMachine.applyNormal) makes this a Promise: the entries after it wait for it, and so
   * does the Raft loop (raft-node.ts), whose heartbeats go on meanwhile.
   */
  private apply(ents: Entry[], from = 0): void | Promise<void> {
    for (let i = from; i < ents.length; i++) {
      const e = ents[i]!;
      if (e.type === EntryType.Normal) {
        // A new leader's empty entry of its own term, applied: everything the previous leaders
        // committed is applied too (their lease grants, revocations and checkpoints), so the
        // lessor can start its countdowns now (etcd's Promote in applyEntryNormal). Earlier, a
        // checkpoint committed just before the old leader died would come after the countdowns.
        if (e.data.length === 0 && this.leading && e.term === this.term() && !this.sm.lessor.isPrimary()) {
          this.sm.lessor.promote(this.cfg.electionMs);
        }
        const r = this.sm.applyNormal(e, this.responseWanted);
        if (r instanceof Promise) {
          return r.then((x) => {
            this.applied(x);
            return this.apply(ents, i + 1);
          });
        }
        this.applied(r);
        continue;
      }
      const { cc, member } = this.sm.applyConfChangeEntry(e);
      this.sm.confState = this.node.applyConfChange(cc);
      for (const c of cc.changes) {
        this.recordMembershipEvent(c.type, c.nodeId, member?.id === c.nodeId, e);
        if (c.type === ConfChangeType.RemoveNode) {
          if (c.nodeId === this.id) this.removed();
          else this.transport.removePeer(c.nodeId);
        } else if (member && member.id === c.nodeId) {
          this.transport.addPeer(member.id, member.peerUrls);
        }
        this.proposals.confChangeApplied(c.type, c.nodeId);
      }
    }
  }

  /** A normal entry applied: its proposer's caller hears how. */
  private applied({ id, outcome, duplicate }: Applied): void {
    if (id !== 0n) this.proposals.settle(id, outcome);
    if (duplicate) this.metrics?.duplicatesSkipped.inc();
  }

  /**
   * For the dashboard's event list. An AddNode that carries the member's info adds a voter; one
   * without it promotes a learner (how membership-changes.ts proposes each).
   */
  private recordMembershipEvent(type: ConfChangeType, nodeId: bigint, carriesMember: boolean, e: Entry): void {
    const kind =
      type === ConfChangeType.AddNode ? (carriesMember ? 'joined' : 'promoted')
      : type === ConfChangeType.AddLearnerNode ? 'joined-as-learner'
      : type === ConfChangeType.RemoveNode ? 'removed'
      : 'updated';
    this.events.record({ kind, member: hex(nodeId), term: e.term, index: e.index });
    // etcd's membership log lines (in its capnslog words), which operators grep for.
    const urls = `[${(this.sm.membership.get(nodeId)?.peerUrls ?? []).join(' ')}]`;
    const cid = hex(this.clusterId);
    this.cfg.logger.info(
      kind === 'removed' ? `removed member ${hex(nodeId)} from cluster ${cid}`
      : kind === 'promoted' ? `promote member ${hex(nodeId)} in cluster ${cid}`
      : kind === 'updated' ? `updated member ${hex(nodeId)} ${urls} in cluster ${cid}`
      : `added member ${hex(nodeId)} ${urls} to cluster ${cid}`,
    );
  }

  // ------------------------------------------------------------------ requests (the API's face)

  /**
   * Replicates a request of `kind` and resolves with what applying it answered (etcd's response).
   * `caller`: the user and auth revision of the caller's token (src/auth/frontend.ts), checked at apply.
   */
  propose<K extends RequestKind>(
    kind: K,
    body: NonNullable<InternalRequest[K]>,
    caller?: Pick<InternalRequest, 'username' | 'authRevision'>,
  ): Promise<RequestResults[K]> {
    const refused = this.admit({ [kind]: body });
    if (refused) return Promise.reject(refused);
    const p = this.proposals.propose(kind, body, caller);
    // Counted until answered either way (etcd_server_proposals_pending).
    this.pending++;
    const done = (): void => void this.pending--;
    p.then(done, done);
    return p;
  }

  /**
   * The common case of renewLease, at once: this leader's started lessor knows the lease, live,
   * with no checkpoint to clear. Its TTL, or undefined when renewLease has something to wait for.
   */
  renewLeaseNow(ID: bigint): bigint | undefined {
    const l = this.lessor;
    if (!this.isLeader() || !l.isPrimary() || !l.exists(ID) || l.isExpired(ID) || l.mustClearCheckpoint(ID)) return undefined;
    return l.renew(ID);
  }

  /**
   * The leader's renewal of a lease (etcd's lessor.Renew): resolves with its TTL, 0n if there is
   * no such lease (etcd's keepalive answer), or undefined if this member no longer leads (the
   * caller forwards it).
   */
  async renewLease(ID: bigint): Promise<bigint | undefined> {
    const now = this.renewLeaseNow(ID);
    if (now !== undefined) return now;
    // Just elected, the lessor starts once this leader's first entry is applied: wait for it
    // (etcd's LeaseRenew retries its ErrNotPrimary the same way).
    while (this.isLeader() && !this.lessor.isPrimary() && !this.stopped) await this.heartbeatPause();
    // A lease granted through the previous leader may not be applied here yet (a leader just
    // elected): wait until this member has applied what was committed before saying it does
    // not exist (etcd's waitAppliedIndex before a renewal). Costs only on a miss.
    if (!this.lessor.exists(ID)) await this.linearizableRead();
    // An expired lease is not brought back: its revocation is due (leader-duties.ts), and the
    // renewal waits for it and answers that the lease is gone, as etcd's Renew waits on its
    // revokec (else the client would hear "alive" just before the lease and its keys went).
    while (this.lessor.isExpired(ID) && !this.stopped) await this.heartbeatPause();
    // A checkpointed remaining TTL is cleared through the log first (etcd's Renew with a
    // checkpointer, which waits for it and ignores its failure): otherwise a later leader would
    // count down from the old checkpoint, not from this renewal.
    if (this.lessor.mustClearCheckpoint(ID)) {
      await this.propose('leaseCheckpoint', { checkpoints: [{ ID, remainingTTL: 0n }] }).catch(() => {});
    }
    if (this.stopped) throw Errors.stopped();
    if (!this.isLeader() || !this.lessor.isPrimary()) return undefined;
    return this.lessor.exists(ID) ? this.lessor.renew(ID) : 0n;
  }

  /** The space quota in bytes (etcd's --quota-backend-bytes, bounded by the heap: ./quota.ts). */
  readonly quotaBytes: number;
  private noSpaceRaising = false;

  /**
   * What etcd refuses before proposing: anything while the applier trails the commit index by
   * more than 5,000 entries (`too many requests`), and a request that could grow the store past
   * the quota (`database space exceeded`) — the latter also raises the NOSPACE alarm for this
   * member through the log, so every member refuses such writes until an operator disarms it.
   */
  private admit(req: Pick<InternalRequest, 'put' | 'txn' | 'leaseGrant'>): EtcdError | undefined {
    if (applyTooFarBehind(this.committedIndex(), this.sm.appliedIndex)) return Errors.tooManyRequests();
    if (fitsQuota(this.sm.store.size(), requestCost(req), this.quotaBytes)) return undefined;
    this.raiseNoSpace();
    return Errors.noSpace();
  }

  private raiseNoSpace(): void {
    const raised = this.sm.alarms.get(AlarmType.NOSPACE).some((a) => a.memberID === this.id);
    if (raised || this.noSpaceRaising) return;
    this.noSpaceRaising = true;
    this.logger.warn(`database size ${this.sm.store.size()} exceeds the space quota ${this.quotaBytes}: raising alarm NOSPACE`);
    this.proposals
      .propose('alarm', { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: this.id, alarm: AlarmType.NOSPACE })
      .catch((e: Error) => this.logger.warn(`raising alarm NOSPACE failed: ${e.message}`))
      .finally(() => (this.noSpaceRaising = false));
  }

  /** Waits until a read served from local state is linearizable (ReadIndex). */
  async linearizableRead(): Promise<void> {
    if (this.stopped) throw Errors.stopped();
    const gaveUp = new AbortController();
    try {
      await this.proposals.withTimeout(this.reader.wait(gaveUp.signal));
    } catch (e) {
      if (isRequestTimeout(e)) this.reader.timedOut();
      // Out of its round: a read that timed out holds nothing while the member has no leader.
      gaveUp.abort(e);
      throw e;
    }
  }

  /**
   * Callers waiting for the applied index to reach theirs (waitApplied), by index: a Set per
   * index, so a waiter that times out leaves in O(1), and the lowest index waited for, so a
   * Ready with nothing due costs one comparison (forged tokens from a far index can make tens
   * of thousands of waiters).
   */
  private readonly appliedWaiters = new Map<number, Set<() => void>>();
  private lowestWaited = Infinity;

  /**
   * Resolves once this member has applied `index`, or after `timeoutMs` (or at stop) either way:
   * the caller looks again. Woken by the apply (etcd's applyWait), where a poll every 5 ms cost
   * a core's worth of CPU for a few thousand waiters.
   */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.sm.appliedIndex >= index || this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      let waiting = this.appliedWaiters.get(index);
      if (!waiting) this.appliedWaiters.set(index, (waiting = new Set()));
      const bucket = waiting;
      const wake = (): void => {
        timer.cancel();
        resolve();
      };
      const timer = this.clock.setTimeout(() => {
        bucket.delete(wake);
        if (bucket.size === 0 && this.appliedWaiters.get(index) === bucket) this.appliedWaiters.delete(index);
        resolve();
      }, timeoutMs);
      bucket.add(wake);
      if (index < this.lowestWaited) this.lowestWaited = index;
    });
  }

  private wakeAppliedWaiters(): void {
    const applied = this.stopped ? Infinity : this.sm.appliedIndex;
    if (applied < this.lowestWaited) return;
    let lowest = Infinity;
    for (const [index, wakes] of this.appliedWaiters) {
      if (index > applied) {
        if (index < lowest) lowest = index;
        continue;
      }
      this.appliedWaiters.delete(index);
      for (const wake of wakes) wake();
    }
    this.lowestWaited = lowest;
  }

  /** Read index answers for an older round, and reads that timed out waiting for one. */
  slowReadIndexes(): number {
    return this.reader.slow;
  }

  /** Heartbeats this member sent late as leader (etcd_server_heartbeat_send_failures_total). */
  lateHeartbeats(): number {
    return this.heartbeats.late;
  }

  /** Bytes this process wrote to its WAL. */
  walBytesWritten(): number {
    return this.node?.wal.bytesWritten ?? 0;
  }

  /** Whether a snapshot from the leader is being applied now. */
  applyingSnapshot(): boolean {
    return this.snapshots?.applying ?? false;
  }

  /** Learner promotions made here as leader, and the refused ones by reason. */
  promotions(): { successes: number; failures: ReadonlyMap<string, number> } {
    return this.members.promotions;
  }

  /** Proposes a membership change and resolves once it is applied. */
  proposeConfChange(cc: ConfChangeV1): Promise<void> {
    return this.proposals.proposeConfChange(cc);
  }

  /** Hands leadership to `target` and waits until it leads (or the request times out). */
  async transferLeadership(target: bigint): Promise<void> {
    if (this.leader() === target) return;
    this.node.transferLeader(target);
    const deadline = this.clock.now() + this.requestTimeoutMs;
    while (this.leader() !== target) {
      if (this.clock.now() > deadline || this.stopped) throw Errors.timeoutDueToLeaderFail();
      await this.heartbeatPause();
    }
  }

  /** One heartbeat interval on the member's clock: what the waits below poll at. */
  private heartbeatPause(): Promise<void> {
    return new Promise<void>((r) => this.clock.setTimeout(r, this.cfg.heartbeatMs));
  }

  /**
   * Before a leader stops (etcd's TransferLeadership in EtcdServer.Stop): hands leadership to
   * the most caught-up voter heard from lately, so that the cluster has a leader again at once
   * instead of after an election timeout (a rolling restart costs writes no leaderless second).
   * Resolves with the new leader, or undefined if this member does not lead a cluster of
   * several voters or the chosen one did not take over before Raft gave the transfer up (one
   * election timeout; then it stops anyway).
   */
  async handOverLeadership(): Promise<bigint | undefined> {
    const progress = this.isLeader() ? this.raftFullStatus().progress : undefined;
    if (!progress) return undefined;
    let target: bigint | undefined;
    let best = -1;
    for (const [id, p] of progress) {
      if (id === this.id || p.isLearner || !this.recentlyActive(id)) continue;
      if (p.match > best) [target, best] = [id, p.match];
    }
    if (target === undefined) return undefined;
    const lg = this.cfg.logger;
    const started = this.clock.now();
    lg.info(`leadership transfer starting: from ${hex(this.id)} to ${hex(target)} before stopping`);
    this.node.transferLeader(target);
    // Until this member no longer leads, or Raft gives the transfer up (one election timeout
    // without the target taking over: say it is stopping too, as when a whole cluster stops).
    while (this.isLeader()) {
      await this.heartbeatPause();
      if (this.stopped || (this.isLeader() && this.raftFullStatus().leadTransferee === 0n)) {
        lg.warn(`leadership transfer failed: ${hex(target)} did not take over`);
        return undefined;
      }
    }
    // Stepped down at the new term; the new leader is known with its first message.
    const deadline = this.clock.now() + this.cfg.electionMs;
    while (this.leader() === 0n && !this.stopped && this.clock.now() < deadline) await this.heartbeatPause();
    const lead = this.leader();
    lg.info(`leadership transfer finished: old leader ${hex(this.id)}, new leader ${lead === 0n ? 'not yet known' : hex(lead)}, took ${this.clock.now() - started} ms`);
    return lead === 0n ? undefined : lead;
  }

  // ------------------------------------------------------------------ introspection

  /** The core's status without copies (term, commit, applied, lead, role). */
  raftStatus(): BasicStatus {
    return this.node.raw.basicStatus();
  }

  /** The Raft core's whole status: on the leader, every member's progress (/debug/vars). */
  raftFullStatus(): Status {
    return this.node.raw.status();
  }

  leader(): bigint {
    return this.node.raw.lead;
  }

  isLeader(): boolean {
    return this.node.raw.basicStatus().raftState === StateType.Leader;
  }

  isLearner(): boolean {
    return this.node.raw.isLearner;
  }

  committedIndex(): number {
    return this.node.raw.committed;
  }

  term(): number {
    return this.node.raw.term;
  }

  leaderClientUrl(): string | undefined {
    return this.sm.membership.get(this.leader())?.clientUrls[0];
  }

  /**
   * Whether this member counts `id` as healthy for a reconfiguration: on the leader, it answered
   * recently (within the longer of 5 s and two election timeouts); elsewhere, this member's link
   * to it has been up for etcd's HealthInterval (5 s: etcd's isConnectedSince, which every member
   * asks of its own transport). Undefined where the transport cannot tell (in-memory tests).
   */
  recentlyActive(id: bigint): boolean | undefined {
    if (this.isLeader()) {
      const t = this.node.lastHeardFrom(id);
      return t !== undefined && this.clock.now() - t < Math.max(HEALTH_INTERVAL_MS, 2 * this.cfg.electionMs);
    }
    if (!this.transport.activeForMs) return undefined;
    return (this.transport.activeForMs(id) ?? -1) >= HEALTH_INTERVAL_MS;
  }

  /** Requests proposed and not yet answered. */
  pendingProposals(): number {
    return this.pending;
  }

  /**
   * Resolves once the member has applied every entry it found committed in its log at start
   * (at once for a new member): before that its state is older than what it had already
   * acknowledged, and the client port serves nothing from it (etcd serves clients only after
   * its ReadyNotify, which comes after the same replay). Never resolves if the member stops first.
   */
  replayed(): Promise<void> {
    return this.whenReplayed;
  }

  private checkReplayed(): void {
    if (this.markReplayed === undefined || this.sm.appliedIndex < this.sm.replayTo) return;
    this.markReplayed();
    this.markReplayed = undefined;
  }

  /** Resolves once this member has joined the cluster (etcd's ReadyNotify; LeaderDuties.ready). */
  readyNotify(): Promise<void> {
    return this.duties.ready;
  }

  isStopped(): boolean {
    return this.stopped;
  }

  /** Nothing in flight inside the member: the loop and the snapshot builders are idle. */
  idle(): boolean {
    return this.node.idle() && this.snapshots.idle();
  }

  /** The parts themselves, for in-process tests that check the log or snapshots; never for the API. */
  inspect(): { node: RaftNode; snapshots: Snapshots; duties: LeaderDuties } {
    return { node: this.node, snapshots: this.snapshots, duties: this.duties };
  }
}
