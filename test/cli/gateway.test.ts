// `raftkv gateway start`: etcd's L4 gateway (src/cli/gateway-cmd.ts, src/proxy/tcp-proxy.ts) in
// front of a 3-member cluster, as a unit file running `etcd gateway start` would run it:
// - gRPC (etcdctl, grpc-js) and HTTP (the JSON gateway) pass through untouched;
// - connections go round robin over the endpoints; a stopped member is set aside ("deactivated
//   endpoint"), clients keep being served by the others, and it is used again once it answers
//   ("activated", after --retry-delay);
// - endpoints come from SRV records with --discovery-srv;
// - an endpoint that is the gateway's own listen address is refused in etcd's words.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { FakeDns } from '../support/fake-dns.js';
import { ProcCluster, eventually } from '../support/proc-cluster.js';
import { freePorts } from '../support/ports.js';
import { etcdctlAvailable, etcdctlEnv, run } from '../support/etcdctl.js';
import { TestClient } from '../support/client.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of started) p.kill('SIGKILL');
});

interface Gateway {
  proc: ChildProcess;
  log: string[];
}

async function startGateway(args: string[], env: Record<string, string> = {}): Promise<Gateway> {
  const proc = spawn(process.execPath, [BIN, 'gateway', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  const log: string[] = [];
  proc.stdout!.on('data', (d: Buffer) => log.push(d.toString()));
  proc.stderr!.on('data', (d: Buffer) => log.push(d.toString()));
  await eventually(async () => assert.match(log.join(''), /ready to proxy client requests/), 20_000);
  return { proc, log };
}

async function stopGateway(g: Gateway | undefined): Promise<void> {
  if (!g || g.proc.exitCode !== null || g.proc.signalCode !== null) return;
  const exited = new Promise<void>((r) => g.proc.once('exit', () => r()));
  g.proc.kill('SIGTERM');
  await exited;
}

/** The member id that answers a status request made on a new connection through `port` (the JSON gateway). */
function memberBehind(port: number): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/v3/maintenance/status', method: 'POST', agent: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => {
        try {
          resolvePromise((JSON.parse(body) as { header: { member_id: string } }).header.member_id);
        } catch (e) {
          reject(new Error(`${res.statusCode} ${body}: ${(e as Error).message}`));
        }
      });
    });
    req.on('error', reject);
    req.end('{}');
  });
}

describe('raftkv gateway start (etcd gateway)', () => {
  let c: ProcCluster | undefined;
  let g: Gateway | undefined;
  after(async () => {
    await stopGateway(g);
    await c?.destroy();
  });

  it('proxies gRPC and HTTP round robin, sets a stopped member aside and takes it back', async () => {
    c = await ProcCluster.start({ size: 3 });
    const cluster = c;
    const [port] = await freePorts(1);
    const ids = await Promise.all([0, 1, 2].map(async (i) => String((await cluster.client(i).status()).header!.memberId)));
    g = await startGateway([
      '--endpoints', `http://127.0.0.1:${c.members[0]!.clientPort},127.0.0.1:${c.members[1]!.clientPort}`,
      '--endpoints', `127.0.0.1:${c.members[2]!.clientPort}`,
      '--listen-addr', `127.0.0.1:${port}`, '--retry-delay', '1s',
    ]);
    const gw = g;
    assert.match(gw.log.join(''), new RegExp(`"msg":"ready to proxy client requests","endpoints":\\["127.0.0.1:${c.members[0]!.clientPort}","127.0.0.1:${c.members[1]!.clientPort}","127.0.0.1:${c.members[2]!.clientPort}"\\]`));

    // gRPC through the gateway: grpc-js, and etcdctl (grpc-go) where installed.
    const client = new TestClient(`127.0.0.1:${port!}`);
    await client.put('through', 'gateway');
    assert.equal(await client.get('through'), 'gateway');
    if (etcdctlAvailable) {
      const { stdout } = await run('etcdctl', [`--endpoints=127.0.0.1:${port}`, 'get', 'through', '--print-value-only'], { env: etcdctlEnv });
      assert.equal(stdout.trim(), 'gateway');
    }

    // Round robin: three new connections reach the three members.
    const seen = [];
    for (let i = 0; i < 3; i++) seen.push(await memberBehind(port!));
    assert.deepEqual([...seen].sort(), [...ids].sort());

    // A stopped member: the connection that picks it goes to the next one, and it is set aside.
    await c.stop(0);
    const during = new Set<string>();
    for (let i = 0; i < 6; i++) during.add(await memberBehind(port!));
    assert.deepEqual([...during].sort(), [ids[1]!, ids[2]!].sort());
    assert.match(gw.log.join(''), new RegExp(`"msg":"deactivated endpoint","address":"127.0.0.1:${c.members[0]!.clientPort}","interval":1,"error":".*ECONNREFUSED`));

    // Back: dialled again every --retry-delay, and used again once it answers.
    c.startMember(0);
    await c.waitForAllServing();
    await eventually(async () => assert.match(gw.log.join(''), new RegExp(`"msg":"activated","address":"127.0.0.1:${cluster.members[0]!.clientPort}"`)), 20_000);
    const back = new Set<string>();
    for (let i = 0; i < 3; i++) back.add(await memberBehind(port!));
    assert.ok(back.has(ids[0]!), `member ${ids[0]} is used again: ${[...back].join(',')}`);
    client.close();
  });

  it('reads its endpoints from the _etcd-client SRV records with --discovery-srv', async () => {
    const dns = await FakeDns.start();
    let d: Gateway | undefined;
    try {
      const [port] = await freePorts(1);
      dns.srv.set('_etcd-client._tcp.gw.test', [{ target: '127.0.0.1', port: c!.members[1]!.clientPort }]);
      d = await startGateway(['--discovery-srv', 'gw.test', '--insecure-discovery', '--listen-addr', `127.0.0.1:${port}`], { RAFTKV_DNS_SERVERS: dns.server });
      assert.match(d.log.join(''), new RegExp(`"msg":"discovered cluster from SRV","srv-server":"gw.test","endpoints":\\["http://127.0.0.1:${c!.members[1]!.clientPort}"\\]`));
      const id = String((await c!.client(1).status()).header!.memberId);
      assert.equal(await memberBehind(port!), id);
      assert.ok(dns.asked.includes('SRV _etcd-client-ssl._tcp.gw.test') && dns.asked.includes('SRV _etcd-client._tcp.gw.test'), dns.asked.join(','));
    } finally {
      await stopGateway(d);
      await dns.close();
    }
  });

  it("refuses an endpoint that is its own listen address, and bad flags, in etcd's words", async () => {
    const [port] = await freePorts(1);
    const loop = spawnSync(process.execPath, [BIN, 'gateway', 'start', '--endpoints', `127.0.0.1:${port}`, '--listen-addr', `127.0.0.1:${port}`], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(loop.status, 1);
    assert.match(loop.stdout, new RegExp(`SRV or endpoint \\(127.0.0.1:${port}->127.0.0.1:${port}\\) should not resolve to the gateway listen addr \\(127.0.0.1:${port}\\)`));
    const bad = spawnSync(process.execPath, [BIN, 'gateway', 'start', '--listen-addr', 'nonsense'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(bad.status, 1);
    assert.match(bad.stdout, /failed to validate listen address: nonsense/);
    const unknown = spawnSync(process.execPath, [BIN, 'gateway', 'start', '--no-such-flag'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(unknown.status, 1);
    assert.match(unknown.stderr, /^Error: unknown flag: --no-such-flag$/m);
  });
});
