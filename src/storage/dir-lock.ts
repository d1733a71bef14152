// One process per data directory. Two members writing one WAL would interleave records and
// destroy it; etcd prevents that with flock on its WAL (and bbolt's flock on the db, where a
// second etcd hangs). Node has no flock, so a lock file holds the owner's identity instead:
//
//   <data-dir>/raftkv.lock = {"pid":1234,"startTime":"8812345","bootId":"…","host":"…"}
//
// - Created whole and atomically: written to a private temp file, then hard-linked into place
//   (link fails if the name exists), so no reader ever sees a half-written lock.
// - Held while the owner lives. A lock whose process is gone (kill -9, a crash, a reboot) is
//   stale and taken over. "Gone" is checked, not guessed from ages or timers: the pid must
//   exist AND be the same process, by its start time in /proc and the boot id, so a recycled
//   pid (a container restarted as pid 1 again) does not keep a dead owner's lock alive.
// - A lock written on another host (a shared file system) cannot be checked: it is respected.
// - Released by its owner on exit; release removes the file only if it is still the owner's.
//
// Take-over renames the stale file aside before creating a new one, and checks that what it
// moved aside is the stale lock it judged; so two starters racing over one stale lock cannot
// both win (one finds the other's fresh lock and stops).

import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'raftkv.lock';

interface Owner {
  pid: number;
  /** /proc/<pid>/stat start time (clock ticks since boot); '' where there is no /proc. */
  startTime: string;
  bootId: string;
  host: string;
}

export class DirLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly ownerPid: number,
    detail: string,
  ) {
    super(`data dir ${dataDir} is in use by another process (pid ${ownerPid}${detail}): stop it first, or give this member another --data-dir`);
  }
}

export interface DirLock {
  readonly path: string;
  /** Removes the lock if it is still this process's. Safe to call more than once, and from an 'exit' handler. */
  release(): void;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return '';
  }
}

/** The fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function statFields(pid: number): string[] | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  return stat ? stat.slice(stat.lastIndexOf(')') + 2).split(' ') : undefined;
}

/** Field 22 of /proc/<pid>/stat: the start time. */
const startTimeOf = (pid: number): string | undefined => statFields(pid)?.[19];

/** Field 3 of /proc/<pid>/stat: the state letter (R, S, D, Z, ...). */
const stateOf = (pid: number): string | undefined => statFields(pid)?.[0];

function me(): Owner {
  return { pid: process.pid, startTime: startTimeOf(process.pid) ?? '', bootId: readText('/proc/sys/kernel/random/boot_id'), host: hostname() };
}

function parseOwner(text: string): Owner | undefined {
  try {
    const o = JSON.parse(text) as Partial<Owner>;
    if (typeof o.pid !== 'number' || !Number.isSafeInteger(o.pid) || o.pid <= 0) return undefined;
    return { pid: o.pid, startTime: String(o.startTime ?? ''), bootId: String(o.bootId ?? ''), host: String(o.host ?? '') };
  } catch {
    return undefined;
  }
}

/** Whether the process that wrote `o` may still be running. */
function alive(o: Owner, self: Owner): boolean {
  if (o.host !== self.host) return true; // cannot check another machine's processes
  if (o.bootId && self.bootId && o.bootId !== self.bootId) return false; // written before a reboot
  try {
    process.kill(o.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false; // ESRCH: no such process
  }
  // A zombie (killed, not yet reaped by its parent) holds nothing: etcd's flock is released
  // when the process dies, and a supervisor restarting it at once must not find it "in use".
  if (stateOf(o.pid) === 'Z') return false;
  const now = startTimeOf(o.pid);
  // Same pid but another start time: the pid was reused by a later process.
  return !(o.startTime && now !== undefined && now !== o.startTime);
}

/**
 * etcd's warning for a data dir that others may read (fileutil.CheckDirPermission: it holds
 * every key), in etcd's words and Go's mode notation; undefined if it is 0700 or absent.
 */
export function dataDirPermissionWarning(dataDir: string): string | undefined {
  let mode: number;
  try {
    const st = statSync(dataDir);
    if (!st.isDirectory()) return undefined;
    mode = st.mode & 0o777;
  } catch {
    return undefined;
  }
  if (mode === 0o700) return undefined;
  const rwx = (m: number): string => ['r', 'w', 'x'].map((c, i) => (m & (0o400 >> i) ? c : '-')).join('');
  const goMode = (m: number): string => rwx(m) + rwx((m << 3) & 0o777) + rwx((m << 6) & 0o777);
  return `check file permission: directory "${dataDir}" exist, but the permission is "d${goMode(mode)}". The recommended permission is "-rwx------" to prevent possible unprivileged access to the data.`;
}

/**
 * Takes `dataDir`'s lock for this process (creating the directory, 0700 as etcd makes it),
 * or throws DirLockedError naming the live owner.
 */
export function acquireDirLock(dataDir: string): DirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, LOCK_FILE);
  const self = me();
  const content = JSON.stringify(self);
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, `${content}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(tmp, path);
        return ownedLock(path, content);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const text = readText(path);
      const owner = parseOwner(text);
      // An unreadable or empty lock file is debris of a crash while it was made by an older
      // version, never a lock being written (locks appear whole): stale.
      if (owner && alive(owner, self)) {
        const where = owner.host !== self.host ? ` on host ${owner.host}` : '';
        throw new DirLockedError(dataDir, owner.pid, `${where}, lock file ${path}`);
      }
      if (attempt >= 5) throw new Error(`cannot take over the stale lock ${path}: it keeps changing`);
      takeOverStale(path, text);
    }
  } finally {
    try {
      unlinkSync(tmp);
    } catch {
      /* already gone */
    }
  }
}

/** Moves the stale lock (with content `stale`) out of the way, putting back anything else found there. */
function takeOverStale(path: string, stale: string): void {
  const aside = `${path}.${process.pid}.stale`;
  try {
    renameSync(path, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // someone else removed it: try again
    throw e;
  }
  if (readText(aside) !== stale) {
    // Another starter replaced the stale lock with its own between our read and rename: give it back.
    try {
      linkSync(aside, path);
    } catch {
      /* a third one was quicker: its lock stands */
    }
  }
  unlinkSync(aside);
}

function ownedLock(path: string, content: string): DirLock {
  let held = true;
  return {
    path,
    release: () => {
      if (!held) return;
      held = false;
      if (readText(path) !== content) return; // not ours any more: leave it
      try {
        unlinkSync(path);
      } catch {
        /* already gone */
      }
    },
  };
}
