// Raft messages between peers over gRPC.
//
// Each peer gets one long-lived client stream (RaftPeer.Stream). Messages produced in one event
// loop turn are batched into a single MessageBatch frame, encoded and decoded by peer-wire.ts
// straight from and into the core's messages (no BigInt, each entry encoded once, received
// entries not copied); snapshot chunks and the member list keep the generated code. A broken
// stream is reported to Raft (reportUnreachable), its queued messages are dropped (Raft
// retransmits), and the stream is re-established with exponential backoff. Snapshots travel
// separately in chunks (RaftPeer.InstallSnapshot) with a CRC over the whole image; the
// receiver steps the MsgSnap only once the image is complete and verified, and the sender
// reports the outcome to Raft.
// Every call carries the cluster id; a peer of another cluster is refused and logged.
// A Raft message is stepped only if its sender is the member that opened the stream and is a
// member of the cluster (never a removed one); anything else is dropped and logged.
// With https peer URLs the links are TLS (src/util/tls.ts): snapshots, the member list asked
// by a joining member and the corruption checks' calls go over the same secure channels; with
// --peer-cert-allowed-cn (or -hostname) a peer whose certificate has another CommonName (or is
// not valid for that name) is refused when it connects (peer-listener.ts, with the CRL and the
// SANs) and is not dialed either (peerChannelCredentials).
// For metrics, bytes are counted where gRPC (de)serializes them and each peer's round trip is
// probed every few seconds (etcd's rafthttp prober), reported to an optional observer.

import { constants as bufferConstants } from 'node:buffer';
import * as grpc from '@grpc/grpc-js';
import { crc32 } from 'node:zlib';
import {
  type MembersResponse,
  RaftPeerClient,
  RaftPeerService,
  type SnapshotAck,
  type SnapshotChunk,
  type StreamAck,
} from '../gen/raftkv/peer.js';
import type { Logger } from '../raft/logger.js';
import { type Message, MessageType } from '../raft/index.js';
import type { TlsConfig } from '../util/tls.js';
import { peerChannelCredentials } from '../util/grpc-tls.js';
import { grpcTarget } from '../util/url.js';
import { messageFromPb, messageToPb, toBuffer } from './codec.js';
import { decodeBatch, encodeBatch } from './peer-wire.js';
import type { Transport, TransportFactory, TransportHandler } from './transport.js';

export type { TransportHandler } from './transport.js';

export const SNAPSHOT_CHUNK_BYTES = 1024 * 1024;

/**
 * What the transport reports for etcd's etcd_network_peer_* metrics (src/server/metrics.ts).
 * Ids are member ids; set on GrpcTransport.observer by the process when it serves metrics.
 */
export interface PeerTrafficObserver {
  sent(to: bigint, bytes: number): void;
  received(from: bigint, bytes: number): void;
  /** Messages to `to` dropped because its stream was down. */
  sendFailed(to: bigint, messages: number): void;
  roundTrip(to: bigint, seconds: number): void;
  /** The stream to `to` came up (connected) or went down (rafthttp's peer status); `stopped`: closed on purpose. */
  peerActive(to: bigint, active: boolean, stopped: boolean): void;
  /** A frame or snapshot from `from` that was refused (malformed, or a bad snapshot). */
  receiveFailed(from: bigint): void;
  /** A snapshot sent to `to` (ok or not) after `seconds`; `started` when it begins. */
  snapshotSend(to: bigint, outcome: 'started' | 'ok' | 'failed', seconds: number): void;
  /** A snapshot received from `from`, likewise. */
  snapshotReceive(from: bigint, outcome: 'started' | 'ok' | 'failed', seconds: number): void;
}

/** etcd probes each peer's round trip every few seconds (rafthttp: proberInterval). */
const RTT_PROBE_MS = 5_000;
const FIRST_RTT_PROBE_MS = 1_000;

/**
 * The RaftPeer client as the transport uses it: Stream carries MessageBatch frames already
 * encoded by peer-wire.ts (Buffers, passed through as they are); the other calls keep the
 * generated (de)serializers.
 */
interface PeerClient extends grpc.Client {
  stream(metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response?: StreamAck) => void): grpc.ClientWritableStream<Buffer>;
  installSnapshot: RaftPeerClient['installSnapshot'];
  members: RaftPeerClient['members'];
}

