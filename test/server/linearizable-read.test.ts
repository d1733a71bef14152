// LinearizableReader (src/server/linearizable-read.ts): reads share ReadIndex rounds, and under
// a steady stream of reads the rounds are held to MIN_ROUND_INTERVAL_MS apart, while a read that
// finds no round in flight starts one at once. Driven by a manual clock and a fake Raft.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/server/clock.js';
import { LinearizableReader, MIN_ROUND_INTERVAL_MS } from '../../src/server/linearizable-read.js';

const RETRY_MS = 500;

function setup() {
  const clock = new ManualClock();
  const asked: Buffer[] = [];
  let applied = 10;
  const reader = new LinearizableReader({ readIndex: (ctx) => void asked.push(Buffer.from(ctx)), appliedIndex: () => applied }, RETRY_MS, clock);
  const done: string[] = [];
  const read = (name: string) =>
    reader.wait().then(
      () => void done.push(name),
      (e: Error) => void done.push(`${name}: ${e.message}`),
    );
  /** The leader answers the latest round with this read index. */
  const answer = (index: number) => reader.onReadState(asked.at(-1)!, index);
  return { clock, asked, reader, done, read, answer, setApplied: (n: number) => (applied = n) };
}

const microtasks = () => new Promise((r) => setImmediate(r));

describe('linearizable reads', () => {
  it('a read with no round in flight starts one at once, and is served once the index is applied', async () => {
    const t = setup();
    const r = t.read('a');
    assert.equal(t.asked.length, 1);
    t.answer(12);
    await microtasks();
    assert.deepEqual(t.done, [], 'applied 10 < read index 12');
    t.setApplied(12);
    t.reader.onApplied();
    await r;
    assert.deepEqual(t.done, ['a']);
  });

  it('reads that come during a round share the next, held until the minimum interval since the last began', async () => {
    const t = setup();
    const a = t.read('a');
    t.clock.advance(0.2);
    const b = t.read('b');
    const c = t.read('c');
    assert.equal(t.asked.length, 1, 'b and c wait for the round in flight');
    t.clock.advance(0.1);
    t.answer(10);
    await a;
    // Before: the next round went out at once, with the answer (4-5 reads per round at 64 clients).
    assert.equal(t.asked.length, 1, 'the next round is held');
    t.clock.advance(MIN_ROUND_INTERVAL_MS - 0.3 - 0.01);
    assert.equal(t.asked.length, 1);
    const d = t.read('d');
    assert.equal(t.asked.length, 1, 'a read during the hold joins it');
    t.clock.advance(0.01);
    assert.equal(t.asked.length, 2, 'one round for b, c and d, one interval after the first began');
    t.answer(10);
    await Promise.all([b, c, d]);
    assert.deepEqual(t.done, ['a', 'b', 'c', 'd']);
    // Nothing waits now: the next read starts its round at once, hold or no hold.
    t.read('e');
    assert.equal(t.asked.length, 3);
  });

  it('a round asked while there was no leader is asked again as soon as one is known, under a new context', async () => {
    const t = setup();
    const r = t.read('a');
    assert.equal(t.asked.length, 1);
    // Raft dropped it (no leader); a leader is then learned well before the retry is due.
    t.clock.advance(RETRY_MS / 5);
    t.reader.leaderKnown();
    assert.equal(t.asked.length, 2, 'asked again at once');
    assert.notDeepEqual(t.asked[1], t.asked[0]);
    t.answer(10);
    await r;
    assert.deepEqual(t.done, ['a']);
    // Nothing in flight: a leader learned later asks nothing.
    t.reader.leaderKnown();
    assert.equal(t.asked.length, 2);
  });

  it('a read whose caller gave up leaves its round: nothing is held or asked for it any more', async () => {
    const t = setup();
    // No leader: the round is never answered. Reads pile up behind it, then time out.
    const gaveUp = Array.from({ length: 1000 }, () => new AbortController());
    const reads = gaveUp.map((ac) => t.reader.wait(ac.signal).then(() => 'served', (e: Error) => e.message));
    assert.equal(t.asked.length, 1);
    t.clock.advance(RETRY_MS);
    assert.equal(t.asked.length, 2, 'asked again while reads wait');
    for (const ac of gaveUp) ac.abort(new Error('timed out'));
    assert.deepEqual(new Set(await Promise.all(reads)), new Set(['timed out']));
    // Before: every one stayed queued (1.4 KB each) and the round was asked for every retry
    // interval until a leader came back.
    const afterAborts = t.asked.length;
    t.clock.advance(10 * RETRY_MS);
    assert.equal(t.asked.length, afterAborts, 'no round asked for reads nobody waits on');
    // A read made later starts a round of its own at once, and is served by its answer.
    const r = t.read('later');
    assert.equal(t.asked.length, afterAborts + 1);
    t.answer(10);
    await r;
    assert.deepEqual(t.done, ['later']);
    // An answer to the abandoned round is ignored (counted as a slow read index).
    t.reader.onReadState(t.asked[1]!, 10);
    assert.equal(t.reader.slow, 1);
  });

  it('a round that took longer than the interval is followed at once', async () => {
    const t = setup();
    const a = t.read('a');
    const b = t.read('b');
    t.clock.advance(MIN_ROUND_INTERVAL_MS + 2);
    t.answer(10);
    assert.equal(t.asked.length, 2);
    t.answer(10);
    await Promise.all([a, b]);
  });

  it('reads held for the next round fail with the rest when the server stops, and no round starts later', async () => {
    const t = setup();
    const a = t.read('a');
    const b = t.read('b');
    t.answer(10);
    await a;
    t.reader.failAll(new Error('etcdserver: server stopped'));
    await b;
    assert.equal(t.clock.pending(), 0, 'the hold (and the retry) cancelled');
    t.clock.advance(10 * MIN_ROUND_INTERVAL_MS);
    assert.equal(t.asked.length, 1);
    assert.deepEqual(t.done, ['a', 'b: etcdserver: server stopped']);
    // Nothing is left held: a read after it starts a round at once.
    t.read('c');
    assert.equal(t.asked.length, 2);
  });

  it('reads that time out while held count once, as a round does', async () => {
    const t = setup();
    const a = t.read('a');
    t.read('b');
    t.read('c');
    t.answer(10);
    await a;
    t.reader.timedOut();
    t.reader.timedOut();
    assert.equal(t.reader.slow, 1);
    t.clock.advance(MIN_ROUND_INTERVAL_MS);
    t.reader.timedOut();
    t.reader.timedOut();
    assert.equal(t.reader.slow, 2, 'and once for the round they then went in');
  });
});
