// ReadIndex (thesis §6.4): a leader answers a read-only query with its commit index once a
// heartbeat round confirms it is still the leader. Requests are keyed by an opaque context,
// and one heartbeat round confirms every request queued before it.
//
// Invariants of the queue (Safe mode):
// - `queue` holds exactly the keys of `pending`, in arrival order;
// - each request's index is the commit index when it arrived, so the indexes along the queue
//   never decrease (commit only grows, and a new term starts a new ReadOnly);
// - a request is only queued once the leader has committed an entry of its own term, so its
//   index covers every write an earlier leader acknowledged (until then requests wait in
//   Raft.pendingReadIndexMessages);
// - the heartbeat that carries a request's context left after every earlier request was
//   queued, so a quorum of acks for it confirms leadership for all of them: advance() releases
//   the whole prefix.

import type { Message, NodeId } from './types.js';

export enum ReadOnlyOption {
  /** Confirm leadership with a quorum round for every batch of reads (linearizable). */
  Safe = 0,
  /**
   * Trust the leader lease (needs CheckQuorum and bounded clock drift): opt-in only.
   *
   * TODO(raftkv): the "lease" is only "not deposed by CheckQuorum yet". A leader that last heard
   * from a quorum just after one check stays leader until the check after next, up to two
   * election timeouts later, while followers may elect a new leader one election timeout after
   * its last heartbeat (etcd-io/raft#166); a real lease would end an election timeout after the
   * quorum's acks were sent (thesis §6.4.1). test/raft/testdata/lease_read.txt shows it.
   */
  LeaseBased = 1,
}

export interface ReadIndexStatus {
  req: Message;
  /** The leader's commit index when the request arrived: the read may be served once applied. */
  index: number;
  /** Voters that acknowledged a heartbeat carrying this request's context (leader included). */
  acks: Map<NodeId, boolean>;
}

/** Context bytes as a map key (latin1, one char per byte: lossless and cheap). */
export function ctxKey(ctx: Uint8Array | undefined): string {
  if (!ctx || ctx.length === 0) return '';
  let s = '';
  for (let i = 0; i < ctx.length; i++) s += String.fromCharCode(ctx[i]!);
  return s;
}

export function keyToCtx(key: string): Uint8Array {
  const out = new Uint8Array(key.length);
  for (let i = 0; i < key.length; i++) out[i] = key.charCodeAt(i);
  return out;
}

export class ReadOnly {
  private pending = new Map<string, ReadIndexStatus>();
  private queue: string[] = [];

  constructor(readonly option: ReadOnlyOption) {}

  /**
   * Queues a read request `m` made when the commit index was `index`. A context already queued
   * is ignored (the caller must make contexts unique; the duplicate is never answered).
   */
  addRequest(index: number, m: Message): void {
    const key = ctxKey(m.context);
    if (this.pending.has(key)) return;
    this.pending.set(key, { index, req: m, acks: new Map() });
    this.queue.push(key);
  }

  /** Records `id`'s heartbeat ack for the request with `ctx`; returns the acks so far. */
  recvAck(id: NodeId, ctx: Uint8Array | undefined): Map<NodeId, boolean> | undefined {
    const rs = this.pending.get(ctxKey(ctx));
    if (!rs) return undefined;
    rs.acks.set(id, true);
    return rs.acks;
  }

  /**
   * The request with `ctx` got a quorum of acks: it and every request queued before it are
   * confirmed (the round for a later request also confirms leadership for earlier ones).
   */
  advance(ctx: Uint8Array | undefined): ReadIndexStatus[] {
    const key = ctxKey(ctx);
    const pos = this.queue.indexOf(key);
    if (pos < 0) return [];
    const done = this.queue.slice(0, pos + 1);
    this.queue = this.queue.slice(pos + 1);
    const out: ReadIndexStatus[] = [];
    for (const k of done) {
      const rs = this.pending.get(k);
      if (!rs) throw new Error('cannot find corresponding read state from pending map');
      this.pending.delete(k);
      out.push(rs);
    }
    return out;
  }

  lastPendingRequestCtx(): Uint8Array | undefined {
    if (this.queue.length === 0) return undefined;
    return keyToCtx(this.queue[this.queue.length - 1]!);
  }

  pendingCount(): number {
    return this.queue.length;
  }
}
