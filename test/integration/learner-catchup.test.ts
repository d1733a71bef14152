// A member added to a quiet cluster whose log was compacted catches up by a snapshot of the
// state as applied now (etcd's merged snapshot), not by the last snapshot saved to disk, which
// was made before the member existed and which it would refuse ("not in the ConfState").

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('a learner added to an idle cluster with a compacted log', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3, snapshotCount: 100, extraArgs: ['--snapshot-catchup-entries', '10'] });
  });
  after(async () => {
    await c?.destroy();
  });

  it('catches up and is promoted without any further writes', async () => {
    const lead = await c.waitForLeader();
    for (let i = 0; i < 250; i += 25) {
      await Promise.all(Array.from({ length: 25 }, (_, j) => c.client(lead).put(`k${i + j}`, `v${i + j}`)));
    }
    // Snapshots were saved and the log compacted past its start: a newcomer needs a snapshot.
    await eventually(async () => assert.match(c.logs(), /saved snapshot at index \d+ .*log compacted to (\d{2,})/));
    const i = await c.addMember();
    const added = await c.client(lead).memberAdd([c.peerUrl(i)], true);
    c.startMember(i);
    // No writes from here on (the newcomer's own publish aside): it must still get every key.
    await eventually(async () => assert.equal(await c.client(i).get('k249', true), 'v249'), 30_000);
    assert.equal(await c.client(i).get('k0', true), 'v0');
    await eventually(async () => {
      const lc = c.client(await c.waitForLeader());
      await lc.memberPromote(added.member!.ID);
    }, 30_000);
    const members = await c.client(lead).memberList();
    assert.equal(members.members.find((m) => m.ID === added.member!.ID)?.isLearner, false);
    assert.doesNotMatch(c.logs(), /not in the ConfState/);
  });
});
