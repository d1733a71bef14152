// The core must stay pure: no Node I/O, timers, clocks or randomness inside src/raft.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

it('src/raft imports only src/raft and uses no clock, timer, randomness or I/O', () => {
  const forbidden = [
    /from\s+['"](node:|fs|net|http|child_process|worker_threads|@grpc)/,
    /require\(/,
    /\bsetTimeout\b|\bsetInterval\b|\bsetImmediate\b|\bqueueMicrotask\b/,
    /\bDate\.now\b|\bnew Date\b|\bperformance\.now\b|\bprocess\./,
    /\bMath\.random\b/,
    /\bawait\b|\basync\b/,
  ];
  const root = 'src/raft';
  const all = files(root);
  assert.ok(all.length > 5);
  for (const f of all) {
    const text = readFileSync(f, 'utf8').replace(/\/\/.*$/gm, '');
    for (const re of forbidden) assert.doesNotMatch(text, re, `${f} matches ${re}`);
    for (const m of text.matchAll(/from\s+['"]([^'"]+)['"]/g)) {
      assert.ok(m[1]!.startsWith('.'), `${f} imports ${m[1]} from outside the core`);
    }
  }
});
