// The WAL: round trips, truncation semantics, rotation and release, torn tails and corruption.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Entry, EntryType, silentLogger } from '../../src/raft/index.js';
import { encodeEntry, encodeHardState } from '../../src/storage/wal/record.js';
import { type SyncCalls, osSync } from '../../src/storage/fatal.js';
import { Wal, WalCorruptError, compactEntryViews } from '../../src/storage/wal/wal.js';
import { WalReadAhead } from '../../src/storage/wal/segment-read.js';
import { SECTOR, walDataEnd as dataEnd, walRecordOffsets } from '../support/wal-files.js';

const meta = { nodeId: 0xdeadbeefcafef00dn, clusterId: 0x1234567890abcdefn };
const ent = (index: number, term: number, s = `e${index}`): Entry => ({ index, term, type: EntryType.Normal, data: Buffer.from(s) });
const opts = { logger: silentLogger };

/** Small preallocated segments, so that tests rewrite little. */
const small = { ...opts, segmentBytes: 64 * 1024 };

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'raftkv-wal-'));
}

/** The HardState a restart would find in `dir` (what a process crash leaves of it). */
async function hardStateOnDisk(dir: string) {
  const r = await Wal.open(dir, small);
  await r.wal.close();
  return r.contents.hardState;
}

describe('WAL', () => {
  it('round-trips entries, HardState and 64-bit metadata', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, opts);
    await w.save({ term: 1, vote: 0xffffffffffffffffn, commit: 0 }, [ent(1, 1), ent(2, 1)], true);
    await w.save({ term: 2, vote: 5n, commit: 2 }, [ent(3, 2)], true);
    await w.close();
    const { contents, wal } = await Wal.open(dir, opts);
    await wal.close();
    assert.deepEqual(contents.meta, meta);
    assert.deepEqual(contents.hardState, { term: 2, vote: 5n, commit: 2 });
    assert.deepEqual(contents.entries.map((e) => [e.index, e.term, Buffer.from(e.data).toString()]), [
      [1, 1, 'e1'],
      [2, 1, 'e2'],
      [3, 2, 'e3'],
    ]);
    rmSync(dir, { recursive: true });
  });

  it('a commit-only HardState is written at once but not synced; the next durable write writes it again in its place', async () => {
    const dir = tmp();
    let durable = 0;
    let plain = 0;
    const sync: SyncCalls = {
      ...osSync,
      durableWrite: (fh, b, p) => (durable++, osSync.durableWrite(fh, b, p)),
      write: (fh, b, p) => (plain++, osSync.write(fh, b, p)),
    };
    const o = { ...small, sync };
    const w = await Wal.create(dir, meta, o);
    await w.save({ term: 1, vote: 1n, commit: 0 }, [ent(1, 1), ent(2, 1)], true);
    const seg = join(dir, readdirSync(dir)[0]!);
    const end = dataEnd(readFileSync(seg));
    const durableBefore = durable;
    w.saveNoWait({ term: 1, vote: 1n, commit: 1 });
    w.saveNoWait({ term: 1, vote: 1n, commit: 2 });
    // Written at once, unsynced: what a killed process leaves has the newest commit index.
    for (let i = 0; i < 500 && plain === 0; i++) await new Promise((res) => setTimeout(res, 2));
    assert.deepEqual(await hardStateOnDisk(dir), { term: 1, vote: 1n, commit: 2 });
    assert.equal(plain, 1, 'one plain write for the two');
    assert.equal(durable, durableBefore, 'no durable write for a commit index alone');
    // The next durable write starts where the durable data ended and carries it after its
    // entries: the unsynced record is overwritten, never left between durable ones.
    await w.save(undefined, [ent(3, 1)], true);
    assert.equal(dataEnd(readFileSync(seg)), end + encodeEntry(ent(3, 1)).length + encodeHardState({ term: 1, vote: 1n, commit: 2 }).length);
    let r = await Wal.open(dir, small);
    await r.wal.close();
    assert.deepEqual(r.contents.hardState, { term: 1, vote: 1n, commit: 2 });
    assert.deepEqual(r.contents.entries.map((e) => e.index), [1, 2, 3]);
    // A snapshot mark carries it before the mark (so replay never sees a commit below the
    // snapshot)...
    w.saveNoWait({ term: 1, vote: 1n, commit: 3 });
    await w.saveSnapshotMark(3, 1);
    r = await Wal.open(dir, small);
    await r.wal.close();
    assert.deepEqual(r.contents.hardState, { term: 1, vote: 1n, commit: 3 });
    assert.deepEqual(r.contents.snapshot, { index: 3, term: 1 });
    // ...and close makes what is left durable.
    w.saveNoWait({ term: 1, vote: 1n, commit: 4 });
    const durableAtClose = durable;
    await w.close();
    assert.equal(durable, durableAtClose + 1);
    assert.deepEqual(await hardStateOnDisk(dir), { term: 1, vote: 1n, commit: 4 });
    rmSync(dir, { recursive: true });
  });

  it('entries read back are views of their segment; kept entries that fill less than half of what was read of it move to a right-sized copy', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    const ents = Array.from({ length: 10 }, (_, i) => ent(i + 1, 1, `value-${i + 1}`.repeat(20)));
    await w.save({ term: 1, vote: 0n, commit: 10 }, ents, true);
    await w.close();
    const { contents, wal } = await Wal.open(dir, small);
    await wal.close();
    const read = contents.entries;
    // Views of the segment (64 KiB, preallocated, ~2 KiB of it used): no copy per entry.
    assert.equal(read[0]!.data.buffer, read[9]!.data.buffer);
    assert.ok(read[0]!.data.buffer.byteLength >= 64 * 1024);
    // Keeping them all: the segment's unread preallocated zeros take no memory, so what its
    // entries fill is measured against what was read of it (up to their end): no copy.
    const all = read.map((e) => ({ ...e }));
    compactEntryViews(all);
    assert.ok(all.every((e) => e.data.buffer === read[0]!.data.buffer), 'all kept: still views of the segment');
    // Keeping the last three (as after a snapshot at 7): they move to one buffer of their size.
    const kept = read.slice(7);
    compactEntryViews(kept);
    assert.notEqual(kept[0]!.data.buffer, read[0]!.data.buffer);
    assert.equal(kept[0]!.data.buffer, kept[2]!.data.buffer);
    assert.ok(kept[0]!.data.buffer.byteLength <= 8192, `copy in a buffer of ${kept[0]!.data.buffer.byteLength} B`);
    assert.deepEqual(kept.map((e) => Buffer.from(e.data).toString()), ents.slice(7).map((e) => Buffer.from(e.data).toString()));
    // A buffer the kept entries fill at least half of is left as it is.
    const full = Buffer.alloc(8, 'abcdefgh');
    const mostly: Entry[] = [{ index: 1, term: 1, type: EntryType.Normal, data: full.subarray(0, 6) }];
    compactEntryViews(mostly);
    assert.equal(mostly[0]!.data.buffer, full.buffer);
    rmSync(dir, { recursive: true });
  });

  it('reads back a segment whose records run over several read pieces (4 MiB), stopping at the preallocated zeros', async () => {
    const dir = tmp();
    const o = { ...opts, segmentBytes: 32 * 1024 * 1024 };
    const w = await Wal.create(dir, meta, o);
    // 10 MiB of entries of awkward sizes, so records straddle the piece boundaries.
    const ents = Array.from({ length: 97 }, (_, i) => ({ index: i + 1, term: 1, type: EntryType.Normal, data: Buffer.alloc(108_131 + i * 7, i + 1) }));
    for (let i = 0; i < ents.length; i += 10) await w.save({ term: 1, vote: 0n, commit: 0 }, ents.slice(i, i + 10), true);
    await w.close();
    const { contents, wal } = await Wal.open(dir, o);
    await wal.close();
    assert.equal(contents.entries.length, ents.length);
    for (const [i, e] of contents.entries.entries()) assert.ok(Buffer.from(e.data).equals(ents[i]!.data), `entry ${i + 1}`);
    rmSync(dir, { recursive: true });
  });

  it('open() takes the segments a read-ahead started before it read, each once', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, { ...opts, segmentBytes: 2048 });
    for (let i = 1; i <= 100; i++) await w.save({ term: 1, vote: 0n, commit: i - 1 }, [ent(i, 1, 'y'.repeat(50))], false);
    await w.close();
    const segments = readdirSync(dir).filter((n) => n.endsWith('.wal')).sort();
    assert.ok(segments.length > 3, `${segments.length} segments`);
    const readAhead = WalReadAhead.start(dir);
    await readAhead.settled;
    // Zero the files: what open() now finds on disk is no WAL at all (no metadata record), so
    // entries it returns can only be the bytes the read-ahead read before.
    const saved = segments.map((n) => readFileSync(join(dir, n)));
    for (const [i, n] of segments.entries()) writeFileSync(join(dir, n), Buffer.alloc(saved[i]!.length));
    const r = await Wal.open(dir, { ...opts, segmentBytes: 2048, readAhead });
    await r.wal.close();
    assert.deepEqual(r.contents.entries.map((e) => e.index), Array.from({ length: 100 }, (_, i) => i + 1));
    assert.equal(r.contents.hardState.commit, 99);
    // Given once: a second open reads the (zeroed) files.
    await assert.rejects(Wal.open(dir, { ...opts, segmentBytes: 2048, readAhead }), /no metadata record/);
    rmSync(dir, { recursive: true });
  });

  it('a later entry at an existing index replaces the old suffix', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, opts);
    await w.save(undefined, [ent(1, 1), ent(2, 1), ent(3, 1)], true);
    await w.save(undefined, [ent(2, 2, 'new2')], true);
    await w.close();
    const { contents, wal } = await Wal.open(dir, opts);
    await wal.close();
    assert.deepEqual(contents.entries.map((e) => [e.index, e.term]), [
      [1, 1],
      [2, 2],
    ]);
    rmSync(dir, { recursive: true });
  });

  it('a snapshot installed from the leader: entries after it follow the snapshot, not the old log', async () => {
    // A follower that lagged receives a snapshot at 50 and appends from 51: a restart must
    // recover that (this once refused to start with "entry 51 does not follow 3").
    const dir = tmp();
    const w = await Wal.create(dir, meta, opts);
    await w.save({ term: 1, vote: 0n, commit: 3 }, [ent(1, 1), ent(2, 1), ent(3, 1)], true);
    await w.saveSnapshotMark(50, 2);
    await w.save({ term: 2, vote: 0n, commit: 52 }, [ent(51, 2), ent(52, 2)], true);
    // Our own snapshot at 51 (below the last entry) keeps the entries after it.
    await w.saveSnapshotMark(51, 2);
    await w.save(undefined, [ent(53, 2)], true);
    await w.close();
    const { contents, wal } = await Wal.open(dir, opts);
    await wal.close();
    assert.deepEqual(contents.snapshot, { index: 51, term: 2 });
    assert.deepEqual(contents.entries.map((e) => e.index), [51, 52, 53]);
    rmSync(dir, { recursive: true });
  });

  it('rotates segments at the size limit and releases segments covered by a snapshot', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, { ...opts, segmentBytes: 2048 });
    for (let i = 1; i <= 200; i++) await w.save({ term: 1, vote: 0n, commit: i - 1 }, [ent(i, 1, 'x'.repeat(50))], false);
    assert.ok(w.segmentCount() > 3, `${w.segmentCount()} segments`);
    await w.saveSnapshotMark(150, 1);
    const before = w.segmentCount();
    await w.releaseTo(150);
    assert.ok(w.segmentCount() < before);
    await w.close();
    const { contents, wal } = await Wal.open(dir, opts);
    await wal.close();
    assert.equal(contents.snapshot?.index, 150);
    assert.equal(contents.entries[contents.entries.length - 1]!.index, 200);
    assert.ok(contents.entries[0]!.index <= 151);
    assert.equal(contents.hardState.commit, 199);
    rmSync(dir, { recursive: true });
  });

  it("keeps released segments up to --max-wals (0: all), never an unreleased one, and a restart reads none before its snapshot", async () => {
    const segs = (dir: string) => readdirSync(dir).filter((n) => n.endsWith('.wal')).length;
    const fill = async (w: Wal, from: number, to: number) => {
      for (let i = from; i <= to; i++) await w.save({ term: 1, vote: 0n, commit: i - 1 }, [ent(i, 1, 'x'.repeat(50))], false);
    };
    for (const maxFiles of [0, 2, 3]) {
      const dir = tmp();
      const w = await Wal.create(dir, meta, { ...opts, segmentBytes: 2048, maxFiles });
      await fill(w, 1, 200);
      const all = w.segmentCount();
      assert.ok(all > 6, `${all} segments`);
      // Nothing released yet: every segment stays, whatever the limit.
      assert.equal(await w.releaseTo(0), 0);
      assert.equal(segs(dir), all);
      // Segments holding an entry from 150 on: the next one's first index (in its name) is above 150.
      const firsts = readdirSync(dir).filter((n) => n.endsWith('.wal')).sort().map((n) => parseInt(n.slice(17, 33), 16));
      const needed = firsts.filter((_, i) => i === firsts.length - 1 || firsts[i + 1]! > 150).length;
      await w.saveSnapshotMark(150, 1);
      const removed = await w.releaseTo(150);
      const left = maxFiles === 0 ? all : Math.max(maxFiles, needed);
      assert.equal(w.segmentCount(), left, `maxFiles ${maxFiles}`);
      assert.equal(segs(dir), left);
      assert.equal(removed, all - left);
      await w.close();

      // Reopened at its snapshot: the segments wholly before index 150 are not read (a
      // segment's first index is in its name), and what is read is all a replay after 150 needs.
      const { contents, wal } = await Wal.open(dir, { ...opts, segmentBytes: 2048, maxFiles, from: 150 });
      assert.ok(contents.entries[0]!.index <= 151 && contents.entries[0]!.index > 100, `first entry read ${contents.entries[0]!.index}`);
      assert.equal(contents.entries[contents.entries.length - 1]!.index, 200);
      assert.equal(contents.readFrom > 0, left > needed, `readFrom ${contents.readFrom}`);
      assert.equal(contents.snapshot?.index, 150);
      assert.equal(contents.hardState.commit, 199);
      await wal.close();
      // Opened from the start, every kept segment is read: --max-wals 0 kept the whole log.
      const whole = await Wal.open(dir, { ...opts, segmentBytes: 2048, maxFiles });
      assert.equal(whole.contents.readFrom, 0);
      if (maxFiles === 0) assert.equal(whole.contents.entries[0]!.index, 1);
      await whole.wal.close();
      rmSync(dir, { recursive: true });
    }
  });

  it('deletes nothing when opened at a snapshot (it may not load); a lower --max-wals applies from the next release', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, { ...opts, segmentBytes: 2048, maxFiles: 0 });
    for (let i = 1; i <= 200; i++) await w.save({ term: 1, vote: 0n, commit: i - 1 }, [ent(i, 1, 'x'.repeat(50))], false);
    await w.saveSnapshotMark(150, 1);
    await w.releaseTo(150);
    const all = w.segmentCount();
    await w.close();
    const { contents, wal } = await Wal.open(dir, { ...opts, segmentBytes: 2048, maxFiles: 1, from: 150 });
    assert.ok(contents.readFrom > 0 && contents.entries[0]!.index > 130 && contents.entries[0]!.index <= 151, `first entry read ${contents.entries[0]!.index}`);
    // Before: the segments before 150 were deleted here, by the snapshot's name alone.
    assert.equal(readdirSync(dir).filter((n) => n.endsWith('.wal')).length, all);
    assert.equal(await wal.releaseTo(150), all - wal.segmentCount());
    assert.ok(wal.segmentCount() < all, `${wal.segmentCount()} of ${all} left after the release`);
    assert.equal(readdirSync(dir).filter((n) => n.endsWith('.wal')).length, wal.segmentCount());
    await wal.close();
    const again = await Wal.open(dir, opts);
    assert.equal(again.contents.entries[0]!.index, contents.entries[0]!.index, 'nothing before was left');
    await again.wal.close();
    rmSync(dir, { recursive: true });
  });

  it('cuts off a torn record at the end of the last segment, keeping everything before it', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    await w.save({ term: 1, vote: 1n, commit: 2 }, [ent(1, 1), ent(2, 1)], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    assert.equal(statSync(seg).size, 64 * 1024, 'the segment is preallocated');
    // A crash in the middle of the next batch: a record spanning sectors of which only the
    // first reached the disk (the others are still the preallocated zeros).
    const buf = readFileSync(seg);
    const end = dataEnd(buf);
    const torn = encodeEntry(ent(3, 1, 'x'.repeat(1500)));
    const firstSectorEnd = (Math.floor(end / SECTOR) + 1) * SECTOR;
    torn.subarray(0, firstSectorEnd - end).copy(buf, end);
    writeFileSync(seg, buf);
    const { contents, wal } = await Wal.open(dir, small);
    assert.deepEqual(contents.repaired, { file: seg, offset: end, droppedBytes: torn.length });
    assert.deepEqual(contents.entries.map((e) => e.index), [1, 2]);
    assert.deepEqual(contents.hardState, { term: 1, vote: 1n, commit: 2 });
    // Appending after the repair works and survives another reopen.
    await wal.save(undefined, [ent(3, 1)], true);
    await wal.close();
    const again = await Wal.open(dir, small);
    await again.wal.close();
    assert.deepEqual(again.contents.entries.map((e) => e.index), [1, 2, 3]);
    assert.equal(again.contents.repaired, undefined);
    // A WAL cut short (written before preallocation, or truncated): torn tail cut, then extended.
    const bytes = readFileSync(seg);
    writeFileSync(seg, Buffer.concat([bytes.subarray(0, dataEnd(bytes)), Buffer.from([40, 0, 0])]));
    const third = await Wal.open(dir, small);
    await third.wal.close();
    assert.ok(third.contents.repaired);
    assert.deepEqual(third.contents.entries.map((e) => e.index), [1, 2, 3]);
    assert.equal(statSync(seg).size, 64 * 1024, 'preallocated again');
    rmSync(dir, { recursive: true });
  });

  it('refuses a CRC mismatch before the tail, naming the file and offset', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    for (let i = 1; i <= 10; i++) await w.save({ term: 1, vote: 0n, commit: i }, [ent(i, 1)], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const buf = readFileSync(seg);
    buf[Math.floor(dataEnd(buf) / 2)]! ^= 0xff;
    writeFileSync(seg, buf);
    await assert.rejects(
      () => Wal.open(dir, small),
      (e: unknown) => e instanceof WalCorruptError && e.message.includes(seg) && /offset \d+/.test(e.message),
    );
    rmSync(dir, { recursive: true });
  });

  it('refuses a bit flip in the last record (a HardState), naming the file and offset', async () => {
    // The last record was fully written and fsynced: cutting it off as a torn write would make
    // the member forget its term and vote (and perhaps vote twice in a term).
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    await w.save({ term: 1, vote: 0n, commit: 0 }, [ent(1, 1), ent(2, 1)], true);
    await w.save({ term: 7, vote: 0xa1b2c3d4e5f60718n, commit: 2 }, [], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const good = readFileSync(seg);
    const offs = walRecordOffsets(good);
    const last = offs[offs.length - 1]!;
    const end = dataEnd(good);
    assert.equal(end - last, 9 + 24, 'the last record is the HardState');
    // One flipped bit anywhere in it: the length, the CRC, the type or the payload.
    for (let at = last; at < end; at++) {
      for (const bit of [0, 5]) {
        const buf = Buffer.from(good);
        buf[at]! ^= 1 << bit;
        writeFileSync(seg, buf);
        await assert.rejects(
          () => Wal.open(dir, small),
          (e: unknown) => e instanceof WalCorruptError && e.message.includes(seg) && e.offset === last && e.message.includes(`offset ${last}`),
          `bit ${bit} of byte ${at - last} of the record`,
        );
      }
    }
    // The length's top bit: the record now claims to run past the end of the file.
    const buf = Buffer.from(good);
    buf[last + 3]! ^= 0x80;
    writeFileSync(seg, buf);
    await assert.rejects(() => Wal.open(dir, small), WalCorruptError);
    rmSync(dir, { recursive: true });
  });

  it('refuses a bit flip in a last record that spans several sectors', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    await w.save({ term: 1, vote: 1n, commit: 1 }, [ent(1, 1)], true);
    await w.save(undefined, [ent(2, 1, 'y'.repeat(2000))], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const buf = readFileSync(seg);
    const offs = walRecordOffsets(buf);
    const last = offs[offs.length - 1]!;
    buf[last + 1000]! ^= 0x10;
    writeFileSync(seg, buf);
    await assert.rejects(
      () => Wal.open(dir, small),
      (e: unknown) => e instanceof WalCorruptError && e.file === seg && e.offset === last,
    );
    rmSync(dir, { recursive: true });
  });

  it('cuts a last record whose trailing sectors were never written, or a file cut short inside it', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    await w.save({ term: 2, vote: 3n, commit: 1 }, [ent(1, 2)], true);
    await w.save({ term: 2, vote: 3n, commit: 2 }, [ent(2, 2, 'z'.repeat(3000))], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const good = readFileSync(seg);
    const offs = walRecordOffsets(good);
    const entry2 = offs[offs.length - 2]!;
    const end = dataEnd(good);
    // The batch [entry 2, HardState] torn: every sector after the first it touched is zeros.
    const torn = Buffer.from(good);
    torn.fill(0, (Math.floor(entry2 / SECTOR) + 1) * SECTOR, end);
    writeFileSync(seg, torn);
    let opened = await Wal.open(dir, small);
    await opened.wal.close();
    assert.deepEqual(opened.contents.repaired?.offset, entry2);
    assert.deepEqual(opened.contents.entries.map((e) => e.index), [1]);
    assert.deepEqual(opened.contents.hardState, { term: 2, vote: 3n, commit: 1 });
    // Only one sector in the middle of the record lost, zeros after it: torn as well.
    const holed = Buffer.from(good);
    const hole = (Math.floor(entry2 / SECTOR) + 3) * SECTOR;
    holed.fill(0, hole, hole + SECTOR);
    holed.fill(0, offs[offs.length - 1]!, end);
    writeFileSync(seg, holed);
    opened = await Wal.open(dir, small);
    await opened.wal.close();
    assert.equal(opened.contents.repaired?.offset, entry2);
    assert.deepEqual(opened.contents.entries.map((e) => e.index), [1]);
    // Written only partially: the file (not preallocated) ends inside the record.
    writeFileSync(seg, good.subarray(0, entry2 + 700));
    opened = await Wal.open(dir, small);
    await opened.wal.close();
    assert.equal(opened.contents.repaired?.offset, entry2);
    assert.deepEqual(opened.contents.entries.map((e) => e.index), [1]);
    assert.equal(statSync(seg).size, 64 * 1024, 'preallocated again');
    rmSync(dir, { recursive: true });
  });

  it('any truncation of the file recovers a prefix of the batches (property)', async () => {
    const dir = tmp();
    const w = await Wal.create(dir, meta, small);
    const val = (i: number) => 'v'.repeat(10 * i);
    for (let i = 1; i <= 20; i++) await w.save({ term: 1, vote: 0n, commit: i }, [ent(i, 1, val(i))], true);
    await w.close();
    const seg = join(dir, readdirSync(dir).find((n) => n.endsWith('.wal'))!);
    const full = readFileSync(seg);
    const end = dataEnd(full);
    assert.ok(end > 6 * SECTOR, 'the batches span several sectors');
    await fc.assert(
      // A crash mid-write: the file cut short at `cut`, or (preallocated) the sectors from `cut`
      // on never written. Disks write whole sectors, so those zeros start at a sector boundary;
      // zeros from a byte inside a sector are not a torn write (and are refused, see above).
      fc.asyncProperty(fc.integer({ min: 25, max: end }), fc.boolean(), async (cut, zeros) => {
        if (zeros) {
          const b = Buffer.from(full);
          b.fill(0, Math.ceil(cut / SECTOR) * SECTOR, end);
          writeFileSync(seg, b);
        } else {
          writeFileSync(seg, full);
          truncateSync(seg, cut);
        }
        const { contents, wal } = await Wal.open(dir, small);
        await wal.close();
        const idx = contents.entries.map((e) => e.index);
        // A contiguous prefix 1..n, with the data intact.
        idx.forEach((x, k) => assert.equal(x, k + 1));
        for (const e of contents.entries) assert.equal(Buffer.from(e.data).toString(), val(e.index));
        assert.ok(contents.hardState.commit <= idx.length);
      }),
      { numRuns: 60 },
    );
    rmSync(dir, { recursive: true });
  });
});
