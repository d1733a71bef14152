// The peer transport refuses a peer from another cluster, and delivers batches otherwise.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type Message, MessageType, newMessage } from '../../src/raft/index.js';
import { GrpcTransport } from '../../src/transport/grpc-transport.js';
import { freePorts } from '../support/ports.js';
import { eventually } from '../support/proc-cluster.js';

function logger(lines: string[]) {
  return { debug() {}, info() {}, warn: (m: string) => lines.push(m), error: (m: string) => lines.push(m) };
}

it('a message from a member of another cluster is refused with a clear error; same cluster is delivered', async () => {
  const [port] = await freePorts(1);
  const got: Message[] = [];
  const serverLog: string[] = [];
  const server = new GrpcTransport({
    id: 1n,
    clusterId: 0xaaaan,
    logger: logger(serverLog),
    handler: { step: (m) => got.push(m), reportUnreachable() {}, reportSnapshot() {} },
  });
  const g = new grpc.Server();
  const [svc, impl] = server.service();
  g.addService(svc, impl);
  await new Promise<void>((r, j) => g.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));

  const strangerLog: string[] = [];
  const stranger = new GrpcTransport({ id: 2n, clusterId: 0xbbbbn, logger: logger(strangerLog), handler: { step() {}, reportUnreachable() {}, reportSnapshot() {} } });
  stranger.addPeer(1n, [`http://127.0.0.1:${port}`]);
  stranger.send([newMessage(MessageType.MsgHeartbeat, { from: 2n, to: 1n, term: 5 })]);
  await eventually(async () => assert.ok(serverLog.some((l) => /cluster ID mismatch/.test(l)), serverLog.join('\n')), 5000);
  await eventually(async () => assert.ok(strangerLog.some((l) => /cluster ID mismatch/.test(l)), strangerLog.join('\n')), 5000);
  assert.equal(got.length, 0);

  const friend = new GrpcTransport({ id: 3n, clusterId: 0xaaaan, logger: logger([]), handler: { step() {}, reportUnreachable() {}, reportSnapshot() {} } });
  friend.addPeer(1n, [`http://127.0.0.1:${port}`]);
  friend.send([
    newMessage(MessageType.MsgHeartbeat, { from: 3n, to: 1n, term: 5, commit: 7 }),
    newMessage(MessageType.MsgApp, { from: 3n, to: 1n, term: 5, entries: [{ term: 5, index: 8, type: 0, data: Buffer.from('x') }] }),
  ]);
  await eventually(async () => assert.equal(got.length, 2), 5000);
  assert.equal(got[0]!.commit, 7);
  assert.equal(Buffer.from(got[1]!.entries[0]!.data).toString(), 'x');
  stranger.close();
  friend.close();
  server.close();
  g.forceShutdown();
});

it('flush() sends what is queued at once, in the turn that queued it; the turn\'s own flush then sends nothing twice', async () => {
  const [port] = await freePorts(1);
  const got: Message[] = [];
  const server = new GrpcTransport({ id: 1n, clusterId: 0xaaaan, logger: logger([]), handler: { step: (m) => got.push(m), reportUnreachable() {}, reportSnapshot() {} } });
  const g = new grpc.Server();
  const [svc, impl] = server.service();
  g.addService(svc, impl);
  await new Promise<void>((r, j) => g.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
  const client = new GrpcTransport({ id: 3n, clusterId: 0xaaaan, logger: logger([]), handler: { step() {}, reportUnreachable() {}, reportSnapshot() {} } });
  // Frames are counted by the stream's serializer, which grpc-js (1.14) runs when a message is
  // written: a count taken right after flush() sees what flush() wrote.
  let frames = 0;
  client.observer = { sent: () => frames++, received() {}, sendFailed() {}, roundTrip() {}, peerActive() {}, receiveFailed() {}, snapshotSend() {}, snapshotReceive() {} };
  client.addPeer(1n, [`http://127.0.0.1:${port}`]);
  try {
    // From the check phase, as the server's loop sends: without flush() the frame would wait
    // for the next turn's check phase.
    const seen = await new Promise<{ queued: number; flushed: number }>((resolve) =>
      setImmediate(() => {
        client.send([newMessage(MessageType.MsgHeartbeat, { from: 3n, to: 1n, term: 5, commit: 1 })]);
        const queued = frames;
        client.flush();
        resolve({ queued, flushed: frames });
      }),
    );
    assert.deepEqual(seen, { queued: 0, flushed: 1 }, 'written by flush(), not before');
    // More in the same turn after a flush still leave (at the end of the turn), in order.
    client.send([newMessage(MessageType.MsgHeartbeat, { from: 3n, to: 1n, term: 5, commit: 2 })]);
    client.flush();
    client.send([newMessage(MessageType.MsgHeartbeat, { from: 3n, to: 1n, term: 5, commit: 3 })]);
    await eventually(async () => assert.equal(got.length, 3), 5000);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got.map((m) => m.commit), [1, 2, 3]);
    assert.equal(frames, 3, 'one frame per flush, none empty or repeated');
  } finally {
    client.close();
    server.close();
    g.forceShutdown();
  }
});

it('a peer whose URL no member can dial is logged and left unreachable, not thrown out of the apply', () => {
  const lines: string[] = [];
  const t = new GrpcTransport({ id: 1n, clusterId: 0xaaaan, logger: logger(lines), handler: { step() {}, reportUnreachable() {}, reportSnapshot() {} } });
  try {
    // Go's URL parser takes these, so an old log may carry one; WHATWG's URL (and gRPC) do not.
    t.addPeer(2n, ['http://127.0.0.1:65536']);
    t.addPeer(3n, ['http://[zz]:1']);
    assert.equal(t.hasPeer(2n), false);
    assert.equal(t.hasPeer(3n), false);
    assert.equal(lines.filter((l) => l.startsWith('transport: cannot dial peer')).length, 2, lines.join('\n'));
    t.addPeer(4n, ['http://127.0.0.1:1']);
    assert.equal(t.hasPeer(4n), true);
  } finally {
    t.close();
  }
});
