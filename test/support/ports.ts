// Free TCP ports on 127.0.0.1 for member processes.
//
// Ports come from below the kernel's ephemeral range and are checked by binding them. A port
// from the ephemeral range (what binding port 0 gives) can be taken, between our check and the
// member's bind, as the source port of any outgoing connection on the machine — and tests run
// many gRPC connections in parallel — so the member would fail to listen.
//
// The test runner runs two test files at once, each in its own process, and both pick ports
// from the same range: a check by binding only says the port is free *now*, and the other
// process may check it too before our member binds it. So a port handed out is reserved across
// processes by a lock file named after it (holding our pid) in one directory under the temp
// dir. A lock whose process is gone is stale and taken over; ours are removed when we exit.

import { mkdirSync, readFileSync, readdirSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 12_000) return low;
  } catch {
    /* not Linux: fall back to the IANA dynamic range's start */
  }
  return 32_768;
}

const LOW = 10_000;
const HIGH = ephemeralLow() - 1;
const LOCKS = join(tmpdir(), 'raftkv-test-ports');
/** Ports this process reserved (and holds the lock files of). */
const handedOut = new Set<number>();

process.on('exit', () => {
  for (const p of handedOut) {
    try {
      unlinkSync(join(LOCKS, String(p)));
    } catch {
      /* already gone */
    }
  }
  // Leaves nothing behind: the directory goes with the last process's locks.
  try {
    if (readdirSync(LOCKS).length === 0) rmdirSync(LOCKS);
  } catch {
    /* another process still holds ports, or it is gone already */
  }
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the lock file of `port` for this process; false if a live process holds it. */
function reserve(port: number): boolean {
  const file = join(LOCKS, String(port));
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      mkdirSync(LOCKS, { recursive: true });
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return true;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // the directory was removed by an exiting process
      if (code !== 'EEXIST') throw e;
      let holder = NaN;
      try {
        holder = Number(readFileSync(file, 'utf8'));
      } catch {
        continue; // removed meanwhile: try again
      }
      // A lock being written (empty) is taken; so is a live process's.
      if (!Number.isInteger(holder) || holder <= 0 || alive(holder)) return false;
      try {
        unlinkSync(file); // stale: its process died without removing it
      } catch {
        /* another process removed it first: try again */
      }
    }
  }
  return false;
}

function release(port: number): void {
  try {
    unlinkSync(join(LOCKS, String(port)));
  } catch {
    /* already gone */
  }
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const out: number[] = [];
  for (let tries = 0; out.length < n; tries++) {
    if (tries > 10_000) throw new Error('no free ports below the ephemeral range');
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port) || !reserve(port)) continue;
    if (await canBind(port)) {
      handedOut.add(port);
      out.push(port);
    } else {
      release(port);
    }
  }
  return out;
}
