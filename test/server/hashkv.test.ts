// HashKV: the same hash as etcd 3.4 for the same writes (golden values recorded from etcd
// 3.4.23's Maintenance.HashKV), a function of the replicated state only (no member-local
// effect of deferred pruning, snapshot restores or lease key order), computed in slices that
// yield to the event loop; and the alarm list of the state machine (CORRUPT refuses writes on
// apply, survives a snapshot, old snapshots without alarms still load).

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AlarmRequest_AlarmAction, AlarmType, type RequestOp } from '../../src/gen/etcd/rpc.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { crc32c } from '../../src/kv/crc32c.js';
import { MvccStore } from '../../src/kv/mvcc.js';
import { EntryType } from '../../src/raft/index.js';
import { alarmText } from '../../src/server/alarms.js';
import { loadStoreImageAsync, storeImageAsync } from '../../src/server/snapshot-image.js';
import type { StateMachine } from '../../src/server/state-machine.js';
import { newStateMachine, applyNow } from '../support/state-machine.js';

const B = (s: string | number[]): Buffer => (typeof s === 'string' ? Buffer.from(s, 'latin1') : Buffer.from(s));
const noPause = async (): Promise<void> => {};

type Req = Omit<Partial<InternalRequest>, 'id'>;
let nextIndex = 1;
function apply(sm: StateMachine, req: Req): { ok: boolean; value?: { alarms?: unknown }; error?: Error } {
  const index = nextIndex++;
  const data = InternalRequest.encode(InternalRequest.fromPartial({ ...req, id: BigInt(index) } as InternalRequest)).finish();
  const { outcome } = applyNow(sm, { term: 1, index, type: EntryType.Normal, data });
  return outcome.ok ? { ok: true, value: outcome.value as { alarms?: unknown } } : { ok: false, error: outcome.error };
}
const put = (key: string | Buffer, value: string | Buffer, lease = 0n) => ({
  key: typeof key === 'string' ? B(key) : key,
  value: typeof value === 'string' ? B(value) : value,
  lease,
  prevKv: false,
  ignoreValue: false,
  ignoreLease: false,
});
const del = (key: string, rangeEnd = '') => ({ key: B(key), rangeEnd: B(rangeEnd), prevKv: false });

/** HashKV of the state machine's store (async, in small slices). */
async function hkv(sm: StateMachine, rev = 0n): Promise<[number, bigint, bigint]> {
  const r = await sm.store.hashByRev(rev, noPause, 3);
  return [r.hash, r.compactRev, r.currentRev];
}

