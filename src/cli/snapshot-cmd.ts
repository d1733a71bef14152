// `raftkv snapshot save|status|restore`: etcd's backup tooling (etcdctl snapshot, v3.4) for
// raftkv, on etcd's snapshot file format (src/backup/etcd-snapshot.ts), so the files are
// interchangeable with etcd's in both directions.
//
//   raftkv snapshot save <file> [--endpoints host:port] [--user name:password] [--cacert --cert --key]
//   raftkv snapshot status <file> [-w simple|table|json]
//   raftkv snapshot restore <file> --name --data-dir --initial-cluster --initial-cluster-token
//                                  --initial-advertise-peer-urls [--skip-hash-check]
//
// Errors print one line, "Error: ...", and exit non-zero, as etcdctl's do.

import * as grpc from '@grpc/grpc-js';
import { Command, CommanderError } from 'commander';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { AuthClient, MaintenanceClient } from '../gen/etcd/rpc.js';
import { snapshotStatus, verifiedDatabase } from '../backup/etcd-snapshot.js';
import { restoreDataDir } from '../backup/restore.js';
import { fsyncDir } from '../util/fsync.js';
import { dirname, resolve } from 'node:path';
import { yieldToEventLoop as pause } from '../util/yield.js';

class UsageError extends Error {}

