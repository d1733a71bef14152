// What a member serves, for comparing key by key across backup and restore: every key with
// its create and mod revisions, version, value and lease, via etcdctl (works on raftkv and
// etcd alike), and the header's revision.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const ctl = async (args: string[]): Promise<string> =>
  (await run('etcdctl', args, { env: { ...process.env, ETCDCTL_API: '3' }, maxBuffer: 64 * 1024 * 1024 })).stdout;

/** JSON with 64-bit integers (lease, member and cluster ids) kept exact, as strings. */
export const parseBig = <T>(text: string): T => JSON.parse(text.replace(/([:[,]\s*)(\d{16,})/g, '$1"$2"')) as T;

interface EtcdKv {
  key: string;
  value?: string;
  create_revision: number;
  mod_revision: number;
  version: number;
  lease?: string | number;
}

/** One line per key: hex key, create, mod, version, hex value, lease (decimal). */
export async function servedKeys(endpoint: string, extra: string[] = []): Promise<{ rev: number; kvs: string[] }> {
  const out = parseBig<{ header: { revision: number }; kvs?: EtcdKv[] }>(await ctl(['--endpoints', endpoint, ...extra, 'get', '', '--from-key', '-w', 'json']));
  return {
    rev: Number(out.header.revision),
    kvs: (out.kvs ?? []).map((k) =>
      [Buffer.from(k.key, 'base64').toString('hex'), k.create_revision, k.mod_revision, k.version, Buffer.from(k.value ?? '', 'base64').toString('hex'), String(k.lease ?? 0)].join(' '),
    ),
  };
}
