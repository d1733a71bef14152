// Complete raftkv members (EtcdServer: API face, state machine, WAL and snapshots on a temp dir)
// running in this process, on one ManualClock and one InMemNetwork, under a seed.
//
// What is seeded: every member's Raft randomness (election timeouts), the order in which the
// network delivers a turn's messages, and time itself (it moves only in tick()). What is not:
// when the disk finishes a write. So helpers never assume how many event-loop turns something
// takes: settle() lets messages and I/O run until every member is quiet (no Ready being
// handled or due, no snapshot being built or saved, nothing queued on the network), and
// until() ticks and settles until a condition holds, within a bounded number of ticks. No
// wall-clock timing is ever asserted. In lockstep delivery (the default) settle() hands the
// network's queue over only when every member is quiet, so disk timing cannot change which
// messages travel together either, and a seed replays the same run; a test that wants a
// message to land in the middle of a member's work calls net.deliver() itself.
//
// Quiet is EtcdServer.idle(): no Ready being handled or due, no snapshot being built or saved.
//
// Usage:
//   await withCluster({ size: 3, seed: 1 }, async (c) => {
//     const leader = await c.waitForLeader();
//     await c.run(c.put(c.member('n2'), 'k', 'v'));
//     assert.equal(c.get(c.member('n3'), 'k')?.version, 1n);
//   });

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyValue } from '../../src/gen/etcd/kv.js';
import type { PutResponse } from '../../src/gen/etcd/rpc.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { type Entry, SeededRand } from '../../src/raft/index.js';
import { ManualClock } from '../../src/server/clock.js';
import { EtcdServer, type ServerConfig } from '../../src/server/etcd-server.js';
import type { Metrics } from '../../src/server/metrics.js';
import { InMemNetwork } from '../../src/transport/inmem-transport.js';
import type { Level, ProcessLogger } from '../../src/util/log.js';
import type { Applied } from '../../src/server/state-machine.js';

export type LogLevel = 'silent' | Level;

export interface InProcOptions {
  /** Members at start (named n1..nN). */
  size: number;
  /** Seeds the members' Raft randomness and the network's delivery order. */
  seed: number;
  /** Default 100 (etcd's). One tick() is one heartbeat interval. */
  heartbeatMs?: number;
  /** Default 1000 (etcd's): 10 ticks. */
  electionMs?: number;
  /** Default 10000. */
  snapshotCount?: number;
  /** Default 5000. */
  snapshotCatchUpEntries?: number;
  maxRequestBytes?: number;
  /** Append messages in flight per follower (default: the members' own, --max-inflight-appends). */
  maxInflightAppends?: number;
  /** Lease checkpoints (ServerConfig.leaseCheckpoint; default off, as etcd's). */
  leaseCheckpoint?: ServerConfig['leaseCheckpoint'];
  /** Auto-compaction (ServerConfig.autoCompaction; default off). */
  autoCompaction?: ServerConfig['autoCompaction'];
  /** Members' log lines at or above this level go to stderr (default: $RAFTKV_INPROC_LOG or 'silent'). */
  logLevel?: LogLevel;
  /**
   * 'lockstep' (default): settle() delivers what is queued only when every member is quiet,
   * so which messages travel together does not depend on when the disk finishes (a seed then
   * fixes the whole run). 'auto': the network delivers on setImmediate, while members may be
   * busy (messages can arrive during a member's fsync). In both, net.deliver() delivers at once.
   */
  delivery?: 'lockstep' | 'auto';
}

/** An applied normal entry, as a member's state machine answered it. */
export interface AppliedRecord {
  index: number;
  /** Request id and proposing member (0n for the leader's empty entries). */
  id: bigint;
  proposer: bigint;
  kind: string;
  /** The key of a put or deleteRange (latin1). */
  key?: string;
  /** Skipped as a second copy of a request already applied. */
  duplicate: boolean;
  ok: boolean;
}

/** The server's metric counters that tests read (the rest are no-ops). */
export interface MemberCounters {
  proposalsRetried: number;
  duplicatesSkipped: number;
  proposalsFailed: number;
  leaderChanges: number;
}

