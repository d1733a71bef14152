// etcd's --discovery-srv: a new member's initial cluster from DNS SRV records, asked of a test
// DNS server (test/support/fake-dns.ts) through Node's resolver:
//
// - the mapping (src/cli/dns-discovery.ts): this member's own record (found by its advertised
//   peer address) gets --name, the others 0, 1, ...; https records (_etcd-server-ssl) and http
//   ones (_etcd-server) together; --discovery-srv-name's suffix; etcd's errors when this member
//   is not among the records, when there are none, and on a scheme mismatch;
// - three raftkv processes bootstrap a cluster from SRV records (RAFTKV_DNS_SERVERS), with the
//   member ids --initial-cluster would give, and each publishes its own name; a member added
//   later joins with --initial-cluster-state existing, finding its peers in the records.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { srvCluster, systemResolver } from '../../src/cli/dns-discovery.js';
import { silentLogger } from '../../src/raft/logger.js';
import { memberId } from '../../src/util/ids.js';
import { FakeDns } from '../support/fake-dns.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

describe('discovery-srv: SRV records to a cluster', () => {
  let dns: FakeDns;
  before(async () => {
    dns = await FakeDns.start();
  });
  after(async () => {
    await dns.close();
  });
  const lookup = (domain: string, name: string, apurl: string, serviceName = '') =>
    srvCluster(domain, serviceName, name, [apurl], systemResolver([dns.server]), silentLogger);
  const entries = (m: Map<string, string[]>) => [...m].map(([n, u]) => `${n}=${u.join(',')}`);

  it('names its own record --name and the others 0, 1, ...; https and http records together', async () => {
    dns.srv.set('_etcd-server._tcp.a.test', [
      { target: '127.0.0.1', port: 2381 },
      { target: '127.0.0.1', port: 2382 },
      { target: '127.0.0.1', port: 2383 },
    ]);
    assert.deepEqual(entries(await lookup('a.test', 'me', 'http://127.0.0.1:2382')), ['0=http://127.0.0.1:2381', 'me=http://127.0.0.1:2382', '1=http://127.0.0.1:2383']);
    dns.srv.set('_etcd-server-ssl._tcp.b.test', [{ target: 'localhost.', port: 2390 }]);
    dns.srv.set('_etcd-server._tcp.b.test', [{ target: '127.0.0.1', port: 2391 }]);
    // The target's own name is the URL's host (its trailing dot cut), found by its address.
    assert.deepEqual(entries(await lookup('b.test', 'me', 'http://127.0.0.1:2391')), ['0=https://localhost:2390', 'me=http://127.0.0.1:2391']);
  });

  it('--discovery-srv-name picks the services ending in -<name>', async () => {
    dns.srv.set('_etcd-server-prod._tcp.c.test', [{ target: '127.0.0.1', port: 2400 }]);
    assert.deepEqual(entries(await lookup('c.test', 'me', 'http://127.0.0.1:2400', 'prod')), ['me=http://127.0.0.1:2400']);
    assert.ok(dns.asked.includes('SRV _etcd-server-ssl-prod._tcp.c.test'));
  });

  it("etcd's errors: this member not among the records, no records at all, a scheme mismatch", async () => {
    dns.srv.set('_etcd-server._tcp.d.test', [{ target: '127.0.0.1', port: 2410 }]);
    await assert.rejects(lookup('d.test', 'me', 'http://127.0.0.1:2411'), { message: 'cannot find local etcd member "me" in SRV records' });
    await assert.rejects(lookup('nothing.test', 'me', 'http://127.0.0.1:2411'), /^Error: failed to resolve during SRV discovery: error querying DNS SRV records for _etcd-server-ssl /);
    await assert.rejects(lookup('d.test', 'me', 'https://127.0.0.1:2410'), /bootstrap at http:\/\/127.0.0.1:2410 from DNS for etcd-server has scheme mismatch with expected peer https:\/\/127.0.0.1:2410/);
  });
});

describe('discovery-srv: raftkv members', () => {
  it('three members bootstrap from SRV records, with the ids --initial-cluster gives, and publish their names', async () => {
    const dns = await FakeDns.start();
    let c: ProcCluster | undefined;
    try {
      c = await ProcCluster.create({
        size: 3,
        bootstrapFlags: ['--discovery-srv', 'cluster.test'],
        memberEnv: () => ({ RAFTKV_DNS_SERVERS: dns.server }),
      });
      dns.srv.set('_etcd-server._tcp.cluster.test', c.members.map((m) => ({ target: '127.0.0.1', port: m.peerPort })));
      for (let i = 0; i < 3; i++) c.startMember(i);
      await c.waitForLeader();
      await c.waitForAllServing();
      const cluster = c;
      await eventually(async () => {
        const got = (await cluster.client(0).memberList()).members.map((m) => [m.name, m.ID]).sort();
        assert.deepEqual(got, cluster.members.map((m) => [m.name, memberId([`http://127.0.0.1:${m.peerPort}`], 'etcd-cluster')]).sort());
      });
      await c.client(1).put('k', 'v');
      assert.equal(await c.client(2).get('k'), 'v');
      // A member added later joins with --initial-cluster-state existing: the records name the
      // peers it asks for the cluster (as etcd's SRV discovery does for a joining member).
      const i = await c.addMember();
      // (Through the leader, and again until the strict reconfiguration check sees every voter up.)
      await eventually(async () => cluster.client(await cluster.waitForLeader()).memberAdd([cluster.peerUrl(i)], true), 30_000);
      dns.srv.set('_etcd-server._tcp.cluster.test', c.members.map((m) => ({ target: '127.0.0.1', port: m.peerPort })));
      c.startMember(i);
      await eventually(async () => assert.equal(await cluster.client(i).get('k', true), 'v'), 30_000);
    } finally {
      await c?.destroy();
      await dns.close();
    }
  });
});
