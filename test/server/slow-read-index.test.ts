// etcd_server_slow_read_indexes_total counts a read-index request that timed out, whichever of
// etcd's two timeout texts its reads were answered with: "request timed out" and, when the
// leader changed during the wait, "request timed out, possibly due to previous leader failure"
// (the member that loses its leader mid-read, the case the metric is watched for).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { EtcdError, Errors } from '../../src/kv/errors.js';
import { withCluster } from '../support/inproc-cluster.js';

it('a read that times out after losing its leader counts as a slow read index', async () => {
  await withCluster({ size: 3, seed: 7 }, async (c) => {
    const L = await c.waitIdle();
    const F = c.members().find((m) => m !== L)!;
    const before = F.server.slowReadIndexes();
    // Cut off while it still has a leader: the read's round is asked of a leader that never answers,
    // and the follower loses that leader while the read waits.
    c.net.isolate(F.id);
    const read = F.server.linearizableRead().then(() => undefined, (e: unknown) => e);
    const err = await c.run(read, { ticks: 400, what: 'the read answered' });
    assert.ok(err instanceof EtcdError, String(err));
    assert.equal(err.message, Errors.timeoutDueToLeaderFail().message);
    assert.equal(F.server.slowReadIndexes() - before, 1);
    c.net.heal();
  });
});
