// A deterministic whole-cluster simulator: N RawNodes, a seeded network (delay, loss,
// duplication, reordering, partitions), simulated disks that lose what was not yet persisted
// on a crash (optionally keeping a torn prefix), slow nodes, a virtual clock, and a client
// workload of proposals and linearizable reads. Everything is driven by one seeded PRNG, so a
// seed replays exactly.

import {
  type ConfChangeV2,
  ConfChangeTransition,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  ErrProposalDropped,
  type Message,
  MessageType,
  MemoryStorage,
  NONE,
  type NodeId,
  RawNode,
  type Ready,
  SeededRand,
  SnapshotStatus,
  type Snapshot,
  StateType,
  decodeConfChangeEntry,
  emptyConfState,
  isLeaveJoint,
} from '../../src/raft/index.js';
import { EventHeap } from './heap.js';
import { Invariants, InvariantViolation, chainHash, dataKey } from './invariants.js';

export interface SimOptions {
  seed: number;
  nodes: number;
  electionTick?: number;
  heartbeatTick?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Snapshot and compact when this many applied entries sit in a node's log. */
  compactEvery?: number;
  maxSizePerMsg?: number;
  maxInflightMsgs?: number;
  trace?: (line: string) => void;
  /** Also trace every message delivery. */
  verbose?: boolean;
}

/** Virtual time units per tick. Message delays and disk latencies are in the same unit. */
export const TICK = 10;

interface SimEvent {
  time: number;
  seq: number;
  kind: 'tick' | 'deliver' | 'persist' | 'snapStatus';
  node: NodeId;
  incarnation: number;
  msg?: Message;
  ok?: boolean;
}

interface PendingRead {
  ctx: string;
  requiredIndex: number;
  invokedAt: number;
  readIndex?: number;
}

/**
 * Like etcd's server, a leader sends the freshest snapshot it can: when asked for one, the
 * storage first captures the state machine at its applied index.
 */
class SimStorage extends MemoryStorage {
  beforeSnapshot: (() => void) | undefined;
  override snapshot(): Snapshot {
    this.beforeSnapshot?.();
    return super.snapshot();
  }
  durableSnapshot(): Snapshot {
    return super.snapshot();
  }
}

export class SimNode {
  readonly storage = new SimStorage();
  raw: RawNode | undefined;
  incarnation = 0;
  /** The Ready being persisted (between ready() and the persist event). */
  pending: Ready | undefined;
  /** State machine: applied index and fingerprint; plus the config at that index. */
  smIndex = 0;
  smHash = 0;
  confState: ConfState = emptyConfState();
  /** Disk latency multiplier (>1: a slow node). */
  slow = 1;
  reads: PendingRead[] = [];
  lastRole: StateType | undefined;
  lastLead: NodeId = NONE;

  constructor(readonly id: NodeId) {}

  get up(): boolean {
    return this.raw !== undefined;
  }
}

interface SnapshotImage {
  index: number;
  hash: number;
}

function encodeImage(img: SnapshotImage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(img));
}

function decodeImage(data: Uint8Array): SnapshotImage {
  return JSON.parse(new TextDecoder().decode(data)) as SnapshotImage;
}

export class SimCluster {
  readonly rng: SeededRand;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly inv = new Invariants();
  now = 0;
  private seq = 0;
  private events = new EventHeap<SimEvent>();
  // network faults
  blocked = new Set<string>();
  lossRate = 0;
  dupRate = 0;
  maxDelay = 5;
  // workload bookkeeping
  proposed = 0;
  dropped = 0;
  /** Proposals by data key -> index at which they were applied (once acknowledged). */
  acked = new Map<string, number>();
  readsDone = 0;
  private readSeq = 0;
  readonly opts: Required<Omit<SimOptions, 'trace' | 'verbose'>> & Pick<SimOptions, 'trace' | 'verbose'>;
  stats = { delivered: 0, lost: 0, events: 0, elections: 0, snapshotsSent: 0, restarts: 0 };

