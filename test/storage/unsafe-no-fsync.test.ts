// etcd's --unsafe-no-fsync: a member started with it writes its WAL through a handle without
// O_DSYNC (and syncs nothing else); without it, the WAL's handle has O_DSYNC, so every write
// is durable when it returns (the WAL also keeps a plain handle for its unsynced writes). Read from the running process's /proc/<pid>/fdinfo.

import assert from 'node:assert/strict';
import { constants, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ProcCluster } from '../support/proc-cluster.js';

/** The open(2) flags of the process's handles on WAL segments. */
function walHandleFlags(pid: number): number[] {
  const out: number[] = [];
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (!/\/member\/wal\/[0-9a-f-]+\.wal$/.test(target)) continue;
    const flags = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
    if (flags) out.push(parseInt(flags[1]!, 8));
  }
  return out;
}

describe('--unsafe-no-fsync', { skip: process.platform !== 'linux' }, () => {
  for (const unsafe of [false, true]) {
    it(unsafe ? 'with it the WAL is written without O_DSYNC, and the member works' : 'without it the WAL is written with O_DSYNC', async () => {
      const c = await ProcCluster.start({ size: 1, extraArgs: unsafe ? ['--unsafe-no-fsync'] : [] });
      try {
        await c.client(0).put('k', 'v');
        assert.equal(await c.client(0).get('k'), 'v');
        const flags = walHandleFlags(c.members[0]!.proc!.pid!);
        assert.ok(flags.length > 0, 'the member holds its WAL segment open');
        // (Besides the durable handle, the WAL keeps a plain one for what needs no sync.)
        const durable = flags.filter((x) => (x & constants.O_DSYNC) !== 0);
        assert.equal(durable.length > 0, !unsafe, `flags ${flags.map((f) => `0${f.toString(8)}`).join(' ')}`);
        if (unsafe) assert.ok(c.members[0]!.log.some((l) => l.includes('--unsafe-no-fsync: the WAL and snapshots are written without fsync')));
      } finally {
        await c.destroy();
      }
    });
  }
});
