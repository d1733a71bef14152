// The bbolt file reader and writer (src/backup/bbolt/): round trips through every page kind
// (meta, freelist, branch, leaf, overflow, nested and inline buckets), and damaged files.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { BoltBucket, BoltReader } from '../../src/backup/bbolt/reader.js';
import { type BoltBucketSpec, type BoltPair, writeBolt } from '../../src/backup/bbolt/writer.js';
import { BRANCH_PAGE_FLAG, LEAF_PAGE_FLAG, readMetaPage } from '../../src/backup/bbolt/page.js';

const pause = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A plain description of a bucket's contents, nested buckets as objects, for deepEqual. */
type Tree = Array<[string, string | { seq: string; inline: boolean; tree: Tree }]>;

function readTree(b: BoltBucket): Tree {
  const out: Tree = [];
  for (const e of b.entries()) {
    if (e.isBucket) {
      const child = b.child(e.value);
      out.push([e.key.toString('hex'), { seq: BoltBucket.sequenceOf(e.value).toString(), inline: child.rootPgid === 0n, tree: readTree(child) }]);
    } else out.push([e.key.toString('hex'), e.value.toString('hex')]);
  }
  return out;
}

/** A deterministic pseudo-random generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

function spec(): { root: BoltBucketSpec; expected: Tree } {
  const r = rng(7);
  const big: BoltPair[] = [];
  // 20,000 keys: three levels of pages (leaves, branches, a root branch).
  for (let i = 0; i < 20_000; i++) {
    const k = Buffer.alloc(24, 0x6b); // long keys: fewer branch elements per page
    k.writeUInt32BE(i * 3, 0);
    k.writeUInt32BE(Math.floor(r() * 1e9), 4);
    big.push([k, Buffer.from(`v${i}`.repeat(1 + (i % 7)))]);
  }
  // Values larger than a page: overflow pages.
  const huge = Buffer.alloc(3 * 4096 + 123, 0xab);
  const withOverflow: BoltPair[] = [
    [Buffer.from('a'), Buffer.from('small')],
    [Buffer.from('b'), huge],
    [Buffer.from('c'), Buffer.alloc(0)],
  ];
  const small: BoltPair[] = [[Buffer.from('x'), Buffer.from('1')], [Buffer.from('y'), Buffer.from('2')]];
  const root: BoltBucketSpec = {
    entries: [
      [Buffer.from('big'), { entries: big }],
      [Buffer.from('empty'), { entries: [] }],
      [
        Buffer.from('nested'),
        {
          sequence: 42n,
          entries: [
            [Buffer.from('inner-inline'), { entries: small, sequence: 5n }],
            [Buffer.from('k'), Buffer.from('v')],
            [Buffer.from('overflow'), { entries: withOverflow }],
          ],
        },
      ],
    ],
  };
  const hexTree = (ps: BoltPair[]): Tree => ps.map(([k, v]) => [Buffer.from(k).toString('hex'), Buffer.from(v as Uint8Array).toString('hex')]);
  const expected: Tree = [
    [Buffer.from('big').toString('hex'), { seq: '0', inline: false, tree: hexTree(big) }],
    [Buffer.from('empty').toString('hex'), { seq: '0', inline: true, tree: [] }],
    [
      Buffer.from('nested').toString('hex'),
      {
        seq: '42',
        inline: false,
        tree: [
          [Buffer.from('inner-inline').toString('hex'), { seq: '5', inline: true, tree: hexTree(small) }],
          [Buffer.from('k').toString('hex'), Buffer.from('v').toString('hex')],
          [Buffer.from('overflow').toString('hex'), { seq: '0', inline: false, tree: hexTree(withOverflow) }],
        ],
      },
    ],
  ];
  return { root, expected };
}

it('round-trips nested, inline and empty buckets, overflow values and multi-level trees', async () => {
  const { root, expected } = spec();
  const file = Buffer.concat(await writeBolt(root, { pause }));
  const db = BoltReader.open(file);
  assert.equal(db.pageSize, 4096);
  assert.equal(file.length, Number(db.meta.pgid) * 4096, 'the file is exactly pgid pages long');
  assert.deepEqual(readTree(db.root()), expected);
  assert.deepEqual(db.freePages(), []);
  // The big bucket really has branch levels, and the overflow value really spans pages.
  const bigRoot = db.page(db.bucket('big')!.rootPgid);
  assert.equal(bigRoot.flags & BRANCH_PAGE_FLAG, BRANCH_PAGE_FLAG);
  assert.equal(db.page(bigRoot.branch(0).pgid).flags & BRANCH_PAGE_FLAG, BRANCH_PAGE_FLAG);
  const ov = db.bucket('nested')!.bucket('overflow')!;
  // 'a' | 'b' (12 KiB: a leaf of its own, 4 pages) | 'c', under a branch.
  const ovRoot = db.page(ov.rootPgid);
  assert.equal(ovRoot.flags & BRANCH_PAGE_FLAG, BRANCH_PAGE_FLAG);
  const ovLeaf = db.page(ovRoot.branch(1).pgid);
  assert.equal(ovLeaf.flags & LEAF_PAGE_FLAG, LEAF_PAGE_FLAG);
  assert.equal(ovLeaf.bytes.length, 4 * 4096, 'a leaf with a 12 KiB value takes 4 pages');
  // Both metas are valid, meta 0 the newer one (as bbolt's Tx.WriteTo leaves them).
  const m0 = readMetaPage(file.subarray(0, 4096));
  const m1 = readMetaPage(file.subarray(4096, 8192));
  assert.equal(m0.txid, m1.txid + 1n);
  assert.equal(m0.root, m1.root);
});

it('writes the same bytes for the same input (deterministic)', async () => {
  const a = Buffer.concat(await writeBolt(spec().root));
  const b = Buffer.concat(await writeBolt(spec().root));
  assert.ok(a.equals(b));
});

it('uses the other meta page when one is damaged, and refuses a file with neither', async () => {
  const file = Buffer.concat(await writeBolt(spec().root));
  const expected = readTree(BoltReader.open(file).root());
  const bad0 = Buffer.from(file);
  bad0[16 + 20]! ^= 0xff; // meta 0's root pgid: its checksum no longer matches
  const db = BoltReader.open(bad0);
  assert.equal(db.meta.txid, 1n, 'meta 1 is used');
  assert.deepEqual(readTree(db.root()), expected);
  const bad01 = Buffer.from(bad0);
  bad01[4096 + 16 + 20]! ^= 0xff;
  assert.throws(() => BoltReader.open(bad01), /no valid meta page.*checksum/);
  assert.throws(() => BoltReader.open(Buffer.from('not a bbolt file at all')), /no valid meta page/);
});

it('refuses a truncated file and a page that is neither branch nor leaf', async () => {
  const file = Buffer.concat(await writeBolt(spec().root));
  assert.throws(() => BoltReader.open(file.subarray(0, file.length - 4096)), /truncated/);
  const db = BoltReader.open(file);
  const leafId = Number(db.bucket('nested')!.rootPgid);
  const bad = Buffer.from(file);
  bad.writeUInt16LE(0x40, leafId * 4096 + 8);
  assert.throws(() => readTree(BoltReader.open(bad).root()), /neither a branch nor a leaf/);
  // An element pointing outside its page.
  const bad2 = Buffer.from(file);
  bad2.writeUInt32LE(1_000_000, leafId * 4096 + 16 + 4);
  assert.throws(() => readTree(BoltReader.open(bad2).root()), /beyond the page/);
});

it('refuses keys out of order and top-level values that are not buckets', async () => {
  await assert.rejects(
    writeBolt({ entries: [[Buffer.from('b'), { entries: [[Buffer.from('2'), Buffer.from('')], [Buffer.from('1'), Buffer.from('')]] }]] }),
    /out of order/,
  );
  await assert.rejects(writeBolt({ entries: [[Buffer.from('k'), Buffer.from('v')]] }), /must be a bucket/);
});
