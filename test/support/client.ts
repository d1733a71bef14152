// A minimal promise-based etcd v3 client over the generated stubs, for tests and benchmarks.
// (Compatibility tests use the real etcd3 npm package and etcdctl instead.)

import * as grpc from '@grpc/grpc-js';
import {
  KVClient,
  LeaseClient,
  MaintenanceClient,
  ClusterClient,
  type DeleteRangeRequest,
  type DeleteRangeResponse,
  type PutRequest,
  type PutResponse,
  RangeRequest,
  type RangeResponse,
  type StatusResponse,
  type TxnRequest,
  type TxnResponse,
  type MemberListResponse,
} from '../../src/gen/etcd/rpc.js';

type Cb<T> = (err: grpc.ServiceError | null, res?: T) => void;

function call<Req, Res>(f: (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: Cb<Res>) => unknown, req: Req, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) =>
    f(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(err) : resolve(res!))),
  );
}

const b = (s: string | Buffer): Buffer => (typeof s === 'string' ? Buffer.from(s) : s);

export class TestClient {
  readonly kv: InstanceType<typeof KVClient>;
  readonly maint: InstanceType<typeof MaintenanceClient>;
  readonly lease: InstanceType<typeof LeaseClient>;
  readonly cluster: InstanceType<typeof ClusterClient>;

  constructor(
    readonly endpoint: string,
    readonly timeoutMs = 10_000,
    /** TLS credentials for an https member (default: plaintext). */
    creds: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  ) {
    const opts = { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024 };
    this.kv = new KVClient(endpoint, creds, opts);
    this.maint = new MaintenanceClient(endpoint, creds, opts);
    this.lease = new LeaseClient(endpoint, creds, opts);
    this.cluster = new ClusterClient(endpoint, creds, opts);
  }

  put(key: string | Buffer, value: string | Buffer, extra: Partial<PutRequest> = {}): Promise<PutResponse> {
    const req: PutRequest = { key: b(key), value: b(value), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false, ...extra };
    return call(this.kv.put.bind(this.kv), req, this.timeoutMs);
  }

  range(key: string | Buffer, extra: Partial<RangeRequest> = {}): Promise<RangeResponse> {
    const req = RangeRequest.fromPartial({ key: b(key), ...extra });
    return call(this.kv.range.bind(this.kv), req, this.timeoutMs);
  }

  async get(key: string, serializable = false): Promise<string | undefined> {
    const r = await this.range(key, { serializable });
    return r.kvs[0]?.value.toString();
  }

  del(key: string | Buffer, extra: Partial<DeleteRangeRequest> = {}): Promise<DeleteRangeResponse> {
    return call(this.kv.deleteRange.bind(this.kv), { key: b(key), rangeEnd: Buffer.alloc(0), prevKv: false, ...extra }, this.timeoutMs);
  }

  txn(req: TxnRequest): Promise<TxnResponse> {
    return call(this.kv.txn.bind(this.kv), req, this.timeoutMs);
  }

  status(): Promise<StatusResponse> {
    return call(this.maint.status.bind(this.maint), {}, this.timeoutMs);
  }

  memberList(): Promise<MemberListResponse> {
    return call(this.cluster.memberList.bind(this.cluster), { linearizable: false }, this.timeoutMs);
  }

  memberAdd(peerURLs: string[], isLearner = false) {
    return call(this.cluster.memberAdd.bind(this.cluster), { peerURLs, isLearner }, this.timeoutMs);
  }

  memberRemove(ID: bigint) {
    return call(this.cluster.memberRemove.bind(this.cluster), { ID }, this.timeoutMs);
  }

  memberUpdate(ID: bigint, peerURLs: string[]) {
    return call(this.cluster.memberUpdate.bind(this.cluster), { ID, peerURLs }, this.timeoutMs);
  }

  memberPromote(ID: bigint) {
    return call(this.cluster.memberPromote.bind(this.cluster), { ID }, this.timeoutMs);
  }

  moveLeader(targetID: bigint) {
    return call(this.maint.moveLeader.bind(this.maint), { targetID }, this.timeoutMs);
  }

  close(): void {
    this.kv.close();
    this.maint.close();
    this.lease.close();
    this.cluster.close();
  }
}
