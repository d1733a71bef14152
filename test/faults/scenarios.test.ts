// The seed project's failure scenarios, each a named fault-injection run on real processes,
// checked for linearizability, lost writes and revision order. (Longer randomized runs:
// `npm run test:faults`.)

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type Fault, frequentSnapshotArgs, runFaults } from './run.js';

const scenario = (name: string, faults: Fault[], nodes = 3, seconds = 10, seed = 7, snapshotCount?: number) =>
  it(name, async () => {
    const extraArgs = snapshotCount ? frequentSnapshotArgs(snapshotCount) : undefined;
    const r = await runFaults({ nodes, seconds, seed, faults, extraArgs });
    const replay = `npm run test:faults -- --nodes ${nodes} --time ${seconds} --seed ${seed} --faults ${faults.join(',')}${snapshotCount ? ` --snapshot-count ${snapshotCount}` : ''}`;
    assert.ok(r.ok, `${r.violations.join('\n')}\nreplay: ${replay}${r.savedTo ? `\nsaved in ${r.savedTo}` : ''}`);
    assert.ok(r.faultsApplied > 0, 'the nemesis did something');
    assert.ok(r.ops > 500, `only ${r.ops} operations`);
  });

describe('fault scenarios on real processes (linearizability-checked)', () => {
  scenario('leader crash and re-election', ['leader']);
  scenario('old leader partitioned away, then rejoining (no commits, no stale reads)', ['isolate-leader']);
  scenario('one slow follower', ['slow-follower']);
  scenario('a majority of slow nodes', ['slow-majority']);
  scenario('repeated leader kills under write load (5 nodes)', ['leader'], 5, 12);
  scenario('all nodes restarted at once', ['restart-all']);
  scenario('mixed faults smoke run: kill, pause, partitions, one-way links', ['kill', 'leader', 'pause', 'partition'], 3, 12, 11);
  // Snapshots every 200 entries: killed and lagging members come back through InstallSnapshot,
  // and restart from a snapshot plus the entries after it.
  scenario('kills and restarts with frequent snapshots (catch-up by snapshot under faults)', ['kill', 'restart-all'], 3, 20, 1, 200);
});
