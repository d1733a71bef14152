// Compatibility with Debian's etcdctl (v3.4) against 3 real raftkv processes: the same suite
// on a plaintext cluster and on one with client and peer mTLS (etcdctl with --cacert/--cert/
// --key and https endpoints).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type TestCerts, etcdctlTlsArgs, hasOpenssl, makeTestCerts, memberTlsArgs } from '../support/certs.js';
import { freePorts } from '../support/ports.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';

const available = etcdctlAvailable;
const opensslAvailable = hasOpenssl();
if (process.env.CI && available && !opensslAvailable) throw new Error('openssl is required in CI');

interface Setup {
  /** Client and peer mTLS (https URLs, --client-cert-auth, --peer-client-cert-auth). */
  tls: boolean;
}

function etcdctlSuite(title: string, setup: Setup, skip: string | false): void {
  describe(title, { skip }, () => {
    let c: ProcCluster;
    let certs: TestCerts | undefined;
    const env = etcdctlEnv;
    const scheme = setup.tls ? 'https' : 'http';
    /** etcdctl's endpoint for member i (https:// on a TLS cluster). */
    const ep = (i: number): string => (setup.tls ? `https://${c.endpoint(i)}` : c.endpoint(i));
    const eps = (): string => c.members.map((_, i) => ep(i)).join(',');
    /** --cacert/--cert/--key on a TLS cluster. */
    const tlsFlags = (): string[] => (certs ? etcdctlTlsArgs(certs) : []);
    /** etcdctl against every member, as a promise of its output (with its child process). */
    const runCtl = (args: string[]) => run('etcdctl', [`--endpoints=${eps()}`, ...tlsFlags(), ...args], { env });
    /** etcdctl against member i only. */
    const runOne = (i: number, args: string[]) => run('etcdctl', [`--endpoints=${ep(i)}`, ...tlsFlags(), ...args], { env });
    /** A long-running etcdctl (watch, elect) whose output the test reads until it kills it. */
    const spawnCtl = (args: string[]) => execFile('etcdctl', [`--endpoints=${eps()}`, ...tlsFlags(), ...args], { env });
    const ctl = async (args: string[], input?: string): Promise<string> => {
      const p = runCtl(['--command-timeout=10s', ...args]);
      if (input !== undefined) p.child.stdin!.end(input);
      return (await p).stdout;
    };
    before(async () => {
      if (!setup.tls) {
        c = await ProcCluster.start({ size: 3 });
        return;
      }
      certs = makeTestCerts();
      const pem = (f: string) => readFileSync(f);
      c = await ProcCluster.start({
        size: 3,
        scheme: 'https',
        clientCredentials: grpc.credentials.createSsl(pem(certs.ca.cert), pem(certs.client.key), pem(certs.client.cert)),
        extraArgs: memberTlsArgs(certs),
      });
    });
    after(async () => {
      await c?.destroy();
      certs?.cleanup();
    });

    it('put, get, del', async () => {
      assert.equal((await ctl(['put', 'foo', 'bar'])).trim(), 'OK');
      assert.equal(await ctl(['get', 'foo']), 'foo\nbar\n');
      assert.equal((await ctl(['del', 'foo'])).trim(), '1');
      assert.equal(await ctl(['get', 'foo']), '');
    });

    it('prefix get, print-value-only, keys-only, json count', async () => {
      await ctl(['put', 'dir/a', '1']);
      await ctl(['put', 'dir/b', '2']);
      assert.equal(await ctl(['get', 'dir/', '--prefix']), 'dir/a\n1\ndir/b\n2\n');
      assert.equal(await ctl(['get', 'dir/', '--prefix', '--print-value-only']), '1\n2\n');
      assert.equal(await ctl(['get', 'dir/', '--prefix', '--keys-only']), 'dir/a\n\ndir/b\n\n');
      const j = JSON.parse(await ctl(['get', 'dir/', '--prefix', '-w', 'json'])) as { count: number };
      assert.equal(j.count, 2);
    });

    it('txn (interactive form on stdin)', async () => {
      await ctl(['put', 'user', 'alice']);
      const out = await ctl(['txn'], 'value("user") = "alice"\n\nput user bob\n\nput user nobody\n\n');
      assert.equal(out, 'SUCCESS\n\nOK\n');
      assert.equal(await ctl(['get', 'user', '--print-value-only']), 'bob\n');
    });

    it('a txn that fails writes nothing on any member (its put before a future-revision read)', async () => {
      const p = runCtl(['--command-timeout=10s', 'txn']);
      p.child.stdin!.end('\nput phantom PHANTOM\nget y --rev=99999\n\n\n');
      await assert.rejects(p, /etcdserver: mvcc: required revision is a future revision/);
      // A later write shows what the next revision holds on every member.
      await ctl(['put', 'after-phantom', '1']);
      for (let i = 0; i < 3; i++) {
        await eventually(async () => assert.equal((await runOne(i, ['--command-timeout=10s', 'get', 'after-phantom', '--consistency=s', '--print-value-only'])).stdout, '1\n'));
        assert.equal((await runOne(i, ['--command-timeout=10s', 'get', 'phantom', '--consistency=s'])).stdout, '', `member ${i}`);
      }
    });

    it('endpoint status and member list', async () => {
      const st = JSON.parse(await ctl(['endpoint', 'status', '-w', 'json'])) as Array<{ Status: { leader: number; header: { member_id: number } } }>;
      assert.equal(st.length, 3);
      const leaders = new Set(st.map((s) => s.Status.leader));
      assert.equal(leaders.size, 1, 'all members agree on the leader');
      const ml = await ctl(['member', 'list']);
      const lines = ml.trim().split('\n');
      assert.equal(lines.length, 3);
      for (const m of c.members) assert.ok(ml.includes(`${m.name}, ${scheme}://127.0.0.1:${m.peerPort}, ${scheme}://127.0.0.1:${m.clientPort}`), ml);
    });

    it('member add (learner), list, remove; move-leader; snapshot save', async () => {
      const [port] = await freePorts(1);
      // As etcd, a member takes a change only once it has been connected to every voter for 5 s
      // (etcdserver: unhealthy cluster until then): this may come right after the start.
      const added = await eventually(() => ctl(['member', 'add', 'extra', `--peer-urls=${scheme}://127.0.0.1:${port}`, '--learner']), 20_000, 500);
      assert.match(added, /Member\s+([0-9a-f]+) added to cluster\s+([0-9a-f]+)/);
      const id = /Member\s+([0-9a-f]+) added/.exec(added)![1]!;
      const list = await ctl(['member', 'list']);
      assert.match(list, new RegExp(`${id}, unstarted, , ${scheme}://127.0.0.1:${port}, , true`));
      await assert.rejects(() => ctl(['member', 'promote', id]), /can only promote a learner member which is in sync with leader/);
      assert.match(await ctl(['member', 'remove', id]), new RegExp(`Member\\s+${id} removed from cluster`));
      // move-leader to a follower
      // Simple output keeps 64-bit ids exact (JSON numbers would round them):
      // "endpoint, id, version, db size, is leader, is learner, term, index, applied, errors"
      const rows = (await ctl(['endpoint', 'status'])).trim().split('\n').map((l) => l.split(', '));
      const hexId = rows.find((r) => r[4] === 'false')![1]!;
      assert.match(await ctl(['move-leader', hexId]), /Leadership transferred/);
      // snapshot save streams the state to a file
      const file = join(c.dataRoot, 'snap.db');
      const one = await runOne(0, ['snapshot', 'save', file]);
      assert.match(one.stdout + one.stderr, /Snapshot saved at/);
      assert.ok(statSync(file).size > 0);
    });

    it('lease grant, put --lease, timetolive --keys, keep-alive --once, revoke', async () => {
      const id = /lease ([0-9a-f]+) granted with TTL\(60s\)/.exec(await ctl(['lease', 'grant', '60']))![1]!;
      assert.equal((await ctl(['put', '--lease', id, 'leased', 'v'])).trim(), 'OK');
      assert.match(await ctl(['lease', 'timetolive', id, '--keys']), new RegExp(`lease ${id} granted with TTL\\(60s\\), remaining\\(\\d+s\\), attached keys\\(\\[leased\\]\\)`));
      assert.match(await ctl(['lease', 'list']), new RegExp(id));
      assert.match(await ctl(['lease', 'keep-alive', '--once', id]), new RegExp(`lease ${id} keepalived with TTL\\(60\\)`));
      assert.equal((await ctl(['lease', 'revoke', id])).trim(), `lease ${id} revoked`);
      assert.equal(await ctl(['get', 'leased']), '', 'revoking the lease deletes its keys');
    });

    it('watch sees a put made after it started', async () => {
      const w = spawnCtl(['watch', 'watched']);
      let out = '';
      w.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      try {
        // The watch is registered once a put shows up in it; keep putting until it does.
        await eventually(async () => {
          await ctl(['put', 'watched', 'v1']);
          assert.match(out, /PUT\nwatched\nv1\n/);
        }, 20_000, 300);
      } finally {
        w.kill('SIGKILL');
      }
    });

    it('lock gives mutual exclusion; elect names the leader (concurrency recipes: leases, txn, watch)', async () => {
      const log: string[] = [];
      const children: Array<ReturnType<typeof execFile>> = [];
      const lock = (args: string[]) => {
        const p = runCtl(['lock', 'the-lock', '--', ...args]);
        children.push(p.child);
        return p.then((r) => log.push(...r.stdout.trim().split('\n')));
      };
      try {
        const holder = lock(['sh', '-c', 'echo A-in; sleep 1; echo A-out']);
        // B asks for the lock once A holds it (A's lock key exists), and may only run after A left.
        await eventually(async () => assert.notEqual(await ctl(['get', 'the-lock', '--prefix', '--keys-only']), ''), 20_000, 50);
        const second = lock(['echo', 'B-in']);
        await Promise.all([holder, second]);
      } finally {
        for (const ch of children) ch.kill('SIGKILL');
      }
      assert.deepEqual(log, ['A-in', 'A-out', 'B-in']);

      const candidate = spawnCtl(['elect', 'the-election', 'proposal-1']);
      // `elect -l` observes the election until killed: read what it prints.
      const observer = spawnCtl(['elect', '-l', 'the-election']);
      let seen = '';
      observer.stdout!.on('data', (d: Buffer) => (seen += d.toString()));
      try {
        await eventually(async () => assert.match(seen, /^the-election\/[0-9a-f]+\nproposal-1\n/), 20_000, 200);
      } finally {
        candidate.kill('SIGKILL');
        observer.kill('SIGKILL');
      }
    });

    it('endpoint health, compaction, defrag, alarm list', async () => {
      // etcdctl prints health to stderr.
      const { stderr: health } = await runCtl(['endpoint', 'health']);
      assert.equal(health.match(/is healthy: successfully committed proposal/g)?.length, 3, health);
      await ctl(['put', 'compact-me', '1']);
      const rev = JSON.parse(await ctl(['get', 'compact-me', '-w', 'json'])).header.revision as number;
      assert.equal((await ctl(['compaction', String(rev)])).trim(), `compacted revision ${rev}`);
      await assert.rejects(() => ctl(['get', 'compact-me', `--rev=${rev - 1}`]), /required revision has been compacted/);
      // A watch from a compacted revision: canceled by its compact revision, its header without
      // a revision (etcd 3.4.23's output, ids aside).
      await assert.rejects(runCtl(['watch', 'compact-me', `--rev=${rev - 1}`, '-w', 'json']), (e: { stdout: string; stderr: string }) => {
        const resp = JSON.parse(e.stdout.trim().split('\n').pop()!);
        assert.deepEqual(Object.keys(resp.Header).sort(), ['cluster_id', 'member_id', 'raft_term']);
        assert.equal(resp.CompactRevision, rev);
        assert.equal(resp.Canceled, true);
        assert.match(e.stderr, /watch is canceled by the server/);
        return true;
      });
      // Member lists carry no revision either (etcd's ClusterServer header).
      assert.deepEqual(Object.keys(JSON.parse(await ctl(['member', 'list', '-w', 'json'])).header).sort(), ['cluster_id', 'member_id', 'raft_term']);
      assert.match(await ctl(['defrag']), /Finished defragmenting etcd member/);
      assert.equal(await ctl(['alarm', 'list']), '');
      // etcd's AlarmResponse has no header: -w json prints an empty object.
      assert.equal((await ctl(['alarm', 'list', '-w', 'json'])).trim(), '{}');
    });

    it('txn -w json: headers inside a txn as etcd 3.4 gives them', async () => {
      await ctl(['put', 'hdr-a', '1']);
      const out = JSON.parse(await ctl(['txn', '-w', 'json'], '\nget hdr-a\nput hdr-b 2\nget hdr-a\n\n\n'));
      const rev = out.header.revision as number;
      assert.ok(out.header.cluster_id && out.header.member_id && out.header.raft_term);
      // The revision each op saw or made, and nothing else (etcd 3.4.23's output for this txn).
      const inner = out.responses.map((r: { Response: Record<string, { header: unknown }> }) => Object.values(r.Response)[0]!.header);
      assert.deepEqual(inner, [{ revision: rev - 1 }, { revision: rev }, { revision: rev }]);
    });

    it('errors are etcd errors', async () => {
      await assert.rejects(() => ctl(['get', '']), /etcdserver: key is not provided/);
    });
  });
}

etcdctlSuite('etcdctl against a 3-member cluster', { tls: false }, available ? false : 'etcdctl not installed');
etcdctlSuite(
  'etcdctl against a 3-member cluster with client and peer mTLS (--cacert/--cert/--key)',
  { tls: true },
  !available ? 'etcdctl not installed' : !opensslAvailable ? 'openssl not installed' : false,
);
