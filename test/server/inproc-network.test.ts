// The in-memory network (src/transport/inmem-transport.ts) on its own, with recording handlers:
// asynchronous and never re-entrant delivery, a seeded order that keeps each link FIFO,
// partitions, drop rules, holds, snapshot outcomes, removed and unknown peers, cluster ids,
// and the member list answered to a joining member.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Message, MessageType, newMessage } from '../../src/raft/index.js';
import { InMemNetwork } from '../../src/transport/inmem-transport.js';
import type { Transport, TransportHandler } from '../../src/transport/transport.js';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await turn();
}

interface Rec {
  id: bigint;
  t: Transport;
  got: Message[];
  snaps: Array<[bigint, boolean]>;
  unreachable: bigint[];
  removedCalls: number;
  removed: Set<bigint>;
  onStep?: (m: Message) => void;
}

function member(net: InMemNetwork, id: bigint, o: { clusterId?: bigint; urls?: string[] } = {}): Rec {
  const r: Rec = { id, t: undefined as unknown as Transport, got: [], snaps: [], unreachable: [], removedCalls: 0, removed: new Set() };
  const handler: TransportHandler = {
    step: (m) => {
      r.got.push(m);
      r.onStep?.(m);
    },
    reportUnreachable: (x) => void r.unreachable.push(x),
    reportSnapshot: (x, ok) => void r.snaps.push([x, ok]),
    members: () => ({
      clusterId: o.clusterId ?? 1n,
      members: [{ id, name: `m${id}`, peerUrls: o.urls ?? [`http://m${id}:2380`], clientUrls: [], isLearner: false }],
    }),
    isRemoved: (x) => r.removed.has(x),
    onRemoved: () => void r.removedCalls++,
  };
  r.t = net.create({ id, clusterId: o.clusterId ?? 1n, handler });
  return r;
}

function connect(...ms: Rec[]): void {
  for (const a of ms) for (const b of ms) if (a !== b) a.t.addPeer(b.id, [`http://m${b.id}:2380`]);
}

const app = (from: bigint, to: bigint, index: number): Message => newMessage(MessageType.MsgApp, { from, to, index, term: 1 });