/** Runs `raftkv snapshot <args>`; resolves to the exit code. */
export async function snapshotCommand(args: string[]): Promise<number> {
  const program = new Command('raftkv snapshot')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  program
    .command('save <file>')
    .description('stores a snapshot of a member to <file> (etcd\'s snapshot format)')
    .option('--endpoints <endpoint>', 'the member to save from (host:port)', '127.0.0.1:2379')
    .option('--user <name:password>', 'a user with the root role, when auth is on')
    .option('--cacert <file>', 'verify the member\'s certificate with this CA')
    .option('--cert <file>', 'client certificate')
    .option('--key <file>', 'client key')
    .action(async (file: string, o: SaveOptions) => save(file, o));
  program
    .command('status <file>')
    .description('prints the hash, revision, total keys and size of a snapshot file')
    .option('-w, --write-out <format>', 'simple, table or json', 'simple')
    .action(async (file: string, o: { writeOut: string }) => status(file, o.writeOut));
  program
    .command('restore <file>')
    .description('makes a new member data dir from a snapshot file (raftkv\'s or etcd\'s)')
    .option('--name <name>', 'this member\'s name', 'default')
    .option('--data-dir <dir>', 'the data dir to create (default: <name>.etcd)')
    .option('--wal-dir <dir>', 'a dedicated WAL directory to create (default: <data-dir>/member/wal)')
    .option('--initial-cluster <list>', 'name=peer-url,... of the new cluster', 'default=http://localhost:2380')
    .option('--initial-cluster-token <token>', 'the new cluster\'s token', 'etcd-cluster')
    .option('--initial-advertise-peer-urls <urls>', 'this member\'s peer URLs', 'http://localhost:2380')
    .option('--skip-hash-check', 'accept a file without (or with a wrong) sha256, e.g. a copy of a member\'s db', false)
    .action(async (file: string, o: RestoreFlags) => restore(file, o));
  try {
    await program.parseAsync(args, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    // A gRPC error's details are etcd's text ("etcdserver: ..."), as etcdctl prints it.
    const details = (e as { details?: unknown }).details;
    process.stderr.write(`Error: ${typeof details === 'string' && details ? details : (e as Error).message}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}

// ------------------------------------------------------------------ save

interface SaveOptions {
  endpoints: string;
  user?: string;
  cacert?: string;
  cert?: string;
  key?: string;
}

async function save(file: string, o: SaveOptions): Promise<void> {
  const endpoint = o.endpoints.split(',')[0]!.replace(/^https?:\/\//, '');
  const creds = o.cacert || o.cert
    ? grpc.credentials.createSsl(o.cacert ? await readFile(o.cacert) : null, o.key ? await readFile(o.key) : null, o.cert ? await readFile(o.cert) : null)
    : grpc.credentials.createInsecure();
  const meta = new grpc.Metadata();
  if (o.user) {
    const i = o.user.indexOf(':');
    if (i < 0) throw new UsageError('--user must be name:password');
    const auth = new AuthClient(endpoint, creds);
    try {
      const r = await new Promise<string>((res, rej) =>
        auth.authenticate({ name: o.user!.slice(0, i), password: o.user!.slice(i + 1) }, (err, resp) => (err ? rej(err) : res(resp.token))),
      );
      meta.set('token', r);
    } finally {
      auth.close();
    }
  }
  const part = `${file}.part`;
  const client = new MaintenanceClient(endpoint, creds);
  const fh = await open(part, 'w', 0o600);
  let ok = false;
  try {
    const stream = client.snapshot({}, meta);
    for await (const msg of stream as AsyncIterable<{ blob: Uint8Array }>) await fh.write(Buffer.from(msg.blob));
    // The stream ends with the sha256 of what precedes it: check it before keeping the file.
    await fh.sync();
    await fh.close();
    verifiedDatabase(await readFile(part));
    await rename(part, file);
    await fsyncDir(dirname(resolve(file)));
    ok = true;
    process.stdout.write(`Snapshot saved at ${file}\n`);
  } finally {
    client.close();
    if (!ok) {
      await fh.close().catch(() => {});
      await rm(part, { force: true });
    }
  }
}

// ------------------------------------------------------------------ status

/** go-humanize's Bytes (SI units), as etcdctl prints TOTAL SIZE. */
export function humanizeBytes(n: number): string {
  if (n < 10) return `${n} B`;
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  const e = Math.floor(Math.log(n) / Math.log(1000));
  const v = Math.floor((n / 1000 ** e) * 10 + 0.5) / 10;
  return `${v < 10 ? v.toFixed(1) : v.toFixed(0)} ${units[e]}`;
}

/** etcdctl's table (olekukonko/tablewriter: centred headers, right-aligned cells). */
export function formatTable(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = `+${w.map((x) => '-'.repeat(x + 2)).join('+')}+`;
  const centre = (s: string, x: number): string => {
    const gap = x - s.length;
    const left = Math.floor(gap / 2);
    return ' '.repeat(left) + s + ' '.repeat(gap - left);
  };
  const out = [line, `|${header.map((h, i) => ` ${centre(h, w[i]!)} `).join('|')}|`, line];
  for (const r of rows) out.push(`|${r.map((c, i) => ` ${c.padStart(w[i]!)} `).join('|')}|`);
  out.push(line);
  return `${out.join('\n')}\n`;
}

async function status(file: string, format: string): Promise<void> {
  if (!['simple', 'table', 'json'].includes(format)) throw new UsageError(`unknown output format "${format}" (simple, table or json)`);
  const st = await snapshotStatus(await readFile(file), pause);
  const hash = st.hash.toString(16);
  if (format === 'json') {
    process.stdout.write(`${JSON.stringify({ hash: st.hash, revision: Number(st.revision), totalKey: st.totalKey, totalSize: st.totalSize })}\n`);
  } else if (format === 'table') {
    process.stdout.write(
      formatTable(['HASH', 'REVISION', 'TOTAL KEYS', 'TOTAL SIZE'], [[hash, st.revision.toString(), String(st.totalKey), humanizeBytes(st.totalSize)]]),
    );
  } else {
    process.stdout.write(`${hash}, ${st.revision}, ${st.totalKey}, ${humanizeBytes(st.totalSize)}\n`);
  }
}

// ------------------------------------------------------------------ restore

interface RestoreFlags {
  name: string;
  dataDir?: string;
  walDir?: string;
  initialCluster: string;
  initialClusterToken: string;
  initialAdvertisePeerUrls: string;
  skipHashCheck: boolean;
}

function parseCluster(v: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const part of v.split(',').map((x) => x.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`invalid value "${v}" for flag --initial-cluster: expected name=url[,name=url...]`);
    const name = part.slice(0, eq);
    const url = part.slice(eq + 1);
    try {
      new URL(url);
    } catch {
      throw new UsageError(`invalid value "${v}" for flag --initial-cluster: "${url}" is not a URL`);
    }
    m.set(name, [...(m.get(name) ?? []), url]);
  }
  return m;
}

async function restore(file: string, o: RestoreFlags): Promise<void> {
  const dataDir = o.dataDir ?? `${o.name}.etcd`;
  const r = await restoreDataDir({
    file: await readFile(file),
    name: o.name,
    dataDir,
    ...(o.walDir ? { walDir: o.walDir } : {}),
    initialCluster: parseCluster(o.initialCluster),
    initialClusterToken: o.initialClusterToken,
    initialAdvertisePeerUrls: o.initialAdvertisePeerUrls.split(',').map((x) => x.trim()).filter(Boolean),
    skipHashCheck: o.skipHashCheck,
    logger: { debug() {}, info() {}, warn: (m) => process.stderr.write(`${m}\n`), error: (m) => process.stderr.write(`${m}\n`) },
    pause,
  });
  process.stdout.write(
    `restored snapshot ${file} into ${dataDir}: member ${r.memberId.toString(16)} of cluster ${r.clusterId.toString(16)}, revision ${r.revision}, ${r.keys} keys, ${r.leases} leases\n`,
  );
}
