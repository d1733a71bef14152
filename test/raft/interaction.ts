// The interaction environment behind the datadriven traces in test/raft/testdata (modelled on
// etcd-io/raft's rafttest): nodes with in-memory storage, an explicit message queue, and
// commands to campaign, propose, tick, handle Readies and deliver messages, printing every
// Ready, message and log line in a stable textual form.
//
// Commands (ids are node ids; [..] is optional):
//   add-nodes <n> [prevote=true] [checkquorum=true] [read-only=safe|lease-based] [inflight=<k>]
//   campaign <id> | propose <id> <data> | propose-conf-change <id> v4 l5 r2 [transition=..]
//   tick <id> [n=<k>] | tick-heartbeat <id> | tick-election <id>
//   read-index <id> <ctx> | transfer-leadership from=<id> to=<id> | report-unreachable <id> <peer>
//   process-ready <id>...           handle one Ready of each node (persist, apply, advance)
//   deliver-msgs [<id>...] [drop=(<id>,...)] [type=<MsgType>]
//                                   deliver (or drop) the queued messages to those nodes, in
//                                   queue order; no ids and no drop: to every node
//   stabilize [<id>...]             process-ready and deliver until nothing moves (only between
//                                   the given nodes, if any: messages to others stay queued)
//   isolate <id>                    drop every message to or from the node from now on
//   drop [from=<id>] [to=<id>] [type=<MsgType>] [n=<k>]
//                                   drop the next k (default: all) delivered messages that match
//   recover                         lift every isolate and drop
//   compact <id> <index>            snapshot the node's state machine at index (<= applied)
//                                   and compact its storage through it; prints the log left
//   raft-state | raft-log <id> | status <id>
//   log-level none|info             none: print nothing but errors (for a trace's set-up)
//
// The state machine is etcd's "appender": it concatenates the data of the normal entries it
// applies (comma-separated here), so a snapshot's data shows what it contains.

import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeSingle,
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  MemoryStorage,
  type NodeId,
  RawNode,
  ReadOnlyOption,
  type Ready,
  SeededRand,
  type Snapshot,
  decodeConfChangeEntry,
  emptyConfState,
} from '../../src/raft/index.js';
import type { Command } from '../datadriven/runner.js';

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 1;

function idsText(ids: readonly NodeId[]): string {
  return `(${ids.map(String).join(' ')})`;
}

function confStateText(cs: ConfState): string {
  let s = `voters=${idsText(cs.voters)}`;
  if (cs.votersOutgoing.length > 0) s += `&&${idsText(cs.votersOutgoing)}`;
  if (cs.learners.length > 0) s += ` learners=${idsText(cs.learners)}`;
  if (cs.learnersNext.length > 0) s += ` learners_next=${idsText(cs.learnersNext)}`;
  if (cs.autoLeave) s += ' autoleave';
  return s;
}

function snapshotText(s: Snapshot): string {
  const m = s.metadata;
  return `Index:${m.index} Term:${m.term} ConfState:${confStateText(m.confState)} Data:${JSON.stringify(Buffer.from(s.data).toString())}`;
}

function parseMessageType(s: string): MessageType {
  const t = (MessageType as unknown as Record<string, number | undefined>)[s];
  if (typeof t !== 'number') throw new Error(`unknown message type ${s}`);
  return t as MessageType;
}

/** `3`, `(2,3)` or `2,3` as node ids. */
function parseIdList(s: string | undefined): NodeId[] {
  if (s === undefined) return [];
  return s
    .replace(/^\(|\)$/g, '')
    .split(',')
    .filter((x) => x !== '')
    .map((x) => BigInt(x));
}

function entryText(e: Entry): string {
  const t = EntryType[e.type];
  if (e.type === EntryType.Normal) return `${e.term}/${e.index} Entry${t} ${JSON.stringify(Buffer.from(e.data).toString())}`;
  const cc = decodeConfChangeEntry(e.type, e.data);
  const ch = cc.changes.map((c) => `${ConfChangeType[c.type]}(${c.nodeId})`).join(' ');
  return `${e.term}/${e.index} Entry${t} ${ch || 'leave-joint'}`;
}