export interface InProcMember {
  readonly name: string;
  readonly dataDir: string;
  readonly peerUrl: string;
  readonly clientUrl: string;
  /** Assigned by bootstrap (or by member add): stays across restarts. */
  id: bigint;
  /** The current incarnation (a restart makes a new EtcdServer on the same data dir). */
  server: EtcdServer;
  running: boolean;
  /** Counters and applied entries of the current incarnation. */
  counters: MemberCounters;
  applied: AppliedRecord[];
  /** A fatal error the server reported (settle() and until() throw it). */
  fatal?: Error;
  /** The member learned it was removed from the cluster (and was stopped). */
  removed: boolean;
  readonly cfg: ServerConfig;
}

/** The server's parts, for tests that check the log or snapshots (read, never changed). */
export function parts(s: EtcdServer): ReturnType<EtcdServer['inspect']> {
  return s.inspect();
}

const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const LEVELS: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

function kindOf(req: InternalRequest): { kind: string; key?: string } {
  for (const [k, v] of Object.entries(req)) {
    if (k === 'id' || k === 'proposer' || k === 'settledBelow' || v === undefined || v === null) continue;
    if (typeof v !== 'object') continue;
    const key = (v as { key?: Buffer }).key;
    return { kind: k, key: key ? Buffer.from(key).toString('latin1') : undefined };
  }
  return { kind: 'none' };
}

export class InProcCluster {
  readonly clock = new ManualClock();
  readonly net: InMemNetwork;
  readonly heartbeatMs: number;
  readonly electionMs: number;
  /** Ticks in one election timeout. */
  readonly electionTicks: number;
  /** The last log lines of every member (all levels but debug, even when silent), for failure reports. */
  readonly logTail: string[] = [];
  private readonly all = new Map<string, InProcMember>();
  private readonly rand: SeededRand;
  private readonly level: number;
  private readonly token = 'inproc';
  private readonly lockstep: boolean;
  private closed = false;

  private constructor(
    readonly opts: InProcOptions,
    readonly root: string,
  ) {
    this.rand = new SeededRand(opts.seed);
    this.lockstep = (opts.delivery ?? 'lockstep') === 'lockstep';
    this.net = new InMemNetwork({ seed: this.rand.intn(2 ** 31), autoDeliver: !this.lockstep });
    this.heartbeatMs = opts.heartbeatMs ?? 100;
    this.electionMs = opts.electionMs ?? 1000;
    this.electionTicks = Math.max(2, Math.round(this.electionMs / this.heartbeatMs));
    const lvl = opts.logLevel ?? (process.env.RAFTKV_INPROC_LOG as LogLevel | undefined) ?? 'silent';
    this.level = LEVELS[lvl] ?? LEVELS.silent;
  }

  /** Starts `size` members n1..nN (a new cluster) and returns before any election. */
  static async start(opts: InProcOptions): Promise<InProcCluster> {
    const root = await mkdtemp(join(tmpdir(), 'raftkv-inproc-'));
    const c = new InProcCluster(opts, root);
    try {
      const names = Array.from({ length: opts.size }, (_, i) => `n${i + 1}`);
      const initialCluster = new Map(names.map((n) => [n, [c.peerUrlOf(n)]]));
      const ms = names.map((n) => c.newMember(n, 'new', initialCluster));
      // All bootstrapped before any starts ticking, as processes started together.
      for (const m of ms) await m.server.init();
      for (const m of ms) c.startServer(m);
      return c;
    } catch (e) {
      await c.close();
      throw e;
    }
  }

  // ------------------------------------------------------------------ members

  peerUrlOf(name: string): string {
    return `http://${name}.inproc:2380`;
  }

  /** A member by name or id. */
  member(nameOrId: string | bigint): InProcMember {
    const m = typeof nameOrId === 'string' ? this.all.get(nameOrId) : [...this.all.values()].find((x) => x.id === nameOrId);
    if (!m) throw new Error(`no member ${typeof nameOrId === 'string' ? nameOrId : nameOrId.toString(16)}`);
    return m;
  }

  /** Every member ever started (running or not). */
  members(): InProcMember[] {
    return [...this.all.values()];
  }

  running(): InProcMember[] {
    return this.members().filter((m) => m.running);
  }

  /** The running member that leads, if all running members that know a leader agree on it. */
  leader(): InProcMember | undefined {
    const l = this.running().filter((m) => m.server.isLeader());
    return l.length === 1 ? l[0] : undefined;
  }

