// Reads a bbolt database file held in memory: the newest valid meta page, then buckets and
// their key/value pairs in key order, walking branch and leaf pages (with overflow) and nested
// buckets, inline ones included. Layout: ./page.ts.
//
// Nothing here trusts the file: every page id, element offset and length is bounds-checked, so
// a truncated or damaged file fails with an Error naming what is wrong instead of returning
// garbage. Iteration is a generator, so a caller walking millions of keys can yield to the event
// loop between batches (see forEachAsync).

import {
  BRANCH_ELEMENT_SIZE,
  BRANCH_PAGE_FLAG,
  BUCKET_HEADER_SIZE,
  BUCKET_LEAF_FLAG,
  FREELIST_COUNT_OVERFLOW,
  FREELIST_PAGE_FLAG,
  LEAF_ELEMENT_SIZE,
  LEAF_PAGE_FLAG,
  type Meta,
  PAGE_HEADER_SIZE,
  PGID_NO_FREELIST,
  readMetaPage,
} from './page.js';

/** One pair of a bucket: a plain value, or a nested bucket (value = its raw bucket header). */
export interface BoltEntry {
  key: Buffer;
  value: Buffer;
  isBucket: boolean;
}

/** Deeper than this a tree must be looping (a 4 KiB page holds 100+ branch elements). */
const MAX_DEPTH = 64;

export class BoltReader {
  private constructor(
    readonly buf: Buffer,
    readonly meta: Meta,
  ) {}

  /**
   * Opens the database in `buf` (the whole file). Both meta pages are checked; the valid one
   * with the higher txid is used, as bbolt does. Throws if neither is valid or if the file is
   * shorter than the meta's high water mark says.
   */
  static open(buf: Buffer): BoltReader {
    const errors: string[] = [];
    const metas: Meta[] = [];
    // Meta 0 is at offset 0; meta 1 at one page size, which only meta 0 (or a guess) tells.
    let m0: Meta | undefined;
    try {
      m0 = readMetaPage(buf.subarray(0, 4096));
      metas.push(m0);
    } catch (e) {
      errors.push(`meta page 0: ${(e as Error).message}`);
    }
    const pageSizes = m0 ? [m0.pageSize] : [4096, 8192, 16384, 65536];
    for (const ps of pageSizes) {
      try {
        metas.push(readMetaPage(buf.subarray(ps, ps + 4096)));
        break;
      } catch (e) {
        if (m0) errors.push(`meta page 1: ${(e as Error).message}`);
      }
    }
    const usable = metas.filter((m) => m.pageSize >= 512 && (m.pageSize & (m.pageSize - 1)) === 0 && BigInt(buf.length) >= m.pgid * BigInt(m.pageSize));
    for (const m of metas) if (!usable.includes(m)) errors.push(`meta txid ${m.txid}: file has ${buf.length} bytes, needs ${m.pgid * BigInt(m.pageSize)} (truncated?)`);
    if (usable.length === 0) throw new Error(`bbolt: no valid meta page (${errors.join('; ') || 'file too short'})`);
    usable.sort((a, b) => (a.txid > b.txid ? -1 : a.txid < b.txid ? 1 : 0));
    return new BoltReader(buf, usable[0]!);
  }

  get pageSize(): number {
    return this.meta.pageSize;
  }

  /** The root bucket (whose entries are the top-level buckets). */
  root(): BoltBucket {
    return new BoltBucket(this, this.meta.root, undefined);
  }

  /** A top-level bucket by name, or undefined. */
  bucket(name: string | Buffer): BoltBucket | undefined {
    return this.root().bucket(name);
  }

  /** The freelist's page ids (empty if the freelist is not persisted). */
  freePages(): bigint[] {
    if (this.meta.freelist === PGID_NO_FREELIST) return [];
    const p = this.page(this.meta.freelist);
    if ((p.flags & FREELIST_PAGE_FLAG) === 0) throw new Error(`bbolt: page ${p.id} is not a freelist page`);
    let count = p.count;
    let at = PAGE_HEADER_SIZE;
    if (count === FREELIST_COUNT_OVERFLOW) {
      p.need(at, 8);
      count = Number(p.bytes.readBigUInt64LE(at));
      at += 8;
    }
    p.need(at, count * 8);
    const out: bigint[] = [];
    for (let i = 0; i < count; i++) out.push(p.bytes.readBigUInt64LE(at + i * 8));
    return out;
  }

  /** The page `id` with its overflow pages, bounds-checked. */
  page(id: bigint): PageView {
    const ps = BigInt(this.meta.pageSize);
    if (id < 2n || id >= this.meta.pgid) throw new Error(`bbolt: page ${id} out of range (high water mark ${this.meta.pgid})`);
    const off = Number(id * ps);
    if (off + PAGE_HEADER_SIZE > this.buf.length) throw new Error(`bbolt: page ${id} beyond end of file`);
    const overflow = this.buf.readUInt32LE(off + 12);
    const len = (overflow + 1) * this.meta.pageSize;
    if (id + BigInt(overflow) >= this.meta.pgid || off + len > this.buf.length) {
      throw new Error(`bbolt: page ${id} (+${overflow} overflow) beyond end of file`);
    }
    return new PageView(id, this.buf.subarray(off, off + len));
  }
}

