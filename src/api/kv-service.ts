// etcdserverpb.KV: Range, Put, DeleteRange, Txn, Compact.

import type * as grpc from '@grpc/grpc-js';
import {
  type CompactionRequest,
  type CompactionResponse,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  KVService,
  type PutRequest,
  type PutResponse,
  type RangeRequest,
  type RangeResponse,
  type TxnRequest,
  type TxnResponse,
} from '../gen/etcd/rpc.js';
import { checkDelete, checkPut, checkRange, checkTxn, doRange, applyTxn, txnIsReadOnly } from '../kv/kv-ops.js';
import { Errors } from '../kv/errors.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { unary } from './grpc-util.js';

export function kvService(s: EtcdServer): [typeof KVService, grpc.UntypedServiceImplementation] {
  const range = async (req: RangeRequest): Promise<RangeResponse> => {
    checkRange(req);
    if (!req.serializable && s.isLearner()) throw Errors.notSupportedForLearner();
    if (!req.serializable) await s.linearizableRead();
    const r = doRange(s.sm.store, req);
    return { header: s.header(r.rev), kvs: r.kvs, more: r.more, count: r.count };
  };
  const put = async (req: PutRequest): Promise<PutResponse> => {
    checkPut(req);
    return s.propose('put', req);
  };
  const deleteRange = async (req: DeleteRangeRequest): Promise<DeleteRangeResponse> => {
    checkDelete(req);
    return s.propose('deleteRange', req);
  };
  const txn = async (req: TxnRequest): Promise<TxnResponse> => {
    checkTxn(req);
    if (txnIsReadOnly(req)) {
      // A read-only txn needs no consensus round: a linearizable read point is enough.
      await s.linearizableRead();
      const store = s.sm.store;
      const headers: Array<{ revision: bigint }> = [];
      const res = store.write((w) =>
        applyTxn(w, store, req, () => {
          const h = s.header(store.currentRev);
          headers.push(h);
          return h;
        }),
      );
      return { header: s.header(store.currentRev), ...res };
    }
    return s.propose('txn', req);
  };
  const compact = async (req: CompactionRequest): Promise<CompactionResponse> => {
    return s.propose('compaction', req);
  };
  return [
    KVService,
    {
      range: unary(s, range, { learnerOk: true }),
      put: unary(s, put),
      deleteRange: unary(s, deleteRange),
      txn: unary(s, txn),
      compact: unary(s, compact),
    },
  ];
}
