// A range_end that is present but empty, told apart from an absent one, as etcd tells them apart.
//
// In etcd (gogo protobuf) an absent range_end decodes to nil (one key) and a present, empty one
// to []byte{}, which its store reads as "every key from `key` on" (etcd's index.Range tests
// `end == nil`) — for what etcd serves locally: a Range, and a read-only Txn's ranges. Whatever
// goes through its Raft log (a DeleteRange, a Txn that writes) is marshalled again first, which
// drops an empty field: there it is one key (measured on etcd 3.4.23: the etcd3 npm client's
// `getAll().inRange('k')` reads every key from 'k' on, its `delete().inRange('k')` deletes 'k'
// alone). Clients do send one: that `inRange(key)`, as protobufjs writes an empty bytes field it
// was given. The generated decoders cannot see the difference (both decode to an empty Buffer),
// so the request's bytes are looked at here, and such a range_end becomes "\0", raftkv's (and
// etcd's) spelling of "to the end". Permissions are then checked on the whole range read (etcd
// 3.4 checks only the one key there).
//
// Owns: that one distinction, for Range and a read-only Txn's ranges. Never: changes any other
// field; compares keep their range_end as decoded.

import { RangeRequest, type RequestOp, TxnRequest } from '../gen/etcd/rpc.js';
import { oneRequestPerOp, txnIsReadOnly } from '../kv/kv-ops.js';
import { forEachLengthDelimited } from '../util/wire-fields.js';

/** "\0": every key from `key` on (a new Buffer each time: requests are not shared). */
const toEnd = (): Buffer => Buffer.from([0]);
/** range_end is field 2 of RangeRequest and DeleteRangeRequest. */
const RANGE_END = 2;

/** Whether the message in b[start, end) has a range_end field that is present and empty. */
function emptyRangeEndIn(b: Uint8Array, start: number, end: number): boolean {
  let found = false;
  forEachLengthDelimited(b, start, end, (field, from, to) => {
    if (field === RANGE_END && from === to) found = true;
    return found;
  });
  return found;
}

/** RangeRequest's decoder, with a present, empty range_end read as "to the end". */
export function decodeRangeRequest(b: Buffer): RangeRequest {
  const m = RangeRequest.decode(b);
  if (m.rangeEnd.length === 0 && emptyRangeEndIn(b, 0, b.length)) m.rangeEnd = toEnd();
  return m;
}

/** Whether any range on either branch (nested txns included) has an empty range_end. */
function mayHaveEmptyRangeEnd(t: TxnRequest): boolean {
  const ops = (list: RequestOp[]): boolean =>
    list.some((op) => (op.requestRange?.rangeEnd.length ?? 1) === 0 || (op.requestTxn !== undefined && mayHaveEmptyRangeEnd(op.requestTxn)));
  return ops(t.success) || ops(t.failure);
}

/** Marks the ranges of the txn in b[start, end) (decoded as `t`) whose range_end is present and empty. */
function markTxn(t: TxnRequest, b: Uint8Array, start: number, end: number): void {
  let success = 0;
  let failure = 0;
  forEachLengthDelimited(b, start, end, (field, from, to) => {
    // TxnRequest: success = 2, failure = 3 (repeated RequestOp, decoded in order).
    const op = field === 2 ? t.success[success++] : field === 3 ? t.failure[failure++] : undefined;
    if (!op) return;
    // RequestOp: request_range = 1, request_txn = 4.
    forEachLengthDelimited(b, from, to, (f, s, e) => {
      if (f === 1 && op.requestRange?.rangeEnd.length === 0 && emptyRangeEndIn(b, s, e)) op.requestRange.rangeEnd = toEnd();
      else if (f === 4 && op.requestTxn) markTxn(op.requestTxn, b, s, e);
    });
  });
}

/**
 * TxnRequest's decoder, with a read-only txn's present, empty range_ends read as "to the end"
 * (a txn that writes goes through etcd's log, which drops them: one key).
 */
export function decodeTxnRequest(b: Buffer): TxnRequest {
  const m = TxnRequest.decode(b);
  // One request per op first (kv-ops.ts): a nested txn dropped here must not decide anything.
  oneRequestPerOp(m);
  // A txn without a one-key range (puts, prefix reads) is not walked a second time.
  if (mayHaveEmptyRangeEnd(m) && txnIsReadOnly(m)) markTxn(m, b, 0, b.length);
  return m;
}