type PeerClientConstructor = new (address: string, credentials: grpc.ChannelCredentials, options?: Partial<grpc.ClientOptions>) => PeerClient;

/** Stream frames are encoded (and decoded) by peer-wire.ts, so gRPC passes the bytes through. */
const identity = (b: Buffer): Buffer => b;

/** gRPC client definitions whose serializers count the bytes they produce. */
function countingPeerClient(count: (bytes: number) => void): PeerClientConstructor {
  const counted = <T>(serialize: (v: T) => Buffer) => (v: T): Buffer => {
    const b = serialize(v);
    count(b.length);
    return b;
  };
  const def = {
    ...RaftPeerService,
    stream: { ...RaftPeerService.stream, requestSerialize: counted(identity) },
    installSnapshot: { ...RaftPeerService.installSnapshot, requestSerialize: counted(RaftPeerService.installSnapshot.requestSerialize) },
  };
  return grpc.makeGenericClientConstructor(def, 'raftkv.RaftPeer') as unknown as PeerClientConstructor;
}

const MAX_MESSAGE_BYTES = 256 * 1024 * 1024;

export interface TransportOptions {
  id: bigint;
  clusterId: bigint;
  handler: TransportHandler;
  logger: Logger;
  /**
   * Advertised peer URL -> the URL actually dialed (like a hosts file). Lets the fault suite put
   * a fault-injecting proxy on every directed link without changing member URLs.
   */
  dialMap?: ReadonlyMap<string, string>;
  /** Peer TLS: the peer side's certificate and CA (for https peer URLs) and the allowed CN. */
  tls?: TlsConfig;
}

const channelOptions: grpc.ChannelOptions = {
  'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
  'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  // A restarted peer is dialled again within ~250 ms (etcd redials every 100 ms): a longer
  // backoff showed up as seconds of extra catch-up time after a member restart.
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 250,
};

/** Our own retry of a broken peer stream (on top of the channel's reconnects). */
const MAX_STREAM_BACKOFF_MS = 250;

