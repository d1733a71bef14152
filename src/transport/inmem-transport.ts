// Raft messages between servers in one process (tests): an InMemNetwork is the wire of one test
// cluster, and the TransportFactory of each of its members.
//
// Semantics, as close to grpc-transport.ts as a test needs:
// - send() never blocks, never throws and never calls a handler: messages are queued and
//   delivered later (on setImmediate, or when the test releases them), one at a time. A
//   message sent while another is being delivered goes out in a later turn (never re-entrant).
// - Messages are copied through the wire codec (codec.ts), so no object is shared between
//   members. Each link (from -> to) is FIFO, like a gRPC stream; which link goes next is drawn
//   from a seeded PRNG, so a seed and what is queued fix the order of one delivery turn.
// - A MsgSnap is delivered whole; its outcome is reported to the sender's reportSnapshot(to, ok)
//   (ok once the receiver has stepped it; not ok if it was dropped or could not be delivered).
// - Nothing is delivered from a member the receiver knows was removed (the sender is told,
//   as a gRPC peer answers "has been removed"), to a peer the sender does not know (addPeer),
//   to a member that is not running, or across cluster ids.
// - Test controls: partitions (isolate a member, cut links one-way or both ways), drop rules
//   and holds (predicates on the message), pause/resume of delivery, counters and observers.
//
// Rules are applied when a message leaves the queue (at delivery), so a rule set after a
// message was sent still applies to it.

import { type Message, MessageType, SeededRand } from '../raft/index.js';
import { messageFromPb, messageToPb } from './codec.js';
import type { Transport, TransportFactory, TransportHandler } from './transport.js';
import { yieldToEventLoop } from '../util/yield.js';

/** The cluster id and member list a running member answers to one that joins. */
type MembersResponse = Awaited<ReturnType<TransportFactory['fetchClusterInfo']>>;

export type MessageFilter = (m: Message) => boolean;

/** What happened to a message (observers see every outcome). */
export type Outcome =
  | 'sent'
  | 'delivered'
  | 'held'
  | 'released'
  | 'dropped:rule'
  | 'dropped:partition'
  | 'dropped:hold'
  | 'dropped:unknown-peer'
  | 'dropped:not-running'
  | 'dropped:removed'
  | 'dropped:cluster-mismatch'
  | 'dropped:sender-closed';

export interface InMemNetworkOptions {
  /** Seeds the delivery order (which link goes next in a turn). */
  seed: number;
  /** Deliver queued messages on setImmediate (default true); false: only on deliver(). */
  autoDeliver?: boolean;
}

/** Counts of the messages matching a filter, from when the counter was made. */
export interface MessageCounter {
  sent: number;
  delivered: number;
  dropped: number;
  held: number;
  /** Stops counting. */
  stop(): void;
}

/** A rule that drops matching messages until removed. */
export interface DropRule {
  /** How many messages it dropped. */
  readonly dropped: number;
  remove(): void;
}

/** Messages put aside by a hold; they go on only when released (or are dropped). */
export interface Hold {
  /** The held messages, oldest first (copies: changing them changes nothing). */
  readonly messages: readonly Message[];
  /** How many messages the hold has caught in all. */
  readonly caught: number;
  /** Puts the held messages matching `filter` (default: all) back in the queue, in order. */
  release(filter?: MessageFilter): number;
  /** Releases the oldest held message only; false if none. */
  releaseOne(): boolean;
  /** Drops the held messages (MsgSnaps are reported failed). */
  drop(): number;
  /** Stops catching new messages (what is held stays held). */
  stop(): void;
  /** stop() and release() everything. */
  end(): number;
}

interface Envelope {
  seq: number;
  from: bigint;
  to: bigint;
  clusterId: bigint;
  msg: Message;
  /** The hold that released it (it does not catch it again). */
  releasedBy?: HoldImpl;
}

type Observer = (m: Message, outcome: Outcome) => void;

const linkKey = (from: bigint, to: bigint): string => `${from.toString(16)}>${to.toString(16)}`;

