// The corruption-check flags, parsed as etcd parses them: a Go bool and a Go duration.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FlagError, parseDuration, parseFlags } from '../../src/cli/flags.js';

describe('corruption-check flags', () => {
  it('off by default', () => {
    const f = parseFlags([]);
    assert.equal(f.initialCorruptCheck, false);
    assert.equal(f.corruptCheckTimeMs, 0);
  });

  it('--experimental-initial-corrupt-check: bare, =true, =false; anything else is refused', () => {
    assert.equal(parseFlags(['--experimental-initial-corrupt-check']).initialCorruptCheck, true);
    assert.equal(parseFlags(['--experimental-initial-corrupt-check=true', '--name', 'x']).initialCorruptCheck, true);
    assert.equal(parseFlags(['--experimental-initial-corrupt-check=false']).initialCorruptCheck, false);
    assert.throws(() => parseFlags(['--experimental-initial-corrupt-check=maybe']), FlagError);
  });

  it('--experimental-corrupt-check-time takes Go durations', () => {
    assert.equal(parseFlags(['--experimental-corrupt-check-time', '5s']).corruptCheckTimeMs, 5000);
    assert.equal(parseFlags(['--experimental-corrupt-check-time=1m30s']).corruptCheckTimeMs, 90_000);
    for (const [v, ms] of [['0', 0], ['0s', 0], ['300ms', 300], ['1.5h', 5_400_000], ['2h45m', 9_900_000], ['.5s', 500], ['1500us', 2]] as const) {
      assert.equal(parseDuration('d', v), ms, v);
    }
    for (const v of ['5', '-1s', 'abc', '', '3x', '1s2']) assert.throws(() => parseDuration('d', v), FlagError, v);
    assert.throws(() => parseFlags(['--experimental-corrupt-check-time', '10']), /invalid value "10" for flag --experimental-corrupt-check-time: missing unit in duration/);
  });
});
