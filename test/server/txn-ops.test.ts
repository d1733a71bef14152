// A Txn op is one request (protobuf's oneof), but a hand-made message can carry several: JSON
// with two `request_*` fields through the gateway, or protobuf with two of the oneof's fields.
// Every member must read it alike: the member answering the client used to take the range
// where the others took the put, so such a txn wrote on some replicas and not on others.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import type { RequestOp } from '../../src/gen/etcd/rpc.js';
import { EntryType } from '../../src/raft/index.js';
import type { StateMachine } from '../../src/server/state-machine.js';
import { applyNow, newStateMachine } from '../support/state-machine.js';

const B = (s: string): Buffer => Buffer.from(s, 'latin1');

function txnEntry(success: Array<Partial<RequestOp>>, index = 1) {
  const data = InternalRequest.encode(InternalRequest.fromPartial({ id: 1n, proposer: 7n, txn: { compare: [], success, failure: [] } })).finish();
  return { term: 1, index, type: EntryType.Normal, data };
}

const keys = (sm: StateMachine): string[] => sm.store.range(B('\0'), B('\0')).kvs.map((kv) => `${Buffer.from(kv.key).toString()}=${Buffer.from(kv.value).toString()}`);

describe('a txn op with several requests', () => {
  for (const [name, op, want] of [
    ['a range and a put', { requestRange: { key: B('k') }, requestPut: { key: B('k'), value: B('v') } }, ['k=v']],
    ['a put and a delete', { requestPut: { key: B('k'), value: B('v') }, requestDeleteRange: { key: B('k') } }, []],
    ['a put and a nested txn', { requestPut: { key: B('k'), value: B('v') }, requestTxn: { compare: [], success: [{ requestPut: { key: B('n'), value: B('1') } }], failure: [] } }, ['n=1']],
  ] as const) {
    it(`${name}: the member that answers and the others apply the same (the last field on the wire)`, () => {
      const answering = newStateMachine();
      const other = newStateMachine();
      const a = applyNow(answering, txnEntry([op as Partial<RequestOp>]), () => true);
      const b = applyNow(other, txnEntry([op as Partial<RequestOp>]), () => false);
      assert.ok(a.outcome.ok && b.outcome.ok);
      assert.deepEqual(keys(answering), want);
      assert.deepEqual(keys(other), want);
      assert.equal(answering.store.currentRev, other.store.currentRev);
    });
  }
});
