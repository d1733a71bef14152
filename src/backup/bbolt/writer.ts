// Writes a new bbolt database file from buckets given in key order: what bbolt would hold after
// one transaction that created them, compacted (as `bbolt compact` leaves it). Layout: ./page.ts.
//
// Pages are laid out in the order they are finished: meta 0 and meta 1, an empty freelist, then
// each bucket bottom-up (its leaves, then its branch levels), nested buckets before the leaf of
// their parent that points at them, and the root bucket's page last. Leaves are filled up to the
// page size (bbolt splits them when it next writes there); an element larger than a page gets a
// page with overflow pages of its own. A bucket without sub-buckets whose page would fit in a
// quarter page is stored inline in its parent's leaf, as bbolt does (`inlineable`). The file
// length is exactly pgid × page size, and both metas are valid (meta 0 with the higher txid, as
// bbolt's Tx.WriteTo writes them), so bbolt (and etcd on top of it) opens and writes to it.
//
// Building yields to the event loop (`pause`) every few thousand pairs, so that a large
// snapshot never stalls a member's heartbeats.

import {
  BRANCH_ELEMENT_SIZE,
  BRANCH_PAGE_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  FREELIST_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  LEAF_PAGE_FLAG,
  PAGE_HEADER_SIZE,
  writeMetaPage,
} from './page.js';
import { SliceBudget } from '../../util/yield.js';

/** A bucket to write: its pairs in strictly increasing key order (bytewise). */
export interface BoltBucketSpec {
  /** The bucket's sequence counter (0 unless the application used NextSequence). */
  sequence?: bigint;
  entries: Iterable<BoltPair> | AsyncIterable<BoltPair>;
}

/**
 * A key and either a value or a nested bucket. Plain Uint8Arrays are enough (a Buffer is one):
 * writing a million records, the cheaper views matter.
 */
export type BoltPair = [key: Uint8Array, value: Uint8Array | BoltBucketSpec];

export interface BoltWriteOptions {
  pageSize?: number;
  /** Called every `chunk` pairs; should yield to the event loop. */
  pause?: () => Promise<void>;
  chunk?: number;
  /** The transaction id of meta 0 (meta 1 gets one less). */
  txid?: bigint;
}

interface LeafElement {
  flags: number;
  key: Uint8Array;
  value: Uint8Array;
}

/** What a finished bucket is to its parent: the bytes of its nested-bucket leaf value. */
type BucketValue = Buffer;

class PageSink {
  /** Finished pages, in page id order (a buffer may span several pages: overflow). */
  readonly chunks: Buffer[] = [];
  nextPgid = 0;

  constructor(readonly pageSize: number) {}

  /** Bytes of the whole pages `size` bytes take. */
  pagesFor(size: number): number {
    return Math.max(1, Math.ceil(size / this.pageSize)) * this.pageSize;
  }

  /** Reserves `n` pages for `bytes` (zero-filled to the page boundary) and returns the first id. */
  add(bytes: Buffer): number {
    const pages = Math.max(1, Math.ceil(bytes.length / this.pageSize));
    const id = this.nextPgid;
    const full = bytes.length === pages * this.pageSize ? bytes : Buffer.concat([bytes, Buffer.alloc(pages * this.pageSize - bytes.length)]);
    full.writeBigUInt64LE(BigInt(id), 0);
    full.writeUInt32LE(pages - 1, 12);
    this.chunks.push(full);
    this.nextPgid += pages;
    return id;
  }
}

/**
 * Lays out a leaf page (header and elements) for `elems`: bbolt's node.write for a leaf, in a
 * zeroed buffer of `alloc` bytes (whole pages, or exactly `size` for an inline bucket).
 */
function leafPageBytes(elems: readonly LeafElement[], size: number, alloc = size): Buffer {
  const b = Buffer.alloc(alloc);
  b.writeUInt16LE(LEAF_PAGE_FLAG, 8);
  b.writeUInt16LE(elems.length, 10);
  let data = PAGE_HEADER_SIZE + elems.length * LEAF_ELEMENT_SIZE;
  elems.forEach((el, i) => {
    const e = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
    b.writeUInt32LE(el.flags, e);
    b.writeUInt32LE(data - e, e + 4);
    b.writeUInt32LE(el.key.length, e + 8);
    b.writeUInt32LE(el.value.length, e + 12);
    b.set(el.key, data);
    data += el.key.length;
    b.set(el.value, data);
    data += el.value.length;
  });
  return b;
}

function branchPageBytes(elems: ReadonlyArray<{ key: Uint8Array; pgid: number }>, size: number, alloc = size): Buffer {
  const b = Buffer.alloc(alloc);
  b.writeUInt16LE(BRANCH_PAGE_FLAG, 8);
  b.writeUInt16LE(elems.length, 10);
  let data = PAGE_HEADER_SIZE + elems.length * BRANCH_ELEMENT_SIZE;
  elems.forEach((el, i) => {
    const e = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
    b.writeUInt32LE(data - e, e);
    b.writeUInt32LE(el.key.length, e + 4);
    b.writeBigUInt64LE(BigInt(el.pgid), e + 8);
    b.set(el.key, data);
    data += el.key.length;
  });
  return b;
}

/** bbolt's page.count is a u16. */
const MAX_ELEMENTS = 0xffff;

class Writer {
  /** When to yield: every `chunk` pairs or SLICE_BYTES of them (a few large values are a slice). */
  private readonly budget: SliceBudget;

  constructor(
    private readonly sink: PageSink,
    private readonly pageSize: number,
    private readonly pause: (() => Promise<void>) | undefined,
    chunk: number,
  ) {
    this.budget = new SliceBudget(chunk);
  }