class PeerConn {
  private client: PeerClient;
  private stream: grpc.ClientWritableStream<Buffer> | undefined;
  private queue: Message[] = [];
  private flushScheduled = false;
  private backoffMs = 0;
  private retryAt = 0;
  private closed = false;
  private reportedDown = false;
  /** The peer refused our stream (FAILED_PRECONDITION): a connected channel does not make it up. */
  private refused = false;
  /**
   * Since when (performance.now()) the link is known to be up (connected), undefined while it is
   * down: rafthttp's peer status and its ActiveSince.
   */
  private activeSince: number | undefined;
  private probeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: bigint,
    public urls: string[],
    private readonly t: GrpcTransport,
    /** The advertised URL: its scheme says whether the link is TLS (the dialed one may be a proxy). */
    advertised: string,
  ) {
    const Client = countingPeerClient((n) => t.observer?.sent(id, n));
    this.client = new Client(grpcTarget(urls[0]!), peerChannelCredentials(advertised, t.tls), channelOptions);
    this.scheduleProbe(FIRST_RTT_PROBE_MS);
    this.watchChannel();
  }

  /**
   * The peer becomes active once its channel is connected (rafthttp: when its stream is up),
   * and inactive once it is not: a peer this member never streams to (a follower's fellow
   * follower) is kept connected by the round-trip probes below, so a lost connection shows here.
   */
  private watchChannel(): void {
    if (this.closed) return;
    const channel = this.client.getChannel();
    const state = channel.getConnectivityState(false);
    // Connected again after an outage counts as up without waiting for a Raft message to this
    // peer (a follower sends none to a restarted fellow follower, whose link would stay down).
    if (state === grpc.connectivityState.READY && !this.refused) this.linkUp();
    else if (state !== grpc.connectivityState.READY) this.setActive(false);
    if (state === grpc.connectivityState.SHUTDOWN) return;
    // No deadline: no timer (grpc-js calls back on every change, SHUTDOWN included, at close).
    channel.watchConnectivityState(state, Infinity, () => this.watchChannel());
  }

  private scheduleProbe(ms: number): void {
    if (this.closed) return;
    this.probeTimer = setTimeout(() => this.probeRoundTrip(), ms);
    this.probeTimer.unref();
  }

  /**
   * Times a small call (the member list) over the peer channel, as etcd's prober times its
   * probes, then schedules the next; a failed probe is not a time. The probes also keep the
   * channel connected to a peer no Raft message goes to, so that its state is this member's
   * view of the peer's health (see watchChannel), as rafthttp keeps a stream to every peer.
   */
  private probeRoundTrip(): void {
    if (this.closed) return;
    const t0 = performance.now();
    this.client.members({}, this.metadata(), { deadline: Date.now() + RTT_PROBE_MS }, (err: grpc.ServiceError | null) => {
      if (!err) this.t.observer?.roundTrip(this.id, (performance.now() - t0) / 1000);
      this.scheduleProbe(RTT_PROBE_MS);
    });
  }

  send(m: Message): void {
    if (this.closed) return;
    this.queue.push(m);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('raftkv-cluster-id', this.t.clusterId.toString(16));
    md.set('raftkv-from', this.t.id.toString(16));
    return md;
  }

  private openStream(): grpc.ClientWritableStream<Buffer> | undefined {
    if (this.stream) return this.stream;
    if (Date.now() < this.retryAt) return undefined;
    const s = this.client.stream(this.metadata(), (err: grpc.ServiceError | null, _ack?: StreamAck) => {
      if (this.stream === s) this.stream = undefined;
      if (err && !this.closed) this.onFailure(err);
    });
    s.on('error', () => {
      /* handled in the callback */
    });
    this.stream = s;
    return s;
  }

  private onFailure(err: grpc.ServiceError): void {
    this.backoffMs = Math.min(MAX_STREAM_BACKOFF_MS, this.backoffMs === 0 ? 50 : this.backoffMs * 2);
    this.retryAt = Date.now() + this.backoffMs;
    this.refused = err.code === grpc.status.FAILED_PRECONDITION;
    if (err.code === grpc.status.FAILED_PRECONDITION && err.details?.includes('has been removed')) {
      this.t.logger.warn(`transport: peer ${this.id.toString(16)} says: ${err.details}`);
      this.t.handler.onRemoved?.();
    } else if (err.code === grpc.status.FAILED_PRECONDITION) {
      this.t.logger.error(`transport: peer ${this.id.toString(16)} refused our stream: ${err.details}`);
    } else if (!this.reportedDown) {
      // CANCELLED: the peer shut down its end (a clean stop); anything else is a failure.
      const log = err.code === grpc.status.CANCELLED ? this.t.logger.info : this.t.logger.warn;
      log.call(this.t.logger, `transport: lost stream to peer ${this.id.toString(16)} (${err.details || err.message})`);
    }
    this.reportedDown = true;
    this.setActive(false);
    this.t.handler.reportUnreachable(this.id);
  }

  /** `stopped`: the link is closed on purpose (shutdown, member removed): no disconnection. */
  private setActive(active: boolean, stopped = false): void {
    if ((this.activeSince !== undefined) === active) return;
    this.activeSince = active ? performance.now() : undefined;
    this.t.observer?.peerActive(this.id, active, stopped);
  }

  /** How long the link has been up (ms), undefined while it is down. */
  activeForMs(): number | undefined {
    return this.activeSince === undefined ? undefined : performance.now() - this.activeSince;
  }

  /** Sends the queued messages now (the turn's scheduled flush then finds nothing to send). */
  flushNow(): void {
    if (this.queue.length === 0) return;
    // The turn's flush is still scheduled (it sends whatever is queued after this).
    const scheduled = this.flushScheduled;
    this.flush();
    this.flushScheduled = scheduled;
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queue.length === 0 || this.closed) return;
    const msgs = this.queue;
    this.queue = [];
    const snaps = msgs.filter((m) => m.type === MessageType.MsgSnap);
    const rest = snaps.length > 0 ? msgs.filter((m) => m.type !== MessageType.MsgSnap) : msgs;
    for (const m of snaps) {
      this.sendSnapshot(m).catch((e: unknown) => {
        // Raft is told, and sends a new snapshot later.
        this.t.logger.warn(`transport: snapshot to ${this.id.toString(16)} failed: ${(e as Error)?.message ?? String(e)}`);
        this.t.handler.reportSnapshot(this.id, false);
      });
    }
    if (rest.length === 0) return;
    const s = this.openStream();
    if (!s) {
      // Backing off: drop (Raft retransmits), and tell Raft the peer is unreachable.
      this.t.observer?.sendFailed(this.id, rest.length);
      this.t.handler.reportUnreachable(this.id);
      return;
    }
    // Straight from the core's messages to the frame's bytes; entries already encoded (for
    // another follower, or an earlier try) are copied in, not encoded again (peer-wire.ts).
    s.write(encodeBatch(rest));
    // A write only buffers; the peer is back once the channel is really connected. (Until then
    // an outage is logged once, not at every retry.)
    if ((this.reportedDown || this.activeSince === undefined) && this.client.getChannel().getConnectivityState(false) === grpc.connectivityState.READY) {
      this.refused = false;
      this.linkUp();
    }
  }

  /** The link is up (again): active, and an outage logged once is over. */
  private linkUp(): void {
    this.setActive(true);
    if (this.reportedDown) {
      this.reportedDown = false;
      this.backoffMs = 0;
      this.t.logger.info(`transport: stream to peer ${this.id.toString(16)} re-established`);
    }
  }

  private async sendSnapshot(m: Message): Promise<void> {
    const data = toBuffer(m.snapshot?.data ?? new Uint8Array(0));
    const pb = messageToPb({ ...m, snapshot: m.snapshot ? { ...m.snapshot, data: new Uint8Array(0) } : undefined });
    const started = performance.now();
    this.t.observer?.snapshotSend(this.id, 'started', 0);
    const ok = await new Promise<boolean>((resolve) => {
      const call = this.client.installSnapshot(this.metadata(), { deadline: Date.now() + 10 * 60_000 }, (err: grpc.ServiceError | null, ack?: SnapshotAck) => {
        if (err) {
          this.t.logger.warn(`transport: snapshot to ${this.id.toString(16)} failed: ${err.details || err.message}`);
          resolve(false);
        } else resolve(ack?.ok ?? false);
      });
      call.on('error', () => {});
      // The checksum grows chunk by chunk as they are written (the last carries it): one crc32
      // of a 160 MB image was a turn of the event loop measured in seconds on this VM.
      let crc = 0;
      const chunks: Array<[number, number]> = [];
      for (let o = 0; o < data.length; o += SNAPSHOT_CHUNK_BYTES) chunks.push([o, Math.min(data.length, o + SNAPSHOT_CHUNK_BYTES)]);
      if (chunks.length === 0) chunks.push([0, 0]);
      let i = 0;
      const writeNext = (): void => {
        // Flow control: stop at a full buffer and continue on 'drain'.
        while (i < chunks.length) {
          const [start, end] = chunks[i]!;
          const last = i === chunks.length - 1;
          crc = crc32(data.subarray(start, end), crc);
          const more = call.write({
            message: i === 0 ? pb : undefined,
            offset: BigInt(start),
            data: data.subarray(start, end),
            last,
            crc32: last ? crc : 0,
            totalSize: BigInt(data.length),
          });
          i++;
          if (last) {
            call.end();
            return;
          }
          if (!more) {
            call.once('drain', writeNext);
            return;
          }
        }
      };
      writeNext();
    });
    this.t.observer?.snapshotSend(this.id, ok ? 'ok' : 'failed', (performance.now() - started) / 1000);
    this.t.logger.info(`transport: snapshot [index ${m.snapshot?.metadata.index}] to ${this.id.toString(16)} ${ok ? 'sent' : 'failed'} (${data.length} bytes)`);
    this.t.handler.reportSnapshot(this.id, ok);
  }

  close(): void {
    this.closed = true;
    this.setActive(false, true);
    clearTimeout(this.probeTimer);
    this.stream?.end();
    this.stream = undefined;
    this.client.close();
  }
}

