// The write path's shortcuts, on complete in-process members (test/support/inproc-cluster.ts):
//  - proposals made in one event-loop turn reach Raft together: each follower gets one MsgApp
//    for all of them and answers with one MsgAppResp (not one of each per request);
//  - committed entries already in the leader's log are applied — and their clients answered —
//    while the leader is still writing the next batch of new entries (etcd applies before
//    storage.Save returns); entries still being written are never applied before they are
//    durable.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Entry, type HardState, MessageType } from '../../src/raft/index.js';
import { slowApplyWarning } from '../../src/server/etcd-server.js';
import type { Transport } from '../../src/transport/transport.js';
import { type InProcCluster, parts, withCluster } from '../support/inproc-cluster.js';

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Runs event-loop turns until `cond` holds (at most `turns`); false if it never did. */
async function turnsUntil(cond: () => boolean, turns = 2000): Promise<boolean> {
  for (let i = 0; i < turns; i++) {
    if (cond()) return true;
    await nextTurn();
  }
  return cond();
}

/** Holds the WAL writes of one member until released (a slow disk, under the test's control). */
function gateWal(c: InProcCluster, name: string): { release(): void; waiting(): number } {
  const wal = parts(c.member(name).server).node.wal;
  const save = wal.save.bind(wal);
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let waiting = 0;
  wal.save = async (hs: HardState | undefined, ents: readonly Entry[], sync: boolean) => {
    waiting++;
    await gate;
    return save(hs, ents, sync);
  };
  return { release: () => open(), waiting: () => waiting };
}

