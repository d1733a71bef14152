// Compatibility with the real `etcd3` npm client against 3 real raftkv processes.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3, EtcdLeaseInvalidError } from 'etcd3';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';

describe('etcd3 npm client against a 3-member cluster', () => {
  let c: ProcCluster;
  let etcd: Etcd3;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
    etcd = new Etcd3({ hosts: c.endpoints().map((e) => `http://${e}`) });
  });
  after(async () => {
    etcd?.close();
    await c?.destroy();
  });

  it('put / get / delete, read back from every member', async () => {
    await etcd.put('greeting').value('hello');
    assert.equal(await etcd.get('greeting').string(), 'hello');
    for (let i = 0; i < 3; i++) {
      const one = new Etcd3({ hosts: `http://${c.endpoint(i)}` });
      try {
        assert.equal(await one.get('greeting').string(), 'hello', `member ${i}`);
      } finally {
        one.close();
      }
    }
    await etcd.delete().key('greeting');
    assert.equal(await etcd.get('greeting').string(), null);
  });

  it('prefix reads, counts, sorting and limits', async () => {
    for (const k of ['b', 'a', 'c']) await etcd.put(`pfx/${k}`).value(k.toUpperCase());
    await etcd.put('pfy').value('outside');
    assert.deepEqual(await etcd.getAll().prefix('pfx/').strings(), { 'pfx/a': 'A', 'pfx/b': 'B', 'pfx/c': 'C' });
    assert.equal(await etcd.getAll().prefix('pfx/').count(), 3);
    assert.deepEqual(await etcd.getAll().prefix('pfx/').sort('Key', 'Descend').limit(2).keys(), ['pfx/c', 'pfx/b']);
    const deleted = await etcd.delete().prefix('pfx/').exec();
    assert.equal(deleted.deleted, '3');
  });

  it('inRange(key) as on etcd 3.4.23: a read from the key to the end, a delete of the key alone', async () => {
    for (const k of ['a', 'b', 'c']) await etcd.put(`zzz/${k}`).value(k);
    // The client sends range_end as an empty field: etcd reads every key from 'zzz/b' on...
    assert.deepEqual(await etcd.getAll().inRange('zzz/b').keys(), ['zzz/b', 'zzz/c']);
    const t = await etcd.if('zzz/a', 'Value', '==', 'a').then(etcd.getAll().inRange('zzz/')).commit();
    assert.deepEqual(t.responses[0]!.response_range!.kvs.map((kv) => kv.key.toString()), ['zzz/a', 'zzz/b', 'zzz/c']);
    // ...but deletes the key alone (a delete goes through its log, which drops the empty field).
    const deleted = await etcd.delete().inRange('zzz/b').exec();
    assert.equal(deleted.deleted, '1');
    assert.deepEqual(await etcd.getAll().prefix('zzz/').keys(), ['zzz/a', 'zzz/c']);
    // A single get still reads one key (no range_end sent).
    assert.equal(await etcd.get('zzz/a').string(), 'a');
  });

  it('revisions, versions and prev_kv are exact', async () => {
    const r1 = await etcd.put('rev').value('1').exec();
    const r2 = await etcd.put('rev').value('2').getPrevious();
    assert.equal(r2?.value.toString(), '1');
    const res = await etcd.get('rev').exec();
    const kv = res.kvs[0]!;
    assert.equal(kv.version, '2');
    assert.equal(BigInt(kv.mod_revision), BigInt(r1.header.revision) + 1n);
    assert.equal(BigInt(kv.create_revision), BigInt(r1.header.revision));
  });

  it('transactions: compare-and-swap with success and failure branches', async () => {
    await etcd.put('cas').value('v1');
    const ok = await etcd.if('cas', 'Value', '==', 'v1').then(etcd.put('cas').value('v2')).else(etcd.get('cas')).commit();
    assert.equal(ok.succeeded, true);
    const fail = await etcd.if('cas', 'Value', '==', 'v1').then(etcd.put('cas').value('v3')).else(etcd.get('cas')).commit();
    assert.equal(fail.succeeded, false);
    assert.equal(fail.responses[0]!.response_range!.kvs[0]!.value.toString(), 'v2');
    const missing = await etcd.if('no-such-key', 'Create', '==', 0).then(etcd.put('no-such-key').value('created')).commit();
    assert.equal(missing.succeeded, true);
  });

  it('watch delivers puts and deletes in order', async () => {
    const w = await etcd.watch().key('watched').create();
    const seen: string[] = [];
    w.on('put', (kv) => seen.push(`put ${kv.value.toString()}`));
    w.on('delete', () => seen.push('delete'));
    await etcd.put('watched').value('a');
    await etcd.put('watched').value('b');
    await etcd.delete().key('watched');
    await eventually(async () => assert.deepEqual(seen, ['put a', 'put b', 'delete']), 5000);
    await w.cancel();
  });

  it('leases: keys attached to a revoked lease disappear; unknown leases are typed errors', async () => {
    const lease = etcd.lease(5, { autoKeepAlive: true });
    await lease.put('leased').value('x');
    assert.equal(await etcd.get('leased').string(), 'x');
    await lease.revoke();
    assert.equal(await etcd.get('leased').string(), null);
    await assert.rejects(() => etcd.put('x').value('y').lease('123456').exec(), EtcdLeaseInvalidError);
  });

  it('an expired lease deletes its keys', async () => {
    const lease = etcd.lease(1, { autoKeepAlive: false });
    await lease.put('ephemeral').value('x');
    // The minimum TTL is 1.5 election timeouts rounded up to whole seconds (1s here).
    await eventually(async () => assert.equal(await etcd.get('ephemeral').string(), null), 10_000, 250);
    await sleep(10);
  });
});
