// What the server needs from a peer transport, whatever carries the bytes: gRPC streams
// between processes (grpc-transport.ts) or an in-memory network between servers in one test
// process (inmem-transport.ts).
//
// Contract: send() never blocks and never throws; a message may be lost (Raft retransmits),
// and a MsgSnap's outcome is always reported back through the handler's reportSnapshot.
// The handler is called on the event loop, one message at a time, only with messages from
// this cluster (the transport checks the cluster id where it can).

import type { Message } from '../raft/index.js';
import type { MembersResponse } from '../gen/raftkv/peer.js';

export interface TransportHandler {
  /** A message from a peer (already verified to belong to this cluster). */
  step(m: Message): void;
  reportUnreachable(id: bigint): void;
  reportSnapshot(id: bigint, ok: boolean): void;
  /** The cluster id and member list (answered to members that are joining). */
  members?(): MembersResponse;
  /** Whether a member id was removed from the cluster (its messages are refused). */
  isRemoved?(id: bigint): boolean;
  /**
   * Whether a sender id is a member of the cluster (a message from anyone else is dropped,
   * never stepped). Without it every sender not removed is accepted.
   */
  isMember?(id: bigint): boolean;
  /** A peer told us we were removed from the cluster. */
  onRemoved?(): void;
}

export interface Transport {
  /** Queues messages; what is queued leaves at the end of the turn, or at flush(). */
  send(msgs: readonly Message[]): void;
  /**
   * Sends what is queued now. The loop calls it where a batch is complete and the turn has
   * nothing more to add: from the check phase, the end-of-turn send would wait for the next
   * turn, after a poll of its own.
   */
  flush?(): void;
  /**
   * How long the link to a peer has been up, in ms; undefined while it is down (rafthttp's
   * ActiveSince: etcd's strict reconfiguration checks count the peers a member has been
   * connected to for a while). Without it, a member cannot judge its peers' health.
   */
  activeForMs?(id: bigint): number | undefined;
  /** Starts talking to a member at its advertised peer URLs (again, if they changed). */
  addPeer(id: bigint, urls: string[]): void;
  removePeer(id: bigint): void;
  close(): void;
}

/** How a server gets its transport and asks a running cluster who is in it (to join). */
export interface TransportFactory {
  create(o: { id: bigint; clusterId: bigint; handler: TransportHandler }): Transport;
  /** Asks the peers at `urls` (any one that answers) for the cluster id and member list. */
  fetchClusterInfo(urls: string[]): Promise<MembersResponse>;
}
