// Periodic auto-compaction (etcd's --auto-compaction-mode periodic) on complete members in one
// process (a ManualClock: minutes pass in ticks): the leader compacts to the revision current one
// retention period before, and no member's samples of the revision outgrow that period (a
// follower kept every sample, one per 5 s, for as long as it ran).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parts, withCluster } from '../support/inproc-cluster.js';

it('periodic auto-compaction keeps one period of history, and one period of samples on every member', async () => {
  const retentionMs = 10_000;
  await withCluster({ size: 3, seed: 5, autoCompaction: { mode: 'periodic', retention: retentionMs } }, async (c) => {
    const L = await c.waitIdle();
    // A put every second for two minutes (10 ticks of 100 ms each).
    const revAt = new Map<number, bigint>();
    for (let s = 0; s < 120; s++) {
      const r = await c.run(c.put(L, `k${s % 7}`, String(s)));
      revAt.set(s, r.header!.revision);
      await c.tick(10);
    }
    // Compacted to a revision from about one period (10 s) ago, give or take a sample (5 s).
    const compactRev = L.server.sm.store.compactRev;
    assert.ok(compactRev >= revAt.get(100)! && compactRev <= revAt.get(112)!, `compacted to ${compactRev}`);
    for (const m of c.running()) {
      const n = parts(m.server).duties.revisionSamples;
      // One per 5 s over the period, and the one just older: not 24 (two minutes' worth).
      assert.ok(n <= retentionMs / 5000 + 2, `${m.name} holds ${n} samples`);
    }
  });
});
