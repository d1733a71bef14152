// Snapshot file names: <term>-<index>.snap, both 16 hex digits (etcd's naming). Kept apart from
// the snapshotter so that the launcher can learn the newest snapshot's index — where the WAL's
// replay will begin — before the member's code (and the snapshot's decoder) is loaded.

import { readdir } from 'node:fs/promises';

const SNAP_NAME = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

export const snapName = (term: number, index: number): string => `${term.toString(16).padStart(16, '0')}-${index.toString(16).padStart(16, '0')}.snap`;

/** The snapshot files in `dir` with their indexes, oldest (lowest index) first; none if `dir` is missing. */
export async function listSnapshots(dir: string): Promise<{ name: string; index: number }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const out: { name: string; index: number }[] = [];
  for (const name of names) {
    const m = SNAP_NAME.exec(name);
    if (m) out.push({ name, index: parseInt(m[2]!, 16) });
  }
  return out.sort((a, b) => a.index - b.index);
}

/**
 * The index of the newest snapshot file in `dir` (0: none). Its name says so; whether it loads
 * is for the snapshotter to find out (a caller that skipped work for it must check).
 */
export async function newestSnapshotIndex(dir: string): Promise<number> {
  const all = await listSnapshots(dir);
  return all.length > 0 ? all[all.length - 1]!.index : 0;
}
