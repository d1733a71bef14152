// `npm start`: a local 3-member cluster on 127.0.0.1 with data under ./data/, one process
// per member (the etcd Procfile layout: client ports 2379/22379/32379, peer ports
// 2380/22380/32380), each serving /metrics and the live dashboard on its metrics port
// (2381/22381/32381). Ctrl-C stops all members cleanly; running it again keeps the data.

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const bin = join(here, 'raftkv.js');
const dataRoot = resolve(process.env.RAFTKV_DATA ?? 'data');

const members = [
  { name: 'infra1', client: 2379, peer: 2380, metrics: 2381 },
  { name: 'infra2', client: 22379, peer: 22380, metrics: 22381 },
  { name: 'infra3', client: 32379, peer: 32380, metrics: 32381 },
];
const metricsUrl = (m: (typeof members)[number]): string => `http://127.0.0.1:${m.metrics}`;

function portFree(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

async function main(): Promise<void> {
  for (const m of members) {
    for (const p of [m.client, m.peer, m.metrics]) {
      if (!(await portFree(p))) {
        console.error(`raftkv start: port ${p} on 127.0.0.1 is in use (is another cluster or etcd running?)`);
        process.exit(1);
      }
    }
  }
  mkdirSync(dataRoot, { recursive: true });
  const cluster = members.map((m) => `${m.name}=http://127.0.0.1:${m.peer}`).join(',');
  const children: ChildProcess[] = [];
  for (const m of members) {
    const args = [
      bin,
      '--name', m.name,
      '--data-dir', join(dataRoot, m.name),
      '--listen-client-urls', `http://127.0.0.1:${m.client}`,
      '--advertise-client-urls', `http://127.0.0.1:${m.client}`,
      '--listen-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${m.peer}`,
      '--initial-cluster', cluster,
      '--initial-cluster-token', 'raftkv-local',
      // /metrics and the dashboard (every member serves one; each shows the whole cluster).
      '--listen-metrics-urls', metricsUrl(m),
      '--log-level', process.env.RAFTKV_LOG_LEVEL ?? 'warn',
    ];
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    c.on('exit', (code, sig) => {
      if (!stopping) console.error(`raftkv start: member ${m.name} exited (${sig ?? code})`);
    });
    children.push(c);
  }
  const endpoints = members.map((m) => `127.0.0.1:${m.client}`).join(',');
  console.log(`raftkv: 3-member cluster starting, data in ${dataRoot}`);
  for (const m of members) console.log(`  ${m.name}: client http://127.0.0.1:${m.client}  peer http://127.0.0.1:${m.peer}  metrics ${metricsUrl(m)}/metrics`);
  console.log(`\nDashboard (live; any member's works): ${metricsUrl(members[0]!)}/dashboard/`);
  console.log('\nTalk to it with etcdctl (ETCDCTL_API=3) or any etcd v3 client:');
  console.log(`  etcdctl --endpoints=${endpoints} put foo bar`);
  console.log(`  etcdctl --endpoints=${endpoints} get foo`);
  console.log(`  etcdctl --endpoints=${endpoints} endpoint status -w table`);
  console.log('\nor over HTTP on the same ports (etcd\'s JSON gateway; keys and values in base64):');
  console.log(`  curl -s http://127.0.0.1:${members[0]!.client}/health`);
  console.log(`  curl -s -X POST http://127.0.0.1:${members[0]!.client}/v3/kv/range -d '{"key":"Zm9v"}'`);
  console.log('\nCtrl-C stops all members.');

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    console.log('\nraftkv: stopping members...');
    for (const c of children) c.kill('SIGTERM');
    let left = children.length;
    for (const c of children) {
      c.once('exit', () => {
        if (--left === 0) process.exit(0);
      });
    }
    setTimeout(() => {
      for (const c of children) c.kill('SIGKILL');
      process.exit(0);
    }, 10_000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  console.error(`raftkv start: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
