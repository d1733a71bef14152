// bbolt's on-disk layout (etcd-io/bbolt page.go, db.go, bucket.go, freelist.go), as constants and
// the meta page codec. The reader (./reader.ts) and the writer (./writer.ts) share it, so every
// offset of the format is written down once.
//
// A bbolt file is an array of fixed-size pages (the page size is in the meta page; 4096 on the
// machines etcd runs on). Every page starts with a 16-byte header:
//
//   u64 id | u16 flags | u16 count | u32 overflow       (all little-endian, the host order of
//                                                       amd64/arm64, which bbolt writes as is)
//
// `overflow` is how many further pages the page continues into (a node larger than a page).
// Pages 0 and 1 are the two meta pages (written alternately by transactions: the valid one with
// the higher txid wins); the meta names the root bucket's page, the freelist page and the high
// water mark (pgid: the number of pages in use).
//
// Branch page elements (16 bytes each, after the header):  u32 pos | u32 ksize | u64 pgid
// Leaf page elements   (16 bytes each, after the header):  u32 flags | u32 pos | u32 ksize | u32 vsize
// `pos` is the distance from the element itself to its key (the value follows the key). A leaf
// element with flag 0x01 is a nested bucket: its value is a bucket header (u64 root pgid, u64
// sequence) and, when root is 0, the bucket's single leaf page inline right after it.

export const PAGE_HEADER_SIZE = 16;
export const BRANCH_ELEMENT_SIZE = 16;
export const LEAF_ELEMENT_SIZE = 16;
export const BUCKET_HEADER_SIZE = 16;

export const BRANCH_PAGE_FLAG = 0x01;
export const LEAF_PAGE_FLAG = 0x02;
export const META_PAGE_FLAG = 0x04;
export const FREELIST_PAGE_FLAG = 0x10;

/** Leaf element flag: the value is a nested bucket. */
export const BUCKET_LEAF_FLAG = 0x01;

export const MAGIC = 0xed0cdaed;
export const VERSION = 2;
/** meta.freelist when the freelist is not persisted (bbolt's NoFreelistSync). */
export const PGID_NO_FREELIST = 0xffffffffffffffffn;
/** freelist page.count meaning "the real count is the first u64". */
export const FREELIST_COUNT_OVERFLOW = 0xffff;

/** The meta page's body, at PAGE_HEADER_SIZE of page 0 or 1. */
export interface Meta {
  pageSize: number;
  flags: number;
  /** The root bucket: its page and sequence. */
  root: bigint;
  sequence: bigint;
  freelist: bigint;
  /** High water mark: pages [0, pgid) are in use; the file holds at least this many. */
  pgid: bigint;
  txid: bigint;
}

// Offsets inside the meta body.
const M_MAGIC = 0;
const M_VERSION = 4;
const M_PAGE_SIZE = 8;
const M_FLAGS = 12;
const M_ROOT = 16;
const M_SEQUENCE = 24;
const M_FREELIST = 32;
const M_PGID = 40;
const M_TXID = 48;
const M_CHECKSUM = 56;
export const META_SIZE = 64;

const FNV_OFFSET = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;

/** FNV-1a, 64-bit: bbolt's meta checksum (hash/fnv New64a over the fields before checksum). */
export function fnv1a64(b: Uint8Array): bigint {
  let h = FNV_OFFSET;
  for (const x of b) h = BigInt.asUintN(64, (h ^ BigInt(x)) * FNV_PRIME);
  return h;
}

/** Writes a meta page (header and body) into `page` (at least META_SIZE + 16 bytes). */
export function writeMetaPage(page: Buffer, id: number, m: Meta): void {
  page.writeBigUInt64LE(BigInt(id), 0);
  page.writeUInt16LE(META_PAGE_FLAG, 8);
  page.writeUInt16LE(0, 10);
  page.writeUInt32LE(0, 12);
  const b = page.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + META_SIZE);
  b.writeUInt32LE(MAGIC, M_MAGIC);
  b.writeUInt32LE(VERSION, M_VERSION);
  b.writeUInt32LE(m.pageSize, M_PAGE_SIZE);
  b.writeUInt32LE(m.flags, M_FLAGS);
  b.writeBigUInt64LE(m.root, M_ROOT);
  b.writeBigUInt64LE(m.sequence, M_SEQUENCE);
  b.writeBigUInt64LE(m.freelist, M_FREELIST);
  b.writeBigUInt64LE(m.pgid, M_PGID);
  b.writeBigUInt64LE(m.txid, M_TXID);
  b.writeBigUInt64LE(fnv1a64(b.subarray(0, M_CHECKSUM)), M_CHECKSUM);
}

/** Reads and validates the meta body of the page at `page`; throws saying what is wrong. */
export function readMetaPage(page: Buffer): Meta {
  if (page.length < PAGE_HEADER_SIZE + META_SIZE) throw new Error('meta page truncated');
  const flags = page.readUInt16LE(8);
  if ((flags & META_PAGE_FLAG) === 0) throw new Error(`not a meta page (flags 0x${flags.toString(16)})`);
  const b = page.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + META_SIZE);
  if (b.readUInt32LE(M_MAGIC) !== MAGIC) throw new Error('invalid magic (not a bbolt file)');
  if (b.readUInt32LE(M_VERSION) !== VERSION) throw new Error(`unsupported version ${b.readUInt32LE(M_VERSION)}`);
  if (b.readBigUInt64LE(M_CHECKSUM) !== fnv1a64(b.subarray(0, M_CHECKSUM))) throw new Error('meta checksum mismatch');
  return {
    pageSize: b.readUInt32LE(M_PAGE_SIZE),
    flags: b.readUInt32LE(M_FLAGS),
    root: b.readBigUInt64LE(M_ROOT),
    sequence: b.readBigUInt64LE(M_SEQUENCE),
    freelist: b.readBigUInt64LE(M_FREELIST),
    pgid: b.readBigUInt64LE(M_PGID),
    txid: b.readBigUInt64LE(M_TXID),
  };
}
