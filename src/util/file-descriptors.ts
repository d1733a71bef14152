// The process's file descriptors, as etcd reports them (its os_fd_used and os_fd_limit metrics,
// and expvar's file_descriptor_limit in /debug/vars): read from /proc, 0 where it cannot be.

import { readFileSync, readdirSync } from 'node:fs';

/** Open file descriptors: the entries of /proc/self/fd. */
export function openFileDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** The soft limit on open files (RLIMIT_NOFILE's current value), 0 if unknown or unlimited. */
export function fileDescriptorLimit(): number {
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith('Max open files'));
    const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
    return soft === undefined || soft === 'unlimited' ? 0 : Number(soft);
  } catch {
    return 0;
  }
}