export function describeMessage(m: Message): string {
  let s = `${m.from}->${m.to} ${MessageType[m.type]} Term:${m.term} Log:${m.logTerm}/${m.index}`;
  if (m.reject) s += ` Rejected (Hint: ${m.rejectHint})`;
  if (m.commit !== 0) s += ` Commit:${m.commit}`;
  if (m.entries.length > 0) s += ` Entries:[${m.entries.map(entryText).join(', ')}]`;
  if (m.snapshot) s += ` Snapshot: ${snapshotText(m.snapshot)}`;
  if (m.context && m.context.length > 0) s += ` Context:${JSON.stringify(Buffer.from(m.context).toString())}`;
  return s;
}

/** The state machine after applying `index`: what a snapshot at `index` must contain. */
interface AppliedState {
  index: number;
  confState: ConfState;
  data: string;
}

interface Node {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** One record per applied index (and per restored snapshot), oldest first. */
  history: AppliedState[];
}

/** A network rule of the `drop` command; `left` counts the messages it may still drop. */
interface DropRule {
  from?: NodeId;
  to?: NodeId;
  type?: MessageType;
  left: number;
}

export class InteractionEnv {
  private nodes = new Map<NodeId, Node>();
  private queue: Message[] = [];
  private isolated = new Set<NodeId>();
  private dropRules: DropRule[] = [];
  private quiet = false;
  private out: string[] = [];

  private log(id: NodeId) {
    return {
      debug: () => {},
      info: (m: string) => this.out.push(`INFO ${m}`),
      warn: (m: string) => this.out.push(`WARN ${m}`),
      error: (m: string) => this.out.push(`ERROR ${m}`),
    };
    void id;
  }

