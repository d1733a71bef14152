// The bcrypt worker's queue (src/auth/bcrypt-pool.ts): jobs go to the worker one at a time, a job
// whose caller has gone is dropped before it runs, and past MAX_QUEUED a job is refused — so
// abandoned Authenticate attempts cannot make a real login wait behind them (150 abandoned
// attempts used to delay the next login by 12.9 s).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import bcrypt from 'bcryptjs';
import { BcryptPool, MAX_QUEUED } from '../../src/auth/bcrypt-pool.js';

it("drops the jobs of callers that gave up before the worker runs them, and refuses past its bound", async () => {
  const pool = new BcryptPool(() => new Error('etcdserver: too many requests'));
  // The worker is unref'd (it never keeps a member alive): something must keep this test's loop alive.
  const alive = setInterval(() => {}, 1000);
  try {
    const hash = bcrypt.hashSync('secret', 4);
    // One job the worker takes at once, then 50 whose callers give up while they wait, then one more.
    const first = pool.compare('secret', hash);
    const gaveUp = Array.from({ length: 50 }, () => new AbortController());
    const abandoned = gaveUp.map((ac) => pool.compare('wrong', hash, ac.signal).then(() => 'ran', (e: Error) => e.message));
    const last = pool.compare('secret', hash);
    for (const ac of gaveUp) ac.abort();
    assert.equal(await first, true);
    assert.equal(await last, true);
    assert.deepEqual(new Set(await Promise.all(abandoned)), new Set(['cancelled']));
    // Before: all 52 went to the worker.
    assert.equal(pool.jobsRun, 2);

    // Bounded: while the worker is busy, MAX_QUEUED jobs wait and the next is refused.
    const busy = pool.compare('secret', hash);
    const waiting = Array.from({ length: MAX_QUEUED }, () => new AbortController());
    const queued = waiting.map((ac) => pool.compare('x', hash, ac.signal).catch((e: Error) => e.message));
    await assert.rejects(pool.compare('x', hash), /etcdserver: too many requests/);
    for (const ac of waiting) ac.abort();
    await busy;
    await Promise.all(queued);
    assert.equal(pool.queued, 0);
  } finally {
    clearInterval(alive);
    pool.close();
  }
});
