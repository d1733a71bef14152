// Bad input never crashes a member or loses acknowledged data, and gets etcd's errors.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import type { TxnRequest } from '../../src/gen/etcd/rpc.js';
import { freePorts } from '../support/ports.js';
import { walDataEnd } from '../support/wal-files.js';
import { ProcCluster, eventually, sleep } from '../support/proc-cluster.js';
import { tempDir } from '../support/temp-dirs.js';

const BIN = resolve('dist/src/cli/raftkv.js');

describe('bad requests against a live cluster', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 3 });
  });
  after(async () => {
    await c?.destroy();
  });

  it('an empty key is refused with etcd\'s error', async () => {
    await assert.rejects(() => c.client(0).put('', 'v'), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && e.details === 'etcdserver: key is not provided');
    await assert.rejects(() => c.client(0).range(''), /etcdserver: key is not provided/);
  });

  it('a value over --max-request-bytes is refused ("request is too large"), far over it by gRPC', async () => {
    const big = Buffer.alloc(1.6 * 1024 * 1024, 1);
    await assert.rejects(() => c.client(0).put('big', big), (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && e.details === 'etcdserver: request is too large');
    const huge = Buffer.alloc(3 * 1024 * 1024, 1);
    await assert.rejects(() => c.client(1).put('huge', huge), (e: grpc.ServiceError) => e.code === grpc.status.RESOURCE_EXHAUSTED);
    // Just under the limit is fine.
    await c.client(0).put('almost', Buffer.alloc(1024 * 1024, 2));
    assert.equal((await c.client(2).range('almost')).kvs[0]!.value.length, 1024 * 1024);
  });

  it("--max-request-bytes falls on etcd's byte: the size of etcd's InternalRaftRequest for the same put", async () => {
    // etcd: the put (field 4) and a RequestHeader (field 100) holding the request id, whose top
    // 16 bits are the member id's low 16, above 48 bits of time (a varint of 7 to 10 bytes).
    // Value v with key 'k': put body 3 + 1 + 3 + v, put field 1 + 3 + body, header field 3 + 1 +
    // idBytes; 1.5 MiB (1,572,864) in all.
    const member = (await c.client(0).status()).header!.memberId;
    const low = member & 0xffffn;
    const idBytes = low >= 0x8000n ? 10 : low >= 0x100n ? 9 : low > 0n ? 8 : 7;
    const largest = 1_572_864 - (1 + 3 + 3 + 1 + 3) - (3 + 1 + idBytes);
    await c.client(0).put('k', Buffer.alloc(largest, 3));
    await assert.rejects(() => c.client(0).put('k', Buffer.alloc(largest + 1, 3)), /etcdserver: request is too large/);
  });

  it('malformed protobuf bytes get an error status; the member keeps serving', async () => {
    const client = new grpc.Client(c.endpoint(0), grpc.credentials.createInsecure());
    const garbage = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    await new Promise<void>((res) => {
      client.makeUnaryRequest('/etcdserverpb.KV/Put', (x: Buffer) => x, (x: Buffer) => x, garbage, (err) => {
        assert.ok(err, 'an error status');
        res();
      });
    });
    client.close();
    await c.client(0).put('still', 'alive');
    assert.equal(await c.client(0).get('still'), 'alive');
  });

  it('a member started with another --initial-cluster-token is refused by its peers; the cluster serves on', async () => {
    // A misconfigured member believes it starts a new cluster with these peers: its cluster id
    // (from the token) differs, so every peer refuses its messages and says why on both sides.
    const [clientPort, peerPort] = await freePorts(2);
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-stranger-'));
    const cluster = [...c.members.map((m) => `${m.name}=http://127.0.0.1:${m.peerPort}`), `x4=http://127.0.0.1:${peerPort}`].join(',');
    const curl = `http://127.0.0.1:${clientPort}`;
    const purl = `http://127.0.0.1:${peerPort}`;
    const p = spawn(
      process.execPath,
      [
        BIN, '--name', 'x4', '--data-dir', join(dir, 'x4'),
        '--listen-client-urls', curl, '--advertise-client-urls', curl,
        '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl,
        '--initial-cluster', cluster, '--initial-cluster-state', 'new', '--initial-cluster-token', 'not-the-right-token',
        '--heartbeat-interval', '50', '--election-timeout', '500',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let log = '';
    p.stdout.on('data', (d: Buffer) => (log += d.toString()));
    p.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    try {
      await eventually(async () => assert.match(log, /cluster ID mismatch/), 30_000);
      await eventually(async () => assert.match(c.logs(), /cluster ID mismatch/), 30_000);
      await c.client(0).put('after-stranger', 'ok');
      assert.equal(await c.client(2).get('after-stranger'), 'ok');
      assert.equal((await c.client(1).memberList()).members.length, 3);
      assert.ok(c.isUp(0) && c.isUp(1) && c.isUp(2), c.logs());
    } finally {
      p.kill('SIGKILL');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a txn nested 30 deep is answered while puts go on', async () => {
    const put = (k: string) => ({ requestPut: { key: Buffer.from(k), value: Buffer.from('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } });
    const cmp = { key: Buffer.from('deep'), rangeEnd: Buffer.alloc(0), target: 3, result: 0, value: Buffer.from('x') };
    let t: TxnRequest = { compare: [cmp], success: [put('deep-leaf')], failure: [put('deep-other')] };
    for (let d = 1; d < 30; d++) t = { compare: [cmp], success: [{ requestTxn: t }, put(`deep-s${d}`)], failure: [put(`deep-f${d}`)] };
    const deep = c.client(0).txn(t);
    const puts = Array.from({ length: 20 }, (_, i) => c.client(1).put(`beside-deep-${i}`, 'v'));
    await Promise.all(puts);
    const r = await deep;
    assert.equal(r.succeeded, false);
    assert.equal(await c.client(2).get('deep-f29'), 'v');
  });

  it("a txn nested 128 deep (one op a level) is applied, 129 deep gets etcd's too many operations", async () => {
    // etcd counts a nested txn against --max-txn-ops (128) level by level; the protobuf decoder's
    // own depth limit (ts-proto's 100 messages, i.e. 50 levels) used to refuse these first.
    const nest = (depth: number): TxnRequest => {
      let t: TxnRequest = { compare: [], success: [{ requestPut: { key: Buffer.from(`nest-${depth}`), value: Buffer.from('v'), lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } }], failure: [] };
      for (let d = 1; d < depth; d++) t = { compare: [], success: [{ requestTxn: t }], failure: [] };
      return t;
    };
    assert.equal((await c.client(0).txn(nest(128))).succeeded, true);
    assert.equal(await c.client(1).get('nest-128'), 'v');
    await assert.rejects(
      () => c.client(0).txn(nest(129)),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && e.details === 'etcdserver: too many operations in txn request',
    );
  });

  it('unknown methods and future/compacted revisions get statuses, not crashes', async () => {
    await assert.rejects(() => c.client(0).range('x', { revision: 1_000_000n }), /etcdserver: mvcc: required revision is a future revision/);
    assert.ok(c.isUp(0) && c.isUp(1) && c.isUp(2), c.logs());
  });
});

describe('bad flags', () => {
  const tryFlags = (args: string[], dataDir: string) => spawnSync(process.execPath, [BIN, '--data-dir', dataDir, ...args], { encoding: 'utf8', timeout: 20_000 });

  // Exit codes as etcd 3.4.23's, run by hand on this machine: 2 for a value its flag parser
  // refuses, 1 for what it checks after parsing.
  for (const [args, flag, code] of [
    [['--heartbeat-interval', 'abc'], '--heartbeat-interval', 2],
    [['--election-timeout', '100', '--heartbeat-interval', '100'], '--election-timeout', 1],
    [['--listen-client-urls', 'not a url'], '--listen-client-urls', 2],
    [['--initial-cluster-state', 'maybe'], '--initial-cluster-state', 2],
    [['--no-such-flag'], '--no-such-flag', 2],
    // etcd's words: `couldn't find local name "default" in the initial cluster configuration`.
    [['--initial-cluster', 'other=http://127.0.0.1:1'], 'in the initial cluster configuration', 1],
    [['--log-level', 'loud'], '--log-level', 2],
    [['--auto-compaction-mode', 'sometimes'], '--auto-compaction-mode', 1],
    [['--auto-compaction-retention', '1x'], '--auto-compaction-retention', 1],
  ] as const) {
    it(`${args.join(' ')}: one line naming "${flag}", exit code ${code}, nothing written`, () => {
      const dir = join(tempDir('raftkv-flags-'), 'data');
      const r = tryFlags([...args], dir);
      assert.equal(r.status, code, r.stderr);
      const lines = r.stderr.trim().split('\n');
      assert.equal(lines.length, 1, r.stderr);
      assert.ok(lines[0]!.includes(flag), r.stderr);
      assert.equal(existsSync(dir), false, 'data dir must not be created');
    });
  }
});

describe('damaged WAL files', () => {
  let c: ProcCluster;
  before(async () => {
    c = await ProcCluster.start({ size: 1 });
    for (let i = 0; i < 30; i++) await c.client(0).put(`w${i}`, `v${i}`);
    await c.stop(0);
  });
  after(async () => {
    await c?.destroy();
  });

  const segment = () => {
    const dir = join(c.members[0]!.dataDir, 'member', 'wal');
    return join(dir, readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().at(-1)!);
  };

  it('a torn record at the tail is cut off with a warning; every acknowledged write is still there', async () => {
    const seg = segment();
    const original = readFileSync(seg);
    // The first bytes of a 2 KiB record where the data ends, the rest never written (the
    // segment is preallocated: zeros follow). At least one whole sector of it is zeros, so it
    // is provably torn (etcd's rule); a record whose sectors all hold data would be corruption.
    const torn = Buffer.from(original);
    Buffer.from([0, 8, 0, 0, 7, 7, 7, 7, 2, 1, 2, 3]).copy(torn, walDataEnd(torn));
    writeFileSync(seg, torn);
    c.startMember(0);
    await c.waitForLeader();
    for (let i = 0; i < 30; i++) assert.equal(await eventually(() => c.client(0).get(`w${i}`)), `v${i}`);
    assert.match(c.members[0]!.log.join(''), /truncating torn record/);
    await c.stop(0);
    assert.ok(readFileSync(segment()).length >= original.length);
  });

  it('a CRC mismatch before the tail refuses to start, naming the file and offset', async () => {
    const seg = segment();
    const buf = readFileSync(seg);
    buf[Math.floor(walDataEnd(buf) / 3)]! ^= 0x5a;
    writeFileSync(seg, buf);
    const p = c.startMember(0);
    const code = await new Promise<number | null>((r) => p.once('exit', (x) => r(x)));
    assert.notEqual(code, 0);
    const log = c.members[0]!.log.join('');
    assert.ok(log.includes(seg), log);
    assert.match(log, /offset \d+/);
    await sleep(10);
    rmSync(join(c.members[0]!.dataDir), { recursive: true, force: true });
  });
});