/** A deep copy of a message, through the same codec as the peer wire. */
export function copyMessage(m: Message): Message {
  const data = m.snapshot ? Buffer.from(m.snapshot.data) : undefined;
  const c = messageFromPb(messageToPb(m), data);
  for (const e of c.entries) e.data = Buffer.from(e.data);
  if (c.context) c.context = Buffer.from(c.context);
  return c;
}

class HoldImpl implements Hold {
  readonly held: Envelope[] = [];
  caught = 0;
  active = true;

  constructor(
    private readonly net: InMemNetwork,
    readonly filter: MessageFilter,
  ) {}

  get messages(): readonly Message[] {
    return this.held.map((e) => copyMessage(e.msg));
  }

  release(filter?: MessageFilter): number {
    const out: Envelope[] = [];
    for (let i = 0; i < this.held.length; ) {
      const e = this.held[i]!;
      if (!filter || filter(e.msg)) {
        out.push(e);
        this.held.splice(i, 1);
      } else i++;
    }
    for (const e of out) {
      e.releasedBy = this;
      this.net.requeue(e);
    }
    return out.length;
  }

  releaseOne(): boolean {
    const e = this.held.shift();
    if (!e) return false;
    e.releasedBy = this;
    this.net.requeue(e);
    return true;
  }

  drop(): number {
    const out = this.held.splice(0);
    for (const e of out) this.net.discard(e, 'dropped:hold');
    return out.length;
  }

  stop(): void {
    this.active = false;
  }

  end(): number {
    this.stop();
    return this.release();
  }
}

class Endpoint implements Transport {
  readonly peers = new Map<bigint, string[]>();
  closed = false;

  constructor(
    private readonly net: InMemNetwork,
    readonly id: bigint,
    readonly clusterId: bigint,
    readonly handler: TransportHandler,
  ) {}

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (!this.peers.has(m.to)) {
        // As the gRPC transport: no connection to an unknown peer; a snapshot is reported failed.
        this.net.note(m, 'dropped:unknown-peer');
        if (m.type === MessageType.MsgSnap) this.net.report(this, () => this.handler.reportSnapshot(m.to, false));
        continue;
      }
      this.net.enqueue(this, m);
    }
  }

  addPeer(id: bigint, urls: string[]): void {
    if (id === this.id || urls.length === 0) return;
    this.peers.set(id, [...urls]);
  }

  removePeer(id: bigint): void {
    this.peers.delete(id);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.net.unregister(this);
  }
}

export class InMemNetwork implements TransportFactory {
  private readonly rand: SeededRand;
  private readonly endpoints = new Map<bigint, Endpoint>();
  private queue: Envelope[] = [];
  /** Callbacks to senders (snapshot outcomes, unreachable, removed), run in the next turn. */
  private reports: Array<{ ep: Endpoint; f: () => void }> = [];
  private seq = 0;
  private scheduled = false;
  private paused: boolean;
  private delivering = false;
  private readonly isolated = new Set<bigint>();
  private readonly cuts = new Set<string>();
  private readonly rules = new Set<{ filter: MessageFilter; dropped: number }>();
  private readonly holds = new Set<HoldImpl>();
  private readonly observers = new Set<Observer>();
  /** Totals by outcome and message type: totals['delivered'][MessageType.MsgApp]. */
  readonly totals = new Map<Outcome, Map<MessageType, number>>();

  constructor(opts: InMemNetworkOptions) {
    this.rand = new SeededRand(opts.seed);
    this.paused = opts.autoDeliver === false;
  }

  // ------------------------------------------------------------------ TransportFactory

  create(o: { id: bigint; clusterId: bigint; handler: TransportHandler }): Transport {
    const old = this.endpoints.get(o.id);
    if (old && !old.closed) throw new Error(`inmem: member ${o.id.toString(16)} is already running on this network`);
    const ep = new Endpoint(this, o.id, o.clusterId, o.handler);
    this.endpoints.set(o.id, ep);
    return ep;
  }

