// Core data types of the Raft state machine.
//
// Index and term are plain numbers: they grow by one per entry/election, so 2^53 is
// out of reach for any real cluster, and number arithmetic is far cheaper than bigint
// on the hot path. Node ids are 64-bit on etcd's wire (member ids are random uint64),
// so they are bigint everywhere and never round-trip through number.

export type NodeId = bigint;

/** The "no node" id: no leader known, no vote cast. */
export const NONE: NodeId = 0n;

export enum EntryType {
  Normal = 0,
  ConfChange = 1, // a single-step change (etcd's ConfChange, v1)
  ConfChangeV2 = 2, // a joint or multi-step change
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** The state every node must persist before it sends the messages that depend on it. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export const emptyHardState = (): HardState => ({ term: 0, vote: NONE, commit: 0 });

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isEmptyHardState(h: HardState): boolean {
  return h.term === 0 && h.vote === NONE && h.commit === 0;
}

export enum StateType {
  Follower = 'StateFollower',
  Candidate = 'StateCandidate',
  Leader = 'StateLeader',
  PreCandidate = 'StatePreCandidate',
}

/** Volatile state, useful to the driver (who leads, in which role we are); never persisted. */
export interface SoftState {
  lead: NodeId;
  raftState: StateType;
}

/**
 * The membership configuration. `voters` is the incoming (or only) voter set; while a joint
 * change is in progress `votersOutgoing` holds the old set and decisions need majorities of both.
 */
export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
  votersOutgoing: NodeId[];
  /** Learners that will become voters when the joint configuration is left (they were demoted voters). */
  learnersNext: NodeId[];
  autoLeave: boolean;
}

export const emptyConfState = (): ConfState => ({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

export interface SnapshotMetadata {
  confState: ConfState;
  index: number;
  term: number;
}

export interface Snapshot {
  /** Opaque state-machine image; the core never looks inside. */
  data: Uint8Array;
  metadata: SnapshotMetadata;
}

export const emptySnapshot = (): Snapshot => ({
  data: new Uint8Array(0),
  metadata: { confState: emptyConfState(), index: 0, term: 0 },
});

export function isEmptySnapshot(s: Snapshot | undefined): boolean {
  return s === undefined || s.metadata.index === 0;
}

// Numbering follows raftpb so that traces and wire dumps read the same as etcd's.
export enum MessageType {
  MsgHup = 0, // local: start an election
  MsgBeat = 1, // local: leader should heartbeat
  MsgProp = 2, // a proposal (local, or forwarded by a follower)
  MsgApp = 3,
  MsgAppResp = 4,
  MsgVote = 5,
  MsgVoteResp = 6,
  MsgSnap = 7,
  MsgHeartbeat = 8,
  MsgHeartbeatResp = 9,
  MsgUnreachable = 10, // local: the transport could not reach `from`
  MsgSnapStatus = 11, // local: outcome of an out-of-band snapshot transfer
  MsgCheckQuorum = 12, // local: leader checks it still hears from a quorum
  MsgTransferLeader = 13,
  MsgTimeoutNow = 14,
  MsgReadIndex = 15,
  MsgReadIndexResp = 16,
  MsgPreVote = 17,
  MsgPreVoteResp = 18,
}

/**
 * One message between Raft nodes (or a local input to the state machine). A flat record like
 * raftpb.Message: each type uses the subset of fields it needs, which keeps the wire codec trivial.
 */
export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  /** MsgApp: term of the entry at `index` (the entry preceding `entries`). Votes: last log term. */
  logTerm: number;
  /** MsgApp: index preceding `entries`. Votes: last log index. Responses: ack/reject index. */
  index: number;
  entries: Entry[];
  commit: number;
  snapshot?: Snapshot;
  reject: boolean;
  /** MsgAppResp reject: the follower's hint index for fast backtracking. */
  rejectHint: number;
  /** Opaque context: ReadIndex request id, campaign type for transfers. */
  context?: Uint8Array;
}

export function newMessage(type: MessageType, fields: Partial<Message> = {}): Message {
  return {
    type,
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

export function isLocalMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgHup ||
    t === MessageType.MsgBeat ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgSnapStatus ||
    t === MessageType.MsgCheckQuorum
  );
}

export function isResponseMsg(t: MessageType): boolean {
  return (
    t === MessageType.MsgAppResp ||
    t === MessageType.MsgVoteResp ||
    t === MessageType.MsgHeartbeatResp ||
    t === MessageType.MsgUnreachable ||
    t === MessageType.MsgPreVoteResp
  );
}

/** The response type matching a vote request (MsgVote -> MsgVoteResp, MsgPreVote -> MsgPreVoteResp). */
export function voteRespMsgType(t: MessageType): MessageType {
  switch (t) {
    case MessageType.MsgVote:
      return MessageType.MsgVoteResp;
    case MessageType.MsgPreVote:
      return MessageType.MsgPreVoteResp;
    default:
      throw new Error(`not a vote message: ${MessageType[t]}`);
  }
}

/** A ReadIndex answer: once applied >= index, a read issued with `requestCtx` is linearizable. */
export interface ReadState {
  index: number;
  requestCtx: Uint8Array;
}

/** Payload size used for flow control (count of data bytes, as etcd's PayloadSize). */
export function payloadSize(e: Entry): number {
  return e.data.length;
}

/** Approximate in-memory/wire size of an entry, used for message size limits. */
export function entrySize(e: Entry): number {
  return e.data.length + 24;
}

export function entriesSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += entrySize(e);
  return s;
}

export function payloadsSize(ents: readonly Entry[]): number {
  let s = 0;
  for (const e of ents) s += e.data.length;
  return s;
}

/**
 * Returns the longest prefix of `ents` whose total size is at most maxSize, but always at
 * least one entry, so that an oversized entry still makes progress.
 */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let limit = 1;
  for (; limit < ents.length; limit++) {
    size += entrySize(ents[limit]!);
    if (size > maxSize) break;
  }
  return limit === ents.length ? ents : ents.slice(0, limit);
}

export const NO_LIMIT = Number.MAX_SAFE_INTEGER;