describe('HashKV', () => {
  it('CRC-32C is Castagnoli', () => {
    assert.equal(crc32c(B('123456789')), 0xe3069283);
    assert.equal(crc32c(B('789'), crc32c(B('123456'))), 0xe3069283);
  });

  it("equals etcd 3.4's HashKV for the same writes, at several revisions and across compactions", async () => {
    // The same requests were sent to etcd 3.4.23 (lease granted with ID 0x1000); its answers:
    const sm = newStateMachine();
    assert.deepEqual(await hkv(sm), [1084519789, -1n, 1n]);
    apply(sm, { put: put('a', '1') }); // 2
    apply(sm, { put: put('b', '2') }); // 3
    apply(sm, { put: put('a', '11') }); // 4
    const ops: RequestOp[] = [{ requestPut: put('c', '3') }, { requestPut: put('d', '4') }, { requestDeleteRange: del('b') }];
    apply(sm, { txn: { compare: [], success: ops, failure: [] } }); // 5
    assert.ok(apply(sm, { leaseGrant: { TTL: 1000n, ID: 0x1000n } }).ok);
    apply(sm, { put: put('z1', 'L1', 0x1000n) }); // 6
    apply(sm, { put: put('z0', 'L0', 0x1000n) }); // 7
    apply(sm, { put: put('e', '5') }); // 8
    assert.deepEqual(await hkv(sm), [748502537, -1n, 8n]);
    assert.ok(apply(sm, { leaseRevoke: { ID: 0x1000n } }).ok); // 9: deletes z0 then z1
    apply(sm, { deleteRange: del('a', 'c') }); // 10
    apply(sm, { put: put(B([0, 0xc3, 0xbf, 0x62, 0x69, 0x6e]), B([0, 1, 2, 255])) }); // 11: binary key and value
    apply(sm, { put: put('empty', '') }); // 12
    assert.deepEqual(await hkv(sm), [2501453891, -1n, 12n]);
    assert.equal((await hkv(sm, 3n))[0], 1827592406);
    assert.equal((await hkv(sm, 5n))[0], 1483969895);
    assert.equal((await hkv(sm, 9n))[0], 3164160433);
    apply(sm, { compaction: { revision: 5n, physical: true } });
    assert.deepEqual(await hkv(sm), [1555739233, 5n, 12n]);
    assert.equal((await hkv(sm, 7n))[0], 404504888);
    await assert.rejects(() => sm.store.hashByRev(4n, noPause), /required revision has been compacted/);
    // etcd's HashByRev: the compact revision itself is compacted (a Range may still read it), and
    // a negative revision hashes no version (etcd 3.4.23 answered these two in the fifteenth session's probe).
    await assert.rejects(() => sm.store.hashByRev(5n, noPause), /required revision has been compacted/);
    assert.deepEqual(await hkv(sm, -1n), [1084519789, 5n, 12n]);
    await assert.rejects(() => sm.store.hashByRev(13n, noPause), /required revision is a future revision/);
    apply(sm, { put: put('c', '33') }); // 13
    assert.deepEqual(await hkv(sm), [2784940204, 5n, 13n]);
    apply(sm, { deleteRange: del('\0', '\0') }); // 14: no key live (etcd's empty "keep")
    assert.deepEqual(await hkv(sm), [1392897179, 5n, 14n]);
    apply(sm, { compaction: { revision: 14n, physical: true } });
    assert.deepEqual(await hkv(sm), [1084519789, 14n, 14n]);
    apply(sm, { put: put('f', '6') }); // 15
    assert.deepEqual(await hkv(sm), [3767042963, 14n, 15n]);
    // The synchronous form agrees.
    assert.equal(sm.store.hash(15n), 3767042963);
  });

  it('does not depend on whether a compaction has been pruned yet (e.g. during a snapshot)', async () => {
    const a = new MvccStore();
    const b = new MvccStore();
    for (const s of [a, b]) {
      for (let i = 0; i < 60; i++) s.write((w) => w.put(B(`k${i % 13}`), B(`v${i}`), 0n));
      s.write((w) => w.deleteRange(B('k3'), undefined));
    }
    b.compact(40n);
    const pruned = b.hash(0n);
    let during: number | undefined;
    // `a` compacts while its snapshot image is being built: the pruning waits for the image.
    const img = await storeImageAsync(a, async () => {
      if (during !== undefined) return;
      a.compact(40n);
      during = a.hash(0n);
    }, 4);
    assert.equal(during, pruned);
    assert.equal(a.hash(0n), pruned);
    // A member restored from that image (it holds the history the compaction had not pruned).
    const c = new MvccStore();
    c.currentRev = BigInt(img.currentRev);
    c.compactRev = 40n;
    await loadStoreImageAsync(c, Buffer.concat(img.chunks), 0, noPause);
    assert.equal(c.hash(0n), pruned);
  });

  it('is the same on a member restored from a snapshot after a lease with several keys is revoked', async () => {
    const live = newStateMachine();
    apply(live, { leaseGrant: { TTL: 1000n, ID: 7n } });
    for (const k of ['m', 'b', 'x', 'a']) apply(live, { put: put(k, 'v', 7n) });
    const restored = newStateMachine();
    const img = await live.imageAsync(noPause);
    await restored.restoreAsync(img.data, img.index, noPause);
    for (const sm of [live, restored]) assert.ok(apply(sm, { leaseRevoke: { ID: 7n } }).ok);
    assert.equal(restored.store.hash(0n), live.store.hash(0n));
  });

  it('yields to the event loop on a large store, and is the state when it started despite writes meanwhile', async () => {
    const s = new MvccStore();
    for (let i = 0; i < 20_000; i++) s.write((w) => w.put(B(`key${i % 5000}`), B(`value${i}`), 0n));
    const expect = s.hash(0n);
    let pauses = 0;
    const r = await s.hashByRev(0n, async () => {
      pauses++;
      s.write((w) => w.put(B(`key${pauses}`), B('later'), 0n));
      if (pauses === 5) s.compact(s.currentRev - 10n);
    }, 1000);
    assert.ok(pauses >= 20, `yielded ${pauses} times`);
    assert.equal(r.hash, expect);
    assert.equal(r.currentRev, 20_001n);
    assert.equal(r.compactRev, -1n);
  });

  it("takes a long history of one key over several slices", async () => {
    const s = new MvccStore();
    for (let i = 0; i < 5000; i++) s.write((w) => w.put(B('hot'), B(`v${i}`), 0n));
    s.write((w) => w.put(B('cold'), B('c'), 0n));
    let pauses = 0;
    const r = await s.hashByRev(0n, async () => {
      pauses++;
    }, 500);
    assert.ok(pauses >= 10, `yielded ${pauses} times`);
    assert.equal(r.hash, s.hash(0n));
    assert.equal((await s.hashByRev(2500n, noPause, 7)).hash, s.hash(2500n));
  });
});

