// Configuration change requests, and their encoding inside log entries.
//
// A change travels through the log as the data of an entry of type ConfChange (one change,
// etcd's v1) or ConfChangeV2 (several changes, optionally through an explicit joint state).
// The core must read them (to refuse a second change while one is pending), so the encoding
// lives here; it is a small fixed binary layout, independent of the transport's protobufs.

import type { NodeId } from '../types.js';
import { EntryType } from '../types.js';

export enum ConfChangeType {
  AddNode = 0,
  RemoveNode = 1,
  UpdateNode = 2,
  AddLearnerNode = 3,
}

export enum ConfChangeTransition {
  /** Simple change if possible (one voter changed), else joint with automatic leave. */
  Auto = 0,
  /** Always joint, left automatically once committed. */
  JointImplicit = 1,
  /** Always joint; the application proposes an empty change to leave it. */
  JointExplicit = 2,
}

export interface ConfChangeSingle {
  type: ConfChangeType;
  nodeId: NodeId;
}

export interface ConfChangeV2 {
  transition: ConfChangeTransition;
  changes: ConfChangeSingle[];
  /** Opaque to the core (the server stores member metadata here). */
  context: Uint8Array;
}

/** An etcd v1 ConfChange: exactly one change. */
export interface ConfChangeV1 {
  type: ConfChangeType;
  nodeId: NodeId;
  context: Uint8Array;
}

export function v1ToV2(cc: ConfChangeV1): ConfChangeV2 {
  return {
    transition: ConfChangeTransition.Auto,
    changes: [{ type: cc.type, nodeId: cc.nodeId }],
    context: cc.context,
  };
}

/** If the change must go through a joint configuration, returns whether to leave it automatically. */
export function enterJoint(cc: ConfChangeV2): { autoLeave: boolean } | undefined {
  if (cc.transition !== ConfChangeTransition.Auto || cc.changes.length > 1) {
    return { autoLeave: cc.transition !== ConfChangeTransition.JointExplicit };
  }
  return undefined;
}

/** The empty ConfChangeV2 is the instruction to leave a joint configuration. */
export function isLeaveJoint(cc: ConfChangeV2): boolean {
  return cc.transition === ConfChangeTransition.Auto && cc.changes.length === 0;
}

// ---- encoding ----
// v2: [u8 version=2][u8 transition][u32 count]{[u8 type][u64 nodeId]}*[rest: context]
// v1: [u8 version=1][u8 type][u64 nodeId][rest: context]
// An empty byte string decodes as the empty ConfChangeV2 (leave joint), as in etcd.

function writeU64(view: DataView, off: number, v: bigint): void {
  view.setBigUint64(off, BigInt.asUintN(64, v));
}

export function encodeConfChangeV2(cc: ConfChangeV2): Uint8Array {
  const out = new Uint8Array(6 + cc.changes.length * 9 + cc.context.length);
  const view = new DataView(out.buffer);
  out[0] = 2;
  out[1] = cc.transition;
  view.setUint32(2, cc.changes.length);
  let off = 6;
  for (const c of cc.changes) {
    out[off] = c.type;
    writeU64(view, off + 1, c.nodeId);
    off += 9;
  }
  out.set(cc.context, off);
  return out;
}

export function encodeConfChangeV1(cc: ConfChangeV1): Uint8Array {
  const out = new Uint8Array(10 + cc.context.length);
  const view = new DataView(out.buffer);
  out[0] = 1;
  out[1] = cc.type;
  writeU64(view, 2, cc.nodeId);
  out.set(cc.context, 10);
  return out;
}

function checkType(t: number): ConfChangeType {
  if (t > ConfChangeType.AddLearnerNode) throw new Error(`unexpected conf change type ${t}`);
  return t as ConfChangeType;
}

export function decodeConfChangeV1(data: Uint8Array): ConfChangeV1 {
  if (data.length < 10 || data[0] !== 1) throw new Error('malformed ConfChange');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return { type: checkType(data[1]!), nodeId: view.getBigUint64(2), context: data.slice(10) };
}

export function decodeConfChangeV2(data: Uint8Array): ConfChangeV2 {
  if (data.length === 0) return { transition: ConfChangeTransition.Auto, changes: [], context: new Uint8Array(0) };
  if (data.length < 6 || data[0] !== 2) throw new Error('malformed ConfChangeV2');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const transition = data[1]!;
  if (transition > ConfChangeTransition.JointExplicit) throw new Error(`unknown transition ${transition}`);
  const n = view.getUint32(2);
  if (data.length < 6 + n * 9) throw new Error('malformed ConfChangeV2');
  const changes: ConfChangeSingle[] = [];
  let off = 6;
  for (let i = 0; i < n; i++) {
    changes.push({ type: checkType(data[off]!), nodeId: view.getBigUint64(off + 1) });
    off += 9;
  }
  return { transition, changes, context: data.slice(off) };
}

/** Decodes a conf change entry of either version into the V2 form. */
export function decodeConfChangeEntry(type: EntryType, data: Uint8Array): ConfChangeV2 {
  if (type === EntryType.ConfChange) return v1ToV2(decodeConfChangeV1(data));
  if (type === EntryType.ConfChangeV2) return decodeConfChangeV2(data);
  throw new Error('not a conf change entry');
}