  /**
   * Writes one bucket's pages (and its sub-buckets') and returns its leaf value in the parent
   * (bucket header, plus the inline page when `allowInline` and it qualifies), or, for the
   * root bucket, the header whose first u64 is its root page.
   */
  async bucket(spec: BoltBucketSpec, allowInline: boolean): Promise<BucketValue> {
    const ps = this.pageSize;
    const maxInline = ps / 4;
    // The leaves finished so far, as (first key, page id) for the branch levels.
    const leaves: Array<{ key: Uint8Array; pgid: number }> = [];
    let cur: LeafElement[] = [];
    let curSize = PAGE_HEADER_SIZE;
    // While nothing was flushed yet and no sub-bucket seen, the bucket may still be inlined.
    let inlineable = allowInline;
    let prev: Uint8Array | undefined;
    const flush = (): void => {
      leaves.push({ key: cur[0]!.key, pgid: this.sink.add(leafPageBytes(cur, curSize, this.sink.pagesFor(curSize))) });
      cur = [];
      curSize = PAGE_HEADER_SIZE;
    };
    for await (const [key, v] of spec.entries as AsyncIterable<BoltPair>) {
      if (prev !== undefined && Buffer.compare(prev, key) >= 0) {
        throw new Error(`bbolt writer: keys out of order or repeated (${Buffer.from(prev).toString('hex')} then ${Buffer.from(key).toString('hex')})`);
      }
      prev = key;
      let el: LeafElement;
      if (v instanceof Uint8Array) {
        el = { flags: 0, key, value: v };
      } else {
        inlineable = false;
        el = { flags: BUCKET_LEAF_FLAG, key, value: await this.bucket(v, true) };
      }
      const elSize = LEAF_ELEMENT_SIZE + key.length + el.value.length;
      if (cur.length > 0 && (curSize + elSize > ps || cur.length >= MAX_ELEMENTS)) {
        inlineable = false;
        flush();
      }
      cur.push(el);
      curSize += elSize;
      if (curSize > maxInline) inlineable = false;
      if (this.budget.spend(elSize) && this.pause) await this.pause();
    }
    const header = Buffer.alloc(BUCKET_HEADER_SIZE);
    header.writeBigUInt64LE(spec.sequence ?? 0n, 8);
    if (inlineable && leaves.length === 0) {
      // An inline bucket: root 0, then its one leaf page (page id 0, no overflow).
      return Buffer.concat([header, leafPageBytes(cur, curSize)]);
    }
    if (cur.length > 0 || leaves.length === 0) flush(); // an empty bucket is an empty leaf
    header.writeBigUInt64LE(BigInt(await this.branches(leaves)), 0);
    return header;
  }

  /** Builds branch levels over `children` until one page remains; returns the root page id. */
  private async branches(children: Array<{ key: Uint8Array; pgid: number }>): Promise<number> {
    let level = children;
    while (level.length > 1) {
      const next: Array<{ key: Uint8Array; pgid: number }> = [];
      let cur: Array<{ key: Uint8Array; pgid: number }> = [];
      let size = PAGE_HEADER_SIZE;
      const flush = (): void => {
        next.push({ key: cur[0]!.key, pgid: this.sink.add(branchPageBytes(cur, size, this.sink.pagesFor(size))) });
        cur = [];
        size = PAGE_HEADER_SIZE;
      };
      for (const c of level) {
        const s = BRANCH_ELEMENT_SIZE + c.key.length;
        if (cur.length > 0 && (size + s > this.pageSize || cur.length >= MAX_ELEMENTS)) flush();
        cur.push(c);
        size += s;
        if (this.budget.spend(s) && this.pause) await this.pause();
      }
      flush();
      level = next;
    }
    return level[0]!.pgid;
  }
}

/**
 * A bbolt database file whose root bucket holds `root`'s pairs (top-level entries must be
 * buckets, as bbolt requires), as page-aligned chunks that concatenate to the file.
 */
export async function writeBolt(root: BoltBucketSpec, opts: BoltWriteOptions = {}): Promise<Buffer[]> {
  const pageSize = opts.pageSize ?? 4096;
  if (pageSize < 1024 || (pageSize & (pageSize - 1)) !== 0) throw new Error(`bbolt writer: bad page size ${pageSize}`);
  const sink = new PageSink(pageSize);
  const metas = [Buffer.alloc(pageSize), Buffer.alloc(pageSize)];
  sink.chunks.push(...metas);
  sink.nextPgid = 2;
  // An empty freelist: every page below the high water mark is in use.
  const freelist = Buffer.alloc(pageSize);
  freelist.writeUInt16LE(FREELIST_PAGE_FLAG, 8);
  const freelistPgid = sink.add(freelist);
  const checkedRoot: BoltBucketSpec = {
    sequence: root.sequence,
    entries: (async function* () {
      for await (const p of root.entries as AsyncIterable<BoltPair>) {
        if (p[1] instanceof Uint8Array) throw new Error(`bbolt writer: top-level key ${Buffer.from(p[0]).toString()} must be a bucket`);
        yield p;
      }
    })(),
  };
  const w = new Writer(sink, pageSize, opts.pause, opts.chunk ?? 2000);
  const rootHeader = await w.bucket(checkedRoot, false);
  const txid = opts.txid ?? 2n;
  const meta = {
    pageSize,
    flags: 0,
    root: rootHeader.readBigUInt64LE(0),
    sequence: root.sequence ?? 0n,
    freelist: BigInt(freelistPgid),
    pgid: BigInt(sink.nextPgid),
    txid,
  };
  writeMetaPage(metas[0]!, 0, meta);
  writeMetaPage(metas[1]!, 1, { ...meta, txid: txid - 1n });
  return sink.chunks;
}
