// The start of an HTTP/2 connection on the client port (src/api/h2-authority.ts): a client that
// waits for the server's preface before its first request (grpc-go, grpcio) gets one in the
// turn after its own preface, not after a timer; its ACK of it never reaches nghttp2.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { it, mock } from 'node:test';
import { type H2Route, routeH2Connection } from '../../src/api/h2-authority.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const frame = (type: number, flags: number, stream: number, payload: Buffer = Buffer.alloc(0)): Buffer => {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
};
const SETTINGS = frame(0x4, 0, 0);
const SETTINGS_ACK = frame(0x4, 0x1, 0);
/** HEADERS of stream 1 carrying `:authority` as a literal without indexing (new name). */
const literal = (n: string, v: string): Buffer => Buffer.concat([Buffer.from([0, n.length]), Buffer.from(n), Buffer.from([v.length]), Buffer.from(v)]);
const HEADERS = frame(0x1, 0x4, 1, literal(':authority', '127.0.0.1:2379'));

it('answers a client that waits for the server preface at once (no timer runs), and hands over without its ACK', { timeout: 10_000 }, async () => {
  // Timers do not run unless ticked: only an answer made without one can arrive.
  mock.timers.enable({ apis: ['setTimeout'] });
  const server = createServer();
  try {
    const routed = new Promise<{ route: H2Route; socket: Socket }>((resolve) => {
      server.on('connection', (socket: Socket) => {
        socket.once('data', (head: Buffer) => {
          socket.pause();
          routeH2Connection(socket, head, (route) => resolve({ route, socket }));
        });
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    client.write(Buffer.concat([PREFACE, SETTINGS]));
    const [answer] = (await once(client, 'data')) as [Buffer];
    assert.deepEqual(answer, SETTINGS, "the server's preface: an empty SETTINGS frame");
    client.write(Buffer.concat([SETTINGS_ACK, HEADERS]));
    const { route, socket } = await routed;
    assert.equal(route.kind, 'native');
    // What nghttp2 reads: the preface, the client's SETTINGS and HEADERS; not the ACK of ours.
    const pending = socket.read() as Buffer;
    assert.deepEqual(pending, Buffer.concat([PREFACE, SETTINGS, HEADERS]));
    socket.destroy();
    client.destroy();
  } finally {
    mock.timers.reset();
    server.close();
  }
});