  /**
   * Answers from a running member that advertises one of `urls` (its own entry in its member
   * list), as a gRPC peer answers RaftPeer.Members. Isolated members do not answer.
   */
  async fetchClusterInfo(urls: string[]): Promise<MembersResponse> {
    await yieldToEventLoop();
    const wanted = new Set(urls);
    for (const ep of this.endpoints.values()) {
      if (ep.closed || this.isolated.has(ep.id) || !ep.handler.members) continue;
      const info = ep.handler.members();
      const self = info.members.find((m) => m.id === ep.id);
      // A copy, as off the wire: the joiner must not share the member's objects.
      if (self && self.peerUrls.some((u) => wanted.has(u))) return { clusterId: info.clusterId, members: info.members.map((m) => ({ ...m, peerUrls: [...m.peerUrls], clientUrls: [...m.clientUrls] })) };
    }
    throw new Error(`could not get the member list from any of ${urls.join(', ')}: no running member answers`);
  }

  // ------------------------------------------------------------------ test controls

  /** Running members (their transports are open). */
  running(): bigint[] {
    return [...this.endpoints.values()].filter((e) => !e.closed).map((e) => e.id);
  }

  /** Cuts every link to and from `id` (also to members that join later). */
  isolate(id: bigint): void {
    this.isolated.add(id);
  }

  /** Cuts the link a -> b (and b -> a unless oneWay). */
  cut(a: bigint, b: bigint, o: { oneWay?: boolean } = {}): void {
    this.cuts.add(linkKey(a, b));
    if (!o.oneWay) this.cuts.add(linkKey(b, a));
  }

  /** Cuts every link between two groups of members (both ways). */
  partition(groupA: readonly bigint[], groupB: readonly bigint[]): void {
    for (const a of groupA) for (const b of groupB) this.cut(a, b);
  }

  /** Removes every partition and isolation (drop rules and holds stay). */
  heal(): void {
    this.isolated.clear();
    this.cuts.clear();
  }

  /** Drops every message matching `filter` until the rule is removed. */
  drop(filter: MessageFilter): DropRule {
    const rule = { filter, dropped: 0 };
    this.rules.add(rule);
    const rules = this.rules;
    return {
      get dropped() {
        return rule.dropped;
      },
      remove: () => void rules.delete(rule),
    };
  }

  /** Puts aside every message matching `filter` (see Hold). */
  hold(filter: MessageFilter): Hold {
    const h = new HoldImpl(this, filter);
    this.holds.add(h);
    return h;
  }

  /** Counts the messages matching `filter` from now on. */
  counter(filter: MessageFilter = () => true): MessageCounter {
    const c: MessageCounter = { sent: 0, delivered: 0, dropped: 0, held: 0, stop: () => void this.observers.delete(obs) };
    const obs: Observer = (m, outcome) => {
      if (!filter(m)) return;
      if (outcome === 'sent') c.sent++;
      else if (outcome === 'delivered') c.delivered++;
      else if (outcome === 'held') c.held++;
      else if (outcome.startsWith('dropped')) c.dropped++;
    };
    this.observers.add(obs);
    return c;
  }

  /** Calls `f` with every message outcome (the message must not be changed); returns a remover. */
  observe(f: Observer): () => void {
    this.observers.add(f);
    return () => void this.observers.delete(f);
  }

  /** Total count of messages of `type` with `outcome` (from the start). */
  total(outcome: Outcome, type?: MessageType): number {
    const byType = this.totals.get(outcome);
    if (!byType) return 0;
    if (type !== undefined) return byType.get(type) ?? 0;
    let n = 0;
    for (const v of byType.values()) n += v;
    return n;
  }

  /** Stops automatic delivery (messages queue up until deliver() or resume()). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.schedule();
  }

  /** Messages waiting to be delivered (not counting held ones). */
  pending(): number {
    return this.queue.length + this.reports.length;
  }

  /** Messages held by all holds. */
  heldCount(): number {
    let n = 0;
    for (const h of this.holds) n += h.held.length;
    return n;
  }