describe('write path', () => {
  it('proposals made in one turn travel to each follower as one MsgApp, acknowledged by one MsgAppResp', async () => {
    await withCluster({ size: 3, seed: 11 }, async (c) => {
      const L = await c.waitIdle();
      const apps = c.net.counter((m) => m.type === MessageType.MsgApp && m.from === L.id && m.entries.length > 0);
      const resps = c.net.counter((m) => m.type === MessageType.MsgAppResp && m.to === L.id);
      const N = 20;
      const puts = Array.from({ length: N }, (_, i) => c.put(L, `k${i}`, `v${i}`));
      await c.settle();
      for (const p of puts) await c.run(p);
      // One append per follower for the 20 entries (one per entry before batching: 40).
      assert.equal(apps.sent, 2, `MsgApps with entries sent: ${apps.sent}`);
      // One answer per append, plus those to the commit index's own MsgApp if any.
      assert.ok(resps.sent <= 4, `MsgAppResps: ${resps.sent}`);
      for (const m of c.running()) assert.equal(c.get(m, 'k19')?.value.toString(), 'v19');
    });
  });

  it("proposals made while a follower's append is unacknowledged go to it together, in the next append", async () => {
    await withCluster({ size: 3, seed: 14 }, async (c) => {
      const L = await c.waitIdle();
      await c.run(c.put(L, 'warm', 'up'));
      const acks = c.net.hold((m) => m.type === MessageType.MsgAppResp && m.to === L.id);
      const sizes: number[] = [];
      const stopObserving = c.net.observe((m, outcome) => {
        if (outcome === 'sent' && m.type === MessageType.MsgApp && m.from === L.id && m.entries.length > 0) sizes.push(m.entries.length);
      });
      // Ten puts, each in turns of its own: the followers' acks of the first are held meanwhile.
      const N = 10;
      const puts = [];
      for (let i = 0; i < N; i++) {
        puts.push(c.put(L, `k${i}`, `v${i}`));
        await c.settle();
      }
      assert.deepEqual(sizes, [1, 1], 'only the first put went out, one append per follower (with 512 in flight: 20)');
      acks.end();
      c.net.deliver();
      await c.settle();
      for (const p of puts) await c.run(p);
      // The nine others went in one append per follower, once its first was acknowledged.
      assert.deepEqual(sizes, [1, 1, N - 1, N - 1]);
      stopObserving();
      for (const m of c.running()) assert.equal(c.get(m, `k${N - 1}`)?.value.toString(), `v${N - 1}`);
    });
  });

  it('requests encoded one after another by the kept writer each keep their own bytes, large or small', async () => {
    await withCluster({ size: 3, seed: 15 }, async (c) => {
      const L = await c.waitIdle();
      // Sizes around the kept writer's bound (64 KiB) and its buffer's doublings, in one turn
      // (every request is encoded before any is sent), then again in turns of their own.
      const sizes = [1, 300, 100 * 1024, 7, 65 * 1024, 64 * 1024 - 40, 2, 129, 1000];
      const value = (round: number, i: number, n: number): string => String.fromCharCode(97 + ((round * 7 + i) % 26)).repeat(n);
      await Promise.all(sizes.map((n, i) => c.run(c.put(L, `one-turn/${i}`, value(0, i, n)))));
      for (let i = 0; i < sizes.length; i++) await c.run(c.put(L, `own-turn/${i}`, value(1, i, sizes[i]!)));
      for (const m of c.running()) {
        for (let i = 0; i < sizes.length; i++) {
          assert.equal(c.get(m, `one-turn/${i}`)?.value.toString(), value(0, i, sizes[i]!), `one-turn/${i} on ${m.name}`);
          assert.equal(c.get(m, `own-turn/${i}`)?.value.toString(), value(1, i, sizes[i]!), `own-turn/${i} on ${m.name}`);
        }
      }
    });
  });

  it('a proposal queued behind a conf change proposed later in the same turn keeps its place', async () => {
    await withCluster({ size: 3, seed: 12 }, async (c) => {
      const L = await c.waitIdle();
      const before = parts(L.server).node.storage.lastIndex();
      const put = c.put(L, 'first', 'x');
      const added = L.server.members.add([c.peerUrlOf('n4')], true);
      added.catch(() => {});
      const log = parts(L.server).node.raw.inspect().raftLog;
      // Both in the log at once, the put first.
      assert.equal(log.lastIndex(), before + 2);
      await c.run(put);
      await c.run(added);
    });
  });

  it('a membership change made as soon as the previous one answered is taken, not refused as still pending', async () => {
    await withCluster({ size: 3, seed: 17 }, async (c) => {
      const L = await c.waitIdle();
      // The add is written by every member; its commit waits on the held acks.
      const acks = c.net.hold((m) => m.type === MessageType.MsgAppResp && m.to === L.id);
      let second: Promise<void> | undefined;
      const added = L.server.members.add([c.peerUrlOf('n4')], true).then((m) => {
        // Asked for in the continuation of the add's answer, as a client's next call would be.
        second = L.server.members.update(m!.ID, ['http://127.0.0.1:4444']);
        return m!.ID;
      });
      await c.settle();
      assert.ok(acks.caught >= 1);
      // In one turn the acks arrive (the add commits) and a put is proposed: the leader's next
      // Ready applies the add while the put is on its way to disk — Raft has not advanced past
      // the add when its answer goes out.
      const gate = gateWal(c, L.name);
      acks.end();
      c.net.deliver();
      const put = c.put(L, 'during', 'x');
      let id: bigint | undefined;
      void added.then((x) => (id = x));
      assert.ok(await turnsUntil(() => id !== undefined), 'the add was answered while the write of the put was held');
      assert.ok(gate.waiting() >= 1, "the put's write is held");
      gate.release();
      await c.settle();
      await c.run(put);
      await c.run(second!);
      assert.deepEqual(L.server.sm.membership.get(id!)?.peerUrls, ['http://127.0.0.1:4444']);
    });
  });

  it("committed entries are applied and answered while the leader's next write is still on its way to disk", async () => {
    await withCluster({ size: 3, seed: 13 }, async (c) => {
      const L = await c.waitIdle();
      await c.run(c.put(L, 'warm', 'up'));
      // A is written by every member, but its commit is not known yet: the followers' acks wait.
      const acks = c.net.hold((m) => m.type === MessageType.MsgAppResp && m.to === L.id);
      let aDone = false;
      const a = c.put(L, 'a', '1').then((r) => {
        aDone = true;
        return r;
      });
      await c.settle();
      assert.ok(acks.caught >= 1, 'the acks of A were held');
      assert.equal(aDone, false);
      // The leader's disk stalls from now on. In one turn: the acks arrive (A commits) and B is
      // proposed, so the leader's next Ready carries A to apply and B to write.
      const gate = gateWal(c, L.name);
      acks.end();
      c.net.deliver();
      let bDone = false;
      const b = c.put(L, 'b', '2').then((r) => {
        bDone = true;
        return r;
      });
      assert.ok(await turnsUntil(() => aDone), 'A was answered while the write of B was held');
      assert.ok(gate.waiting() >= 1, "B's write is held");
      assert.equal(c.get(L, 'b'), undefined, 'B is not applied: it is not committed');
      assert.equal(bDone, false);
      gate.release();
      await c.settle();
      await c.run(a);
      await c.run(b);
      assert.equal(c.get(L, 'b')?.value.toString(), '2');
    });
  });

  it("warns, with etcd's texts, of a durable write over 1 s and of an apply over 100 ms", async () => {
    await withCluster({ size: 3, seed: 14 }, async (c) => {
      const L = await c.waitIdle();
      // A disk that takes 1.2 s (of the members' clock) to make a write durable.
      const gate = gateWal(c, L.name);
      const slowPut = c.put(L, 'slow-disk', 'x');
      slowPut.catch(() => {});
      assert.ok(await turnsUntil(() => gate.waiting() >= 1), "the leader's write is under way");
      c.clock.advance(1200);
      gate.release();
      assert.ok(
        await turnsUntil(() => c.logTail.some((l) => l.includes(`${L.name} warn: slow fdatasync: took 1200ms, expected-duration 1s`))),
        `no slow fdatasync warning:\n${c.logTail.slice(-10).join('\n')}`,
      );
    });
    await withCluster({ size: 3, seed: 15 }, async (c) => {
      const L = await c.waitIdle();
      // An apply that takes 150 ms of the members' clock.
      const sm = L.server.sm;
      const apply = sm.applyNormal.bind(sm);
      sm.applyNormal = (...args: Parameters<typeof apply>) => {
        c.clock.advance(150);
        return apply(...args);
      };
      await c.run(c.put(L, 'slow-apply', 'x'));
      assert.ok(
        c.logTail.some((l) => l.includes(`${L.name} warn: apply request took too long: took 150ms, expected-duration 100ms`)),
        `no slow apply warning:\n${c.logTail.slice(-10).join('\n')}`,
      );
    });
    // --experimental-warning-apply-duration moves the threshold.
    assert.equal(slowApplyWarning(0.15, 200), undefined);
    assert.equal(slowApplyWarning(0.25, 200), 'apply request took too long: took 250ms, expected-duration 200ms');
  });

  it('a long backlog of committed entries (a restart replaying its WAL) is applied over several event-loop turns', async () => {
    await withCluster({ size: 3, seed: 16 }, async (c) => {
      const L = await c.waitIdle();
      // 5 MiB of committed entries, five times what one turn applies (APPLY_BYTES_PER_TURN).
      const big = 'x'.repeat(256 * 1024);
      for (let i = 0; i < 20; i++) await c.run(c.put(L, `big${i}`, big));
      const F = c.running().find((m) => m !== L)!;
      await c.stop(F);
      await c.restart(F);
      // The client port opens on replayed() (src/api/front-door.ts): only once all is applied.
      let replayed = false;
      void F.server.replayed().then(() => (replayed = true));
      const replayTo = F.server.sm.replayTo;
      // Sample how many entries the restarted member has applied, once per event-loop turn.
      const seen = new Set<number>();
      const appliedWhenReplayed: number[] = [];
      let heldTurns = 0;
      const done = await turnsUntil(() => {
        seen.add(F.applied.length);
        if (replayed) appliedWhenReplayed.push(F.server.sm.appliedIndex);
        else heldTurns++;
        return replayed && F.server.sm.appliedIndex >= parts(L.server).node.storage.lastIndex();
      });
      assert.ok(done, 'the restarted member caught up and said it had replayed');
      assert.ok(heldTurns >= 2, `replayed() resolved after ${heldTurns} turns`);
      assert.ok(
        appliedWhenReplayed.every((i) => i >= replayTo),
        `replayed() resolved with ${appliedWhenReplayed[0]} of ${replayTo} entries applied`,
      );
      const between = [...seen].filter((n) => n > 0 && n < F.applied.length);
      // Before: the whole WAL was applied in one turn (seen: 0 and all of it, nothing between).
      assert.ok(between.length >= 2, `applied counts seen turn by turn: ${[...seen].join(', ')}`);
      assert.equal(c.get(F, 'big19')?.value.length, big.length);
    });
  });
  it("the leader's appends leave in the turn that made them: the loop flushes the transport after its Ready", async () => {
    await withCluster({ size: 3, seed: 17 }, async (c) => {
      const L = await c.waitIdle();
      await c.run(c.put(L, 'warm', 'up'));
      const transport = (parts(L.server).node as unknown as { transport: Transport }).transport;
      const send = transport.send.bind(transport);
      // A MsgApp with entries handed over, and whether a turn of the loop has passed since.
      let pending: { turnPassed: boolean } | undefined;
      const flushedInTurn: boolean[] = [];
      transport.send = (msgs) => {
        if (!pending && msgs.some((m) => m.type === MessageType.MsgApp && m.entries.length > 0)) {
          const p = { turnPassed: false };
          pending = p;
          setImmediate(() => (p.turnPassed = true));
        }
        send(msgs);
      };
      transport.flush = () => {
        if (pending) flushedInTurn.push(!pending.turnPassed);
        pending = undefined;
      };
      try {
        const put = c.put(L, 'k', 'v');
        await c.settle();
        await c.run(put);
      } finally {
        transport.send = send;
        delete transport.flush;
      }
      // Before: nothing flushed; the appends waited for the end-of-turn send one turn later.
      assert.deepEqual(flushedInTurn, [true]);
    });
  });
});