/** Asks the peers at `urls` (any one that answers) for the cluster id and member list. */
export async function fetchClusterInfo(urls: string[], timeoutMs = 5000, tls?: TlsConfig): Promise<MembersResponse> {
  let last: unknown;
  for (const u of urls) {
    const c = new RaftPeerClient(grpcTarget(u), peerChannelCredentials(u, tls));
    try {
      return await new Promise<MembersResponse>((resolve, reject) =>
        c.members({}, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res?: MembersResponse) =>
          err ? reject(err) : resolve(res!),
        ),
      );
    } catch (e) {
      last = e;
    } finally {
      c.close();
    }
  }
  throw new Error(`could not get the member list from any of ${urls.join(', ')}: ${(last as Error)?.message ?? 'no peers'}`);
}

export class GrpcTransport implements Transport {
  readonly id: bigint;
  readonly clusterId: bigint;
  readonly handler: TransportHandler;
  readonly logger: Logger;
  readonly tls: TlsConfig | undefined;
  /** Hears of bytes and round trips (metrics); none until the process serves metrics. */
  observer: PeerTrafficObserver | undefined;
  private peers = new Map<bigint, PeerConn>();
  private readonly dialMap: ReadonlyMap<string, string>;
  /** Messages dropped per unknown or forged sender (logged at the first and every 1000th). */
  private readonly dropped = new Map<string, number>();