  handle(c: Command): string {
    this.out = [];
    const id = (s: string | undefined) => BigInt(s ?? '1');
    switch (c.cmd) {
      case 'add-nodes': {
        const n = Number(c.args[0]);
        const voters = Array.from({ length: n }, (_, i) => BigInt(this.nodes.size + i + 1));
        const ro = c.kv.get('read-only') ?? 'safe';
        if (ro !== 'safe' && ro !== 'lease-based') throw new Error(`invalid read-only option ${ro}`);
        const inflight = c.kv.get('inflight');
        for (const v of voters) {
          const storage = new MemoryStorage();
          const raw = new RawNode({
            id: v,
            storage,
            electionTick: ELECTION_TICK,
            heartbeatTick: HEARTBEAT_TICK,
            preVote: c.kv.get('prevote') === 'true',
            checkQuorum: c.kv.get('checkquorum') === 'true',
            readOnlyOption: ro === 'lease-based' ? ReadOnlyOption.LeaseBased : ReadOnlyOption.Safe,
            ...(inflight !== undefined ? { maxInflightMsgs: Number(inflight) } : {}),
            stepDownOnRemoval: true,
            rand: new SeededRand(Number(v)),
            logger: this.log(v),
          });
          // Log-based bootstrap (committed AddNode entries), so that members added later learn
          // the configuration from the log.
          raw.bootstrap(voters.map((x) => ({ id: x })));
          this.nodes.set(v, { id: v, raw, storage, history: [{ index: 0, confState: emptyConfState(), data: '' }] });
        }
        this.out = []; // construction logs are noise here
        break;
      }
      case 'campaign':
        this.node(id(c.args[0])).raw.campaign();
        break;
      case 'propose':
        try {
          this.node(id(c.args[0])).raw.propose(Buffer.from(c.args[1] ?? ''));
        } catch (e) {
          this.out.push(`error: ${(e as Error).message}`);
        }
        break;
      case 'propose-conf-change': {
        // propose-conf-change 1 v4 l5 r2 [transition=auto|implicit|explicit]
        const changes: ConfChangeSingle[] = c.args.slice(1).map((a) => ({
          type: a[0] === 'v' ? ConfChangeType.AddNode : a[0] === 'l' ? ConfChangeType.AddLearnerNode : ConfChangeType.RemoveNode,
          nodeId: BigInt(a.slice(1)),
        }));
        const tr = c.kv.get('transition') ?? 'auto';
        const transition = tr === 'explicit' ? ConfChangeTransition.JointExplicit : tr === 'implicit' ? ConfChangeTransition.JointImplicit : ConfChangeTransition.Auto;
        for (const ch of changes) {
          if (ch.type !== ConfChangeType.RemoveNode && !this.nodes.has(ch.nodeId)) this.addEmptyNode(ch.nodeId);
        }
        try {
          this.node(id(c.args[0])).raw.proposeConfChange({ transition, changes, context: new Uint8Array(0) });
        } catch (e) {
          this.out.push(`error: ${(e as Error).message}`);
        }
        break;
      }
      case 'tick': {
        const n = Number(c.kv.get('n') ?? 1);
        for (let i = 0; i < n; i++) this.node(id(c.args[0])).raw.tick();
        break;
      }
      case 'tick-heartbeat':
        for (let i = 0; i < HEARTBEAT_TICK; i++) this.node(id(c.args[0])).raw.tick();
        break;
      case 'tick-election':
        // One election timeout; beware that a follower's randomized timeout may be longer.
        for (let i = 0; i < ELECTION_TICK; i++) this.node(id(c.args[0])).raw.tick();
        break;
      case 'report-unreachable':
        this.node(id(c.args[0])).raw.reportUnreachable(id(c.args[1]));
        break;
      case 'read-index':
        this.node(id(c.args[0])).raw.readIndex(Buffer.from(c.args[1] ?? 'ctx'));
        break;
      case 'transfer-leadership':
        this.node(id(c.kv.get('from'))).raw.transferLeader(id(c.kv.get('to')));
        break;
      case 'isolate':
        this.isolated.add(id(c.args[0]));
        break;
      case 'drop': {
        const from = c.kv.get('from');
        const to = c.kv.get('to');
        const type = c.kv.get('type');
        if (from === undefined && to === undefined && type === undefined) throw new Error('drop needs from=, to= or type=');
        this.dropRules.push({
          ...(from !== undefined ? { from: BigInt(from) } : {}),
          ...(to !== undefined ? { to: BigInt(to) } : {}),
          ...(type !== undefined ? { type: parseMessageType(type) } : {}),
          left: c.kv.has('n') ? Number(c.kv.get('n')) : Number.POSITIVE_INFINITY,
        });
        break;
      }
      case 'recover':
        this.isolated.clear();
        this.dropRules = [];
        break;
      case 'stabilize':
        this.stabilize(c.args.length > 0 ? new Set(c.args.map((a) => BigInt(a))) : undefined);
        break;
      case 'process-ready': {
        // As etcd's rafttest: a header per node only when several are named.
        const ids = c.args.map((a) => BigInt(a));
        for (const i of ids) {
          const indent = ids.length > 1 ? '  ' : '';
          if (ids.length > 1) this.out.push(`> ${i} handling Ready`);
          if (!this.handleReady(this.node(i), indent, false)) this.out.push(`${indent}<empty Ready>`);
        }
        break;
      }
      case 'deliver-msgs':
        this.deliverMsgs(c);
        break;
      case 'compact':
        this.compact(this.node(id(c.args[0])), Number(c.args[1]));
        break;
      case 'raft-state':
        for (const n of this.nodes.values()) {
          const r = n.raw.inspect();
          this.out.push(`${n.id}: ${r.state} (${r.isLearner ? 'Learner' : 'Voter'}) Term:${r.term} Lead:${r.lead}`);
        }
        break;
      case 'raft-log':
        this.raftLog(this.node(id(c.args[0])));
        break;
      case 'status': {
        const st = this.node(id(c.args[0])).raw.status();
        this.out.push(`config: ${st.config}`);
        for (const [pid, pr] of st.progress ?? []) this.out.push(`${pid}: ${pr}`);
        break;
      }
      case 'log-level': {
        const level = c.args[0] ?? '';
        if (level !== 'none' && level !== 'info') throw new Error(`unknown log level ${level}`);
        this.quiet = level === 'none';
        break;
      }
      default:
        throw new Error(`unknown command ${c.cmd}`);
    }
    if (this.quiet) return this.out.filter((l) => /^\s*(error:|ERROR )/.test(l)).join('\n');
    return this.out.join('\n');
  }