  constructor(opts: SimOptions) {
    this.opts = {
      electionTick: 10,
      heartbeatTick: 1,
      preVote: true,
      checkQuorum: true,
      compactEvery: 40,
      maxSizePerMsg: 4096,
      maxInflightMsgs: 8,
      ...opts,
    };
    this.rng = new SeededRand(opts.seed);
    const ids: NodeId[] = [];
    for (let i = 1; i <= opts.nodes; i++) ids.push(BigInt(i));
    for (const id of ids) {
      const n = new SimNode(id);
      this.nodes.set(id, n);
      this.start(n);
      n.raw!.bootstrap(ids.map((id) => ({ id })));
      // Ticks start at a random phase per node: clocks are not synchronized.
      this.schedule({ kind: 'tick', node: id, incarnation: n.incarnation }, 1 + this.rng.intn(TICK));
    }
  }

  trace(line: string): void {
    this.opts.trace?.(`t=${String(this.now).padStart(6)} ${line}`);
  }

  private schedule(e: Omit<SimEvent, 'time' | 'seq'>, delay: number): void {
    this.events.push({ ...e, time: this.now + Math.max(1, Math.floor(delay)), seq: this.seq++ });
  }

  /** Creates the RawNode from what is durable in the node's storage. */
  private start(n: SimNode): void {
    const snap = n.storage.durableSnapshot();
    n.storage.beforeSnapshot = () => this.captureSnapshot(n);
    if (snap.metadata.index > 0) {
      const img = decodeImage(snap.data);
      n.smIndex = img.index;
      n.smHash = img.hash;
      n.confState = snap.metadata.confState;
    } else {
      n.smIndex = 0;
      n.smHash = 0;
      n.confState = emptyConfState();
    }
    n.incarnation++;
    n.raw = new RawNode({
      id: n.id,
      storage: n.storage,
      applied: n.smIndex,
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      preVote: this.opts.preVote,
      checkQuorum: this.opts.checkQuorum,
      maxSizePerMsg: this.opts.maxSizePerMsg,
      maxInflightMsgs: this.opts.maxInflightMsgs,
      stepDownOnRemoval: true,
      rand: new SeededRand(this.rng.intn(2 ** 31)),
    });
    n.pending = undefined;
    n.reads = [];
    n.lastRole = StateType.Follower;
    n.lastLead = NONE;
  }

  // ------------------------------------------------------------------ faults

