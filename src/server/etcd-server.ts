// One raftkv member: the Raft loop (tick -> ready -> persist -> send -> apply -> advance)
// around the pure core, with the WAL, snapshots, the peer transport and the state machine.
// The client API (src/api) calls propose(), linearizableRead(), status() and friends.

import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { randomInt } from 'node:crypto';
import {
  ConfChangeType,
  type ConfChangeV1,
  type ConfState,
  type Entry,
  EntryType,
  ErrProposalDropped,
  MemoryStorage,
  type Message,
  MessageType,
  NONE,
  RawNode,
  ReadOnlyOption,
  type Ready,
  SeededRand,
  type Snapshot,
  SnapshotStatus,
  type SoftState,
  StateType,
  emptyConfState,
} from '../raft/index.js';
import type { ResponseHeader } from '../gen/etcd/rpc.js';
import { InternalRequest, MemberInfo } from '../gen/raftkv/raftpb.js';
import { EtcdError, Errors } from '../kv/errors.js';
import { Lessor } from '../kv/lessor.js';
import { WatchHub } from '../kv/watch-hub.js';
import { FatalStorageError } from '../storage/fatal.js';
import { Snapshotter } from '../storage/snap/snapshotter.js';
import { Wal } from '../storage/wal/wal.js';
import { GrpcTransport, fetchClusterInfo } from '../transport/grpc-transport.js';
import { IdGenerator, clusterId as computeClusterId, hex, memberId as computeMemberId } from '../util/ids.js';
import type { ProcessLogger } from '../util/log.js';
import { LinearizableReader } from './linearizable-read.js';
import { type ApplyOutcome, StateMachine } from './state-machine.js';
import { Wait } from './wait.js';
import type { Metrics } from './metrics.js';

export const API_VERSION = '3.4.0';

export const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

export interface ServerConfig {
  name: string;
  dataDir: string;
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
  walSegmentBytes?: number;
  /** Answer linearizable reads on the leader's lease (CheckQuorum) instead of ReadIndex rounds. */
  leaseReads?: boolean;
  /** etcd's --auto-compaction-*: the leader compacts the MVCC history (retention 0 = off). */
  autoCompaction?: { mode: 'periodic' | 'revision'; retention: number };
  /** Members learned from a running cluster (for --initial-cluster-state existing). */
  existingMembers?: MemberInfo[];
  existingClusterId?: bigint;
  /** Advertised peer URL -> URL to dial (see TransportOptions.dialMap). */
  peerDialMap?: ReadonlyMap<string, string>;
  logger: ProcessLogger;
}

type Pending = { id: bigint; data: Uint8Array; proposedAt: number };