  private newMember(name: string, state: 'new' | 'existing', initialCluster: Map<string, string[]>): InProcMember {
    if (this.all.has(name)) throw new Error(`member ${name} exists`);
    const cfg: ServerConfig = {
      name,
      dataDir: join(this.root, name),
      advertiseClientUrls: [`http://${name}.inproc:2379`],
      initialAdvertisePeerUrls: [this.peerUrlOf(name)],
      initialCluster,
      initialClusterState: state,
      initialClusterToken: this.token,
      heartbeatMs: this.heartbeatMs,
      electionMs: this.electionMs,
      snapshotCount: this.opts.snapshotCount ?? 10_000,
      snapshotCatchUpEntries: this.opts.snapshotCatchUpEntries ?? 5_000,
      maxInflightAppends: this.opts.maxInflightAppends,
      leaseCheckpoint: this.opts.leaseCheckpoint,
      autoCompaction: this.opts.autoCompaction,
      maxRequestBytes: this.opts.maxRequestBytes ?? 1.5 * 1024 * 1024,
      logger: this.logger(name),
      clock: this.clock,
      transport: this.net,
      raftSeed: this.rand.intn(2 ** 31),
    };
    const m = {
      name,
      dataDir: cfg.dataDir,
      peerUrl: this.peerUrlOf(name),
      clientUrl: cfg.advertiseClientUrls[0]!,
      id: 0n,
      running: false,
      removed: false,
      cfg,
    } as InProcMember;
    this.incarnate(m);
    this.all.set(name, m);
    return m;
  }

  /** A new EtcdServer for the member's config (same data dir), with counters and an apply log. */
  private incarnate(m: InProcMember): void {
    const s = new EtcdServer({ ...m.cfg, raftSeed: this.rand.intn(2 ** 31) });
    const counters: MemberCounters = { proposalsRetried: 0, duplicatesSkipped: 0, proposalsFailed: 0, leaderChanges: 0 };
    const counter = (k: keyof MemberCounters) => ({ inc: () => void counters[k]++ });
    // Any other metric (a counter, a histogram, a group of timings): every method does nothing.
    const noop: unknown = new Proxy({}, { get: () => () => {} });
    const known: Record<string, unknown> = {
      proposalsRetried: counter('proposalsRetried'),
      duplicatesSkipped: counter('duplicatesSkipped'),
      proposalsFailed: counter('proposalsFailed'),
      leaderChanges: counter('leaderChanges'),
    };
    s.metrics = new Proxy({}, { get: (_t, k) => (typeof k === 'string' && k in known ? known[k] : noop) }) as Metrics;
    const applied: AppliedRecord[] = [];
    const applyNormal = s.sm.applyNormal.bind(s.sm);
    const record = (e: Entry, r: Applied): Applied => {
      if (e.data.length > 0) {
        const req = InternalRequest.decode(e.data);
        applied.push({ index: e.index, id: req.id, proposer: req.proposer, ...kindOf(req), duplicate: r.duplicate === true, ok: r.outcome.ok });
      } else {
        applied.push({ index: e.index, id: 0n, proposer: 0n, kind: 'empty', duplicate: false, ok: true });
      }
      return r;
    };
    s.sm.applyNormal = (e: Entry) => {
      const r = applyNormal(e);
      return r instanceof Promise ? r.then((x) => record(e, x)) : record(e, r);
    };
    s.onFatal = (e) => {
      m.fatal ??= e;
    };
    s.onRemoved = () => {
      m.removed = true;
      void this.stop(m).catch((e: Error) => {
        m.fatal ??= e;
      });
    };
    m.server = s;
    m.counters = counters;
    m.applied = applied;
  }

  private startServer(m: InProcMember): void {
    m.id = m.server.id;
    m.server.start();
    m.running = true;
  }

  /**
   * Adds a member through the leader (the Cluster API's checks, server.members.add) and starts
   * it as etcd's --initial-cluster-state existing: it asks a running member (the network's
   * fetchClusterInfo) for the cluster id and its member id.
   */
  async addMember(name: string, o: { learner?: boolean; ticks?: number } = {}): Promise<InProcMember> {
    const leader = this.leader() ?? (await this.waitForLeader());
    const url = this.peerUrlOf(name);
    const added = await this.run(leader.server.members.add([url], o.learner ?? true), { ticks: o.ticks ?? 50, what: `member add ${name}` });
    if (!added) throw new Error(`member add ${name}: not in the member list after the change`);
    return this.startAdded(name);
  }

