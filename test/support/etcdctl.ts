// Debian's etcdctl (v3.4) for compatibility tests: whether it is here (CI must have it), and
// the environment it needs.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** etcdctl speaks the v3 API only with ETCDCTL_API=3 in 3.4. */
export const etcdctlEnv = { ...process.env, ETCDCTL_API: '3' };

async function hasEtcdctl(): Promise<boolean> {
  try {
    await run('etcdctl', ['version']);
    return true;
  } catch {
    return false;
  }
}

/** Whether etcdctl is installed; in CI its absence is an error, not a skip. */
export const etcdctlAvailable = await hasEtcdctl();
if (!etcdctlAvailable && process.env.CI) throw new Error('etcdctl is required in CI (apt-get install etcd-client)');
