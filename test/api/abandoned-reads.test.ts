// A large read gives up at its next slice once its caller is gone (the call is cancelled):
// before, a read-only Txn of millions of key-values ran on for ~95 s and held gigabytes after
// its client had cancelled (found by an adversarial probe).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { pauseWhileWanted } from '../../src/api/kv-service.js';
import { RangeRequest } from '../../src/gen/etcd/rpc.js';
import { doRangeAsync } from '../../src/kv/kv-ops.js';
import { MvccStore } from '../../src/kv/mvcc.js';

it('a Range in slices stops with "context canceled" once its call is cancelled, and runs whole while it is not', async () => {
  const s = new MvccStore();
  s.write((w) => {
    for (let i = 0; i < 50_000; i++) w.put(Buffer.from(`k/${String(i).padStart(6, '0')}`), Buffer.from('v'), 0n);
  });
  const req = RangeRequest.fromPartial({ key: Buffer.from('k/'), rangeEnd: Buffer.from('k0') });
  const wanted = { cancelled: false };
  assert.equal((await doRangeAsync(s, req, pauseWhileWanted(wanted))).kvs.length, 50_000);
  const call = { cancelled: false };
  const pause = pauseWhileWanted(call);
  let pauses = 0;
  const reading = doRangeAsync(s, req, () => {
    if (++pauses === 2) call.cancelled = true; // the client goes away mid-read
    return pause();
  });
  await assert.rejects(reading, /context canceled/);
  assert.equal(pauses, 2);
  // Nothing is left pinned: a compaction prunes at once.
  s.write((w) => w.put(Buffer.from('k/000000'), Buffer.from('w'), 0n));
  s.compact(s.currentRev);
  assert.equal(s.range(Buffer.from('k/000000'), undefined).kvs[0]!.value.toString(), 'w');
});