  /** Starts a member already added to the cluster (its conf change proposed and applied). */
  async startAdded(name: string): Promise<InProcMember> {
    const initialCluster = new Map<string, string[]>();
    for (const x of this.running()) initialCluster.set(x.name, [x.peerUrl]);
    initialCluster.set(name, [this.peerUrlOf(name)]);
    const m = this.newMember(name, 'existing', initialCluster);
    await m.server.init();
    this.startServer(m);
    return m;
  }

  /** Removes a member through the leader; the removed member stops once it learns it. */
  async removeMember(name: string, o: { ticks?: number } = {}): Promise<void> {
    const leader = this.leader() ?? (await this.waitForLeader());
    const m = this.member(name);
    await this.run(leader.server.members.remove(m.id), { ticks: o.ticks ?? 50, what: `member remove ${name}` });
  }

  /** Stops a member (what it acknowledged is on disk). */
  async stop(m: InProcMember | string): Promise<void> {
    const x = typeof m === 'string' ? this.member(m) : m;
    if (!x.running) return;
    x.running = false;
    await x.server.stop();
  }

  /** Stops (if running) and starts the member again from its data dir. */
  async restart(m: InProcMember | string): Promise<InProcMember> {
    const x = typeof m === 'string' ? this.member(m) : m;
    await this.stop(x);
    this.incarnate(x);
    await x.server.init();
    if (x.server.id !== x.id) throw new Error(`${x.name} restarted as ${x.server.id.toString(16)}, was ${x.id.toString(16)}`);
    this.startServer(x);
    return x;
  }

  // ------------------------------------------------------------------ time and settling

  /** Whether a member is doing nothing and has nothing due (without time moving). */
  isQuiet(m: InProcMember): boolean {
    if (!m.running) return true;
    return m.server.idle();
  }

  /**
   * Lets messages and I/O run, without moving time, until every member is quiet and nothing is
   * queued on the network (held messages stay held). In lockstep, queued messages are delivered
   * here, each time every member is quiet.
   */
  async settle(maxTurns = 200_000, maxRounds = 2_000): Promise<void> {
    let quiet = 0;
    let rounds = 0;
    for (let turn = 0; turn < maxTurns; turn++) {
      this.checkFatal();
      const membersQuiet = this.running().every((m) => this.isQuiet(m));
      if (membersQuiet && this.lockstep && this.net.pending() > 0) {
        if (++rounds > maxRounds) {
          throw new Error(
            `messages kept flowing for ${maxRounds} delivery rounds without time moving (a livelock?) (seed ${this.opts.seed})\n${this.describe()}\nlast log lines:\n${this.logTail.slice(-20).join('\n')}`,
          );
        }
        this.net.deliver();
        quiet = 0;
      } else if (membersQuiet && this.net.pending() === 0) {
        if (++quiet >= 3) return;
      } else quiet = 0;
      // Waiting on the disk: give the thread pool a moment now and then instead of spinning.
      if (turn % 64 === 63) await sleep(1);
      else await nextTurn();
    }
    throw new Error(`the cluster did not settle within ${maxTurns} turns (seed ${this.opts.seed})\n${this.describe()}`);
  }

  /** Moves time by `n` heartbeat intervals, settling after each. */
  async tick(n = 1): Promise<void> {
    for (let i = 0; i < n; i++) {
      this.clock.advance(this.heartbeatMs);
      await this.settle();
    }
  }

  /** Settles, then ticks until `cond` holds; throws after `ticks` ticks (default 100). Returns the ticks used. */
  async until(cond: () => boolean, o: { ticks?: number; what?: string } = {}): Promise<number> {
    const max = o.ticks ?? 100;
    await this.settle();
    for (let t = 0; ; t++) {
      if (cond()) return t;
      if (t >= max) {
        throw new Error(
          `${o.what ?? 'condition'} did not hold within ${max} ticks (seed ${this.opts.seed})\n${this.describe()}\nlast log lines:\n${this.logTail.slice(-40).join('\n')}`,
        );
      }
      await this.tick();
    }
  }

  /** Ticks until `p` settles (see until) and returns its result. */
  async run<T>(p: Promise<T>, o: { ticks?: number; what?: string } = {}): Promise<T> {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    await this.until(() => done, { ticks: o.ticks, what: o.what ?? 'request' });
    return p;
  }

  /** Ticks until one running member leads and every running member follows it. */
  async waitForLeader(o: { ticks?: number } = {}): Promise<InProcMember> {
    let leader: InProcMember | undefined;
    await this.until(
      () => {
        leader = this.leader();
        return leader !== undefined && this.running().every((m) => m.server.leader() === leader!.id);
      },
      { ticks: o.ticks ?? 10 * this.electionTicks, what: 'a leader known to every running member' },
    );
    return leader!;
  }