  crash(id: NodeId): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    // A crash in the middle of a write may leave a prefix of the batch on disk (a torn
    // write); never the HardState, which is written after the entries.
    if (n.pending && !n.pending.snapshot && n.pending.entries.length > 0 && this.rng.next() < 0.5) {
      const k = this.rng.intn(n.pending.entries.length + 1);
      if (k > 0) n.storage.append(n.pending.entries.slice(0, k));
      this.trace(`n${id} CRASH (torn write: ${k}/${n.pending.entries.length} entries kept)`);
    } else {
      this.trace(`n${id} CRASH`);
    }
    n.raw = undefined;
    n.pending = undefined;
    n.reads = [];
    n.incarnation++;
  }

  restart(id: NodeId): void {
    const n = this.nodes.get(id)!;
    if (n.raw) return;
    this.start(n);
    // An initial member that crashed before its bootstrap entries were durable bootstraps
    // again (the entries are identical on every initial member), as the server does.
    if (n.storage.lastIndex() === 0 && n.storage.durableSnapshot().metadata.index === 0 && id <= BigInt(this.opts.nodes)) {
      const ids: NodeId[] = [];
      for (let i = 1; i <= this.opts.nodes; i++) ids.push(BigInt(i));
      n.raw!.bootstrap(ids.map((x) => ({ id: x })));
    }
    this.stats.restarts++;
    this.trace(`n${id} RESTART term=${n.raw!.inspect().term} commit=${n.raw!.inspect().raftLog.committed} last=${n.raw!.inspect().raftLog.lastIndex()}`);
    this.schedule({ kind: 'tick', node: id, incarnation: n.incarnation }, 1 + this.rng.intn(TICK));
  }

  /** Cuts the links between two groups, both ways. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
      this.blocked.add(`${x}>${y}`);
      this.blocked.add(`${y}>${x}`);
    }
    this.trace(`PARTITION [${a.join(' ')}] | [${b.join(' ')}]`);
  }

  /** Cuts one direction only: `from` can no longer reach `to`. */
  blockOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
    this.trace(`BLOCK n${from} -> n${to}`);
  }

  heal(): void {
    this.blocked.clear();
    this.trace('HEAL network');
  }

  leader(): SimNode | undefined {
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) {
      if (n.raw?.inspect().state === StateType.Leader && (!best || n.raw.inspect().term > best.raw!.inspect().term)) best = n;
    }
    return best;
  }

  upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  // ------------------------------------------------------------------ workload

  propose(id: NodeId): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    const key = `p${this.proposed++}`;
    try {
      n.raw.propose(new TextEncoder().encode(key));
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
      this.dropped++;
    }
    this.pump(n);
  }

  read(id: NodeId): void {
    const n = this.nodes.get(id)!;
    if (!n.raw) return;
    const ctx = `r${this.readSeq++}`;
    // Linearizability of reads: every write acknowledged before the read began must be
    // visible, i.e. the read index must cover the highest index applied anywhere now.
    n.reads.push({ ctx, requiredIndex: this.inv.maxAppliedIndex(), invokedAt: this.now });
    n.raw.readIndex(new TextEncoder().encode(ctx));
    this.pump(n);
  }

  /** Proposes a configuration change through the current leader (if any). */
  proposeConfChange(cc: ConfChangeV2): boolean {
    const l = this.leader();
    if (!l?.raw) return false;
    for (const c of cc.changes) {
      if (!this.nodes.has(c.nodeId)) {
        // A brand-new member starts empty (no bootstrap): the leader catches it up.
        const n = new SimNode(c.nodeId);
        this.nodes.set(c.nodeId, n);
        this.start(n);
        this.schedule({ kind: 'tick', node: n.id, incarnation: n.incarnation }, 1 + this.rng.intn(TICK));
        this.trace(`n${c.nodeId} CREATED (empty)`);
      }
    }
    try {
      l.raw.proposeConfChange(cc);
    } catch (e) {
      if (!(e instanceof ErrProposalDropped)) throw e;
      return false;
    }
    this.trace(
      `n${l.id} PROPOSE CONF ${cc.changes.map((c) => `${ConfChangeType[c.type]}(${c.nodeId})`).join(',') || 'leave-joint'} ${ConfChangeTransition[cc.transition]}`,
    );
    this.pump(l);
    return true;
  }

  // ------------------------------------------------------------------ event loop

  /** Runs events until virtual time `until`. Throws InvariantViolation on a safety violation. */
  runUntil(until: number): void {
    for (;;) {
      const e = this.events.peek();
      if (!e || e.time > until) break;
      this.events.pop();
      this.now = e.time;
      this.stats.events++;
      this.handle(e);
      this.inv.check([...this.nodes.values()]);
    }
    this.now = until;
  }

  private handle(e: SimEvent): void {
    const n = this.nodes.get(e.node);
    // Messages reach whichever incarnation is up when they arrive (a restarted node may get
    // messages sent to its previous life); timers and disk writes die with their incarnation.
    if (!n || !n.raw || (e.kind !== 'deliver' && n.incarnation !== e.incarnation)) {
      if (e.kind === 'deliver') {
        this.stats.lost++;
        this.reportSnapshotLost(e.msg!);
      }
      return;
    }
    switch (e.kind) {
      case 'tick':
        n.raw.tick();
        this.schedule({ kind: 'tick', node: n.id, incarnation: n.incarnation }, TICK);
        break;
      case 'deliver': {
        const m = e.msg!;
        if (this.opts.verbose) this.trace(`n${m.from} -> n${m.to} ${describe(m)}`);
        this.stats.delivered++;
        try {
          n.raw.step(m);
        } catch (err) {
          if (!(err instanceof Error) || !/peer not found|dropped/.test(err.message)) throw err;
        }
        if (m.type === MessageType.MsgSnap) {
          // The transport reports the outcome of a snapshot transfer to the sender.
          const sender = this.nodes.get(m.from);
          if (sender?.raw) this.schedule({ kind: 'snapStatus', node: m.from, incarnation: sender.incarnation, msg: m, ok: true }, 1);
        }
        break;
      }
      case 'snapStatus':
        n.raw.reportSnapshot(e.msg!.to, e.ok ? SnapshotStatus.Finish : SnapshotStatus.Failure);
        break;
      case 'persist':
        this.persist(n);
        break;
    }
    this.pump(n);
  }

  /** Hands the node's output to the network and the disk. */
  private pump(n: SimNode): void {
    const raw = n.raw;
    if (!raw) return;
    this.sendAll(raw.takeMessages());
    if (n.pending || !raw.hasReady()) return;
    const rd = raw.ready();
    if (rd.softState) {
      const s = rd.softState;
      if (s.raftState !== n.lastRole || s.lead !== n.lastLead) {
        if (s.raftState === StateType.Leader) this.stats.elections++;
        this.trace(`n${n.id} ${s.raftState} term=${raw.inspect().term} lead=${s.lead}`);
        n.lastRole = s.raftState;
        n.lastLead = s.lead;
      }
    }
    this.sendAll(rd.messages);
    n.pending = rd;
    // Disk latency; slow nodes write slowly. Zero-latency writes are allowed too.
    const lat = rd.mustSync ? (1 + this.rng.intn(3)) * n.slow : 1;
    this.schedule({ kind: 'persist', node: n.id, incarnation: n.incarnation }, lat);
  }

  /** Nodes that crash when their next disk write completes (a crash mid-write). */
  readonly crashOnPersist = new Set<NodeId>();

  private persist(n: SimNode): void {
    if (this.crashOnPersist.delete(n.id)) {
      this.crash(n.id);
      return;
    }
    const raw = n.raw!;
    const rd = n.pending!;
    n.pending = undefined;
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      this.restoreSnapshot(n, rd.snapshot);
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.sendAll(rd.messagesAfterPersist);
    for (const e of rd.committedEntries) this.apply(n, e);
    for (const rs of rd.readStates) {
      const ctx = new TextDecoder().decode(rs.requestCtx);
      const r = n.reads.find((x) => x.ctx === ctx);
      if (r) r.readIndex = rs.index;
    }
    raw.advance(rd);
    this.completeReads(n);
    this.maybeCompact(n);
  }

  private restoreSnapshot(n: SimNode, s: Snapshot): void {
    const img = decodeImage(s.data);
    this.inv.onSnapshotRestore(n.id, img.index, img.hash);
    n.smIndex = img.index;
    n.smHash = img.hash;
    n.confState = s.metadata.confState;
    this.trace(`n${n.id} RESTORED snapshot index=${img.index}`);
  }

  private apply(n: SimNode, e: Entry): void {
    if (e.index !== n.smIndex + 1) {
      throw new InvariantViolation('apply order', `node ${n.id} applies index ${e.index} after ${n.smIndex}`);
    }
    const key = dataKey(e);
    n.smHash = chainHash(n.smHash, key);
    n.smIndex = e.index;
    this.inv.onApply(n.id, e, n.smHash);
    if (e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2) {
      const cc = decodeConfChangeEntry(e.type, e.data);
      try {
        n.confState = n.raw!.applyConfChange(cc);
      } catch (err) {
        throw new InvariantViolation(
          'conf change',
          `node ${n.id} failed to apply the conf change at index ${e.index} (config ${n.raw!.inspect().trk.config}): ${String(err)}`,
        );
      }
      if (n.raw!.inspect().state === StateType.Leader || this.opts.verbose) {
        this.trace(`n${n.id} APPLIED CONF at ${e.index}: ${n.raw!.inspect().trk.config}`);
      }
    } else if (e.data.length > 0) {
      const k = new TextDecoder().decode(e.data);
      if (!this.acked.has(k)) this.acked.set(k, e.index);
    }
  }

  private completeReads(n: SimNode): void {
    const rest: PendingRead[] = [];
    for (const r of n.reads) {
      if (r.readIndex === undefined || n.smIndex < r.readIndex) {
        rest.push(r);
        continue;
      }
      if (r.readIndex < r.requiredIndex) {
        throw new InvariantViolation(
          'linearizable read',
          `read ${r.ctx} on node ${n.id} got read index ${r.readIndex} but index ${r.requiredIndex} was applied before it started`,
        );
      }
      this.readsDone++;
    }
    n.reads = rest;
  }

  private captureSnapshot(n: SimNode): void {
    if (!n.raw || n.smIndex <= n.storage.durableSnapshot().metadata.index || n.smIndex > n.storage.lastIndex()) return;
    if (n.smIndex < n.storage.firstIndex() - 1) return;
    n.storage.createSnapshot(n.smIndex, n.confState, encodeImage({ index: n.smIndex, hash: n.smHash }));
  }

  private maybeCompact(n: SimNode): void {
    const first = n.storage.firstIndex();
    if (n.smIndex - first < this.opts.compactEvery) return;
    if (n.smIndex > n.storage.lastIndex()) return;
    n.storage.createSnapshot(n.smIndex, n.confState, encodeImage({ index: n.smIndex, hash: n.smHash }));
    // Keep a short tail so that slightly lagging followers need no snapshot.
    const keep = 5;
    if (n.smIndex - keep > first) n.storage.compact(n.smIndex - keep);
  }

  /** Like a real transport, tell the sender that a snapshot did not arrive. */
  private reportSnapshotLost(m: Message): void {
    if (m.type !== MessageType.MsgSnap) return;
    const from = this.nodes.get(m.from);
    if (from?.raw) this.schedule({ kind: 'snapStatus', node: m.from, incarnation: from.incarnation, msg: m, ok: false }, 1);
  }

  private sendAll(msgs: Message[]): void {
    for (const m of msgs) this.send(m);
  }

  private send(m: Message): void {
    const to = this.nodes.get(m.to);
    if (!to || this.blocked.has(`${m.from}>${m.to}`) || this.rng.next() < this.lossRate) {
      this.stats.lost++;
      this.reportSnapshotLost(m);
      return;
    }
    const copies = this.rng.next() < this.dupRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      // Independent random delays reorder messages.
      const delay = 1 + this.rng.intn(this.maxDelay) + (to.slow > 1 ? this.rng.intn(to.slow * 2) : 0);
      this.schedule({ kind: 'deliver', node: m.to, incarnation: to.incarnation, msg: cloneMessage(m) }, delay);
    }
  }
}

function cloneMessage(m: Message): Message {
  return { ...m, entries: m.entries.map((e) => ({ ...e })) };
}

export function describe(m: Message): string {
  let s = `${MessageType[m.type]} term=${m.term}`;
  switch (m.type) {
    case MessageType.MsgApp:
      s += ` prev=(${m.index},${m.logTerm}) ents=${m.entries.length} commit=${m.commit}`;
      break;
    case MessageType.MsgAppResp:
      s += m.reject ? ` REJECT index=${m.index} hint=(${m.rejectHint},${m.logTerm})` : ` index=${m.index}`;
      break;
    case MessageType.MsgVote:
    case MessageType.MsgPreVote:
      s += ` last=(${m.index},${m.logTerm})`;
      break;
    case MessageType.MsgVoteResp:
    case MessageType.MsgPreVoteResp:
      s += m.reject ? ' REJECT' : ' GRANT';
      break;
    case MessageType.MsgHeartbeat:
      s += ` commit=${m.commit}`;
      break;
    case MessageType.MsgSnap:
      s += ` snap=${m.snapshot?.metadata.index}`;
      break;
  }
  return s;
}

export { isLeaveJoint };
