// A failed fsync poisons the WAL and the snapshotter: the failing call and every later one
// reject with the same FatalStorageError, and nothing more is written, even once the disk
// would accept writes again (a retried fsync can succeed for pages the kernel dropped).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { type Entry, EntryType, emptyConfState, silentLogger } from '../../src/raft/index.js';
import { FatalStorageError, type SyncCalls, osSync } from '../../src/storage/fatal.js';
import { Snapshotter } from '../../src/storage/snap/snapshotter.js';
import { Wal } from '../../src/storage/wal/wal.js';

/** The real fsync calls, counted; the kind named by `failing` fails with EIO instead. */
/** A call of SyncCalls that can fail. */
type SyncCall = Exclude<keyof SyncCalls, 'durableFlags'>;

class FlakyDisk implements SyncCalls {
  failing: SyncCall | undefined;
  calls = 0;
  readonly durableFlags = osSync.durableFlags;

  private call(kind: SyncCall): void {
    this.calls++;
    if (this.failing === kind) throw Object.assign(new Error(`EIO: i/o error, ${kind}`), { code: 'EIO' });
  }

  async datasync(fh: FileHandle): Promise<void> {
    this.call('datasync');
    await osSync.datasync(fh);
  }

  async fsync(fh: FileHandle): Promise<void> {
    this.call('fsync');
    await osSync.fsync(fh);
  }

  async fsyncDir(dir: string): Promise<void> {
    this.call('fsyncDir');
    await osSync.fsyncDir(dir);
  }

  async durableWrite(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
    this.call('durableWrite');
    await osSync.durableWrite(fh, buf, position);
  }

  async write(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
    this.call('write');
    await osSync.write(fh, buf, position);
  }
}

const meta = { nodeId: 1n, clusterId: 2n };
const ent = (index: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: Buffer.from(`e${index}`) });
const snap = (index: number) => ({ data: Buffer.from(`state ${index}`), metadata: { index, term: 1, confState: { ...emptyConfState(), voters: [1n] } } });

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'raftkv-fsync-'));
}

/** The bytes of every file in `dir`, to show that nothing was written. */
function contents(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).map((n) => [n, readFileSync(join(dir, n))]));
}

/** Makes `kind` fail, runs `op` (which must reject with a fatal error), and heals the disk. */
async function failWith(disk: FlakyDisk, kind: SyncCall, op: () => Promise<unknown>): Promise<unknown> {
  disk.failing = kind;
  const failed = await op().then(
    () => assert.fail(`resolved although ${kind} failed`),
    (e: unknown) => e,
  );
  assert.ok(isFatal(failed), String(failed));
  // The disk works again, but the pages the failed write or fsync held may be gone.
  disk.failing = undefined;
  return failed;
}

const isFatal = (e: unknown): boolean => e instanceof FatalStorageError && /EIO/.test(e.message) && (e.cause as { code?: string }).code === 'EIO';

describe('a failed fsync is fatal', () => {
  it('in Wal.saveSnapshotMark: it and every later call reject, and nothing more is written', async () => {
    const dir = tmp();
    const disk = new FlakyDisk();
    const w = await Wal.create(dir, meta, { logger: silentLogger, segmentBytes: 64 * 1024, sync: disk });
    await w.save({ term: 1, vote: 1n, commit: 1 }, [ent(1), ent(2)], true);
    const failed = await failWith(disk, 'datasync', () => w.saveSnapshotMark(2, 1));
    const calls = disk.calls;
    const before = contents(dir);
    w.saveNoWait({ term: 1, vote: 1n, commit: 2 });
    await assert.rejects(w.save({ term: 1, vote: 1n, commit: 2 }, [ent(3)], true), (e) => e === failed);
    await assert.rejects(w.save({ term: 1, vote: 1n, commit: 2 }, [], false), (e) => e === failed);
    await assert.rejects(w.saveSnapshotMark(3, 1), (e) => e === failed);
    await assert.rejects(w.releaseTo(3), (e) => e === failed);
    await w.close();
    assert.deepEqual(contents(dir), before);
    assert.equal(disk.calls, calls, 'no fsync after the failure');
    rmSync(dir, { recursive: true });
  });

  it("in the WAL's directory fsync (releasing segments) and in its last fsync on close", async () => {
    const dir = tmp();
    const disk = new FlakyDisk();
    const w = await Wal.create(dir, meta, { logger: silentLogger, segmentBytes: 1024, sync: disk });
    for (let i = 1; i <= 100; i++) await w.save({ term: 1, vote: 1n, commit: i }, [ent(i)], true);
    assert.ok(w.segmentCount() > 2);
    await w.saveSnapshotMark(90, 1);
    disk.failing = 'fsyncDir';
    const failed = await w.releaseTo(90).catch((e: unknown) => e);
    assert.ok(isFatal(failed), String(failed));
    disk.failing = undefined;
    await assert.rejects(w.save(undefined, [ent(101)], true), (e) => e === failed);
    await w.close();

    // close() used to swallow a failed fsync.
    const dir2 = tmp();
    const w2 = await Wal.create(dir2, meta, { logger: silentLogger, segmentBytes: 64 * 1024, sync: disk });
    w2.saveNoWait({ term: 1, vote: 1n, commit: 0 });
    disk.failing = 'datasync';
    await assert.rejects(w2.close(), isFatal);
    rmSync(dir, { recursive: true });
    rmSync(dir2, { recursive: true });
  });

  it('in the durable (O_DSYNC) write of Wal.save: it and every later call reject, and nothing more is written', async () => {
    const dir = tmp();
    const disk = new FlakyDisk();
    const w = await Wal.create(dir, meta, { logger: silentLogger, segmentBytes: 64 * 1024, sync: disk });
    await w.save({ term: 1, vote: 1n, commit: 0 }, [ent(1), ent(2)], true);
    const failed = await failWith(disk, 'durableWrite', () => w.save(undefined, [ent(3)], true));
    const calls = disk.calls;
    const before = contents(dir);
    w.saveNoWait({ term: 1, vote: 1n, commit: 2 });
    await assert.rejects(w.save(undefined, [ent(3)], true), (e) => e === failed);
    await assert.rejects(w.saveSnapshotMark(2, 1), (e) => e === failed);
    await w.close();
    assert.deepEqual(contents(dir), before);
    assert.equal(disk.calls, calls, 'no write or fsync after the failure');
    rmSync(dir, { recursive: true });
  });

  for (const kind of ['fsync', 'fsyncDir'] as const) {
    it(`in Snapshotter.save (${kind === 'fsync' ? 'the file' : 'the directory'}): it and every later call reject`, async () => {
      const dir = tmp();
      const disk = new FlakyDisk();
      const s = new Snapshotter(dir, silentLogger, { sync: disk });
      await s.save(snap(10));
      disk.failing = kind;
      const failed = await s.save(snap(20)).catch((e: unknown) => e);
      assert.ok(isFatal(failed), String(failed));
      disk.failing = undefined;
      const calls = disk.calls;
      const before = contents(dir);
      await assert.rejects(s.save(snap(30)), (e) => e === failed);
      await assert.rejects(s.loadNewest(), (e) => e === failed);
      assert.deepEqual(contents(dir), before);
      assert.equal(disk.calls, calls, 'no fsync after the failure');
      rmSync(dir, { recursive: true });
    });
  }
});
