// A DeleteRange with prev_kv answers with every key it deleted: over many keys its answer is
// encoded in slices that yield (src/api/sliced-encoding.ts), as a Range's is — 500,000 of them
// encoded in one turn held a leader's loop for 2+ s (it lost its leadership), and 8-11 s through
// the JSON gateway. Likewise a Txn's answer holding such a DeleteRange's. Checked on the KV
// service's handlers of an in-process member, given a call whose `cancelled` is read at each
// pause (kv-service.ts, pauseWhileWanted).

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { clientServices } from '../../src/api/client-server.js';
import { preEncodedParts, SLICED_ENCODING_MIN_KVS } from '../../src/api/sliced-encoding.js';
import { DeleteRangeRequest, DeleteRangeResponse, type RequestOp, TxnResponse } from '../../src/gen/etcd/rpc.js';
import { type InProcCluster, InProcCluster as Cluster } from '../support/inproc-cluster.js';

const N = SLICED_ENCODING_MIN_KVS + 1500;
const B = (s: string): Buffer => Buffer.from(s, 'latin1');
const key = (p: string, i: number) => B(`${p}/${String(i).padStart(6, '0')}`);

describe('a DeleteRange with prev_kv over many keys', () => {
  let c: InProcCluster;
  let impl: grpc.UntypedServiceImplementation;
  let def: grpc.ServiceDefinition;
  before(async () => {
    c = await Cluster.start({ size: 1, seed: 11 });
    await c.waitIdle();
    [def, impl] = clientServices(c.member('n1').server).find(([, i]) => 'deleteRange' in i)!;
  });
  after(async () => {
    await c?.close();
  });

  /** Puts N keys under `p/`. */
  async function fill(p: string): Promise<void> {
    const success: RequestOp[] = [];
    for (let i = 0; i < N; i++) success.push({ requestPut: { key: key(p, i), value: B(`value ${i}`), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    await c.run(c.member('n1').server.propose('txn', { compare: [], success, failure: [] }));
  }

  /** Calls the KV service's `method` as grpc-js would; counts the reads of the call's `cancelled` (its pauses). */
  async function call(method: string, request: unknown, cancelAt = Infinity): Promise<{ err: unknown; res: unknown; pauses: number }> {
    let pauses = 0;
    const fake = {
      request,
      metadata: new grpc.Metadata(),
      get cancelled() {
        return ++pauses >= cancelAt;
      },
    };
    const answered = new Promise<{ err: unknown; res: unknown }>((resolve) => (impl[method] as grpc.handleUnaryCall<unknown, unknown>)(fake as unknown as grpc.ServerUnaryCall<unknown, unknown>, (err, res) => resolve({ err, res })));
    return { ...(await c.run(answered)), pauses };
  }

  const count = (p: string) => c.member('n1').server.sm.store.range(B(`${p}/`), B(`${p}0`), { countOnly: true }).count;

  it("pauses while its answer is encoded, which is sent as it was encoded: DeleteRangeResponse.encode's bytes", async () => {
    await fill('a');
    const { err, res, pauses } = await call('deleteRange', DeleteRangeRequest.fromPartial({ key: B('a/'), rangeEnd: B('a0'), prevKv: true }));
    assert.equal(err, null);
    const r = res as DeleteRangeResponse;
    assert.equal(r.deleted, BigInt(N));
    assert.equal(r.prevKvs.length, N);
    assert.equal(Buffer.from(r.prevKvs[N - 1]!.value).toString(), `value ${N - 1}`);
    assert.ok(pauses >= 1, `${pauses} pauses`);
    const parts = preEncodedParts(r);
    assert.ok(parts && parts.length > 2, 'encoded in slices');
    assert.ok(Buffer.concat(parts).equals(Buffer.from(DeleteRangeResponse.encode(r).finish())));
    // The method's serializer (grpc-js's path) sends those bytes as they are: emptied here, the
    // object would encode without its prev_kvs.
    const serialize = def.deleteRange!.responseSerialize as (v: unknown) => Buffer;
    const want = Buffer.concat(parts);
    r.prevKvs = [];
    assert.ok(serialize(r).equals(want));
    assert.equal(count('a'), 0);
  });

  it('without prev_kv, or over few keys: answered as it is (nothing to slice)', async () => {
    await fill('b');
    const few = await call('deleteRange', DeleteRangeRequest.fromPartial({ key: B('b/'), rangeEnd: B('b/000010'), prevKv: true }));
    assert.equal((few.res as DeleteRangeResponse).prevKvs.length, 10);
    const all = await call('deleteRange', DeleteRangeRequest.fromPartial({ key: B('b/'), rangeEnd: B('b0') }));
    assert.equal((all.res as DeleteRangeResponse).deleted, BigInt(N - 10));
    for (const r of [few, all]) {
      assert.equal(r.err, null);
      assert.equal(r.pauses, 0);
      assert.equal(preEncodedParts(r.res), undefined);
    }
  });

  it('its caller gone while its answer is encoded: given up ("context canceled"), the keys deleted all the same', async () => {
    await fill('c');
    const { err, pauses } = await call('deleteRange', DeleteRangeRequest.fromPartial({ key: B('c/'), rangeEnd: B('c0'), prevKv: true }), 1);
    assert.equal(pauses, 1);
    assert.match(String((err as grpc.ServiceError)?.details), /context canceled/);
    assert.equal(count('c'), 0);
  });

  it("in a Txn: the Txn's answer is encoded in slices, TxnResponse.encode's bytes", async () => {
    await fill('d');
    const del = DeleteRangeRequest.fromPartial({ key: B('d/'), rangeEnd: B('d0'), prevKv: true });
    const { err, res } = await call('txn', { compare: [], success: [{ requestDeleteRange: del }], failure: [] });
    assert.equal(err, null);
    const r = res as TxnResponse;
    assert.equal(r.responses[0]!.responseDeleteRange!.prevKvs.length, N);
    const parts = preEncodedParts(r);
    assert.ok(parts && parts.length > 2, 'encoded in slices');
    assert.ok(Buffer.concat(parts).equals(Buffer.from(TxnResponse.encode(r).finish())));
    assert.equal(count('d'), 0);
  });
});
