// InstallSnapshot over the peer transport: a complete snapshot streamed in chunks is stepped
// once, whole; a transfer cut off midway or with a wrong checksum is never stepped, and the
// sender learns it failed (Raft then probes and sends a fresh snapshot: a clean restart).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { RaftPeerClient, type SnapshotAck } from '../../src/gen/raftkv/peer.js';
import { type Message, MessageType, emptyConfState, newMessage } from '../../src/raft/index.js';
import { messageToPb } from '../../src/transport/codec.js';
import { GrpcTransport, SNAPSHOT_CHUNK_BYTES } from '../../src/transport/grpc-transport.js';
import { freePorts } from '../support/ports.js';
import { eventually } from '../support/proc-cluster.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const CLUSTER = 0xc1n;

function snapMessage(data: Buffer): Message {
  return newMessage(MessageType.MsgSnap, {
    from: 2n,
    to: 1n,
    term: 3,
    snapshot: { data, metadata: { index: 500, term: 3, confState: { ...emptyConfState(), voters: [1n, 2n] } } },
  });
}

describe('snapshot transfer', () => {
  let port = 0;
  const stepped: Message[] = [];
  let receiver: GrpcTransport;
  let server: grpc.Server;
  before(async () => {
    [port] = (await freePorts(1)) as [number];
    receiver = new GrpcTransport({ id: 1n, clusterId: CLUSTER, logger: quiet, handler: { step: (m) => stepped.push(m), reportUnreachable() {}, reportSnapshot() {} } });
    server = new grpc.Server();
    const [svc, impl] = receiver.service();
    server.addService(svc, impl);
    await new Promise<void>((r, j) => server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
  });
  after(() => {
    receiver.close();
    server.forceShutdown();
  });

  /** Streams chunks by hand (as a sender that dies or corrupts data would) and returns the ack. */
  function rawTransfer(data: Buffer, opts: { stopAfterChunks?: number; badCrc?: boolean }): Promise<SnapshotAck | grpc.ServiceError> {
    const client = new RaftPeerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const md = new grpc.Metadata();
    md.set('raftkv-cluster-id', CLUSTER.toString(16));
    md.set('raftkv-from', '2');
    return new Promise((resolve) => {
      const call = client.installSnapshot(md, (err: grpc.ServiceError | null, ack?: SnapshotAck) => {
        client.close();
        resolve(err ?? ack!);
      });
      const pb = messageToPb({ ...snapMessage(data), snapshot: { ...snapMessage(data).snapshot!, data: new Uint8Array(0) } });
      const n = Math.ceil(data.length / SNAPSHOT_CHUNK_BYTES);
      for (let i = 0; i < n; i++) {
        if (opts.stopAfterChunks !== undefined && i === opts.stopAfterChunks) break;
        const last = i === n - 1;
        const chunk = data.subarray(i * SNAPSHOT_CHUNK_BYTES, (i + 1) * SNAPSHOT_CHUNK_BYTES);
        call.write({ message: i === 0 ? pb : undefined, offset: BigInt(i * SNAPSHOT_CHUNK_BYTES), data: chunk, last, crc32: last ? crc32(data) ^ (opts.badCrc ? 1 : 0) : 0, totalSize: BigInt(data.length) });
      }
      call.end();
    });
  }

  const image = Buffer.alloc(3 * SNAPSHOT_CHUNK_BYTES + 12345);
  for (let i = 0; i < image.length; i++) image[i] = (i * 7919) & 0xff;

  it('a transfer cut off midway is never stepped, and the sender is told', async () => {
    const ack = await rawTransfer(image, { stopAfterChunks: 2 });
    assert.ok(!(ack instanceof Error) && ack.ok === false, JSON.stringify(ack));
    assert.match((ack as SnapshotAck).error, /ended early/);
    assert.equal(stepped.length, 0);
  });

  it('a transfer with a wrong checksum is discarded', async () => {
    const ack = await rawTransfer(image, { badCrc: true });
    assert.ok(!(ack instanceof Error) && ack.ok === false);
    assert.match((ack as SnapshotAck).error, /checksum/);
    assert.equal(stepped.length, 0);
  });

  it('a complete transfer, after failed ones, is stepped once and whole; the sender hears it went through', async () => {
    const reports: boolean[] = [];
    const sender = new GrpcTransport({ id: 2n, clusterId: CLUSTER, logger: quiet, handler: { step() {}, reportUnreachable() {}, reportSnapshot: (_id, ok) => reports.push(ok) } });
    sender.addPeer(1n, [`http://127.0.0.1:${port}`]);
    sender.send([snapMessage(image)]);
    await eventually(async () => assert.deepEqual(reports, [true]), 20_000);
    assert.equal(stepped.length, 1);
    const got = stepped[0]!.snapshot!;
    assert.equal(got.metadata.index, 500);
    assert.deepEqual(got.metadata.confState.voters, [1n, 2n]);
    assert.ok(Buffer.from(got.data).equals(image), 'the stepped image is the sent one, byte for byte');
    sender.close();
  });
});