  private node(id: NodeId): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private addEmptyNode(id: NodeId): void {
    const storage = new MemoryStorage();
    const raw = new RawNode({ id, storage, electionTick: ELECTION_TICK, heartbeatTick: HEARTBEAT_TICK, stepDownOnRemoval: true, rand: new SeededRand(Number(id)), logger: this.log(id) });
    this.nodes.set(id, { id, raw, storage, history: [{ index: 0, confState: emptyConfState(), data: '' }] });
  }

  private raftLog(n: Node): void {
    const l = n.raw.inspect().raftLog;
    if (l.lastIndex() < l.firstIndex()) {
      this.out.push(`log is empty: first index=${l.firstIndex()}, last index=${l.lastIndex()}`);
      return;
    }
    for (let i = l.firstIndex(); i <= l.lastIndex(); i++) this.out.push(entryText(l.slice(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!));
  }

  /**
   * What a driver does when it snapshots and compacts: record the state machine as of `index`
   * (which it must have applied) as the storage's snapshot, then drop the entries through it.
   */
  private compact(n: Node, index: number): void {
    const applied = n.raw.inspect().raftLog.applied;
    if (index > applied) throw new Error(`cannot compact ${n.id} to ${index}: applied is ${applied}`);
    const st = n.history.find((h) => h.index === index);
    if (!st) throw new Error(`no applied state of ${n.id} at ${index}`);
    if (index > n.storage.snapshot().metadata.index) n.storage.createSnapshot(index, st.confState, Buffer.from(st.data));
    n.storage.compact(index);
    this.raftLog(n);
  }

  /** Whether the network (isolate, drop rules) loses `m`; a matching counted rule is used up. */
  private lost(m: Message): boolean {
    if (this.isolated.has(m.from) || this.isolated.has(m.to)) return true;
    for (const r of this.dropRules) {
      if (r.left <= 0) continue;
      if (r.from !== undefined && r.from !== m.from) continue;
      if (r.to !== undefined && r.to !== m.to) continue;
      if (r.type !== undefined && r.type !== m.type) continue;
      r.left--;
      return true;
    }
    return false;
  }

  private stepInto(n: Node, m: Message, indent: string): void {
    try {
      n.raw.step(m);
    } catch (e) {
      this.out.push(`${indent}error: ${(e as Error).message}`);
    }
  }

  /** deliver-msgs [<id>...] [drop=(<id>,...)] [type=<MsgType>], as etcd's rafttest. */
  private deliverMsgs(c: Command): void {
    const typeArg = c.kv.get('type');
    const type = typeArg === undefined ? undefined : parseMessageType(typeArg);
    const recipients = c.args.map((a) => ({ id: BigInt(a), drop: false }));
    for (const d of parseIdList(c.kv.get('drop'))) {
      if (recipients.some((r) => r.id === d)) throw new Error(`can't both deliver and drop msgs to ${d}`);
      recipients.push({ id: d, drop: true });
    }
    if (recipients.length === 0) {
      for (const to of [...new Set(this.queue.map((m) => m.to))].sort((a, b) => (a < b ? -1 : 1))) recipients.push({ id: to, drop: false });
    }
    let handled = 0;
    for (const r of recipients) {
      const matches = (m: Message) => m.to === r.id && (type === undefined || m.type === type);
      const msgs = this.queue.filter(matches);
      this.queue = this.queue.filter((m) => !matches(m));
      for (const m of msgs) {
        handled++;
        if (r.drop || this.lost(m)) {
          this.out.push(`dropped: ${describeMessage(m)}`);
          continue;
        }
        this.out.push(describeMessage(m));
        this.stepInto(this.node(m.to), m, '');
      }
    }
    if (handled === 0) this.out.push('no messages');
  }

  /**
   * Handles one Ready of `n` as the server does: send what may leave now, persist, queue what
   * had to wait for the persist, apply, advance. Returns false if there was nothing to do.
   */
  private handleReady(n: Node, indent = '  ', header = true): boolean {
    const taken = n.raw.takeMessages();
    if (!n.raw.hasReady() && taken.length === 0) return false;
    if (header) this.out.push(`> ${n.id} handling Ready`);
    for (const m of taken) {
      this.out.push(`${indent}${describeMessage(m)}`);
      this.queue.push(m);
    }
    if (!n.raw.hasReady()) return true;
    const rd: Ready = n.raw.ready();
    const lines: string[] = [];
    if (rd.softState) lines.push(`State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    if (rd.hardState) lines.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
    if (rd.entries.length > 0) lines.push('Entries:', ...rd.entries.map((e) => `  ${entryText(e)}`));
    if (rd.snapshot) lines.push(`Snapshot ${snapshotText(rd.snapshot)}`);
    if (rd.committedEntries.length > 0) lines.push('CommittedEntries:', ...rd.committedEntries.map((e) => `  ${entryText(e)}`));
    if (rd.messages.length > 0) lines.push('Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
    if (rd.messagesAfterPersist.length > 0) lines.push('MessagesAfterPersist:', ...rd.messagesAfterPersist.map((m) => `  ${describeMessage(m)}`));
    for (const rs of rd.readStates) lines.push(`ReadState Index:${rs.index} Ctx:${JSON.stringify(Buffer.from(rs.requestCtx).toString())}`);
    this.out.push(`${indent}Ready MustSync=${rd.mustSync}:`, ...lines.map((l) => `${indent}${l}`));
    this.queue.push(...rd.messages);
    if (rd.snapshot) {
      n.storage.applySnapshot(rd.snapshot);
      const m = rd.snapshot.metadata;
      n.history.push({ index: m.index, confState: m.confState, data: Buffer.from(rd.snapshot.data).toString() });
    }
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.queue.push(...rd.messagesAfterPersist);
    for (const e of rd.committedEntries) {
      const last = n.history[n.history.length - 1]!;
      let { confState, data } = last;
      if (e.type !== EntryType.Normal) confState = n.raw.applyConfChange(decodeConfChangeEntry(e.type, e.data));
      else if (e.data.length > 0) data = data === '' ? Buffer.from(e.data).toString() : `${data},${Buffer.from(e.data).toString()}`;
      n.history.push({ index: e.index, confState, data });
    }
    n.raw.advance(rd);
    return true;
  }

  /** Delivers the queued messages to `only` (or to every node), grouped by recipient. */
  private deliver(only?: ReadonlySet<NodeId>): boolean {
    const msgs = only ? this.queue.filter((m) => only.has(m.to)) : this.queue;
    if (msgs.length === 0) return false;
    this.queue = only ? this.queue.filter((m) => !only.has(m.to)) : [];
    const byNode = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      if (this.lost(m)) {
        this.out.push(`  dropped: ${describeMessage(m)}`);
        continue;
      }
      const a = byNode.get(m.to) ?? [];
      a.push(m);
      byNode.set(m.to, a);
    }
    for (const [to, ms] of [...byNode].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const n = this.nodes.get(to);
      if (!n) continue;
      this.out.push(`> ${to} receiving messages`);
      for (const m of ms) {
        this.out.push(`  ${describeMessage(m)}`);
        this.stepInto(n, m, '  ');
      }
    }
    return true;
  }

  private stabilize(only?: ReadonlySet<NodeId>): void {
    for (let round = 0; round < 1000; round++) {
      let progress = false;
      for (const n of [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
        if (only && !only.has(n.id)) continue;
        if (this.handleReady(n)) progress = true;
      }
      if (this.deliver(only)) progress = true;
      if (!progress) return;
    }
    throw new Error('stabilize did not converge');
  }
}
