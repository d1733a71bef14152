// The client services' response serializers (grpc-util.ts withoutResponseCopies, and Range's
// pre-encoded slices on top) send the same bytes as the generated ones, for small responses
// (copied) and large ones (wrapped), for every method: a method given the wrong response type
// would drop fields without a compiler error when the types overlap.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { clientServices } from '../../src/api/client-server.js';
import { encodedBuffer } from '../../src/api/grpc-util.js';
import { encodeRangeResponseInSlices } from '../../src/api/sliced-encoding.js';
import * as rpc from '../../src/gen/etcd/rpc.js';
import { type InProcCluster, InProcCluster as Cluster } from '../support/inproc-cluster.js';

type Def = Record<string, grpc.MethodDefinition<unknown, unknown>>;
const header = { clusterId: 0x1234567890abcdefn, memberId: 0x7edcba0987654321n, revision: 123456n, raftTerm: 7n };

/**
 * A response with every scalar field set (strings and bytes long enough to be wrapped, not
 * copied), from the generated decoder's defaults: a serializer with another message type
 * misses some of them.
 */
function filled(decode: (b: Buffer) => unknown, big: boolean): unknown {
  const v = decode(Buffer.alloc(0)) as Record<string, unknown>;
  const n = big ? 200 : 1;
  for (const [k, d] of Object.entries(v)) {
    if (typeof d === 'bigint') v[k] = 7n;
    else if (typeof d === 'number') v[k] = 3;
    else if (typeof d === 'boolean') v[k] = true;
    else if (typeof d === 'string') v[k] = 'x'.repeat(n);
    else if (d instanceof Uint8Array) v[k] = Buffer.alloc(n, 1);
  }
  v.header = header;
  if ('kvs' in v) v.kvs = [{ key: Buffer.from('k'), createRevision: 1n, modRevision: 2n, version: 3n, value: Buffer.alloc(n, 2), lease: 0n }];
  if ('events' in v) v.events = [{ type: 0, kv: { key: Buffer.from('k'), createRevision: 1n, modRevision: 2n, version: 3n, value: Buffer.alloc(n, 2), lease: 0n } }];
  return v;
}

const generated: Record<string, Def> = {
  'etcdserverpb.KV': rpc.KVService as unknown as Def,
  'etcdserverpb.Watch': rpc.WatchService as unknown as Def,
  'etcdserverpb.Lease': rpc.LeaseService as unknown as Def,
  'etcdserverpb.Maintenance': rpc.MaintenanceService as unknown as Def,
  'etcdserverpb.Cluster': rpc.ClusterService as unknown as Def,
  'etcdserverpb.Auth': rpc.AuthService as unknown as Def,
};

describe('response serializers', () => {
  let c: InProcCluster;
  let defs: Def[];
  before(async () => {
    c = await Cluster.start({ size: 1, seed: 3, delivery: 'auto' });
    defs = clientServices(c.member('n1').server).map(([d]) => d as unknown as Def);
  });
  after(async () => {
    await c?.close();
  });

  it('send the bytes the generated serializers send, small and large', () => {
    let checked = 0;
    for (const def of defs) {
      for (const [name, m] of Object.entries(def)) {
        const service = m.path.split('/')[1]!;
        const gen = generated[service]?.[name];
        if (!gen) continue; // lock, election, health: their generated serializers as they are
        for (const big of [false, true]) {
          const v = filled(gen.responseDeserialize, big);
          const want = gen.responseSerialize(v);
          const got = m.responseSerialize(v);
          assert.ok(got.equals(want), `${m.path} (${big ? 'large' : 'small'}, ${want.length} B)`);
          assert.deepEqual(gen.responseDeserialize(got), gen.responseDeserialize(want));
          checked++;
        }
      }
    }
    assert.ok(checked >= 2 * (5 + 1 + 5 + 7), `checked ${checked}`);
  });

  it("keep Range's responses encoded in slices", async () => {
    const range = defs.map((d) => d.range).find((m) => m?.path === '/etcdserverpb.KV/Range')!;
    const kvs = Array.from({ length: 5000 }, (_, i) => ({ key: Buffer.from(`key-${i}`), createRevision: 1n, modRevision: BigInt(i + 1), version: 1n, value: Buffer.alloc(20, i & 0xff), lease: 0n }));
    const res = await encodeRangeResponseInSlices({ header, kvs, more: true, count: 9000n }, async () => {});
    const got = range.responseSerialize(res);
    assert.deepEqual(rpc.RangeResponse.decode(got), rpc.RangeResponse.decode(rpc.KVService.range.responseSerialize(res)));
    // A small one goes through the zero-copy serializer.
    const small = { header, kvs: kvs.slice(0, 3), more: false, count: 3n };
    assert.ok(range.responseSerialize(small).equals(rpc.KVService.range.responseSerialize(small)));
  });

  it('copies small encodings and wraps large ones', () => {
    const small = new Uint8Array([1, 2, 3]);
    const large = new Uint8Array(1000).fill(9);
    assert.notEqual(encodedBuffer(small).buffer, small.buffer);
    assert.equal(encodedBuffer(large).buffer, large.buffer);
    assert.ok(encodedBuffer(small).equals(Buffer.from(small)) && encodedBuffer(large).equals(Buffer.from(large)));
  });
});
