// Conversion between the core's Message and its protobuf form on the peer wire (proto/raftkv/peer.proto,
// which, like everything the transport uses, does not depend on etcd's client API).

import type { ConfState as PbConfState, Message as PbMessage } from '../gen/raftkv/peer.js';
import type { ConfState, Message, Snapshot } from '../raft/index.js';

const num = (v: bigint): number => {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`value ${v} out of range`);
  return Number(v);
};

export function confStateToPb(cs: ConfState): PbConfState {
  return { voters: cs.voters, learners: cs.learners, votersOutgoing: cs.votersOutgoing, learnersNext: cs.learnersNext, autoLeave: cs.autoLeave };
}

export function confStateFromPb(cs: PbConfState | undefined): ConfState {
  return {
    voters: cs?.voters ?? [],
    learners: cs?.learners ?? [],
    votersOutgoing: cs?.votersOutgoing ?? [],
    learnersNext: cs?.learnersNext ?? [],
    autoLeave: cs?.autoLeave ?? false,
  };
}

export function messageToPb(m: Message): PbMessage {
  return {
    type: m.type,
    to: m.to,
    from: m.from,
    term: BigInt(m.term),
    logTerm: BigInt(m.logTerm),
    index: BigInt(m.index),
    entries: m.entries.map((e) => ({ term: BigInt(e.term), index: BigInt(e.index), type: e.type, data: toBuffer(e.data) })),
    commit: BigInt(m.commit),
    snapshot: m.snapshot
      ? { confState: confStateToPb(m.snapshot.metadata.confState), index: BigInt(m.snapshot.metadata.index), term: BigInt(m.snapshot.metadata.term) }
      : undefined,
    reject: m.reject,
    rejectHint: BigInt(m.rejectHint),
    context: m.context ? toBuffer(m.context) : Buffer.alloc(0),
  };
}

/** `snapshotData` completes a MsgSnap whose data arrived separately. */
export function messageFromPb(p: PbMessage, snapshotData?: Uint8Array): Message {
  let snapshot: Snapshot | undefined;
  if (p.snapshot) {
    snapshot = {
      data: snapshotData ?? new Uint8Array(0),
      metadata: { confState: confStateFromPb(p.snapshot.confState), index: num(p.snapshot.index), term: num(p.snapshot.term) },
    };
  }
  return {
    type: p.type,
    to: p.to,
    from: p.from,
    term: num(p.term),
    logTerm: num(p.logTerm),
    index: num(p.index),
    entries: p.entries.map((e) => ({ term: num(e.term), index: num(e.index), type: e.type, data: e.data })),
    commit: num(p.commit),
    snapshot,
    reject: p.reject,
    rejectHint: num(p.rejectHint),
    context: p.context.length > 0 ? p.context : undefined,
  };
}

export function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