  /**
   * Ticks until the cluster is idle: a leader, every running member has applied all of the
   * leader's log and published its name (so no proposal of its own is still to come).
   */
  async waitIdle(o: { ticks?: number } = {}): Promise<InProcMember> {
    const leader = await this.waitForLeader(o);
    await this.until(
      () => {
        const last = parts(leader.server).node.storage.lastIndex();
        return (
          leader.server.isLeader() &&
          leader.server.committedIndex() === last &&
          this.running().every((m) => m.server.sm.appliedIndex === last && m.server.sm.membership.get(m.id)?.name === m.name)
        );
      },
      { ticks: o.ticks ?? 10 * this.electionTicks, what: 'an idle cluster (all applied, all published)' },
    );
    return leader;
  }

  private checkFatal(): void {
    for (const m of this.all.values()) {
      if (m.fatal) throw new Error(`member ${m.name} failed (seed ${this.opts.seed}): ${m.fatal.stack ?? m.fatal.message}`);
    }
  }

  // ------------------------------------------------------------------ requests and state

  /** Proposes a put on `m` (as its KV service does). The promise is already handled (never unhandled). */
  put(m: InProcMember | string, key: string, value: string): Promise<PutResponse> {
    const x = typeof m === 'string' ? this.member(m) : m;
    const p = x.server.propose('put', { key: B(key), value: B(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false });
    p.catch(() => {});
    return p;
  }

  /** A key as `m` has applied it (a local, serializable read). */
  get(m: InProcMember | string, key: string): KeyValue | undefined {
    const x = typeof m === 'string' ? this.member(m) : m;
    return x.server.sm.store.range(B(key), undefined).kvs[0];
  }

  /** Every live key (latin1) -> value (latin1) on `m`. */
  dump(m: InProcMember | string): Map<string, string> {
    const x = typeof m === 'string' ? this.member(m) : m;
    const out = new Map<string, string>();
    for (const kv of x.server.sm.store.range(B('\0'), B('\0')).kvs) out.set(kv.key.toString('latin1'), kv.value.toString('latin1'));
    return out;
  }

  /** One line per member: role, term, commit, applied, snapshot; and the network's queue. */
  describe(): string {
    const lines = this.members().map((m) => {
      if (!m.running) return `  ${m.name} ${m.id.toString(16)}: stopped${m.removed ? ' (removed)' : ''}`;
      const st = m.server.raftStatus();
      const p = parts(m.server);
      return `  ${m.name} ${m.id.toString(16)}: ${st.raftState} term ${st.term} lead ${st.lead.toString(16)} commit ${st.commit} applied ${m.server.sm.appliedIndex} last ${p.node.storage.lastIndex()} snap ${p.snapshots.lastSavedIndex}${this.isQuiet(m) ? '' : ' (busy)'}`;
    });
    return `${lines.join('\n')}\n  network: ${this.net.pending()} queued, ${this.net.heldCount()} held; clock ${this.clock.now()} ms`;
  }

  // ------------------------------------------------------------------ end

  /** Stops every member and removes the data dirs (also after a failure). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const errors: Error[] = [];
    for (const m of this.all.values()) {
      try {
        await this.stop(m);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    await rm(this.root, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  }

  private logger(name: string): ProcessLogger {
    const line = (lvl: Exclude<LogLevel, 'silent'>, msg: string): void => {
      const l = `${String(this.clock.now()).padStart(6)}ms ${name} ${lvl}: ${msg}`;
      if (lvl !== 'debug') {
        this.logTail.push(l);
        if (this.logTail.length > 400) this.logTail.splice(0, 200);
      }
      if (LEVELS[lvl] >= this.level) process.stderr.write(`${l}\n`);
    };
    return {
      debug: (m) => line('debug', m),
      info: (m) => line('info', m),
      warn: (m) => line('warn', m),
      error: (m) => line('error', m),
      flush: () => {},
    };
  }
}

/** Starts a cluster, runs `f`, and always closes it (members stopped, data dirs removed). */
export async function withCluster<T>(opts: InProcOptions, f: (c: InProcCluster) => Promise<T>): Promise<T> {
  const c = await InProcCluster.start(opts);
  try {
    return await f(c);
  } finally {
    await c.close();
  }
}
