// etcd's --auto-compaction-* flags: the leader compacts the MVCC history through Raft.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

it('revision-mode auto-compaction keeps only the last N revisions', async () => {
  const c = await ProcCluster.start({ size: 1, extraArgs: ['--auto-compaction-mode', 'revision', '--auto-compaction-retention', '5'] });
  try {
    for (let i = 0; i < 30; i++) await c.client(0).put('k', String(i));
    // Revision 2 is the first put; once compacted, reading it fails with etcd's error.
    await eventually(async () => assert.rejects(() => c.client(0).range('k', { revision: 2n }), /required revision has been compacted/), 15_000, 500);
    assert.equal(await c.client(0).get('k'), '29');
    const h = await c.client(0).range('k', { revision: 30n });
    assert.equal(h.kvs[0]!.value.toString(), '28');
  } finally {
    await c.destroy();
  }
});
