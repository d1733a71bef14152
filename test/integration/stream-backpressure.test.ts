// A client that sends on a stream but does not read its answers is held back, as etcd holds it
// (its stream.Send blocks the loop that reads the next request): the member stops reading its
// requests instead of answering them into memory without bound. Found by an adversarial probe:
// 1 M keepalives on one unread LeaseKeepAlive stream grew the leader's heap by ~300 MB, and
// 500 k progress requests on an unread Watch stream by ~400 MB; seconds of the loop followed.
//
// The client is a bare HTTP/2 one that never consumes what it receives (a grpc-js client would
// buffer every answer in its own memory). Seen through the member's own count of the messages it
// read (grpc_server_msg_received_total): the client queues all it is told to send, the member
// reads a bounded part of it.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from 'node:http2';
import { LeaseKeepAliveRequest, WatchRequest } from '../../src/gen/etcd/rpc.js';
import { scrape, total } from '../support/prometheus-text.js';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';

const SENT = 100_000;

describe('streams whose client does not read', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 1 });
  });
  after(async () => {
    await c?.destroy();
  });

  /** The messages the member has read on `method`'s streams, once that count stops growing. */
  async function readSettled(method: string): Promise<number> {
    const read = async () => total(await scrape(`http://${c.endpoint(0)}/metrics`), 'grpc_server_msg_received_total', { grpc_method: method });
    let last = -1;
    return eventually(async () => {
      const now = await read();
      const settled = now === last;
      last = now;
      await sleep(500);
      assert.ok(settled && now > 0, `still reading (${now})`);
      return now;
    }, 60_000);
  }

  /** Sends `count` copies of `message` on a new stream of `path`, reading nothing back; closes it with `done`. */
  async function unreadStream(path: string, message: Uint8Array, count: number, done: () => Promise<void>): Promise<void> {
    const session = connect(`http://${c.endpoint(0)}`);
    session.on('error', () => undefined);
    try {
      const stream = session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' });
      stream.on('error', () => undefined);
      stream.pause(); // nothing received is consumed: HTTP/2 flow control closes the member's window
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1);
      frame.set(message, 5);
      for (let i = 0; i < count; i++) stream.write(frame);
      await done();
      stream.close();
    } finally {
      session.destroy();
    }
  }

  it('LeaseKeepAlive: keepalives read no further while their answers wait', async () => {
    const { ID } = await new Promise<{ ID: bigint }>((res, rej) => c.client(0).lease.leaseGrant({ TTL: 600n, ID: 0n }, (e, r) => (e ? rej(e) : res(r!))));
    await unreadStream('/etcdserverpb.Lease/LeaseKeepAlive', LeaseKeepAliveRequest.encode({ ID }).finish(), SENT, async () => {
      const read = await readSettled('LeaseKeepAlive');
      assert.ok(read < SENT / 2, `the member read ${read} of ${SENT} keepalives`);
    });
  });

  it('Watch: progress requests read no further while their answers wait', async () => {
    await unreadStream('/etcdserverpb.Watch/Watch', WatchRequest.encode(WatchRequest.fromPartial({ progressRequest: {} })).finish(), SENT, async () => {
      const read = await readSettled('Watch');
      assert.ok(read < SENT / 2, `the member read ${read} of ${SENT} progress requests`);
    });
  });
});
