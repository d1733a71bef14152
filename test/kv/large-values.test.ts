// Work over a few large values yields as it goes: a Range's answer, a Txn's (in protobuf and in
// the JSON gateway's text), HashKV, an etcd snapshot file, a Raft snapshot image and its loading
// each pause at least once per MiB or so
// of keys and values, not only every few thousand key-values. Counted by key-values alone, 24
// values of 512 KiB were one slice of 12 MiB, and three such Ranges at once held a leader's loop
// for over a second (it lost its leadership). The answers are the same as unsliced ones.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeRangeResponseInSlices, encodeTxnResponseInSlices, preEncodedParts } from '../../src/api/sliced-encoding.js';
import { apiSchema } from '../../src/api/gateway/schema.js';
import { encodeMessage, encodeMessageInSlices } from '../../src/api/gateway/jsonpb.js';
import { decodeEtcdSnapshot } from '../../src/backup/etcd-snapshot.js';
import { etcdSnapshotOfMachine } from '../../src/backup/member-backup.js';
import { RangeResponse, TxnResponse } from '../../src/gen/etcd/rpc.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { loadStoreImageAsync, storeImageAsync } from '../../src/server/snapshot-image.js';
import { SLICE_BYTES } from '../../src/util/yield.js';
import { newStateMachine } from '../support/state-machine.js';

const KEYS = 24;
const VALUE = 512 * 1024;
/** Pauses that slices of SLICE_BYTES make over the values, with room for one slice in two to hold two values. */
const SLICES = Math.floor((KEYS * VALUE) / SLICE_BYTES / 2);

const header = { clusterId: 1n, memberId: 2n, revision: 3n, raftTerm: 4n };

function counting(): { pause: () => Promise<void>; count: () => number } {
  let n = 0;
  return { pause: async () => void n++, count: () => n };
}

function filled(): ReturnType<typeof newStateMachine> {
  const sm = newStateMachine();
  for (let i = 0; i < KEYS; i++) sm.store.write((w) => w.put(Buffer.from(`big/${String(i).padStart(2, '0')}`), Buffer.alloc(VALUE, 97 + (i % 26)), 0n));
  return sm;
}

const all = (s: MvccStore) => s.range(Buffer.from('big/'), Buffer.from('big0'));

describe('work over a few large values yields as it goes', () => {
  it('a Range answer: encoded in slices of about a MiB, the generated encoder\'s message', async () => {
    const kvs = all(filled().store).kvs;
    const res: RangeResponse = { header, kvs, more: false, count: BigInt(kvs.length) };
    const p = counting();
    const parts = preEncodedParts(await encodeRangeResponseInSlices(res, p.pause));
    assert.ok(parts, 'encoded in slices');
    assert.ok(p.count() >= SLICES, `${p.count()} pauses`);
    assert.deepEqual(RangeResponse.decode(Buffer.concat(parts)), RangeResponse.decode(RangeResponse.encode(res).finish()));
  });

  it('a Txn answer with such a range: the same', async () => {
    const kvs = all(filled().store).kvs;
    const res: TxnResponse = { header, succeeded: true, responses: [{ responseRange: { header, kvs, more: false, count: BigInt(kvs.length) } }] };
    const p = counting();
    const parts = preEncodedParts(await encodeTxnResponseInSlices(res, p.pause));
    assert.ok(parts, 'encoded in slices');
    assert.ok(p.count() >= SLICES, `${p.count()} pauses`);
    assert.deepEqual(TxnResponse.decode(Buffer.concat(parts)), TxnResponse.decode(TxnResponse.encode(res).finish()));
  });

  it("the JSON gateway's text of such answers: written in slices, encodeMessage's text", async () => {
    const kvs = all(filled().store).kvs;
    const schema = apiSchema();
    const range: RangeResponse = { header, kvs, more: false, count: BigInt(kvs.length) };
    const txn: TxnResponse = { header, succeeded: true, responses: [{ responseRange: range }, { responseRange: range }] };
    for (const [name, res, slices] of [['etcdserverpb.RangeResponse', range, SLICES], ['etcdserverpb.TxnResponse', txn, 2 * SLICES]] as const) {
      const p = counting();
      const pieces = await encodeMessageInSlices(schema.messageNamed(name)!, res, p.pause);
      assert.ok(p.count() >= slices, `${name}: ${p.count()} pauses`);
      assert.equal(Buffer.concat(pieces).toString('utf8'), encodeMessage(schema.messageNamed(name)!, res));
    }
  });

  it('HashKV: the hash computed in one go', async () => {
    const s = filled().store;
    const p = counting();
    const r = await s.hashByRev(0n, p.pause);
    assert.ok(p.count() >= SLICES, `${p.count()} pauses`);
    assert.equal(r.hash, s.hash(0n));
  });

  it('an etcd snapshot file (Maintenance.Snapshot): built and hashed in slices, and it reads back', async () => {
    const sm = filled();
    const p = counting();
    const file = Buffer.concat(await etcdSnapshotOfMachine(sm, p.pause));
    assert.ok(p.count() >= 2 * SLICES, `${p.count()} pauses`); // once to write the pages, once to hash them
    const back = await decodeEtcdSnapshot(file, async () => {});
    assert.deepEqual(all(back.store).kvs.map((kv) => [kv.key, kv.value]), all(sm.store).kvs.map((kv) => [kv.key, kv.value]));
  });

  it('a Raft snapshot image: built and loaded in slices', async () => {
    const s = filled().store;
    const built = counting();
    const img = await storeImageAsync(s, built.pause);
    assert.ok(built.count() >= SLICES, `${built.count()} pauses to build`);
    const loaded = counting();
    const t = new MvccStore();
    t.currentRev = BigInt(img.currentRev);
    await loadStoreImageAsync(t, Buffer.concat(img.chunks), 0, loaded.pause);
    assert.ok(loaded.count() >= SLICES, `${loaded.count()} pauses to load`);
    assert.equal(t.hash(0n), s.hash(0n));
  });
});
