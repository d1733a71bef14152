// The model checker in npm test: a small bounded search of the correct core, a goal search,
// and one deliberate bug found end to end (the CLI in a child process, with the core patched
// as it loads). Longer searches run with `npm run mc` (see test/mc/cli.ts).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';
import { silentLogger } from './model.js';
import { scenarioByName } from './scenarios.js';
import { search } from './search.js';
import { withBudget } from './run.js';
import { replay } from './trace.js';

describe('model checking the pure core (BFS over every interleaving)', () => {
  it('crash-restart, small bound: the whole bounded space, no invariant violated', async () => {
    const sc = withBudget(scenarioByName('crash-restart'), 'timeouts=2,proposals=1,crashes=1');
    const r = await search({ cx: { sc, logger: silentLogger }, maxDepth: 9, maxStates: 200_000, symmetry: true });
    assert.equal(r.violation, undefined, r.violation?.message);
    assert.ok(r.exhaustive || r.depth === 9, `stopped early: ${r.stoppedBy}`);
    assert.ok(r.unique > 1000, `${r.unique} states`);
  });

  it('one append in flight per follower (the members\' flow control), with a lost message: the whole bounded space, no invariant violated', async () => {
    const sc = { ...withBudget(scenarioByName('crash-restart'), 'timeouts=2,proposals=2,drops=1,heartbeats=1'), maxInflight: 1 };
    // (52,279 states to depth 9; with 256 in flight 52,411: the window changes what can happen.)
    const r = await search({ cx: { sc, logger: silentLogger }, maxDepth: 9, maxStates: 200_000, symmetry: true });
    assert.equal(r.violation, undefined, r.violation?.message);
    assert.ok(r.exhaustive || r.depth === 9, `stopped early: ${r.stoppedBy}`);
    assert.ok(r.unique > 1000, `${r.unique} states`);
  });

  it('goal: a proposed value is committed is reachable, with the shortest trace', async () => {
    const sc = withBudget(scenarioByName('elections'), 'timeouts=1,proposals=1');
    const r = await search({ cx: { sc, logger: silentLogger }, maxDepth: 12, maxStates: 200_000, symmetry: true, stopAtGoals: true });
    assert.equal(r.violation, undefined, r.violation?.message);
    const path = r.reached.get('a proposed value is committed');
    assert.ok(path, 'not reached');
    // Campaign, a vote and its answer (leader); the no-op's append and its answer (the probing
    // leader sends one append at a time), propose, the value's append and its answer.
    assert.equal(path.length, 8, replay(sc, path).text);
    assert.match(replay(sc, path).text, /CommittedEntries:\n\s+2\/5 EntryNormal "v1"/);
  });

  it('finds a deliberate bug end to end: a vote not persisted lets a restarted member vote twice', async () => {
    const cli = new URL('./cli.js', import.meta.url).pathname;
    const run = promisify(execFile);
    const r = await run(process.execPath, [cli, '--scenario', 'crash-restart', '--budget', 'timeouts=2,crashes=1', '--depth', '12', '--mutation', 'unpersisted-vote', '--time', '50'], { maxBuffer: 1 << 24 }).then(
      () => assert.fail('the checker passed a broken core'),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /VIOLATION of (election safety|one leader per term)/);
    assert.match(r.stdout, /^crash \d$/m);
    assert.match(r.stdout, /replay: npm run mc -- --scenario crash-restart --budget \S+ --mutation unpersisted-vote --replay [\d.]+/);
  });
});
