// The process's file descriptors and limits, as etcd reports them (its os_fd_used and os_fd_limit
// metrics, expvar's file_descriptor_limit in /debug/vars, Go's process_virtual_memory_max_bytes):
// read from /proc, 0 where it cannot be.

import { readFileSync, readdirSync } from 'node:fs';

/** Open file descriptors: the entries of /proc/self/fd. */
export function openFileDescriptors(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** A soft limit of /proc/self/limits (its row `name`), 'unlimited', or undefined if unknown. */
function softLimit(name: string): number | 'unlimited' | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'latin1')
      .split('\n')
      .find((l) => l.startsWith(name));
    const soft = line?.slice(name.length).trim().split(/\s+/)[0];
    return soft === undefined ? undefined : soft === 'unlimited' ? soft : Number(soft);
  } catch {
    return undefined;
  }
}

/** The soft limit on open files (RLIMIT_NOFILE's current value), 0 if unknown or unlimited. */
export function fileDescriptorLimit(): number {
  const n = softLimit('Max open files');
  return typeof n === 'number' ? n : 0;
}

/**
 * The soft limit on the address space (RLIMIT_AS) in bytes, as Go's procfs reads it for
 * process_virtual_memory_max_bytes: "unlimited" is the largest uint64; 0 if unknown.
 */
export function addressSpaceLimit(): number {
  const n = softLimit('Max address space');
  return n === 'unlimited' ? 2 ** 64 - 1 : (n ?? 0);
}
