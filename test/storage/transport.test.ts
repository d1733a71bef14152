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
