// Two test processes picking ports at once never get the same one: the test runner runs two
// files in parallel, and a port both saw free would start one of their members on a port the
// other's member then cannot listen on.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { it } from 'node:test';
import { freePorts } from './ports.js';

const COUNT = 3000;

it('ports handed to another live process are not handed out again', async () => {
  // The other process takes many ports (the range holds ~22,000) and stays alive until told.
  const module = resolve('dist/test/support/ports.js');
  const other = spawn(process.execPath, ['--input-type=module', '-e', `
    const { freePorts } = await import(${JSON.stringify(module)});
    console.log(JSON.stringify(await freePorts(${COUNT})));
    process.stdin.on('data', () => process.exit(0));
  `], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    const theirs = await new Promise<number[]>((res, rej) => {
      let out = '';
      other.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) res(JSON.parse(out) as number[]);
      });
      other.once('exit', (code) => rej(new Error(`the other process exited (${code}) before answering`)));
    });
    assert.equal(new Set(theirs).size, COUNT);
    // Random picks of this many ports would meet theirs ~400 times without the reservation.
    const ours = await freePorts(COUNT);
    const taken = new Set(theirs);
    assert.deepEqual(ours.filter((p) => taken.has(p)), []);
  } finally {
    const gone = new Promise((r) => other.once('exit', r));
    other.stdin!.end('bye\n');
    await gone;
  }
  // The other process removed its reservations as it exited; ours stay until this one exits.
  assert.ok(existsSync(join(tmpdir(), 'raftkv-test-ports')));
});
