// --lease-reads (opt-in): linearizable reads answered on the leader's CheckQuorum lease instead
// of a heartbeat round. The default stays ReadIndex; this only checks the opt-in serves reads
// that see every acknowledged write, from the leader and through followers.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProcCluster } from '../support/proc-cluster.js';

describe('--lease-reads', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3, extraArgs: ['--lease-reads'] });
  });
  after(async () => {
    await c?.destroy();
  });

  it('reads on every member see the writes acknowledged before them', async () => {
    const l = await c.waitForLeader();
    for (let k = 0; k < 30; k++) {
      const writer = c.client((l + k) % 3);
      await writer.put('lease-read', `v${k}`);
      for (let i = 0; i < 3; i++) assert.equal(await c.client(i).get('lease-read'), `v${k}`, `member ${i} after write ${k}`);
    }
    assert.match(c.members[l]!.log.join(''), /raft: StateLeader/);
  });
});