  constructor(o: TransportOptions) {
    this.dialMap = o.dialMap ?? new Map();
    this.tls = o.tls;
    this.id = o.id;
    this.clusterId = o.clusterId;
    this.handler = o.handler;
    this.logger = o.logger;
  }

  addPeer(id: bigint, advertised: string[]): void {
    const urls = advertised.map((u) => this.dialMap.get(u) ?? this.dialMap.get(u.replace(/\/$/, '')) ?? u);
    if (id === this.id || urls.length === 0) return;
    const p = this.peers.get(id);
    if (p && p.urls.join(',') === urls.join(',')) return;
    p?.close();
    this.peers.delete(id);
    try {
      this.peers.set(id, new PeerConn(id, urls, this, advertised[0]!));
    } catch (e) {
      // A URL no member can dial (the API refuses them; a log written before it did may hold
      // one): the member is unreachable, as a down one is, and the others go on.
      this.logger.error(`transport: cannot dial peer ${id.toString(16)} at ${urls.join(',')}: ${(e as Error).message}`);
    }
  }

  removePeer(id: bigint): void {
    this.peers.get(id)?.close();
    this.peers.delete(id);
  }

  hasPeer(id: bigint): boolean {
    return this.peers.has(id);
  }

  activeForMs(id: bigint): number | undefined {
    return this.peers.get(id)?.activeForMs();
  }

