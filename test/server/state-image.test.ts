// Snapshot images of the state machine: the binary format round-trips, a truncated image is
// refused (never half-loaded), and version-2 images (JSON lines) written by older raftkv load.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { StateMachine } from '../../src/server/state-machine.js';
import { newStateMachine } from '../support/state-machine.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { EntryType } from '../../src/raft/index.js';
import fc from 'fast-check';
import { decodeKeys, encodeKeys, putInt64 } from '../../src/server/snapshot-image.js';
import type { Rev } from '../../src/kv/mvcc.js';
import { Lessor } from '../../src/kv/lessor.js';

const noPause = async (): Promise<void> => {};

function put(sm: StateMachine, index: number, key: Buffer, value: Buffer): void {
  const data = InternalRequest.encode(InternalRequest.fromPartial({ id: BigInt(index), put: { key, value } })).finish();
  sm.applyNormal({ term: 1, index, type: EntryType.Normal, data });
}

const all = (sm: StateMachine) => sm.store.range(Buffer.from([0]), Buffer.from([0])).kvs.map((kv) => [kv.key.toString('hex'), kv.value.toString('hex'), kv.version, kv.modRevision]);

describe('state machine snapshot images', () => {
  it('round-trip binary keys and values, histories and revisions', async () => {
    const sm = newStateMachine();
    let i = 1;
    for (let k = 0; k < 300; k++) put(sm, i++, Buffer.from([k & 0xff, 0, 0xff, k >> 8]), Buffer.alloc(k % 7, k));
    for (let k = 0; k < 50; k++) put(sm, i++, Buffer.from([k, 0, 0xff, 0]), Buffer.from('\n{"not json'));
    const img = await sm.imageAsync(noPause);
    const other = newStateMachine();
    await other.restoreAsync(img.data, img.index, noPause);
    assert.deepEqual(all(other), all(sm));
    assert.equal(other.store.currentRev, sm.store.currentRev);
    assert.equal(other.store.hash(other.store.currentRev), sm.store.hash(sm.store.currentRev));
  });

  it('decodes any int64 revision fields exactly, repeated, small, negative or at the bounds (property)', async () => {
    // The decoder hands out one bigint for repeated and small values (snapshot-image.ts,
    // Int64Reader); whatever it shares, each field must read back as written.
    const int64 = fc.oneof(
      fc.bigInt({ min: 0n, max: 2047n }),
      fc.constantFrom(0n, 1n, 1023n, 1024n, 2n ** 32n, 2n ** 32n + 5n, -1n, -(2n ** 32n), 2n ** 63n - 1n, -(2n ** 63n)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
    );
    const rev = fc.record({ mod: int64, sub: fc.nat(0xffffffff), create: int64, version: int64, lease: int64, value: fc.string({ unit: 'binary-ascii', maxLength: 8 }) }, { noNullPrototype: true });
    // Runs of versions sharing fields, as an image's do (one write's keys, a key created at its mod).
    const history = fc.array(rev, { minLength: 1, maxLength: 4 }).map((h) => h.map((r, i) => (i % 2 === 1 ? { ...r, mod: h[i - 1]!.mod, create: h[i - 1]!.mod } : r)));
    const keys = fc.uniqueArray(fc.record({ key: fc.string({ unit: 'binary-ascii', minLength: 1, maxLength: 6 }), history }, { noNullPrototype: true }), { selector: (k) => k.key, maxLength: 20 });
    await fc.assert(
      fc.asyncProperty(keys, async (ks) => {
        const decoded: Array<{ key: string; history: Rev[] }> = [];
        await decodeKeys(encodeKeys(ks), 0, (key, history) => decoded.push({ key, history }), noPause);
        assert.deepEqual(decoded, ks);
      }),
      { numRuns: 300 },
    );
  });

  for (const persist of [false, true]) {
    it(`keeps leases' checkpointed remaining TTL only when checkpoints persist (persist ${persist})`, async () => {
      // etcd's --experimental-enable-lease-checkpoint-persist writes remainingTTL to the backend;
      // without it etcd 3.4 forgets checkpoints at a restart from its backend.
      const lessor = (): Lessor => new Lessor(1n, () => 0, { intervalMs: 60_000, persist });
      const sm = newStateMachine(lessor());
      const apply = (index: number, req: Partial<InternalRequest>): void =>
        void sm.applyNormal({ term: 1, index, type: EntryType.Normal, data: InternalRequest.encode(InternalRequest.fromPartial({ id: BigInt(index), ...req })).finish() });
      apply(1, { leaseGrant: { ID: 7n, TTL: 600n } });
      apply(2, { leaseCheckpoint: { checkpoints: [{ ID: 7n, remainingTTL: 300n }] } });
      assert.equal(sm.lessor.leases.get(7n)?.remainingTTL, 300n);
      const img = await sm.imageAsync(noPause);
      const other = newStateMachine(lessor());
      await other.restoreAsync(img.data, img.index, noPause);
      assert.equal(other.lessor.leases.get(7n)?.ttl, 600n);
      assert.equal(other.lessor.leases.get(7n)?.remainingTTL, persist ? 300n : 0n);
    });
  }

  it('a truncated image is refused and the old state is kept', async () => {
    const sm = newStateMachine();
    for (let k = 1; k <= 20; k++) put(sm, k, Buffer.from(`key${k}`), Buffer.from(`value${k}`));
    const img = await sm.imageAsync(noPause);
    const other = newStateMachine();
    put(other, 1, Buffer.from('mine'), Buffer.from('kept'));
    await assert.rejects(() => other.restoreAsync(img.data.subarray(0, img.data.length - 3), img.index, noPause), /snapshot image truncated/);
    assert.deepEqual(all(other), [[Buffer.from('mine').toString('hex'), Buffer.from('kept').toString('hex'), 1n, 2n]]);
  });

  it('loads a version-2 (JSON lines) image', async () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const header = { version: 2, currentRev: '3', compactRev: '0', leases: [], members: { members: [], removed: [] } };
    const lines = [
      JSON.stringify({ key: b64('a'), history: [['2', 0, '2', '1', b64('one'), '0']] }),
      JSON.stringify({ key: b64('b'), history: [['3', 0, '3', '1', b64('two'), '0']] }),
    ];
    const sm = newStateMachine();
    await sm.restoreAsync(Buffer.from([JSON.stringify(header), ...lines].join('\n')), 7, noPause);
    assert.equal(sm.store.currentRev, 3n);
    assert.equal(sm.appliedIndex, 7);
    assert.deepEqual(sm.store.range(Buffer.from('a'), Buffer.from('c')).kvs.map((kv) => kv.value.toString()), ['one', 'two']);
  });
});

it("putInt64 writes Buffer.writeBigInt64LE's bytes for any int64 (property)", () => {
  const i64 = fc.oneof(fc.bigInt({ min: -2n, max: 0x100000001n }), fc.bigInt({ min: -(1n << 63n), max: (1n << 63n) - 1n }));
  fc.assert(
    fc.property(i64, fc.integer({ min: 0, max: 8 }), (v, o) => {
      const a = Buffer.alloc(16, 0xaa);
      const b = Buffer.alloc(16, 0xaa);
      assert.equal(putInt64(a, v, o), b.writeBigInt64LE(v, o));
      assert.ok(a.equals(b));
    }),
    { numRuns: 2000 },
  );
});
