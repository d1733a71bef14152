// An error nothing caught ends the member with a log line and a non-zero code, rather than
// leaving it running in an unknown state (or, for a rejected promise on older Node settings,
// running on as if nothing happened).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { EXIT_UNHANDLED } from '../../src/cli/process-guards.js';

const GUARDS = pathToFileURL(resolve('dist/src/cli/process-guards.js')).href;

/** Runs a tiny member stand-in that installs the guards, then does `body`. */
function runWithGuards(body: string): { status: number | null; stderr: string; stdout: string } {
  const script = `import { installProcessGuards } from '${GUARDS}';
installProcessGuards((m) => process.stderr.write('LOGGED ' + m + '\\n'));
${body}
setTimeout(() => process.stdout.write('still running\\n'), 300);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

describe('process guards', () => {
  it('a rejected promise nobody handles is logged and exits non-zero', () => {
    const r = runWithGuards(`Promise.reject(new Error('boom from a background task'));`);
    assert.equal(r.status, EXIT_UNHANDLED);
    assert.match(r.stderr, /LOGGED unhandled promise rejection: Error: boom from a background task/);
    assert.doesNotMatch(r.stdout, /still running/);
  });

  it('an exception thrown from a timer is logged and exits non-zero', () => {
    const r = runWithGuards(`setTimeout(() => { throw new Error('thrown in a timer'); }, 10);`);
    assert.equal(r.status, EXIT_UNHANDLED);
    assert.match(r.stderr, /LOGGED uncaught exception: Error: thrown in a timer/);
  });

  it('a process without a stray error runs on', () => {
    const r = runWithGuards(`Promise.reject(new Error('handled')).catch(() => {});`);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /still running/);
  });
});

describe('process warnings', () => {
  it("go to the member's log, not to stderr as Node's plain text", () => {
    const script = `import { routeProcessWarnings } from '${GUARDS}';
routeProcessWarnings((m) => process.stdout.write('LOGGED ' + m + '\\n'));
process.emitWarning('Setting the TLS ServerName to an IP address is not permitted', 'DeprecationWarning', 'DEP0123');`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'LOGGED node: DeprecationWarning DEP0123: Setting the TLS ServerName to an IP address is not permitted\n');
  });
});
