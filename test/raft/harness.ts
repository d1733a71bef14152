// A synchronous in-memory network of RawNodes for scenario tests: messages are delivered in
// order until the network is quiet, every Ready is persisted to the node's MemoryStorage at
// once, and links can be cut or dropped per message type.

import {
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  MemoryStorage,
  NONE,
  type NodeId,
  RawNode,
  type ReadState,
  SeededRand,
  StateType,
  decodeConfChangeEntry,
  emptyConfState,
  newMessage,
} from '../../src/raft/index.js';
import type { Config } from '../../src/raft/raft.js';

export interface PeerOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  electionTick?: number;
  heartbeatTick?: number;
  /** Initial log terms (entry i+1 has term terms[i]). */
  logTerms?: number[];
  hardState?: HardState;
  learners?: NodeId[];
  extra?: Partial<Config>;
}

export const ents = (terms: number[], from = 1): Entry[] =>
  terms.map((term, i) => ({ term, index: from + i, type: EntryType.Normal, data: new Uint8Array([i & 0xff]) }));

export class TestPeer {
  readonly applied: Entry[] = [];
  readonly readStates: ReadState[] = [];

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
    public node: RawNode,
  ) {}

  get raft() {
    return this.node.inspect();
  }

  get state(): StateType {
    return this.node.inspect().state;
  }

  get term(): number {
    return this.node.inspect().term;
  }

  logTerms(): number[] {
    const l = this.raft.raftLog;
    const out: number[] = [];
    for (let i = l.firstIndex(); i <= l.lastIndex(); i++) out.push(l.term(i));
    return out;
  }
}

export class TestNet {
  readonly peers = new Map<NodeId, TestPeer>();
  /** Directed links that drop everything: "from>to". */
  readonly cut = new Set<string>();
  /** Message types dropped everywhere. */
  readonly ignore = new Set<MessageType>();
  /** Every message delivered, for assertions. */
  readonly delivered: Message[] = [];
  private seed = 1;

  constructor(
    readonly ids: NodeId[],
    readonly opts: PeerOptions = {},
    perPeer: Map<NodeId, PeerOptions> = new Map(),
  ) {
    for (const id of ids) this.peers.set(id, this.makePeer(id, { ...opts, ...perPeer.get(id) }));
  }

  static of(n: number, opts: PeerOptions = {}, perPeer: Map<NodeId, PeerOptions> = new Map()): TestNet {
    const ids: NodeId[] = [];
    for (let i = 1; i <= n; i++) ids.push(BigInt(i));
    return new TestNet(ids, opts, perPeer);
  }

  private makePeer(id: NodeId, o: PeerOptions, storage?: MemoryStorage): TestPeer {
    let st = storage;
    if (!st) {
      st = new MemoryStorage();
      const learners = o.learners ?? [];
      st.bootstrap({ ...emptyConfState(), voters: this.ids.filter((x) => !learners.includes(x)), learners });
      if (o.logTerms) st.append(ents(o.logTerms));
      if (o.hardState) st.setHardState(o.hardState);
    }
    const node = new RawNode({
      id,
      storage: st,
      electionTick: o.electionTick ?? 10,
      heartbeatTick: o.heartbeatTick ?? 1,
      preVote: o.preVote ?? false,
      checkQuorum: o.checkQuorum ?? false,
      maxInflightMsgs: 256,
      rand: new SeededRand(this.seed++),
      ...o.extra,
    });
    return new TestPeer(id, st, node);
  }

  peer(id: number | bigint): TestPeer {
    return this.peers.get(BigInt(id))!;
  }

  /** Restarts a peer from its storage (losing nothing: every Ready was persisted). */
  restart(id: number | bigint): TestPeer {
    const old = this.peer(id);
    const p = this.makePeer(old.id, this.opts, old.storage);
    this.peers.set(old.id, p);
    return p;
  }

  /** Persists and collects everything the node has to say; returns its outgoing messages. */
  flush(p: TestPeer): Message[] {
    const out: Message[] = [];
    for (;;) {
      out.push(...p.node.takeMessages());
      if (!p.node.hasReady()) break;
      const rd = p.node.ready();
      out.push(...rd.messages);
      if (rd.snapshot) p.storage.applySnapshot(rd.snapshot);
      p.storage.append(rd.entries);
      if (rd.hardState) p.storage.setHardState(rd.hardState);
      out.push(...rd.messagesAfterPersist);
      for (const e of rd.committedEntries) {
        p.applied.push(e);
        if (e.type !== EntryType.Normal) p.node.applyConfChange(decodeConfChangeEntry(e.type, e.data));
      }
      p.readStates.push(...rd.readStates);
      p.node.advance(rd);
    }
    return out;
  }

  /** Delivers messages (and everything they cause) until the network is quiet. */
  send(...msgs: Message[]): void {
    const queue = [...msgs];
    for (const p of this.peers.values()) queue.push(...this.flush(p));
    let guard = 0;
    while (queue.length > 0) {
      if (++guard > 100000) throw new Error('network did not quiesce');
      const m = queue.shift()!;
      if (this.ignore.has(m.type) || this.cut.has(`${m.from}>${m.to}`)) continue;
      const p = this.peers.get(m.to);
      if (!p) continue;
      this.delivered.push(m);
      try {
        p.node.inspect().step({ ...m, entries: m.entries.map((e) => ({ ...e })) });
      } catch (e) {
        if (!(e instanceof Error) || !/dropped/.test(e.message)) throw e;
      }
      queue.push(...this.flush(p));
    }
  }

  /** Drains pending output of all peers (e.g. after ticking). */
  settle(): void {
    this.send();
  }

  campaign(id: number | bigint): void {
    const p = this.peer(id);
    p.node.campaign();
    this.settle();
  }

  propose(id: number | bigint, data = 'x'): void {
    const p = this.peer(id);
    p.node.propose(new TextEncoder().encode(data));
    this.settle();
  }

  tick(id: number | bigint, n = 1): void {
    const p = this.peer(id);
    for (let i = 0; i < n; i++) {
      p.node.tick();
      this.settle();
    }
  }

  tickAll(n = 1): void {
    for (let i = 0; i < n; i++) {
      for (const p of this.peers.values()) p.node.tick();
      this.settle();
    }
  }

  isolate(id: number | bigint): void {
    const x = BigInt(id);
    for (const y of this.peers.keys()) {
      if (y === x) continue;
      this.cut.add(`${x}>${y}`);
      this.cut.add(`${y}>${x}`);
    }
  }

  cutLink(a: number | bigint, b: number | bigint): void {
    this.cut.add(`${a}>${b}`);
    this.cut.add(`${b}>${a}`);
  }

  recover(): void {
    this.cut.clear();
    this.ignore.clear();
  }

  leaders(): TestPeer[] {
    return [...this.peers.values()].filter((p) => p.state === StateType.Leader);
  }
}

export function msg(type: MessageType, from: number, to: number, fields: Partial<Message> = {}): Message {
  return newMessage(type, { from: BigInt(from), to: BigInt(to), ...fields });
}

export { NONE };