  flush(): void {
    for (const p of this.peers.values()) p.flushNow();
  }

  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const p = this.peers.get(m.to);
      if (p) p.send(m);
      else if (m.type === MessageType.MsgSnap) this.handler.reportSnapshot(m.to, false);
    }
  }

  /**
   * Checks the caller: its cluster id and that it was not removed (its certificate was checked
   * when it connected: peer-listener.ts); returns an error text if it may not talk to us.
   */
  private checkCaller(call: Pick<grpc.ServerUnaryCall<unknown, unknown>, 'metadata' | 'getAuthContext'>): string | undefined {
    const md = call.metadata;
    const cid = md.get('raftkv-cluster-id')[0];
    const from = md.get('raftkv-from')[0];
    if (cid === undefined || from === undefined) return 'raftkv: missing cluster id or sender id';
    if (!/^[0-9a-f]{1,16}$/i.test(String(cid)) || !/^[0-9a-f]{1,16}$/i.test(String(from))) return 'raftkv: malformed cluster id or sender id';
    if (BigInt(`0x${String(cid)}`) !== this.clusterId) {
      return `raftkv: request cluster ID mismatch: got ${String(cid)} from member ${String(from)}, want ${this.clusterId.toString(16)}`;
    }
    if (this.handler.isRemoved?.(BigInt(`0x${String(from)}`))) {
      return `raftkv: member ${String(from)} has been removed from the cluster`;
    }
    return undefined;
  }

  /** The stream's sender id (from its metadata), checked by checkCaller already. */
  private static sender(md: grpc.Metadata): bigint {
    return BigInt(`0x${String(md.get('raftkv-from')[0])}`);
  }

  /** Why nothing is taken from sender `id` (a removed member, or not a member at all); undefined: a current member. */
  private senderProblem(id: bigint): string | undefined {
    if (this.handler.isRemoved?.(id)) return `from removed member ${id.toString(16)}`;
    if (this.handler.isMember && !this.handler.isMember(id)) return `from ${id.toString(16)}, which is not a member of the cluster`;
    return undefined;
  }

  /**
   * Whether a call's claimed sender is a current member: only then is it counted in the
   * per-peer metrics, whose series are keyed by the sender — a forged id would otherwise add a
   * series for good — and only then is a snapshot it sends buffered at all.
   */
  private knownSender(sender: bigint): boolean {
    return this.senderProblem(sender) === undefined;
  }

  /**
   * Whether a message may be stepped: its sender is the member that opened the call and a
   * current member (not a removed one). Otherwise it is dropped and logged.
   */
  private acceptFrom(m: Message, sender: bigint, what: string): boolean {
    const why = m.from !== sender ? `claims to be from ${m.from.toString(16)} on a call from ${sender.toString(16)}` : this.senderProblem(m.from);
    if (!why) return true;
    const key = `${sender}/${m.from}`;
    if (this.dropped.size > 1000 && !this.dropped.has(key)) this.dropped.clear(); // bounded, whatever is forged
    const n = (this.dropped.get(key) ?? 0) + 1;
    this.dropped.set(key, n);
    if (n % 1000 === 1) {
      this.logger.warn(`transport: dropped ${what} (type ${MessageType[m.type] ?? m.type}, term ${m.term}) ${why}${n > 1 ? ` (${n} dropped so far)` : ''}`);
    }
    return false;
  }

  /** The RaftPeer service implementation to register on the peer gRPC server. */
  service(): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
    // Received bytes are known where gRPC deserializes, the sender only in the handler: the
    // deserializer notes each message's size for the handler to report. (Stream frames reach
    // the handler as the received bytes themselves, decoded there by peer-wire.ts: their size
    // is their length.)
    const sizes = new WeakMap<object, number>();
    const noting = <T extends object>(deserialize: (b: Buffer) => T) => (b: Buffer): T => {
      const v = deserialize(b);
      sizes.set(v, b.length);
      return v;
    };
    const countReceived = (from: bigint, v: object): void => {
      const n = sizes.get(v);
      if (n !== undefined && this.knownSender(from)) this.observer?.received(from, n);
    };
    const def = {
      ...RaftPeerService,
      stream: { ...RaftPeerService.stream, requestDeserialize: identity },
      installSnapshot: { ...RaftPeerService.installSnapshot, requestDeserialize: noting(RaftPeerService.installSnapshot.requestDeserialize) },
    };
    const impl = {
      stream: (call: grpc.ServerReadableStream<Buffer, StreamAck>, cb: grpc.sendUnaryData<StreamAck>) => {
        const bad = this.checkCaller(call);
        if (bad) {
          if (bad.includes('has been removed')) this.logger.info(`transport: refused peer stream: ${bad}`);
          else this.logger.error(`transport: refused peer stream: ${bad}`);
          cb({ code: grpc.status.FAILED_PRECONDITION, details: bad });
          return;
        }
        const sender = GrpcTransport.sender(call.metadata);
        let failed = false;
        call.on('data', (frame: Buffer) => {
          if (failed) return;
          let msgs: Message[];
          try {
            // A message that does not decode (e.g. a number above 2^53-1) is dropped alone.
            msgs = decodeBatch(frame, (e) => this.logger.warn(`transport: dropped a malformed message: ${String(e)}`));
          } catch (e) {
            // Not a MessageBatch at all: the call fails, as it did when gRPC's deserializer
            // refused the frame (INTERNAL), and the sender re-establishes its stream.
            failed = true;
            if (this.knownSender(sender)) this.observer?.receiveFailed(sender);
            this.logger.warn(`transport: refused a malformed frame from ${sender.toString(16)}: ${String(e)}`);
            cb({ code: grpc.status.INTERNAL, details: 'Error deserializing request' });
            return;
          }
          if (this.knownSender(sender)) this.observer?.received(sender, frame.length);
          for (const m of msgs) {
            try {
              if (this.acceptFrom(m, sender, 'a message')) this.handler.step(m);
            } catch (e) {
              this.logger.warn(`transport: dropped a malformed message: ${String(e)}`);
            }
          }
        });
        call.on('end', () => {
          if (!failed) cb(null, {});
        });
        call.on('error', () => {});
      },
      installSnapshot: (call: grpc.ServerReadableStream<SnapshotChunk, SnapshotAck>, cb: grpc.sendUnaryData<SnapshotAck>) => {
        const bad = this.checkCaller(call);
        if (bad) {
          this.logger.error(`transport: refused snapshot: ${bad}`);
          cb({ code: grpc.status.FAILED_PRECONDITION, details: bad });
          return;
        }
        const from = GrpcTransport.sender(call.metadata);
        if (!this.knownSender(from)) {
          // Refused before a byte is buffered or counted (it used to be checked after the whole image).
          cb(null, { ok: false, error: 'raftkv: snapshot sender is not a member of the cluster' });
          return;
        }
        // The image is put together and checksummed chunk by chunk as it arrives (once joined
        // and checksummed whole at the end, which took seconds at a million keys), into a
        // buffer of the size the first chunk announces.
        let image: Buffer | undefined;
        let crc = 0;
        let header: SnapshotChunk['message'];
        let received = 0;
        let done = false;
        const started = performance.now();
        this.observer?.snapshotReceive(from, 'started', 0);
        /** Answers the sender once, and reports the outcome (rafthttp's snapshot receive metrics). */
        const finish = (ack: SnapshotAck | undefined): void => {
          if (done) return;
          done = true;
          const ok = ack?.ok ?? false;
          this.observer?.snapshotReceive(from, ok ? 'ok' : 'failed', (performance.now() - started) / 1000);
          if (!ok) this.observer?.receiveFailed(from);
          // undefined: the sender cancelled (or its deadline passed): nobody to answer.
          if (ack) cb(null, ack);
        };
        call.on('data', (c: SnapshotChunk) => {
          countReceived(from, c);
          if (done) return;
          if (c.message) header = c.message;
          const badChecksumOrSize = (): void => {
            this.logger.warn('transport: discarded a snapshot with a bad checksum or size');
            finish({ ok: false, error: 'snapshot checksum mismatch' });
          };
          if (BigInt(received) !== c.offset) {
            finish({ ok: false, error: `unexpected chunk offset ${c.offset}, have ${received}` });
            return;
          }
          if (!image) {
            if (c.totalSize < 0n || c.totalSize > BigInt(bufferConstants.MAX_LENGTH)) {
              finish({ ok: false, error: `snapshot of ${c.totalSize} bytes is too large` });
              return;
            }
            image = Buffer.allocUnsafe(Number(c.totalSize));
          }
          if (BigInt(image.length) !== c.totalSize || received + c.data.length > image.length) return badChecksumOrSize();
          image.set(c.data, received);
          crc = crc32(c.data, crc);
          received += c.data.length;
          if (c.last) {
            const data = image;
            if (!header || crc !== c.crc32 || received !== data.length) return badChecksumOrSize();
            try {
              const m = messageFromPb(header, data);
              if (!this.acceptFrom(m, from, 'a snapshot')) {
                finish({ ok: false, error: 'raftkv: snapshot sender is not a member of the cluster' });
                return;
              }
              this.handler.step(m);
              finish({ ok: true, error: '' });
            } catch (e) {
              finish({ ok: false, error: String(e) });
            }
          }
        });
        call.on('end', () => {
          if (!done) finish({ ok: false, error: 'snapshot stream ended early' });
        });
        call.on('cancelled', () => finish(undefined));
        call.on('error', () => {});
      },
    };
    const members = (call: grpc.ServerUnaryCall<unknown, MembersResponse>, cb: grpc.sendUnaryData<MembersResponse>) => {
      // A joining member is not in the ConfState yet, so only TLS (and its certificate checks) guards this.
      const m = this.handler.members?.();
      if (!m) cb({ code: grpc.status.UNAVAILABLE, details: 'raftkv: member list not available' });
      else cb(null, m);
    };
    return [def as grpc.ServiceDefinition, { ...impl, members }];
  }

  close(): void {
    for (const p of this.peers.values()) p.close();
    this.peers.clear();
  }
}

/**
 * Makes the member's gRPC transport, and keeps it: the process serves its peer service
 * (GrpcTransport.service) on the peer URLs.
 */
export class GrpcTransportFactory implements TransportFactory {
  transport: GrpcTransport | undefined;

  constructor(
    private readonly logger: Logger,
    private readonly dialMap?: ReadonlyMap<string, string>,
    private readonly tls?: TlsConfig,
  ) {}

  create(o: { id: bigint; clusterId: bigint; handler: TransportHandler }): GrpcTransport {
    this.transport = new GrpcTransport({ ...o, logger: this.logger, dialMap: this.dialMap, tls: this.tls });
    return this.transport;
  }

  fetchClusterInfo(urls: string[]): Promise<MembersResponse> {
    return fetchClusterInfo(urls, undefined, this.tls);
  }
}
