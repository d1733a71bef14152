// A present but empty range_end (as protobufjs writes one, e.g. the etcd3 npm client's
// inRange(key)) decoded as etcd reads it where etcd serves it locally, "every key from `key` on"
// ("\0"): a Range, and the ranges of a read-only Txn, nested txns included. An absent one stays
// one key, and so does every range_end of a Txn that writes (etcd's log drops empty fields).

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { RangeRequest, TxnRequest } from '../../src/gen/etcd/rpc.js';
import { decodeRangeRequest, decodeTxnRequest } from '../../src/api/range-end-presence.js';

/** A length-delimited field: tag, length, bytes. */
const ld = (field: number, bytes: Buffer | number[]): Buffer => Buffer.concat([Buffer.from([(field << 3) | 2, bytes.length]), Buffer.from(bytes)]);
const varintField = (field: number, v: number): Buffer => Buffer.from([field << 3, v]);
const key = (k: string) => ld(1, Buffer.from(k));
const EMPTY_END = ld(2, []);

it('Range: present and empty means to the end, absent means one key', () => {
  assert.deepEqual(decodeRangeRequest(Buffer.concat([key('a'), EMPTY_END, varintField(3, 5)])).rangeEnd, Buffer.from([0]));
  assert.equal(decodeRangeRequest(Buffer.concat([key('a'), EMPTY_END])).limit, 0n);
  assert.equal(decodeRangeRequest(Buffer.from(RangeRequest.encode(RangeRequest.fromPartial({ key: Buffer.from('a'), limit: 5n })).finish())).rangeEnd.length, 0);
  assert.deepEqual(decodeRangeRequest(Buffer.concat([key('a'), ld(2, Buffer.from('b'))])).rangeEnd, Buffer.from('b'));
  // An empty key field before it (key "") does not count as range_end.
  assert.equal(decodeRangeRequest(ld(1, [])).rangeEnd.length, 0);
});

it('Txn: the ranges of a read-only txn on either branch, in order, nested txns included; none of a txn that writes', () => {
  const rangeOp = (k: string, end?: Buffer) => ld(1, Buffer.concat([key(k), ...(end ? [end] : [])]));
  const deleteOp = (k: string, end?: Buffer) => ld(3, Buffer.concat([key(k), ...(end ? [end] : [])]));
  const nested = ld(2, rangeOp('n', EMPTY_END)); // a TxnRequest whose success has one range
  const readOnly = Buffer.concat([
    ld(2, rangeOp('a')), // one key
    ld(2, rangeOp('b', EMPTY_END)), // to the end
    ld(3, rangeOp('c', EMPTY_END)),
    ld(3, ld(4, nested)),
  ]);
  const t = decodeTxnRequest(readOnly);
  assert.equal(t.success[0]!.requestRange!.rangeEnd.length, 0);
  assert.deepEqual(t.success[1]!.requestRange!.rangeEnd, Buffer.from([0]));
  assert.deepEqual(t.failure[0]!.requestRange!.rangeEnd, Buffer.from([0]));
  assert.deepEqual(t.failure[1]!.requestTxn!.success[0]!.requestRange!.rangeEnd, Buffer.from([0]));
  // With a delete on a branch the txn writes: etcd's log drops the empty fields, one key each.
  const writes = decodeTxnRequest(Buffer.concat([ld(2, rangeOp('b', EMPTY_END)), ld(3, deleteOp('d', EMPTY_END))]));
  assert.equal(writes.success[0]!.requestRange!.rangeEnd.length, 0);
  assert.equal(writes.failure[0]!.requestDeleteRange!.rangeEnd.length, 0);
  // The generated encoder never writes an empty range_end: nothing changes.
  const plain = TxnRequest.fromPartial({ success: [{ requestRange: { key: Buffer.from('a') } }] });
  assert.equal(decodeTxnRequest(Buffer.from(TxnRequest.encode(plain).finish())).success[0]!.requestRange!.rangeEnd.length, 0);
});

it('Txn: an op carrying a range and a nested txn that writes is the txn (one request per op) before ranges are marked', () => {
  const rangeOp = (k: string, end?: Buffer) => Buffer.concat([key(k), ...(end ? [end] : [])]);
  // The nested txn reads "n" (present, empty range_end) and deletes "d": it writes.
  const nested = Buffer.concat([ld(2, ld(1, rangeOp('n', EMPTY_END))), ld(2, ld(3, rangeOp('d')))]);
  // One op: request_range (field 1) and request_txn (field 4) both set.
  const op = Buffer.concat([ld(1, rangeOp('r', EMPTY_END)), ld(4, nested)]);
  const t = decodeTxnRequest(ld(2, op));
  assert.equal(t.success[0]!.requestRange, undefined);
  // The txn writes, so etcd reads its empty range_end as one key.
  assert.equal(t.success[0]!.requestTxn!.success[0]!.requestRange!.rangeEnd.length, 0);
});
