// `raftkv` (src/cli/raftkv.ts) starts the member from the build's bundle, dist/raftkv.cjs, with
// V8's code cache of it accepted — the point of the bundle is a shorter restart, and a cache
// V8 refuses would silently give that up — and the log's caller still names the TypeScript
// source, not a line of the bundle. RAFTKV_NO_BUNDLE=1 (and a bundle older than the modules)
// imports the modules instead; both ways the member serves.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { TestClient } from '../support/client.js';
import { freePorts } from '../support/ports.js';
import { eventually } from '../support/proc-cluster.js';
import { tempDir } from '../support/temp-dirs.js';

const BIN = resolve('dist/src/cli/raftkv.js');
const started = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of started) c.kill('SIGKILL');
});

interface LogLine {
  caller: string;
  msg: string;
}

/** Starts one member, puts and reads back a key, stops it; returns its log lines. */
async function startServeStop(env: Record<string, string>): Promise<LogLine[]> {
  const [client, peer] = (await freePorts(2)) as [number, number];
  const dataDir = join(tempDir('raftkv-launcher-'), 'm1');
  const child = spawn(
    process.execPath,
    [
      BIN,
      '--name', 'm1', '--data-dir', dataDir,
      '--listen-client-urls', `http://127.0.0.1:${client}`, '--advertise-client-urls', `http://127.0.0.1:${client}`,
      '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`,
      '--initial-cluster', `m1=http://127.0.0.1:${peer}`, '--log-level', 'info',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/', ...env } },
  );
  started.add(child);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const c = new TestClient(`127.0.0.1:${client}`, 5000);
  try {
    await eventually(() => c.put('launcher', 'ok'), 30_000, 100);
    const r = await c.range('launcher');
    assert.equal(r.kvs[0]?.value.toString(), 'ok');
  } finally {
    c.close();
    child.kill('SIGKILL');
    await exited;
    started.delete(child);
  }
  return err
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

describe('raftkv loads the member from the bundle', () => {
  after(() => {
    for (const c of started) c.kill('SIGKILL');
  });

  it('from dist/raftkv.cjs with its code cache accepted; callers name the TypeScript sources', async () => {
    const lines = await startServeStop({});
    const loaded = lines.find((l) => l.msg.startsWith('member code loaded'));
    assert.equal(loaded?.msg, `member code loaded from ${resolve('dist/raftkv.cjs')} (code cache accepted)`, 'run `npm run build`: the bundle is missing or older than dist/');
    assert.match(loaded.caller, /^cli\/main\.ts:\d+$/);
    // The exact source line of the call, as the build's caller table maps it.
    const src = readFileSync('src/server/etcd-server.ts', 'utf8').split('\n');
    const quotaLine = src.findIndex((l) => l.includes('logger.info(`space quota ')) + 1;
    assert.ok(quotaLine > 0);
    assert.equal(lines.find((l) => l.msg.startsWith('space quota'))?.caller, `server/etcd-server.ts:${quotaLine}`);
  });

  it('as modules with RAFTKV_NO_BUNDLE=1, serving all the same', async () => {
    const lines = await startServeStop({ RAFTKV_NO_BUNDLE: '1' });
    const loaded = lines.find((l) => l.msg.startsWith('member code loaded'));
    assert.equal(loaded?.msg, 'member code loaded as modules (no current bundle)');
    assert.match(loaded.caller, /^cli\/main\.js:\d+$/);
  });
});