export class EtcdServer {
  id = 0n;
  clusterId = 0n;
  raw!: RawNode;
  readonly storage = new MemoryStorage();
  wal!: Wal;
  snapshotter: Snapshotter;
  transport!: GrpcTransport;
  sm: StateMachine;
  lessor: Lessor;
  readonly watchHub: WatchHub;
  private wait = new Wait<ApplyOutcome>();
  private confWait = new Map<string, () => void>();
  private reader: LinearizableReader;
  private ids!: IdGenerator;
  private confState: ConfState = emptyConfState();
  private lastSnapshotIndex = 0;
  private inReady = false;
  private kicked = false;
  private stopped = false;
  private ticker: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  /**
   * Proposals of this member still waiting to be applied, in id order (ids only grow). Kept so
   * they can be proposed again when the leader changes; the state machine's AppliedRequests
   * table makes sure a request committed twice is applied once.
   */
  private inflight = new Map<bigint, Pending>();
  private knownLead = NONE;
  private leaderChangedAt = 0;
  private revoking = new Map<bigint, number>();
  private lastHeard = new Map<bigint, number>();
  private published = false;
  readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });
  readonly requestTimeoutMs: number;
  /** Set by the process to record metrics (optional: tests run without). */
  metrics: Metrics | undefined;
  onFatal: (e: Error) => void = () => {};
  onRemoved: () => void = () => {};

  constructor(readonly cfg: ServerConfig) {
    const electionTicks = Math.max(2, Math.round(cfg.electionMs / cfg.heartbeatMs));
    // etcd: the minimum lease TTL is 1.5 election timeouts, in whole seconds.
    const minTTL = BigInt(Math.ceil((1.5 * electionTicks * cfg.heartbeatMs) / 1000));
    this.lessor = new Lessor(minTTL, () => performance.now());
    this.sm = new StateMachine(this.lessor, () => this.header(0n));
    this.watchHub = new WatchHub(() => this.sm.store);
    this.sm.store.onEvents = (events, rev) => this.watchHub.notify(events, rev);
    this.snapshotter = new Snapshotter(join(cfg.dataDir, 'member', 'snap'), cfg.logger);
    this.reader = new LinearizableReader(
      {
        readIndex: (ctx) => {
          this.raw.readIndex(ctx);
          this.kick();
        },
        appliedIndex: () => this.sm.appliedIndex,
      },
      Math.max(500, cfg.electionMs),
    );
    // etcd: 5s + 2 election timeouts.
    this.requestTimeoutMs = 5000 + 2 * cfg.electionMs;
  }

  get logger(): ProcessLogger {
    return this.cfg.logger;
  }

  header(revision: bigint): ResponseHeader {
    return { clusterId: this.clusterId, memberId: this.id, revision, raftTerm: BigInt(this.raw?.raft.term ?? 0) };
  }

  // ------------------------------------------------------------------ boot

  /** Opens or creates the data directory and the Raft node. Does not start ticking. */
  async init(): Promise<void> {
    const walDir = join(this.cfg.dataDir, 'member', 'wal');
    const electionTick = Math.max(2, Math.round(this.cfg.electionMs / this.cfg.heartbeatMs));
    const rawConfig = {
      electionTick,
      heartbeatTick: 1,
      storage: this.storage,
      maxSizePerMsg: 1024 * 1024,
      maxInflightMsgs: 512,
      maxUncommittedEntriesSize: 1 << 30,
      checkQuorum: true,
      preVote: true,
      readOnlyOption: this.cfg.leaseReads ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
      stepDownOnRemoval: true,
      rand: new SeededRand(randomInt(2 ** 31)),
      logger: this.logger,
    };
    const existing = (await Wal.hasWal(walDir)) ? await Wal.open(walDir, { logger: this.logger, segmentBytes: this.cfg.walSegmentBytes }) : undefined;
    const neverPersisted =
      existing !== undefined && existing.contents.entries.length === 0 && !existing.contents.snapshot && existing.contents.hardState.term === 0;
    if (existing && !neverPersisted) {
      const { wal, contents } = existing;
      this.wal = wal;
      this.id = contents.meta.nodeId;
      this.clusterId = contents.meta.clusterId;
      const snap = await this.snapshotter.loadNewest();
      let applied = 0;
      if (snap) {
        this.storage.applySnapshot(snap);
        await this.sm.restoreAsync(snap.data, snap.metadata.index, yieldToEventLoop);
        this.confState = snap.metadata.confState;
        this.lastSnapshotIndex = snap.metadata.index;
        applied = snap.metadata.index;
      }
      const base = snap?.metadata.index ?? 0;
      const ents = contents.entries.filter((e) => e.index > base);
      if (ents.length > 0 && ents[0]!.index !== base + 1) {
        throw new Error(
          `data dir ${this.cfg.dataDir}: the WAL starts at index ${ents[0]!.index} but the newest valid snapshot is at ${base}; entries are missing`,
        );
      }
      if (contents.snapshot && contents.snapshot.index > base) {
        this.logger.warn(`snapshot at index ${contents.snapshot.index} is missing or corrupt; recovering from ${base}`);
      }
      this.storage.append(ents);
      const hs = contents.hardState;
      if (hs.commit > this.storage.lastIndex()) hs.commit = this.storage.lastIndex();
      if (hs.commit < base) hs.commit = base;
      this.storage.setHardState(hs);
      this.raw = new RawNode({ ...rawConfig, id: this.id, applied });
      for (const m of this.sm.membership.members.values()) this.addPeer(m);
      this.logger.info(
        `restarted member ${hex(this.id)} in cluster ${hex(this.clusterId)} at commit ${hs.commit}, term ${hs.term}, ${ents.length} WAL entries after snapshot ${base}`,
      );
    } else {
      // A brand-new member, or one that crashed before its bootstrap was durable: start over.
      if (existing) {
        await existing.wal.close();
        await rm(walDir, { recursive: true, force: true });
      }
      if (this.cfg.initialClusterState === 'existing' && !this.cfg.existingMembers) {
        // Joining: learn the cluster id and our member id (assigned by `member add`) from a peer.
        const mine = new Set(this.cfg.initialAdvertisePeerUrls);
        const others = [...this.cfg.initialCluster.values()].flat().filter((u) => !mine.has(u));
        const info = await fetchClusterInfo(others);
        this.cfg.existingMembers = info.members;
        this.cfg.existingClusterId = info.clusterId;
      }
      const members = this.initialMembers();
      const same = (a: string[], b: string[]) => [...a].sort().join(',') === [...b].sort().join(',');
      const me =
        this.cfg.initialClusterState === 'existing'
          ? members.find((m) => same(m.peerUrls, this.cfg.initialAdvertisePeerUrls))
          : members.find((m) => m.name === this.cfg.name);
      if (!me) {
        throw new Error(
          this.cfg.initialClusterState === 'existing'
            ? `no member with peer URLs ${this.cfg.initialAdvertisePeerUrls.join(',')} in the cluster: add it first (etcdctl member add)`
            : `--initial-cluster has no member named "${this.cfg.name}"`,
        );
      }
      await mkdir(this.cfg.dataDir, { recursive: true });
      this.id = me.id;
      if (this.cfg.initialClusterState === 'existing') {
        this.clusterId = this.cfg.existingClusterId!;
      } else {
        this.clusterId = computeClusterId(members.map((m) => m.id));
      }
      this.wal = await Wal.create(walDir, { nodeId: this.id, clusterId: this.clusterId }, { logger: this.logger, segmentBytes: this.cfg.walSegmentBytes });
      this.raw = new RawNode({ ...rawConfig, id: this.id });
      if (this.cfg.initialClusterState === 'new') {
        this.raw.bootstrap(members.map((m) => ({ id: m.id, context: MemberInfo.encode(m).finish() })));
      }
      for (const m of members) this.addPeer(m);
      this.logger.info(`started new member ${hex(this.id)} in cluster ${hex(this.clusterId)} (${this.cfg.initialClusterState})`);
    }
    this.ids = new IdGenerator(this.id);
    this.transport = new GrpcTransport({
      id: this.id,
      clusterId: this.clusterId,
      logger: this.logger,
      dialMap: this.cfg.peerDialMap,
      handler: {
        step: (m) => this.step(m),
        reportUnreachable: (id) => {
          this.raw.reportUnreachable(id);
          this.kick();
        },
        reportSnapshot: (id, ok) => {
          this.raw.reportSnapshot(id, ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
          this.kick();
        },
        members: () => ({ clusterId: this.clusterId, members: [...this.sm.membership.members.values()] }),
        isRemoved: (id) => this.sm.membership.removed.has(id),
        onRemoved: () => {
          if (this.stopped) return;
          this.logger.warn('the member has been permanently removed from the cluster');
          setImmediate(() => this.onRemoved());
        },
      },
    });
    for (const m of this.pendingPeers) this.transport.addPeer(m.id, m.peerUrls);
    this.pendingPeers = [];
  }

  private pendingPeers: MemberInfo[] = [];

  private addPeer(m: MemberInfo): void {
    if (this.transport) this.transport.addPeer(m.id, m.peerUrls);
    else this.pendingPeers.push(m);
  }

  private initialMembers(): MemberInfo[] {
    if (this.cfg.existingMembers) return this.cfg.existingMembers;
    const out: MemberInfo[] = [];
    for (const [name, urls] of this.cfg.initialCluster) {
      out.push({ id: computeMemberId(urls, this.cfg.initialClusterToken), name, peerUrls: urls, clientUrls: [], isLearner: false });
    }
    return out;
  }

  start(): void {
    this.loopDelay.enable();
    this.ticker = setInterval(() => {
      this.raw.tick();
      this.reproposeStale();
      this.kick();
    }, this.cfg.heartbeatMs);
    this.leaseTimer = setInterval(() => {
      this.checkLeases();
      this.maybeAutoCompact();
    }, 500);
    this.kick();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    clearInterval(this.leaseTimer);
    this.loopDelay.disable();
    this.wait.failAll(Errors.stopped());
    this.reader.failAll(Errors.stopped());
    this.transport?.close();
    // Let an in-flight persist finish so that nothing acknowledged is half-written.
    for (let i = 0; i < 200 && this.inReady; i++) await new Promise((r) => setTimeout(r, 10));
    await this.wal?.close();
  }

  // ------------------------------------------------------------------ the Raft loop

  /** A message from a peer. */
  step(m: Message): void {
    if (this.stopped) return;
    this.lastHeard.set(m.from, Date.now());
    try {
      this.raw.step(m);
    } catch (e) {
      this.logger.debug(`dropped message from ${hex(m.from)}: ${(e as Error).message}`);
    }
    this.sendImmediate();
    this.kick();
  }

  private sendImmediate(): void {
    const msgs = this.raw.takeMessages();
    if (msgs.length > 0) this.send(msgs);
  }

  /** Hands messages to the transport; a snapshot goes out as a merged one (below). */
  private send(msgs: Message[]): void {
    if (!msgs.some((m) => m.type === MessageType.MsgSnap)) {
      this.transport.send(msgs);
      return;
    }
    for (const m of msgs) if (m.type === MessageType.MsgSnap) this.sendMergedSnapshot(m);
    this.transport.send(msgs.filter((m) => m.type !== MessageType.MsgSnap));
  }

  private snapshotsInFlight = new Set<bigint>();

  /**
   * etcd's createMergedSnapshotMessage: the core asks for the last snapshot saved to storage,
   * which may be older than the member being caught up (a learner added after it is not in
   * its ConfState, and would refuse it forever on a quiet cluster). Send instead an image of
   * the state as applied now, with the applied index, its term and the current ConfState,
   * all taken at the same instant. The core still thinks it sent the older one; the
   * follower's answer (an index at or past it) moves its progress on all the same.
   */
  private sendMergedSnapshot(m: Message): void {
    if (this.snapshotsInFlight.has(m.to)) return; // one image per peer at a time
    this.snapshotsInFlight.add(m.to);
    const index = this.sm.appliedIndex;
    const term = this.storage.term(index);
    const confState = this.confState;
    const started = performance.now();
    this.sm
      .imageAsync(yieldToEventLoop)
      .then(({ index: imageIndex, data }) => {
        if (imageIndex !== index) throw new Error(`snapshot image at ${imageIndex}, expected ${index}`);
        if (this.stopped) return;
        this.logger.info(
          `sending merged snapshot at index ${index} (${data.length} bytes, built in ${(performance.now() - started).toFixed(0)} ms) to ${hex(m.to)}`,
        );
        this.transport.send([{ ...m, snapshot: { metadata: { index, term, confState }, data } }]);
      })
      .catch((e: Error) => {
        // The core is told, and tries again later (a new MsgSnap).
        this.logger.warn(`could not build a snapshot for ${hex(m.to)}: ${e.message}`);
        this.raw.reportSnapshot(m.to, SnapshotStatus.Failure);
        this.kick();
      })
      .finally(() => this.snapshotsInFlight.delete(m.to));
  }

  kick(): void {
    if (this.kicked || this.stopped) return;
    this.kicked = true;
    setImmediate(() => {
      this.kicked = false;
      void this.runReady();
    });
  }

  private async runReady(): Promise<void> {
    if (this.inReady || this.stopped) return;
    this.inReady = true;
    try {
      this.sendImmediate();
      while (!this.stopped && this.raw.hasReady()) {
        await this.handleReady(this.raw.ready());
      }
    } catch (e) {
      this.logger.error(`raft loop failed: ${(e as Error).stack ?? String(e)}`);
      this.onFatal(e as Error);
    } finally {
      this.inReady = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    // 1. The leader's appends go out before its own disk write (thesis §10.2.1).
    if (rd.messages.length > 0) this.send(rd.messages);
    // 2. Persist: snapshot file, then entries + HardState in one write and one fsync.
    if (rd.snapshot) {
      await this.snapshotter.save(rd.snapshot);
      await this.wal.saveSnapshotMark(rd.snapshot.metadata.index, rd.snapshot.metadata.term);
    }
    if (rd.entries.length === 0 && !rd.mustSync && rd.hardState) {
      // Only the commit index moved: nothing to wait for (Raft does not need it durable).
      this.wal.saveNoWait(rd.hardState);
    } else {
      const t0 = performance.now();
      await this.wal.save(rd.hardState, rd.entries, rd.mustSync);
      if (rd.mustSync) this.metrics?.walFsync.observe((performance.now() - t0) / 1000);
    }
    if (this.stopped) return;
    if (rd.snapshot) {
      this.storage.applySnapshot(rd.snapshot);
      await this.restoreSnapshot(rd.snapshot);
    }
    this.storage.append(rd.entries);
    if (rd.hardState) this.storage.setHardState(rd.hardState);
    // 3. Acks and votes only now that they are durable.
    if (rd.messagesAfterPersist.length > 0) this.send(rd.messagesAfterPersist);
    // 4. Apply, answer reads.
    this.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) this.reader.onReadState(rs.requestCtx, rs.index);
    this.raw.advance(rd);
    this.sendImmediate();
    this.reader.onApplied();
    this.maybeSnapshot();
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.lessor.isPrimary();
    if (ss.raftState === StateType.Leader && !wasLeader) this.lessor.promote();
    if (ss.raftState !== StateType.Leader && wasLeader) this.lessor.demote();
    this.leaderChangedAt = Date.now();
    this.metrics?.leaderChanges.inc();
    this.logger.info(`raft: ${ss.raftState}, leader ${hex(ss.lead)} at term ${this.raw.raft.term}`);
    if (ss.lead !== NONE && ss.lead !== this.knownLead) {
      // A new leader: whatever was forwarded to the old one may have been dropped (a leader
      // transferring leadership drops proposals; one that lost it may lose its uncommitted
      // tail). Propose every waiting request again rather than let its client time out.
      for (const p of [...this.inflight.values()]) if (this.proposeData(p)) this.metrics?.proposalsRetried.inc();
    }
    this.knownLead = ss.lead;
    if (ss.lead !== NONE) this.maybePublish();
  }

  private applyEntries(ents: Entry[]): void {
    for (const e of ents) {
      if (e.type === EntryType.Normal) {
        const { id, outcome, duplicate } = this.sm.applyNormal(e);
        if (id !== 0n) this.wait.trigger(id, outcome);
        if (duplicate) this.metrics?.duplicatesSkipped.inc();
      } else {
        const { cc, member } = this.sm.applyConfChangeEntry(e);
        this.confState = this.raw.applyConfChange(cc);
        for (const c of cc.changes) {
          if (c.type === ConfChangeType.RemoveNode) {
            if (c.nodeId === this.id) {
              this.logger.warn('the member has been permanently removed from the cluster');
              setImmediate(() => this.onRemoved());
            } else this.transport.removePeer(c.nodeId);
          } else if (member && member.id === c.nodeId) {
            this.transport.addPeer(member.id, member.peerUrls);
          }
          this.confWait.get(`${c.type}:${c.nodeId}`)?.();
          this.confWait.delete(`${c.type}:${c.nodeId}`);
        }
      }
    }
  }

  private async restoreSnapshot(s: Snapshot): Promise<void> {
    // Parsed in chunks: heartbeats keep being answered (step() sends its replies at once).
    await this.sm.restoreAsync(s.data, s.metadata.index, yieldToEventLoop);
    this.confState = s.metadata.confState;
    this.lastSnapshotIndex = s.metadata.index;
    for (const m of this.sm.membership.members.values()) this.transport.addPeer(m.id, m.peerUrls);
    this.logger.info(`restored state from snapshot at index ${s.metadata.index}`);
  }

  private snapshotting = false;

  /**
   * Every --snapshot-count applied entries: snapshot to disk, then compact memory and the WAL.
   * Runs beside the Raft loop (not awaited by it): the image is built in chunks that yield to
   * the event loop, so heartbeats and applies go on while a large snapshot is made.
   */
  private maybeSnapshot(): void {
    if (this.snapshotting || this.stopped) return;
    if (this.sm.appliedIndex - this.lastSnapshotIndex < this.cfg.snapshotCount) return;
    this.snapshotting = true;
    const confState = this.confState;
    const started = performance.now();
    void (async () => {
      try {
        const { index, data } = await this.sm.imageAsync(yieldToEventLoop);
        if (this.stopped || index <= this.storage.snapshot().metadata.index) return;
        const snap = this.storage.createSnapshot(index, confState, data);
        await this.snapshotter.save(snap);
        await this.wal.saveSnapshotMark(snap.metadata.index, snap.metadata.term);
        this.lastSnapshotIndex = index;
        const compactTo = index - this.cfg.snapshotCatchUpEntries;
        if (compactTo > this.storage.firstIndex()) {
          this.storage.compact(compactTo);
          await this.wal.releaseTo(compactTo);
        }
        this.logger.info(
          `saved snapshot at index ${index} (${data.length} bytes, ${(performance.now() - started).toFixed(0)} ms); log compacted to ${this.storage.firstIndex()}`,
        );
      } catch (e) {
        if (this.stopped) return;
        // A failed write or fsync may have lost data the disk reported as written: exit.
        if (e instanceof FatalStorageError) this.onFatal(e);
        else this.logger.warn(`snapshot failed: ${(e as Error).message}`);
      } finally {
        this.snapshotting = false;
      }
    })();
  }

  // ------------------------------------------------------------------ requests

  /** Replicates a request and resolves with its applied result (or rejects with an etcd error). */
  async propose(req: Omit<InternalRequest, 'id' | 'proposer' | 'settledBelow'>): Promise<Record<string, unknown>> {
    if (this.stopped) throw Errors.stopped();
    let id = this.ids.next();
    const settledFloor = this.sm.appliedRequests.settledBelow(this.id);
    if (id < settledFloor) {
      // The clock went back across a restart: never reuse ids the log already settled.
      this.ids.atLeast(settledFloor);
      id = this.ids.next();
    }
    const oldest = this.inflight.keys().next();
    const settledBelow = oldest.done ? id : oldest.value;
    const data = InternalRequest.encode({ ...req, id, proposer: this.id, settledBelow } as InternalRequest).finish();
    if (data.length > this.cfg.maxRequestBytes) throw Errors.requestTooLarge();
    const p = this.wait.register(id);
    const timer = setTimeout(() => this.wait.fail(id, this.timeoutError()), this.requestTimeoutMs);
    const pending = { id, data, proposedAt: performance.now() };
    this.inflight.set(id, pending);
    this.proposeData(pending);
    try {
      const outcome = await p;
      if (!outcome.ok) throw outcome.error;
      return outcome.value;
    } catch (e) {
      this.metrics?.proposalsFailed.inc();
      throw e;
    } finally {
      clearTimeout(timer);
      this.inflight.delete(id);
    }
  }

  /** Hands a waiting proposal to Raft; false if it was not (settled, no leader, dropped). */
  private proposeData(p: Pending): boolean {
    // Answered or timed out meanwhile: its id is settled, proposing it again would be wasted.
    if (this.stopped || !this.inflight.has(p.id)) return false;
    // No leader yet: the proposal waits in `inflight` and goes out when one is known.
    if (this.raw.raft.lead === NONE) return false;
    p.proposedAt = performance.now();
    try {
      this.raw.propose(p.data);
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
      // Dropped here (this node leads and is transferring leadership, or just lost it): retry
      // shortly, within the request timeout.
      setTimeout(() => this.proposeData(p), 50).unref();
      return false;
    }
    this.sendImmediate();
    this.kick();
    return true;
  }

  /**
   * Proposes again what has waited two election timeouts without being applied: a forwarded
   * proposal can be lost without a leader change (a transfer that was aborted dropped it, a
   * peer stream broke). Safe for the same reason as on a leader change: applied once.
   */
  private reproposeStale(): void {
    const staleBefore = performance.now() - 2 * this.cfg.electionMs;
    for (const p of this.inflight.values()) {
      if (p.proposedAt < staleBefore && this.proposeData(p)) this.metrics?.proposalsRetried.inc();
    }
  }

  private timeoutError(): EtcdError {
    // etcd distinguishes a timeout right after a leader change.
    if (Date.now() - this.leaderChangedAt < this.requestTimeoutMs) return Errors.timeoutDueToLeaderFail();
    return Errors.timeout();
  }

  /** Waits until a read served from local state is linearizable (ReadIndex). */
  async linearizableRead(): Promise<void> {
    if (this.stopped) throw Errors.stopped();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.reader.wait(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.timeoutError()), this.requestTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Proposes a membership change and resolves once it is applied. */
  async proposeConfChange(cc: ConfChangeV1): Promise<void> {
    if (this.raw.raft.lead === NONE) throw Errors.noLeader();
    const r = this.raw.raft;
    if (this.isLeader() && r.pendingConfIndex > r.raftLog.applied) {
      // One change at a time: Raft would turn this one into a no-op and etcd's caller would
      // wait out its timeout; answer with the same error at once.
      this.logger.warn(`rejecting membership change of ${hex(cc.nodeId)}: the change at index ${r.pendingConfIndex} is not applied yet`);
      throw Errors.timeout();
    }
    const key = `${cc.type}:${cc.nodeId}`;
    const applied = new Promise<void>((resolve) => this.confWait.set(key, resolve));
    try {
      this.raw.proposeConfChange(cc);
    } catch (e) {
      this.confWait.delete(key);
      if (e instanceof ErrProposalDropped) throw Errors.timeout();
      throw e;
    }
    this.sendImmediate();
    this.kick();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        applied,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(this.timeoutError()), this.requestTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.confWait.delete(key);
    }
  }

  // ------------------------------------------------------------------ auto-compaction

  private revSamples: Array<{ at: number; rev: bigint }> = [];
  private compacting = false;
  private lastCompactCheck = 0;

  /**
   * etcd's auto-compaction, run by the leader through Raft: 'revision' keeps the last N
   * revisions (checked every 5 s here); 'periodic' keeps the history of the last retention
   * period (sampled every 5 s, compacting to the revision current one period ago).
   */
  private maybeAutoCompact(): void {
    const ac = this.cfg.autoCompaction;
    if (!ac || ac.retention <= 0 || this.stopped || this.compacting) return;
    const now = Date.now();
    if (now - this.lastCompactCheck < 5000) return;
    this.lastCompactCheck = now;
    const store = this.sm.store;
    this.revSamples.push({ at: now, rev: store.currentRev });
    if (!this.isLeader()) return;
    let target: bigint;
    if (ac.mode === 'revision') {
      target = store.currentRev - BigInt(ac.retention);
    } else {
      const old = this.revSamples.filter((x) => x.at <= now - ac.retention);
      if (old.length === 0) return;
      target = old[old.length - 1]!.rev;
      this.revSamples = this.revSamples.filter((x) => x.at > now - ac.retention - 5000);
    }
    if (target <= 0n || target <= store.compactRev) return;
    this.compacting = true;
    this.propose({ compaction: { revision: target, physical: false } })
      .then(() => this.logger.info(`auto-compaction: compacted to revision ${target}`))
      .catch((e: Error) => this.logger.warn(`auto-compaction to ${target} failed: ${e.message}`))
      .finally(() => {
        this.compacting = false;
      });
  }

  // ------------------------------------------------------------------ leases and attributes

  private checkLeases(): void {
    if (this.stopped || !this.lessor.isPrimary()) return;
    const now = Date.now();
    for (const id of this.lessor.expired()) {
      const last = this.revoking.get(id);
      if (last !== undefined && now - last < this.requestTimeoutMs) continue;
      this.revoking.set(id, now);
      this.propose({ leaseRevoke: { ID: id } })
        .catch(() => {})
        .finally(() => this.revoking.delete(id));
    }
  }

  /** Publishes this member's name and client URLs through the log (etcd's "publish"). */
  private maybePublish(): void {
    if (this.published) return;
    this.published = true;
    const attempt = (): void => {
      if (this.stopped) return;
      const mine = this.sm.membership.get(this.id);
      const want = this.cfg.advertiseClientUrls.join(',');
      if (mine && mine.name === this.cfg.name && mine.clientUrls.join(',') === want) return;
      this.propose({ memberAttributes: { id: this.id, name: this.cfg.name, clientUrls: this.cfg.advertiseClientUrls } })
        .then(() => this.logger.info(`published ${this.cfg.name} ${want} to the cluster`))
        .catch(() => setTimeout(attempt, 500).unref());
    };
    attempt();
  }

  // ------------------------------------------------------------------ introspection

  leader(): bigint {
    return this.raw.raft.lead;
  }

  isLeader(): boolean {
    return this.raw.raft.state === StateType.Leader;
  }

  isLearner(): boolean {
    return this.raw.raft.isLearner;
  }

  committedIndex(): number {
    return this.raw.raft.raftLog.committed;
  }

  leaderClientUrl(): string | undefined {
    const m = this.sm.membership.get(this.leader());
    return m?.clientUrls[0];
  }

  /** The member's progress as the leader sees it (for learner promotion checks). */
  progressOf(id: bigint): { match: number } | undefined {
    const pr = this.raw.raft.trk.progress.get(id);
    return pr ? { match: pr.match } : undefined;
  }

  /** Leader only: whether the member responded within the last election timeout. */
  recentlyActive(id: bigint): boolean {
    const t = this.lastHeard.get(id);
    return t !== undefined && Date.now() - t < Math.max(5000, 2 * this.cfg.electionMs);
  }

  /** Hands leadership to `target` and waits until it leads (or the request times out). */
  async transferLeadership(target: bigint): Promise<void> {
    if (this.leader() === target) return;
    this.raw.transferLeader(target);
    this.sendImmediate();
    this.kick();
    const deadline = Date.now() + this.requestTimeoutMs;
    while (this.leader() !== target) {
      if (Date.now() > deadline || this.stopped) throw Errors.timeoutDueToLeaderFail();
      await new Promise((r) => setTimeout(r, this.cfg.heartbeatMs));
    }
  }

  isStopped(): boolean {
    return this.stopped;
  }
}
