// The process-cluster harness itself: a cluster that never comes up leaves nothing behind —
// no member process, no data dir — so that a failing test or benchmark cannot leak either.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ProcCluster } from './proc-cluster.js';

/** Pids of processes whose command line mentions `text`. */
function processesNaming(text: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', text], { encoding: 'utf8' }).split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** A temp dir for one test's cluster, removed afterwards with anything still running from it. */
async function withRoot(f: (root: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-harness-'));
  try {
    await f(join(dir, 'cluster'));
  } finally {
    for (const pid of processesNaming(dir)) process.kill(Number(pid), 'SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('process cluster harness', () => {
  it('a cluster whose members cannot start fails at once and leaves no process or data dir behind', () =>
    withRoot(async (root) => {
      // A refused flag value: every member exits with code 2 before it serves anything, and the
      // start says so instead of waiting out its leader timeout.
      await assert.rejects(ProcCluster.start({ size: 3, dataRoot: root, extraArgs: ['--max-inflight-appends', '0'] }), /every member exited[\s\S]*max-inflight-appends/);
      assert.equal(existsSync(root), false, 'data dir left behind');
      assert.deepEqual(processesNaming(root), [], 'member processes left behind');
    }));

  it('a cluster with no leader in time is stopped, its running members killed', () =>
    withRoot(async (root) => {
      // Members that run but hold no election for 50 s (without etcd's start-up tick advance,
      // which would bring it to a few ticks): the start gives up first (3 s here).
      await assert.rejects(
        ProcCluster.start({ size: 3, dataRoot: root, electionMs: 50_000, startTimeoutMs: 3000, extraArgs: ['--initial-election-tick-advance=false'] }),
        /no leader within 3000ms/,
      );
      assert.equal(existsSync(root), false, 'data dir left behind');
      assert.deepEqual(processesNaming(root), [], 'member processes left behind');
    }));
});
