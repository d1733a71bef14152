// A request proposed on a member that has no leader for the whole request timeout never reaches
// Raft; etcd's Raft blocks such a proposal and its client gets the context's own error, code
// Unknown: "context deadline exceeded" — which clients (clientv3, etcdctl's user and role
// commands, that have no deadline of their own) do not retry, where they retry Unavailable
// ("request timed out") for good. One handed to Raft that then times out is "request timed out".

import assert from 'node:assert/strict';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { clientServices } from '../../src/api/client-server.js';
import { EtcdError, ErrorCode } from '../../src/kv/errors.js';
import { withCluster } from '../support/inproc-cluster.js';

it('a put on a member without a leader times out with etcd\'s "context deadline exceeded" (code Unknown)', async () => {
  await withCluster({ size: 3, seed: 5 }, async (c) => {
    const L = await c.waitIdle();
    const F = c.members().find((m) => m !== L)!;
    c.net.isolate(F.id);
    await c.until(() => F.server.leader() === 0n, { ticks: 50, what: 'F without a leader' });
    const put = c.put(F, 'k', 'v');
    const err = await c.run(put.then(() => undefined, (e: unknown) => e), { ticks: 200, what: 'the put answered' });
    assert.ok(err instanceof EtcdError, String(err));
    assert.deepEqual([err.code, err.message], [ErrorCode.UNKNOWN, 'context deadline exceeded']);
    // LeaseLeases is answered from the member's own state, as etcd answers it: at once, here too.
    const leaseImpl = clientServices(F.server).find(([, impl]) => 'leaseLeases' in impl)![1];
    const listed = await new Promise<{ err: unknown; res: unknown }>((resolve) =>
      (leaseImpl.leaseLeases as grpc.handleUnaryCall<unknown, unknown>)({ request: {}, metadata: new grpc.Metadata() } as grpc.ServerUnaryCall<unknown, unknown>, (err, res) => resolve({ err, res })),
    );
    assert.equal(listed.err, null);
    c.net.heal();
  });
});
