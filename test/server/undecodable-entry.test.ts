// A committed entry that does not decode is skipped, alike on every member, instead of stopping
// the member (which then died again at each restart, replaying it). A bad-input probe got there
// with a Txn nested 49 deep: it decoded at the API (ts-proto's limit of 100 messages deep), and
// the log entry wrapping it was one message deeper.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import type { TxnRequest } from '../../src/gen/etcd/rpc.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { EntryType } from '../../src/raft/index.js';
import { newStateMachine, applyNow } from '../support/state-machine.js';

it('an entry that does not decode changes nothing and the next one applies', () => {
  const sm = newStateMachine();
  const skipped: number[] = [];
  sm.onUndecodable = (index) => skipped.push(index);
  // Deeper than any decoder allows (a txn nested 600 levels: 1,200 messages).
  let t: TxnRequest = { compare: [], success: [], failure: [] };
  for (let d = 0; d < 600; d++) t = { compare: [], success: [{ requestTxn: t }], failure: [] };
  const deep = InternalRequest.encode(InternalRequest.fromPartial({ id: 1n, proposer: 1n, txn: t })).finish();
  const garbage = Buffer.from([0x12, 0xff, 0xff, 0xff]); // a length past the end
  const put = InternalRequest.encode(InternalRequest.fromPartial({ id: 3n, proposer: 1n, put: { key: Buffer.from('k'), value: Buffer.from('v') } })).finish();
  const rev = sm.store.currentRev;
  assert.doesNotThrow(() => sm.applyNormal({ term: 1, index: 1, type: EntryType.Normal, data: deep }));
  assert.doesNotThrow(() => sm.applyNormal({ term: 1, index: 2, type: EntryType.Normal, data: garbage }));
  assert.deepEqual(skipped, [1, 2]);
  assert.equal(sm.store.currentRev, rev);
  assert.equal(sm.appliedIndex, 2);
  assert.ok(applyNow(sm, { term: 1, index: 3, type: EntryType.Normal, data: put }).outcome.ok);
  assert.equal(sm.store.currentRev, rev + 1n);
});
