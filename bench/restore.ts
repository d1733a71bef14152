// `npm run bench -- restore`: backup and restore of N keys, raftkv beside etcd 3.4, on the
// same data (N keys of 256-byte values written in txns of 100 puts to a one-member cluster).
// Measured: `snapshot save` from the live member (wall time of the command, which includes the
// member building the file while it goes on serving), the file's size, and `snapshot restore`
// into a new data dir (raftkv: `raftkv snapshot restore`; etcd: `etcdctl snapshot restore`,
// as etcd 3.4 ships it). Both files are etcd's format; raftkv's restore also reads etcd's file
// (the "raftkv restores etcd's file" column), the migration path.

import * as grpc from '@grpc/grpc-js';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { KVClient, type TxnRequest } from '../src/gen/etcd/rpc.js';
import { type Row, printTable, writeResults } from './report.js';
import { startTarget } from './targets.js';

const run = promisify(execFile);
const BIN = resolve('dist/src/cli/raftkv.js');

/** Writes `n` keys of 256-byte values, 100 puts per txn, 8 txns in flight. */
async function fill(endpoint: string, n: number): Promise<void> {
  const kv = new KVClient(endpoint, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 << 20 });
  const value = Buffer.alloc(256, 0x61);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const from = next;
      next = Math.min(n, next + 100);
      const req: TxnRequest = {
        compare: [],
        success: Array.from({ length: next - from }, (_, i) => ({ requestPut: { key: Buffer.from(`key/${String(from + i).padStart(8, '0')}`), value, lease: 0n, prevKv: false, ignoreValue: false, ignoreLease: false } })),
        failure: [],
      };
      await new Promise<void>((res, rej) => kv.txn(req, (err) => (err ? rej(err) : res())));
    }
  };
  try {
    await Promise.all(Array.from({ length: 8 }, worker));
  } finally {
    kv.close();
  }
}

async function timed(cmd: string, args: string[]): Promise<number> {
  const t = performance.now();
  await run(cmd, args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 16 << 20 });
  return performance.now() - t;
}

const restoreArgs = (dir: string): string[] => ['--name', 'r1', '--data-dir', dir, '--initial-cluster', 'r1=http://127.0.0.1:2380', '--initial-advertise-peer-urls', 'http://127.0.0.1:2380', '--initial-cluster-token', 'bench'];

export async function restoreBench(keyCounts: number[]): Promise<void> {
  const rows: Row[] = [];
  for (const keys of keyCounts) {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-restore-bench-'));
    try {
      const files: Record<string, string> = {};
      for (const kind of ['raftkv', 'etcd'] as const) {
        const t = await startTarget(kind === 'raftkv' ? 'baseline' : 'etcd', 1);
        try {
          console.error(`restore: ${kind}, writing ${keys} keys`);
          await fill(t.endpoints[0]!, keys);
          const file = join(dir, `${kind}.db`);
          files[kind] = file;
          const saveMs = kind === 'raftkv'
            ? await timed(process.execPath, [BIN, 'snapshot', 'save', file, '--endpoints', t.endpoints[0]!])
            : await timed('etcdctl', ['--endpoints', t.endpoints[0]!, 'snapshot', 'save', file]);
          const restoreMs = kind === 'raftkv'
            ? await timed(process.execPath, [BIN, 'snapshot', 'restore', file, ...restoreArgs(join(dir, `${kind}-restored`))])
            : await timed('etcdctl', ['snapshot', 'restore', file, ...restoreArgs(join(dir, `${kind}-restored`))]);
          rows.push({ target: kind, keys, 'save ms': saveMs, 'file MiB': statSync(file).size / 1048576, 'restore ms': restoreMs });
        } finally {
          await t.destroy();
        }
      }
      // The migration path: raftkv restoring etcd's own file.
      const ms = await timed(process.execPath, [BIN, 'snapshot', 'restore', files.etcd!, ...restoreArgs(join(dir, 'etcd-into-raftkv'))]);
      rows.push({ target: 'raftkv (etcd\'s file)', keys, 'save ms': '', 'file MiB': statSync(files.etcd!).size / 1048576, 'restore ms': ms });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const md = printTable('snapshot save and restore, one member, 256-byte values (raftkv: raftkv snapshot save/restore; etcd 3.4: etcdctl snapshot save/restore)', rows);
  await writeResults('restore', { keyCounts }, rows, { title: 'Snapshot restore time vs keys', mark: 'bar', x: { field: 'keys', type: 'nominal' }, y: { field: 'restore ms', type: 'quantitative' }, color: { field: 'target', type: 'nominal' } }, md);
}
