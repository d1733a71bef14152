// The data-dir lock on its own: held while its owner lives, refused to a second taker, taken
// over from an owner that is gone (dead pid, a recycled pid, a reboot), left alone when it is
// another host's, and released only by its owner.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { DirLockedError, LOCK_FILE, acquireDirLock } from '../../src/storage/dir-lock.js';
import { tempDir } from '../support/temp-dirs.js';

const fresh = () => join(tempDir('raftkv-lock-'), 'data');
const bootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();

/** The pid of a process that has exited (and been reaped). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

describe('data dir lock', () => {
  it('creates the data dir, holds the lock, refuses a second taker naming the owner, and releases', () => {
    const dir = fresh();
    const lock = acquireDirLock(dir);
    assert.ok(existsSync(join(dir, LOCK_FILE)));
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    assert.throws(() => acquireDirLock(dir), (e: Error) => e instanceof DirLockedError && e.ownerPid === process.pid && e.message.includes(`data dir ${dir} is in use by another process (pid ${process.pid}`));
    lock.release();
    assert.equal(existsSync(join(dir, LOCK_FILE)), false);
    acquireDirLock(dir).release();
  });

  it("takes over a dead process's lock", { skip: !existsSync('/proc/self/stat') }, () => {
    const dir = fresh();
    acquireDirLock(dir).release();
    const pid = deadPid();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, startTime: '1', bootId: bootId(), host: hostname() }));
    const lock = acquireDirLock(dir);
    assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
    lock.release();
  });

  it('takes over the lock of a zombie (killed, not yet reaped by its parent), as etcd takes over its flock', { skip: !existsSync('/proc/self/stat') }, async () => {
    const dir = fresh();
    acquireDirLock(dir).release();
    // A child that exits at once, whose parent never waits for it (Python reaps nothing by itself).
    const zombieMaker = 'import os, sys, time\npid = os.fork()\nif pid == 0: os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)\n';
    const parent = spawn('python3', ['-c', zombieMaker], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
      const pid = Number(line.toString().trim());
      const stat = () => readFileSync(`/proc/${pid}/stat`, 'utf8');
      for (let i = 0; i < 200 && stat().slice(stat().lastIndexOf(')') + 2)[0] !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      const fields = stat().slice(stat().lastIndexOf(')') + 2).split(' ');
      assert.equal(fields[0], 'Z');
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid, startTime: fields[19], bootId: bootId(), host: hostname() }));
      const lock = acquireDirLock(dir);
      assert.equal(JSON.parse(readFileSync(join(dir, LOCK_FILE), 'utf8')).pid, process.pid);
      lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('takes over a lock whose pid now belongs to another process (pid reuse) or was written before a reboot', { skip: !existsSync('/proc/self/stat') }, () => {
    const dir = fresh();
    acquireDirLock(dir).release();
    // Our own pid, but another start time: the owner was an earlier process with this pid.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, startTime: '1', bootId: bootId(), host: hostname() }));
    acquireDirLock(dir).release();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, startTime: '', bootId: 'another-boot', host: hostname() }));
    acquireDirLock(dir).release();
  });

  it("respects another host's lock (it cannot be checked) and takes over an unreadable one", () => {
    const dir = fresh();
    acquireDirLock(dir).release();
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: 1, startTime: '1', bootId: 'x', host: 'some-other-host' }));
    assert.throws(() => acquireDirLock(dir), /pid 1 on host some-other-host/);
    writeFileSync(join(dir, LOCK_FILE), 'garbage');
    acquireDirLock(dir).release();
  });

  it('release leaves a lock that is no longer its own', () => {
    const dir = fresh();
    const lock = acquireDirLock(dir);
    const other = JSON.stringify({ pid: 1, startTime: '1', bootId: 'x', host: 'some-other-host' });
    writeFileSync(join(dir, LOCK_FILE), other);
    lock.release();
    assert.equal(readFileSync(join(dir, LOCK_FILE), 'utf8'), other);
  });
});