describe('alarms in the state machine', () => {
  const corrupt = { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 0n, alarm: AlarmType.CORRUPT };

  it('CORRUPT refuses every write when applied; GET lists it; DEACTIVATE disarms it', () => {
    const sm = newStateMachine();
    assert.ok(apply(sm, { put: put('k', 'v') }).ok);
    assert.ok(apply(sm, { leaseGrant: { TTL: 100n, ID: 5n } }).ok);
    const raised = apply(sm, { alarm: corrupt });
    assert.deepEqual(raised.value?.alarms, [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    // Raising it again answers the same alarm.
    assert.deepEqual(apply(sm, { alarm: corrupt }).value?.alarms, [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    const rev = sm.store.currentRev;
    const writes: Req[] = [
      { put: put('k', 'w') },
      { deleteRange: del('k') },
      { txn: { compare: [], success: [{ requestDeleteRange: del('k') }], failure: [] } },
      { leaseGrant: { TTL: 100n, ID: 6n } },
      { leaseRevoke: { ID: 5n } },
      { compaction: { revision: rev, physical: false } },
    ];
    for (const w of writes) {
      const r = apply(sm, w);
      assert.equal(r.ok, false, JSON.stringify(Object.keys(w)));
      assert.equal(r.error?.message, 'etcdserver: corrupt cluster');
      assert.equal((r.error as { code?: number }).code, 15); // DATA_LOSS
    }
    assert.equal(sm.store.currentRev, rev);
    assert.equal(sm.store.range(B('k'), undefined).kvs[0]?.value.toString(), 'v');
    assert.deepEqual(sm.alarms.get(AlarmType.NONE), [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    assert.deepEqual(sm.alarms.get(AlarmType.NOSPACE), []);
    const off = apply(sm, { alarm: { ...corrupt, action: AlarmRequest_AlarmAction.DEACTIVATE } });
    assert.deepEqual(off.value?.alarms, [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    assert.deepEqual(sm.alarms.get(), []);
    assert.ok(apply(sm, { put: put('k', 'w') }).ok);
  });

  it('NOSPACE refuses what grows the database, not deletes', () => {
    const sm = newStateMachine();
    apply(sm, { put: put('k', 'v') });
    apply(sm, { alarm: { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 9n, alarm: AlarmType.NOSPACE } });
    assert.equal(apply(sm, { put: put('k', 'w') }).error?.message, 'etcdserver: mvcc: database space exceeded');
    assert.equal(apply(sm, { leaseGrant: { TTL: 100n, ID: 6n } }).error?.message, 'etcdserver: mvcc: database space exceeded');
    assert.ok(apply(sm, { deleteRange: del('k') }).ok);
  });

  it('an alarm of type NONE is kept, listed and disarmed as etcd 3.4 keeps it, and refuses nothing', () => {
    const sm = newStateMachine();
    const none = { action: AlarmRequest_AlarmAction.ACTIVATE, memberID: 7n, alarm: AlarmType.NONE };
    assert.deepEqual(apply(sm, { alarm: none }).value?.alarms, [{ memberID: 7n, alarm: AlarmType.NONE }]);
    assert.deepEqual(sm.alarms.get(), [{ memberID: 7n, alarm: AlarmType.NONE }]);
    assert.ok(apply(sm, { put: put('k', 'v') }).ok);
    assert.deepEqual(apply(sm, { alarm: { ...none, action: AlarmRequest_AlarmAction.DEACTIVATE } }).value?.alarms, [{ memberID: 7n, alarm: AlarmType.NONE }]);
    assert.deepEqual(sm.alarms.get(), []);
    // Status lists alarms in Go's text form, which leaves zero fields out (etcd 3.4: "memberID:7 ").
    assert.deepEqual(
      [{ memberID: 7n, alarm: AlarmType.NONE }, { memberID: 0n, alarm: AlarmType.CORRUPT }, { memberID: 9n, alarm: AlarmType.NOSPACE }].map(alarmText),
      ['memberID:7 ', 'alarm:CORRUPT ', 'memberID:9 alarm:NOSPACE '],
    );
  });

  it('alarms are part of the snapshot image; an image without them loads with none', async () => {
    const sm = newStateMachine();
    apply(sm, { put: put('k', 'v') });
    apply(sm, { alarm: corrupt });
    const img = await sm.imageAsync(noPause);
    const other = newStateMachine();
    await other.restoreAsync(img.data, img.index, noPause);
    assert.deepEqual(other.alarms.get(), [{ memberID: 0n, alarm: AlarmType.CORRUPT }]);
    assert.equal(apply(other, { put: put('k', 'w') }).error?.message, 'etcdserver: corrupt cluster');
    // An image as raftkv wrote it before alarms: its header has no "alarms".
    const buf = Buffer.from(img.data);
    const nl = buf.indexOf(10);
    const header = JSON.parse(buf.toString('utf8', 0, nl)) as Record<string, unknown>;
    delete header.alarms;
    const old = Buffer.concat([Buffer.from(JSON.stringify(header)), buf.subarray(nl)]);
    await other.restoreAsync(old, img.index, noPause);
    assert.deepEqual(other.alarms.get(), []);
    assert.equal(other.store.range(B('k'), undefined).kvs[0]?.value.toString(), 'v');
  });
});