/** One page (with its overflow) of the file or of an inline bucket. */
export class PageView {
  readonly flags: number;
  readonly count: number;

  constructor(
    readonly id: bigint,
    readonly bytes: Buffer,
  ) {
    if (bytes.length < PAGE_HEADER_SIZE) throw new Error(`bbolt: page ${id} truncated`);
    this.flags = bytes.readUInt16LE(8);
    this.count = bytes.readUInt16LE(10);
  }

  need(at: number, len: number): void {
    if (at < 0 || len < 0 || at + len > this.bytes.length) {
      throw new Error(`bbolt: page ${this.id}: element data at ${at}+${len} beyond the page (${this.bytes.length} bytes)`);
    }
  }

  /** Leaf element i: its flags, key and value (views into the file). */
  leaf(i: number): BoltEntry {
    const e = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
    this.need(e, LEAF_ELEMENT_SIZE);
    const b = this.bytes;
    const flags = b.readUInt32LE(e);
    const pos = e + b.readUInt32LE(e + 4);
    const ksize = b.readUInt32LE(e + 8);
    const vsize = b.readUInt32LE(e + 12);
    this.need(pos, ksize + vsize);
    return { key: b.subarray(pos, pos + ksize), value: b.subarray(pos + ksize, pos + ksize + vsize), isBucket: (flags & BUCKET_LEAF_FLAG) !== 0 };
  }

  /** Branch element i: the first key of its child and the child's page id. */
  branch(i: number): { key: Buffer; pgid: bigint } {
    const e = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
    this.need(e, BRANCH_ELEMENT_SIZE);
    const b = this.bytes;
    const pos = e + b.readUInt32LE(e);
    const ksize = b.readUInt32LE(e + 4);
    this.need(pos, ksize);
    return { key: b.subarray(pos, pos + ksize), pgid: b.readBigUInt64LE(e + 8) };
  }
}

export class BoltBucket {
  constructor(
    private readonly db: BoltReader,
    /** The bucket's root page (0 for an inline bucket). */
    readonly rootPgid: bigint,
    /** An inline bucket's page (in its parent's leaf value). */
    private readonly inline: PageView | undefined,
  ) {}

  /** Every pair in key order; nested buckets appear with isBucket set. */
  *entries(): Generator<BoltEntry> {
    if (this.inline) {
      yield* this.walk(this.inline, 0);
      return;
    }
    yield* this.walk(this.db.page(this.rootPgid), 0);
  }

  private *walk(p: PageView, depth: number): Generator<BoltEntry> {
    if (depth > MAX_DEPTH) throw new Error(`bbolt: tree deeper than ${MAX_DEPTH} at page ${p.id} (a page cycle?)`);
    if (p.flags & LEAF_PAGE_FLAG) {
      for (let i = 0; i < p.count; i++) yield p.leaf(i);
    } else if (p.flags & BRANCH_PAGE_FLAG) {
      for (let i = 0; i < p.count; i++) yield* this.walk(this.db.page(p.branch(i).pgid), depth + 1);
    } else {
      throw new Error(`bbolt: page ${p.id} is neither a branch nor a leaf (flags 0x${p.flags.toString(16)})`);
    }
  }

  /** The value stored under `key` (not a bucket), or undefined. A linear walk: for small buckets. */
  get(key: string | Buffer): Buffer | undefined {
    const k = typeof key === 'string' ? Buffer.from(key) : key;
    for (const e of this.entries()) if (!e.isBucket && e.key.equals(k)) return e.value;
    return undefined;
  }

  /** A nested bucket by name, or undefined. */
  bucket(name: string | Buffer): BoltBucket | undefined {
    const k = typeof name === 'string' ? Buffer.from(name) : name;
    for (const e of this.entries()) if (e.isBucket && e.key.equals(k)) return this.child(e.value);
    return undefined;
  }

  /** The bucket whose header (and inline page) is `value`, a nested-bucket leaf value. */
  child(value: Buffer): BoltBucket {
    if (value.length < BUCKET_HEADER_SIZE) throw new Error('bbolt: bucket header truncated');
    const root = value.readBigUInt64LE(0);
    if (root !== 0n) return new BoltBucket(this.db, root, undefined);
    return new BoltBucket(this.db, 0n, new PageView(0n, value.subarray(BUCKET_HEADER_SIZE)));
  }

  /** The bucket's sequence (NextSequence's counter), from a nested-bucket leaf value. */
  static sequenceOf(value: Buffer): bigint {
    return value.readBigUInt64LE(8);
  }

  /**
   * Calls `f` on every pair in key order, yielding to the event loop (`pause`) every `chunk`
   * pairs. Keys and values are views into the file: copy what is kept.
   */
  async forEachAsync(f: (e: BoltEntry) => void, pause: () => Promise<void>, chunk = 5000): Promise<number> {
    let n = 0;
    for (const e of this.entries()) {
      f(e);
      if (++n % chunk === 0) await pause();
    }
    return n;
  }
}
