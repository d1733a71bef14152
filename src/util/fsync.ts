// Crash-consistency helpers: a new or renamed file is durable only once its directory is.

import { open } from 'node:fs/promises';

/** fsyncs a directory so that entries created, renamed or removed in it survive a crash. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