  /**
   * Delivers what is queued now, in the seeded order (what this sends is queued for later).
   * Returns how many messages left the queue. Called on setImmediate unless paused.
   */
  deliver(): number {
    if (this.delivering) throw new Error('inmem: deliver() called from inside a delivery');
    this.delivering = true;
    try {
      const reports = this.reports;
      this.reports = [];
      for (const r of reports) if (!r.ep.closed) r.f();
      const batch = this.queue;
      this.queue = [];
      // FIFO per link; the next link is drawn from the seeded PRNG, among the links sorted by
      // name (so the order depends on what is queued, not on the order senders got to run).
      const links = new Map<string, Envelope[]>();
      for (const e of batch) {
        const k = linkKey(e.from, e.to);
        const l = links.get(k);
        if (l) l.push(e);
        else links.set(k, [e]);
      }
      const order = [...links.keys()].sort().map((k) => links.get(k)!);
      while (order.length > 0) {
        const i = this.rand.intn(order.length);
        const l = order[i]!;
        this.deliverOne(l.shift()!);
        if (l.length === 0) order.splice(i, 1);
      }
      return batch.length;
    } finally {
      this.delivering = false;
    }
  }

  // ------------------------------------------------------------------ internals (endpoints, holds)

  /** @internal */
  enqueue(from: Endpoint, m: Message): void {
    this.note(m, 'sent');
    this.queue.push({ seq: ++this.seq, from: from.id, to: m.to, clusterId: from.clusterId, msg: copyMessage(m) });
    this.schedule();
  }

  /** @internal a released message goes back at the end of the queue. */
  requeue(e: Envelope): void {
    this.note(e.msg, 'released');
    this.queue.push(e);
    this.schedule();
  }

  /** @internal a message is lost: the sender of a snapshot is told. */
  discard(e: Envelope, why: Outcome): void {
    this.note(e.msg, why);
    const sender = this.endpoints.get(e.from);
    if (!sender || sender.closed) return;
    if (e.msg.type === MessageType.MsgSnap) this.report(sender, () => sender.handler.reportSnapshot(e.to, false));
    else if (why === 'dropped:partition' || why === 'dropped:not-running') {
      // A broken stream: gRPC reports the peer unreachable.
      this.report(sender, () => sender.handler.reportUnreachable(e.to));
    }
  }

  /** @internal runs `f` for the sender in a later turn (unless it stopped meanwhile). */
  report(ep: Endpoint, f: () => void): void {
    this.reports.push({ ep, f });
    this.schedule();
  }

  /** @internal */
  unregister(ep: Endpoint): void {
    if (this.endpoints.get(ep.id) === ep) this.endpoints.delete(ep.id);
  }

  /** @internal */
  note(m: Message, outcome: Outcome): void {
    let byType = this.totals.get(outcome);
    if (!byType) this.totals.set(outcome, (byType = new Map()));
    byType.set(m.type, (byType.get(m.type) ?? 0) + 1);
    for (const o of this.observers) o(m, outcome);
  }

  private schedule(): void {
    if (this.scheduled || this.paused) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      if (!this.paused && !this.delivering) this.deliver();
    });
  }

  private deliverOne(e: Envelope): void {
    const sender = this.endpoints.get(e.from);
    if (!sender || sender.closed) return this.discard(e, 'dropped:sender-closed');
    if (this.isolated.has(e.from) || this.isolated.has(e.to) || this.cuts.has(linkKey(e.from, e.to))) {
      return this.discard(e, 'dropped:partition');
    }
    for (const r of this.rules) {
      if (r.filter(e.msg)) {
        r.dropped++;
        return this.discard(e, 'dropped:rule');
      }
    }
    for (const h of this.holds) {
      if (h.active && h !== e.releasedBy && h.filter(e.msg)) {
        h.held.push(e);
        h.caught++;
        this.note(e.msg, 'held');
        return;
      }
    }
    const receiver = this.endpoints.get(e.to);
    if (!receiver || receiver.closed) return this.discard(e, 'dropped:not-running');
    if (receiver.clusterId !== e.clusterId) return this.discard(e, 'dropped:cluster-mismatch');
    if (receiver.handler.isRemoved?.(e.from)) {
      // The receiver refuses a removed member, which learns that it was removed.
      this.discard(e, 'dropped:removed');
      if (sender.handler.onRemoved) this.report(sender, () => sender.handler.onRemoved!());
      return;
    }
    this.note(e.msg, 'delivered');
    let ok = true;
    try {
      receiver.handler.step(e.msg);
    } catch {
      ok = false;
    }
    if (e.msg.type === MessageType.MsgSnap) this.report(sender, () => sender.handler.reportSnapshot(e.to, ok));
  }
}
