// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.

import type * as grpc from '@grpc/grpc-js';
import {
  type CompactionRequest,
  CompactionResponse,
  type DeleteRangeRequest,
  DeleteRangeResponse,
  KVService,
  type PutRequest,
  PutResponse,
  type RangeRequest,
  RangeResponse,
  type TxnRequest,
  TxnResponse,
} from '../gen/etcd/rpc.js';
import { checkDelete, checkPut, checkRange, checkTxn, doRangeAsync, oneRequestPerOp, readTxnAsync, txnIsReadOnly } from '../kv/kv-ops.js';
import { Errors } from '../kv/errors.js';
import * as authCheck from '../auth/apply-checks.js';
import { authOf } from '../auth/frontend.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { yieldToEventLoop } from '../util/yield.js';
import { unary, withoutResponseCopies } from './grpc-util.js';
import { decodeRangeRequest, decodeTxnRequest } from './range-end-presence.js';
import { encodeDeleteRangeResponseInSlices, encodeRangeResponseInSlices, encodeTxnResponseInSlices, usingPreEncoded } from './sliced-encoding.js';

/**
 * The yield between slices of a large read, which gives it up once its caller is gone: a read
 * of millions of keys otherwise ran on for minutes, and held gigabytes, for nobody.
 */
export function pauseWhileWanted(call: { readonly cancelled: boolean }): () => Promise<void> {
  return () => (call.cancelled ? Promise.reject(Errors.canceled()) : yieldToEventLoop());
}

export function kvService(s: EtcdServer): [typeof KVService, grpc.UntypedServiceImplementation] {
  const auth = authOf(s);
  const range = async (req: RangeRequest, call: grpc.ServerUnaryCall<RangeRequest, RangeResponse>): Promise<RangeResponse> => {
    checkRange(req);
    if (!req.serializable && s.isLearner()) throw Errors.notSupportedForLearner();
    if (!req.serializable) await s.linearizableRead();
    // Reads are checked here, on the state they are served from (etcd's doSerialize).
    const reader = auth.checksCaller(call) ? await auth.readerOf(call) : undefined;
    if (reader) authCheck.checkRange(s.sm.auth, reader, req);
    s.sm.store.stats.record(1);
    // Large ranges are collected and encoded in slices (never a stall of the event loop).
    const pause = pauseWhileWanted(call);
    const r = await doRangeAsync(s.sm.store, req, pause);
    return encodeRangeResponseInSlices({ header: s.header(r.rev), kvs: r.kvs, more: r.more, count: r.count }, pause);
  };
  // Writes are checked when applied (src/auth/apply-checks.ts), as the caller of the token.
  const put = async (req: PutRequest, call: grpc.ServerUnaryCall<PutRequest, PutResponse>): Promise<PutResponse> => {
    checkPut(req);
    return auth.propose(call, 'put', req);
  };
  const deleteRange = async (req: DeleteRangeRequest, call: grpc.ServerUnaryCall<DeleteRangeRequest, DeleteRangeResponse>): Promise<DeleteRangeResponse> => {
    checkDelete(req);
    // With prev_kv, its answer holds every key it deleted: encoded in slices, like a Range's.
    return encodeDeleteRangeResponseInSlices(await auth.propose(call, 'deleteRange', req), pauseWhileWanted(call));
  };
  const txn = async (req: TxnRequest, call: grpc.ServerUnaryCall<TxnRequest, TxnResponse>): Promise<TxnResponse> => {
    oneRequestPerOp(req);
    checkTxn(req, s.cfg.maxTxnOps);
    if (txnIsReadOnly(req)) {
      // A read-only txn needs no consensus round: a linearizable read point is enough.
      await s.linearizableRead();
      const reader = auth.checksCaller(call) ? await auth.readerOf(call) : undefined;
      if (reader) authCheck.checkTxn(s.sm.auth, s.lessor, reader, req);
      // Its ranges are read and encoded in slices, like a Range's (never a stall of the loop).
      const pause = pauseWhileWanted(call);
      const res = await readTxnAsync(s.sm.store, req, (rev) => s.header(rev), pause);
      return encodeTxnResponseInSlices(res, pause);
    }
    // A txn that writes: its ranges over many keys were read after it was applied, in slices
    // (kv-ops.ts, applyTxn); its answer is encoded in slices too.
    return encodeTxnResponseInSlices(await auth.propose(call, 'txn', req), yieldToEventLoop);
  };
  const compact = async (req: CompactionRequest, call: grpc.ServerUnaryCall<CompactionRequest, CompactionResponse>): Promise<CompactionResponse> => {
    // No permission needed, as in etcd 3.4 (neither its API nor its auth applier checks one):
    // a client that compacts as a user without the root role (an apiserver) works unchanged.
    return auth.propose(call, 'compaction', req);
  };
  const def = withoutResponseCopies(KVService, {
    range: RangeResponse,
    put: PutResponse,
    deleteRange: DeleteRangeResponse,
    txn: TxnResponse,
    compact: CompactionResponse,
  });
  return [
    // Range's, DeleteRange's and Txn's serializers send responses encoded in slices beforehand as they are.
    // Range's and Txn's request decoders tell a present, empty range_end from an absent one
    // where etcd does (./range-end-presence.ts).
    {
      ...def,
      range: { ...def.range, requestDeserialize: decodeRangeRequest, responseSerialize: usingPreEncoded(def.range.responseSerialize) },
      deleteRange: { ...def.deleteRange, responseSerialize: usingPreEncoded(def.deleteRange.responseSerialize) },
      txn: { ...def.txn, requestDeserialize: decodeTxnRequest, responseSerialize: usingPreEncoded(def.txn.responseSerialize) },
    },
    {
      range: unary(s, range, { learnerOk: true }),
      put: unary(s, put),
      deleteRange: unary(s, deleteRange),
      txn: unary(s, txn),
      compact: unary(s, compact),
    },
  ];
}
