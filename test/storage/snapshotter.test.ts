// Snapshot files: atomic writes, CRC checks, fallback to an older valid snapshot.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { emptyConfState, silentLogger } from '../../src/raft/index.js';
import { Snapshotter, decodeSnapshotFile, encodeSnapshotFile } from '../../src/storage/snap/snapshotter.js';
import { listSnapshots, newestSnapshotIndex } from '../../src/storage/snap/snap-names.js';

const snap = (index: number, data: string) => ({
  data: Buffer.from(data),
  metadata: { index, term: 2, confState: { ...emptyConfState(), voters: [1n, 0xffffffffffffffffn], learners: [3n] } },
});

it('round-trips a snapshot with 64-bit ids and ignores trailing padding', () => {
  const buf = encodeSnapshotFile(snap(10, 'state'));
  const back = decodeSnapshotFile(Buffer.concat([buf, Buffer.alloc(100)]));
  assert.equal(back.metadata.index, 10);
  assert.deepEqual(back.metadata.confState.voters, [1n, 0xffffffffffffffffn]);
  assert.equal(Buffer.from(back.data).toString(), 'state');
});

it('skips a corrupt newest snapshot for an older valid one; keeps only the newest two', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-snap-'));
  const s = new Snapshotter(dir, silentLogger);
  await s.save(snap(10, 'ten'));
  await s.save(snap(20, 'twenty'));
  await s.save(snap(30, 'thirty'));
  const files = readdirSync(dir).filter((n) => n.endsWith('.snap')).sort();
  assert.equal(files.length, 2);
  assert.equal((await s.loadNewest())?.metadata.index, 30);
  const newest = join(dir, files.find((f) => f.endsWith(`${(30).toString(16).padStart(16, '0')}.snap`))!);
  const b = readFileSync(newest);
  b[b.length - 2]! ^= 0xff;
  writeFileSync(newest, b);
  const got = await s.loadNewest();
  assert.equal(got?.metadata.index, 20);
  assert.equal(Buffer.from(got!.data).toString(), 'twenty');
  for (const f of readdirSync(dir)) writeFileSync(join(dir, f), 'garbage');
  assert.equal(await s.loadNewest(), undefined);
  rmSync(dir, { recursive: true });
});

it('keeps as many snapshot files as --max-snapshots says, all of them for 0, newest by index', async () => {
  for (const [retain, kept] of [[3, [30, 40, 50]], [1, [50]], [0, [10, 20, 30, 40, 50]]] as const) {
    const dir = mkdtempSync(join(tmpdir(), 'raftkv-snap-'));
    const s = new Snapshotter(dir, silentLogger, { retain });
    // A later term at a lower index (a new leader's smaller snapshot) sorts by index, not by name.
    for (const index of [10, 20, 30, 40]) await s.save(snap(index, `s${index}`));
    await s.save({ ...snap(50, 's50'), metadata: { ...snap(50, '').metadata, term: 1 } });
    const indexes = (await listSnapshots(dir)).map((x) => x.index);
    assert.deepEqual(indexes, kept, `retain ${retain}`);
    assert.equal(await newestSnapshotIndex(dir), 50);
    rmSync(dir, { recursive: true });
  }
  assert.equal(await newestSnapshotIndex(join(tmpdir(), 'raftkv-no-such-dir')), 0);
});

it('checksums a large image in slices that yield, and writes it whole (a 160 MB image took seconds in one turn)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'raftkv-snap-'));
  try {
    let pauses = 0;
    const s = new Snapshotter(dir, silentLogger, { pause: async () => void pauses++ });
    const data = Buffer.alloc(5 * (1 << 20) + 123);
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
    await s.save({ ...snap(40, ''), data });
    assert.ok(pauses >= 5, `${pauses} pauses`);
    const file = readdirSync(dir).find((n) => n.endsWith('.snap'))!;
    const back = decodeSnapshotFile(readFileSync(join(dir, file)));
    assert.ok(Buffer.from(back.data).equals(data));
    assert.ok(readFileSync(join(dir, file)).equals(encodeSnapshotFile({ ...snap(40, ''), data })), 'the same bytes as the one-buffer encoding');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
