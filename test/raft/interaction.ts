// The interaction environment behind the datadriven traces in test/raft/testdata (modelled on
// etcd-io/raft's rafttest): nodes with in-memory storage, an explicit message queue, and
// commands to campaign, propose, tick, handle Readies and deliver messages, printing every
// Ready, message and log line in a stable textual form.

import {
  ConfChangeTransition,
  ConfChangeType,
  type ConfChangeSingle,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  MemoryStorage,
  type NodeId,
  RawNode,
  type Ready,
  SeededRand,
  decodeConfChangeEntry,
} from '../../src/raft/index.js';
import type { Command } from '../datadriven/runner.js';

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
  if (m.snapshot) s += ` Snapshot: Index:${m.snapshot.metadata.index} Term:${m.snapshot.metadata.term}`;
  if (m.context && m.context.length > 0) s += ` Context:${JSON.stringify(Buffer.from(m.context).toString())}`;
  return s;
}

interface Node {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
}

export class InteractionEnv {
  private nodes = new Map<NodeId, Node>();
  private queue: Message[] = [];
  private isolated = new Set<NodeId>();
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
        for (const v of voters) {
          const storage = new MemoryStorage();
          const raw = new RawNode({
            id: v,
            storage,
            electionTick: 10,
            heartbeatTick: 1,
            preVote: c.kv.get('prevote') === 'true',
            checkQuorum: c.kv.get('checkquorum') === 'true',
            stepDownOnRemoval: true,
            rand: new SeededRand(Number(v)),
            logger: this.log(v),
          });
          // Log-based bootstrap (committed AddNode entries), so that members added later learn
          // the configuration from the log.
          raw.bootstrap(voters.map((x) => ({ id: x })));
          this.nodes.set(v, { id: v, raw, storage });
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
      case 'read-index':
        this.node(id(c.args[0])).raw.readIndex(Buffer.from(c.args[1] ?? 'ctx'));
        break;
      case 'transfer-leadership':
        this.node(id(c.kv.get('from'))).raw.transferLeader(id(c.kv.get('to')));
        break;
      case 'isolate':
        this.isolated.add(id(c.args[0]));
        break;
      case 'recover':
        this.isolated.clear();
        break;
      case 'stabilize':
        this.stabilize();
        break;
      case 'raft-state':
        for (const n of this.nodes.values()) {
          const r = n.raw.raft;
          this.out.push(`${n.id}: ${r.state} (${r.isLearner ? 'Learner' : 'Voter'}) Term:${r.term} Lead:${r.lead}`);
        }
        break;
      case 'raft-log': {
        const r = this.node(id(c.args[0])).raw.raft;
        const l = r.raftLog;
        for (let i = l.firstIndex(); i <= l.lastIndex(); i++) this.out.push(entryText(l.slice(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!));
        break;
      }
      case 'status': {
        const st = this.node(id(c.args[0])).raw.status();
        this.out.push(`config: ${st.config}`);
        for (const [pid, pr] of st.progress ?? []) this.out.push(`${pid}: ${pr}`);
        break;
      }
      default:
        throw new Error(`unknown command ${c.cmd}`);
    }
    return this.out.join('\n');
  }

  private node(id: NodeId): Node {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private addEmptyNode(id: NodeId): void {
    const storage = new MemoryStorage();
    const raw = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, stepDownOnRemoval: true, rand: new SeededRand(Number(id)), logger: this.log(id) });
    this.nodes.set(id, { id, raw, storage });
  }

  private handleReady(n: Node): boolean {
    const taken = n.raw.takeMessages();
    if (!n.raw.hasReady() && taken.length === 0) return false;
    this.out.push(`> ${n.id} handling Ready`);
    for (const m of taken) {
      this.out.push(`  ${describeMessage(m)}`);
      this.queue.push(m);
    }
    if (!n.raw.hasReady()) return true;
    const rd: Ready = n.raw.ready();
    const lines: string[] = [];
    if (rd.softState) lines.push(`State:${rd.softState.raftState} Lead:${rd.softState.lead}`);
    if (rd.hardState) lines.push(`HardState Term:${rd.hardState.term} Vote:${rd.hardState.vote} Commit:${rd.hardState.commit}`);
    if (rd.entries.length > 0) lines.push('Entries:', ...rd.entries.map((e) => `  ${entryText(e)}`));
    if (rd.snapshot) lines.push(`Snapshot Index:${rd.snapshot.metadata.index} Term:${rd.snapshot.metadata.term}`);
    if (rd.committedEntries.length > 0) lines.push('CommittedEntries:', ...rd.committedEntries.map((e) => `  ${entryText(e)}`));
    if (rd.messages.length > 0) lines.push('Messages:', ...rd.messages.map((m) => `  ${describeMessage(m)}`));
    if (rd.messagesAfterPersist.length > 0) lines.push('MessagesAfterPersist:', ...rd.messagesAfterPersist.map((m) => `  ${describeMessage(m)}`));
    for (const rs of rd.readStates) lines.push(`ReadState Index:${rs.index} Ctx:${JSON.stringify(Buffer.from(rs.requestCtx).toString())}`);
    this.out.push(`  Ready MustSync=${rd.mustSync}:`, ...lines.map((l) => `  ${l}`));
    this.queue.push(...rd.messages);
    if (rd.snapshot) n.storage.applySnapshot(rd.snapshot);
    n.storage.append(rd.entries);
    if (rd.hardState) n.storage.setHardState(rd.hardState);
    this.queue.push(...rd.messagesAfterPersist);
    for (const e of rd.committedEntries) {
      if (e.type !== EntryType.Normal) n.raw.applyConfChange(decodeConfChangeEntry(e.type, e.data));
    }
    n.raw.advance(rd);
    return true;
  }

  private deliver(): boolean {
    if (this.queue.length === 0) return false;
    const msgs = this.queue;
    this.queue = [];
    const byNode = new Map<NodeId, Message[]>();
    for (const m of msgs) {
      if (this.isolated.has(m.from) || this.isolated.has(m.to)) {
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
        try {
          n.raw.step(m);
        } catch (e) {
          this.out.push(`  error: ${(e as Error).message}`);
        }
      }
    }
    return true;
  }

  private stabilize(): void {
    for (let round = 0; round < 1000; round++) {
      let progress = false;
      for (const n of [...this.nodes.values()].sort((a, b) => (a.id < b.id ? -1 : 1))) {
        if (this.handleReady(n)) progress = true;
      }
      if (this.deliver()) progress = true;
      if (!progress) return;
    }
    throw new Error('stabilize did not converge');
  }
}
