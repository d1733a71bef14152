// A member's state as an etcd snapshot (src/backup/member-backup.ts) and the pieces of
// --force-new-cluster (src/server/force-new-cluster.ts), in process.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { decodeEtcdSnapshot } from '../../src/backup/etcd-snapshot.js';
import { etcdSnapshotOfMachine } from '../../src/backup/member-backup.js';
import { type KeyValueRecord, Slab, decodeKeyValue, encodeKeyValue } from '../../src/backup/kv-record.js';
import { KeyValue } from '../../src/gen/etcd/kv.js';
import { ConfChangeType, EntryType, decodeConfChangeEntry, emptyConfState, encodeConfChangeV1 } from '../../src/raft/index.js';
import { configuredIds, standaloneEntries } from '../../src/server/force-new-cluster.js';
import { newStateMachine } from '../support/state-machine.js';

const pause = (): Promise<void> => new Promise((r) => setImmediate(r));

it('snapshots one point in time while writes, a lease revoke and a compaction go on during the build', async () => {
  const sm = newStateMachine();
  const s = sm.store;
  for (let i = 0; i < 5000; i++) s.write((w) => w.put(Buffer.from(`k/${String(i).padStart(5, '0')}`), Buffer.from(`v${i}`), 0n));
  sm.lessor.grant(77n, 600n);
  s.write((w) => {
    w.put(Buffer.from('leased'), Buffer.from('x'), 77n);
    w.deleteRange(Buffer.from('k/00001'), undefined);
  });
  sm.membership.add({ id: 0xfedcba9876543210n, name: 'm1', peerUrls: ['http://a:2380'], clientUrls: ['http://a:2379'], isLearner: false });
  sm.appliedIndex = 1234;
  const rev = s.currentRev;
  const expected = s.range(Buffer.from([0]), Buffer.from([0])).kvs;
  // The build yields; meanwhile the state moves on.
  let yields = 0;
  const building = etcdSnapshotOfMachine(sm, async () => {
    yields++;
    if (yields === 1) {
      for (let i = 0; i < 100; i++) s.write((w) => w.put(Buffer.from(`k/${String(i).padStart(5, '0')}`), Buffer.from('later'), 0n));
      s.compact(s.currentRev);
      sm.lessor.revoke(77n);
    }
    await pause();
  });
  const file = Buffer.concat(await building);
  assert.ok(yields > 1, 'the build yielded to the event loop');
  const back = await decodeEtcdSnapshot(file, pause);
  assert.equal(back.store.currentRev, rev);
  assert.equal(back.store.compactRev, -1n);
  assert.deepEqual(back.store.range(Buffer.from([0]), Buffer.from([0])).kvs, expected);
  assert.deepEqual(back.leases, [{ id: 77n, ttl: 600n, remainingTTL: 0n }]);
  assert.equal(back.consistentIndex, 1234n);
  assert.deepEqual(back.members.map((m) => [m.id, m.name, m.clientUrls]), [[0xfedcba9876543210n, 'm1', ['http://a:2379']]]);
});

it('--force-new-cluster: the configuration at the log\'s end, then removals of every other member', () => {
  const cc = (type: ConfChangeType, nodeId: bigint) => ({ term: 2, index: 0, type: EntryType.ConfChange, data: encodeConfChangeV1({ type, nodeId, context: new Uint8Array(0) }) });
  const conf = { ...emptyConfState(), voters: [1n, 2n, 3n], learners: [4n] };
  const ids = configuredIds(conf, [cc(ConfChangeType.RemoveNode, 3n), cc(ConfChangeType.AddLearnerNode, 5n), { term: 2, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  assert.deepEqual([...ids].sort(), [1n, 2n, 4n, 5n]);
  const ents = standaloneEntries(ids, 2n, undefined, 7, 100);
  assert.deepEqual(ents.map((e) => [e.index, e.term]), [[101, 7], [102, 7], [103, 7]]);
  assert.deepEqual(ents.map((e) => decodeConfChangeEntry(e.type, e.data).changes[0]), [
    { type: ConfChangeType.RemoveNode, nodeId: 1n },
    { type: ConfChangeType.RemoveNode, nodeId: 4n },
    { type: ConfChangeType.RemoveNode, nodeId: 5n },
  ]);
  // A member somehow missing from the configuration adds itself back.
  const self = standaloneEntries(new Set([9n]), 2n, { id: 2n, name: 'n2', peerUrls: ['http://b:2380'], clientUrls: [], isLearner: false }, 1, 5);
  assert.deepEqual(self.map((e) => decodeConfChangeEntry(e.type, e.data).changes[0]!.type), [ConfChangeType.RemoveNode, ConfChangeType.AddNode]);
});

it('codes key records exactly as the generated mvccpb.KeyValue codec (large and negative int64s too)', () => {
  const slab = new Slab(64);
  const cases: KeyValueRecord[] = [
    { key: Buffer.from('abc'), createRevision: 5n, modRevision: 300n, version: 2n, value: Buffer.alloc(200, 0x76), lease: 7587882713306335495n },
    { key: Buffer.from('k'), createRevision: 0n, modRevision: 0n, version: 0n, value: Buffer.alloc(0), lease: 0n },
    { key: Buffer.alloc(0), createRevision: 2n ** 53n + 1n, modRevision: 2n ** 63n - 1n, version: 1n, value: Buffer.from('x'), lease: -5n },
  ];
  for (const kv of cases) {
    const ours = Buffer.from(encodeKeyValue(kv, slab));
    assert.deepEqual(ours, Buffer.from(KeyValue.encode(kv).finish()));
    assert.deepEqual(decodeKeyValue(ours), kv);
  }
  assert.throws(() => decodeKeyValue(Buffer.from([0x0a, 0x05, 0x61])), /malformed/);
});