describe('in-memory network', () => {
  it('delivers later, never from inside send() or inside another delivery', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b] = [member(net, 1n), member(net, 2n)];
    connect(a, b);
    b.onStep = (m) => b.t.send([app(2n, 1n, m.index)]); // answers from inside step
    a.t.send([app(1n, 2n, 7)]);
    assert.equal(b.got.length, 0, 'not delivered inside send()');
    await turn();
    assert.equal(b.got.length, 1);
    assert.equal(a.got.length, 0, 'the answer waits for a later turn');
    await turn();
    assert.deepEqual(
      a.got.map((m) => m.index),
      [7],
    );
  });

  it('copies messages through the wire codec (nothing shared with the sender)', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b] = [member(net, 1n), member(net, 2n)];
    connect(a, b);
    const data = Buffer.from('entry');
    const m = newMessage(MessageType.MsgApp, { from: 1n, to: 2n, term: 3, index: 4, entries: [{ term: 3, index: 5, type: 0, data }] });
    a.t.send([m]);
    data[0] = 0x58;
    await turn();
    assert.equal(Buffer.from(b.got[0]!.entries[0]!.data).toString(), 'entry');
    assert.notEqual(b.got[0], m);
  });

  it('keeps each link FIFO and interleaves links in an order fixed by the seed', async () => {
    const order = async (seed: number): Promise<string[]> => {
      const net = new InMemNetwork({ seed });
      const ms = [1n, 2n, 3n, 4n].map((id) => member(net, id));
      connect(...ms);
      const out: string[] = [];
      for (const r of ms) r.onStep = (m) => out.push(`${m.from}>${m.to}:${m.index}`);
      for (let i = 0; i < 5; i++) for (const from of ms) from.t.send([app(from.id, from.id === 4n ? 1n : from.id + 1n, i)]);
      await turn();
      return out;
    };
    const o1 = await order(42);
    assert.equal(o1.length, 20);
    assert.deepEqual(await order(42), o1, 'same seed, same order');
    for (const link of ['1>2', '2>3', '3>4', '4>1']) {
      assert.deepEqual(
        o1.filter((x) => x.startsWith(`${link}:`)).map((x) => Number(x.split(':')[1])),
        [0, 1, 2, 3, 4],
        `link ${link} is FIFO`,
      );
    }
    const others = await Promise.all([1, 2, 3, 4, 5].map((s) => order(s)));
    assert.ok(
      others.some((o) => o.join() !== o1.join()),
      'other seeds interleave differently',
    );
  });

  it('cuts partitions (reporting the peer unreachable) and heals them', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b, c] = [member(net, 1n), member(net, 2n), member(net, 3n)];
    connect(a, b, c);
    net.isolate(3n);
    a.t.send([app(1n, 3n, 1), app(1n, 2n, 1)]);
    c.t.send([app(3n, 1n, 1)]);
    await turns(2);
    assert.equal(c.got.length, 0);
    assert.equal(a.got.length, 0);
    assert.equal(b.got.length, 1);
    assert.deepEqual(a.unreachable, [3n]);
    net.heal();
    net.cut(1n, 2n, { oneWay: true });
    a.t.send([app(1n, 2n, 2), app(1n, 3n, 2)]);
    b.t.send([app(2n, 1n, 2)]);
    await turns(2);
    assert.equal(b.got.length, 1, '1 -> 2 is cut');
    assert.equal(a.got.length, 1, '2 -> 1 is not');
    assert.equal(c.got.length, 1);
    net.partition([1n], [2n, 3n]);
    b.t.send([app(2n, 1n, 3), app(2n, 3n, 3)]);
    await turns(2);
    assert.equal(a.got.length, 1);
    assert.equal(c.got.length, 2);
    assert.equal(net.total('dropped:partition'), 4);
  });

  it('drops by rule, holds and releases (one or all), and counts', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b] = [member(net, 1n), member(net, 2n)];
    connect(a, b);
    const apps = net.counter((m) => m.type === MessageType.MsgApp);
    const rule = net.drop((m) => m.index === 1);
    const hold = net.hold((m) => m.index >= 10);
    a.t.send([app(1n, 2n, 1), app(1n, 2n, 2), app(1n, 2n, 10), app(1n, 2n, 11)]);
    await turns(2);
    assert.deepEqual(
      b.got.map((m) => m.index),
      [2],
    );
    assert.equal(rule.dropped, 1);
    assert.deepEqual(
      hold.messages.map((m) => m.index),
      [10, 11],
    );
    assert.ok(hold.releaseOne());
    await turns(2);
    assert.deepEqual(
      b.got.map((m) => m.index),
      [2, 10],
      'a released message is not caught again by its hold',
    );
    a.t.send([app(1n, 2n, 12)]);
    await turns(2);
    assert.equal(hold.messages.length, 2, 'still holding new ones');
    hold.stop();
    a.t.send([app(1n, 2n, 13)]);
    await turns(2);
    assert.deepEqual(
      b.got.map((m) => m.index),
      [2, 10, 13],
    );
    assert.equal(hold.release(), 2);
    rule.remove();
    a.t.send([app(1n, 2n, 1)]);
    await turns(2);
    assert.deepEqual(
      b.got.map((m) => m.index),
      [2, 10, 13, 11, 12, 1],
    );
    assert.deepEqual({ sent: apps.sent, delivered: apps.delivered, dropped: apps.dropped, held: apps.held }, { sent: 7, delivered: 6, dropped: 1, held: 3 });
  });

  it('delivers a snapshot whole and reports its outcome to the sender', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b] = [member(net, 1n), member(net, 2n)];
    connect(a, b);
    const data = Buffer.alloc(3 * 1024 * 1024, 7);
    const snap = (to: bigint): Message =>
      newMessage(MessageType.MsgSnap, {
        from: 1n,
        to,
        term: 2,
        snapshot: { data, metadata: { index: 9, term: 2, confState: { voters: [1n, 2n], learners: [3n], votersOutgoing: [], learnersNext: [], autoLeave: false } } },
      });
    a.t.send([snap(2n)]);
    await turns(3);
    assert.equal(b.got.length, 1);
    assert.ok(Buffer.from(b.got[0]!.snapshot!.data).equals(data));
    assert.deepEqual(b.got[0]!.snapshot!.metadata.confState.learners, [3n]);
    assert.deepEqual(a.snaps, [[2n, true]]);
    // Lost on the way, held then dropped, or to an unknown peer: reported failed.
    const rule = net.drop((m) => m.type === MessageType.MsgSnap);
    a.t.send([snap(2n)]);
    await turns(3);
    rule.remove();
    const hold = net.hold((m) => m.type === MessageType.MsgSnap);
    a.t.send([snap(2n)]);
    await turns(2);
    hold.drop();
    a.t.send([snap(9n)]);
    await turns(3);
    assert.deepEqual(a.snaps, [
      [2n, true],
      [2n, false],
      [2n, false],
      [9n, false],
    ]);
    assert.equal(b.got.length, 1);
  });

  it('refuses messages from a removed member (which is told) and to unknown or stopped members', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b, c] = [member(net, 1n), member(net, 2n), member(net, 3n)];
    connect(a, b, c);
    b.removed.add(1n);
    a.t.send([app(1n, 2n, 1)]);
    await turns(3);
    assert.equal(b.got.length, 0);
    assert.equal(a.removedCalls, 1);
    a.t.removePeer(3n);
    a.t.send([app(1n, 3n, 1)]);
    c.t.close();
    b.t.send([app(2n, 3n, 1)]);
    await turns(3);
    assert.equal(c.got.length, 0);
    assert.equal(net.total('dropped:unknown-peer'), 1);
    assert.equal(net.total('dropped:not-running'), 1);
    assert.deepEqual(b.unreachable, [3n]);
    // A stopped member may start again on the same id; a running one may not twice.
    const c2 = member(net, 3n);
    assert.throws(() => member(net, 3n), /already running/);
    b.t.send([app(2n, 3n, 2)]);
    await turns(2);
    assert.equal(c2.got.length, 1);
  });

  it('drops messages across cluster ids', async () => {
    const net = new InMemNetwork({ seed: 1 });
    const [a, b] = [member(net, 1n, { clusterId: 1n }), member(net, 2n, { clusterId: 2n })];
    connect(a, b);
    a.t.send([app(1n, 2n, 1)]);
    await turns(2);
    assert.equal(b.got.length, 0);
    assert.equal(net.total('dropped:cluster-mismatch'), 1);
  });

  it('answers a joining member from a running member at one of the URLs', async () => {
    const net = new InMemNetwork({ seed: 1 });
    member(net, 1n, { clusterId: 5n });
    member(net, 2n, { clusterId: 5n });
    const info = await net.fetchClusterInfo(['http://x:2380', 'http://m2:2380']);
    assert.equal(info.clusterId, 5n);
    assert.deepEqual(
      info.members.map((m) => m.id),
      [2n],
    );
    net.isolate(2n);
    await assert.rejects(net.fetchClusterInfo(['http://m2:2380']), /no running member answers/);
    await assert.rejects(net.fetchClusterInfo(['http://nobody:2380']), /no running member answers/);
  });

  it('delivers only when told while paused', async () => {
    const net = new InMemNetwork({ seed: 1, autoDeliver: false });
    const [a, b] = [member(net, 1n), member(net, 2n)];
    connect(a, b);
    a.t.send([app(1n, 2n, 1)]);
    await turns(3);
    assert.equal(b.got.length, 0);
    assert.equal(net.pending(), 1);
    assert.equal(net.deliver(), 1);
    assert.equal(b.got.length, 1);
    net.resume();
    a.t.send([app(1n, 2n, 2)]);
    await turns(2);
    assert.equal(b.got.length, 2);
  });
});
