// The snapshot format: one home for every byte of it.
//
// A snapshot is layered; each layer is written and read in exactly one place:
//
//   image     the state machine at one applied index (this module): a JSON header line, then
//             the key histories. Raft carries it as a Snapshot's opaque `data` (to followers in
//             checksummed chunks, src/transport/grpc-transport.ts).
//   file      the image with its Raft metadata (index, term, ConfState) in a checksummed
//             envelope: storage's framing of any Raft snapshot, see encodeSnapshotFile in
//             src/storage/snap/snapshotter.ts ("RKVSNAP1" | u32 crc32 | u32 length | u32
//             metadata length | metadata JSON | image).
//
// What Maintenance.Snapshot streams to `etcdctl snapshot save` is not this format but etcd's own
// (a bbolt database and its sha256: src/backup/), so etcd's tooling reads raftkv's backups.
//
// The image header (one line of JSON, in this key order): version, currentRev, compactRev (decimal
// strings), leases ([id, ttl] decimal strings, and the checkpointed remaining TTL third when it
// persists: kv/lessor.ts), members ({members: base64 MemberInfo, removed: ids}),
// applied (the exactly-once table, absent before it existed), alarms (absent before alarms
// existed) and auth (users, roles, the enabled flag and the auth revision; absent before auth
// existed). The body after the newline, by version:
//
//   3  binary key histories, in key order. Per key: u32 key length, the key bytes, u32 number
//      of versions; per version: u64 mod revision, u32 sub-revision, u64 create revision, u64
//      version, u64 lease, u32 value length, the value bytes (all little-endian). Keys and
//      values stay raw bytes (no base64, no JSON escaping): building and parsing a 100,000-key
//      image is several times cheaper than JSON lines, which is what a member catching up by
//      snapshot waits on. Written now.
//   2  one JSON line per key: {"key": base64, "history": [[mod, sub, create, version, value
//      base64, lease], ...]} (numbers as decimal strings, sub a number). Read only, for
//      snapshots written by older raftkv versions.
//
// Building and parsing yield to the event loop (`pause`) every few thousand keys, so that a
// large image never holds up heartbeats.

import { type KeyHistory, MvccStore, type Rev, latin1 } from '../kv/mvcc.js';
import type { AuthImage } from '../auth/store.js';
import type { LeaseImage } from '../kv/lessor.js';
import type { AlarmsImage } from './alarms.js';
import type { AppliedRequestsImage } from './applied-requests.js';
import { SliceBudget } from '../util/yield.js';
import { concatInSlices } from '../util/buffers-in-slices.js';

/** The version of the images written now. */
export const IMAGE_VERSION = 3;

/** The image header line (see the top of this file). */
export interface StateImageHeader {
  version: number;
  currentRev: string;
  compactRev: string;
  leases: LeaseImage;
  members: { members: string[]; removed: string[] };
  applied?: AppliedRequestsImage;
  /** Raised alarms (absent in snapshots written before alarms existed: none). */
  alarms?: AlarmsImage;
  /** The auth store (absent in snapshots written before auth existed: auth off, no users). */
  auth?: AuthImage;
}

/** What an image holds besides the store: each part's own image (lessor, membership, ...). */
export type StateImageParts = Pick<StateImageHeader, 'leases' | 'members' | 'applied' | 'alarms' | 'auth'>;

// ------------------------------------------------------------------ the whole image

/**
 * The image of `store` and `parts`. The store's revision is captured synchronously, when this is
 * called: capture `parts` just before, in the same turn of the event loop, and the image is of
 * one point in time even though writes go on while it is built.
 */
export async function encodeStateImageAsync(store: MvccStore, parts: StateImageParts, pause: () => Promise<void>): Promise<Buffer> {
  const { currentRev, compactRev, chunks } = await storeImageAsync(store, pause);
  const { leases, members, applied, alarms, auth } = parts;
  const header = JSON.stringify({ version: IMAGE_VERSION, currentRev, compactRev, leases, members, applied, alarms, auth });
  // Joined in slices too: one concat of a million keys' chunks was a turn of seconds.
  return concatInSlices([Buffer.from(`${header}\n`), ...chunks], pause);
}

/** Parses an image (version 3 or 2): its header, and a new store holding its keys. */
export async function decodeStateImageAsync(data: Uint8Array, pause: () => Promise<void>): Promise<{ header: StateImageHeader; store: MvccStore }> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nl = buf.indexOf(10);
  const headerEnd = nl < 0 ? buf.length : nl;
  const header = JSON.parse(buf.toString('utf8', 0, headerEnd)) as StateImageHeader;
  const store = new MvccStore();
  store.currentRev = BigInt(header.currentRev);
  store.compactRev = BigInt(header.compactRev);
  if (header.version === 3) {
    await loadStoreImageAsync(store, buf, headerEnd + 1, pause);
  } else if (header.version === 2) {
    await loadStoreJsonLinesAsync(store, buf, headerEnd + 1, pause);
  } else {
    throw new Error(`unsupported snapshot image version ${String(header.version)}`);
  }
  return { header, store };
}

// ------------------------------------------------------------------ the store's keys (the body)

/**
 * The store's key histories at its current revision as version-3 body chunks (concatenated,
 * they are the body), with the revisions as the header writes them. Writes and compactions may
 * go on while it is built: see MvccStore.historiesAsync.
 */
export async function storeImageAsync(
  store: MvccStore,
  pause: () => Promise<void>,
  chunk = 2000,
): Promise<{ currentRev: string; compactRev: string; chunks: Buffer[] }> {
  const chunks: Buffer[] = [];
  const r = await store.historiesAsync((keys) => chunks.push(encodeKeys(keys)), pause, chunk);
  return { currentRev: r.currentRev.toString(), compactRev: r.compactRev.toString(), chunks };
}

/** Loads the keys of a version-3 body, from `offset` of `buf`, into `store`. */
export async function loadStoreImageAsync(store: MvccStore, buf: Buffer, offset: number, pause: () => Promise<void>): Promise<void> {
  await decodeKeys(buf, offset, (key, history) => store.loadHistory(key, history), pause);
}

/** Loads the keys of a version-2 body (JSON lines, bytes in base64), from `offset` of `buf`, into `store`. */
export async function loadStoreJsonLinesAsync(store: MvccStore, buf: Buffer, offset: number, pause: () => Promise<void>): Promise<void> {
  let pos = offset;
  let n = 0;
  while (pos < buf.length) {
    const next = buf.indexOf(10, pos);
    const end = next < 0 ? buf.length : next;
    if (end > pos) {
      const k = JSON.parse(buf.toString('utf8', pos, end)) as JsonLineKey;
      store.loadHistory(
        latin1(Buffer.from(k.key, 'base64')),
        k.history.map(([mod, sub, create, version, value, lease]) => ({
          mod: BigInt(mod),
          sub,
          create: BigInt(create),
          version: BigInt(version),
          value: latin1(Buffer.from(value, 'base64')),
          lease: BigInt(lease),
        })),
      );
    }
    pos = end + 1;
    if (++n % 2000 === 0) await pause();
  }
}

/** One key of a version-2 body. */
interface JsonLineKey {
  key: string;
  history: Array<[string, number, string, string, string, string]>;
}

const REV_FIXED = 8 + 4 + 8 + 8 + 8 + 4;

/** Encodes a batch of keys as version-3 body bytes. */
export function encodeKeys(keys: readonly KeyHistory[]): Buffer {
  let size = 0;
  for (const k of keys) {
    size += 8 + k.key.length;
    for (const r of k.history) size += REV_FIXED + r.value.length;
  }
  const b = Buffer.allocUnsafe(size);
  let o = 0;
  for (const k of keys) {
    o = b.writeUInt32LE(k.key.length, o);
    o += b.write(k.key, o, 'latin1');
    o = b.writeUInt32LE(k.history.length, o);
    for (const r of k.history) {
      o = putInt64(b, r.mod, o);
      o = b.writeUInt32LE(r.sub, o);
      o = putInt64(b, r.create, o);
      o = putInt64(b, r.version, o);
      o = putInt64(b, r.lease, o);
      o = b.writeUInt32LE(r.value.length, o);
      o += b.write(r.value, o, 'latin1');
    }
  }
  return b;
}

/**
 * Buffer.writeBigInt64LE's bytes, with no bigint made for a value that fits 32 unsigned bits
 * (most revisions, every version, a lease of 0): Node's writer splits every value with `&` and
 * `>>`, two new bigints each, and with four per version it was a third of a 1 M-key image's
 * encoding in a profile.
 */
export function putInt64(b: Buffer, v: bigint, o: number): number {
  if (v >= 0n && v <= 0xffffffffn) {
    b.writeUInt32LE(Number(v), o);
    b.writeUInt32LE(0, o + 4);
    return o + 8;
  }
  return b.writeBigInt64LE(v, o);
}

/**
 * Reads int64s as bigints, handing out one bigint object for equal values read in a row and
 * for small ones. An image's revisions repeat: the keys of one write share its mod revision, a
 * key's first version is created at it, versions and leases are mostly small or zero. A new
 * bigint for each was four heap objects per version, which the garbage collector then copied
 * out of the young generation with the rest of the store (a 100,000-key image: ~1/5 of the
 * load's allocation).
 */
class Int64Reader {
  private static readonly small: readonly bigint[] = Array.from({ length: 1024 }, (_, i) => BigInt(i));
  private lastLo = 0;
  private lastHi = 0;
  private last = 0n;

  read(buf: Buffer, o: number): bigint {
    const lo = buf.readUInt32LE(o);
    const hi = buf.readInt32LE(o + 4);
    if (hi === 0 && lo < 1024) return Int64Reader.small[lo]!;
    if (lo !== this.lastLo || hi !== this.lastHi) {
      this.lastLo = lo;
      this.lastHi = hi;
      this.last = buf.readBigInt64LE(o);
    }
    return this.last;
  }
}

/**
 * Decodes version-3 body keys from `buf` starting at `offset`, calling `onKey` for each and
 * `pause` every `chunk` keys or SLICE_BYTES (so a large image does not hold the event loop).
 * Keys and values are copied out of `buf`, which can then be freed. Throws on a truncated or
 * malformed image.
 */
export async function decodeKeys(
  buf: Buffer,
  offset: number,
  onKey: (key: string, history: Rev[]) => void,
  pause: () => Promise<void>,
  chunk = 2000,
): Promise<number> {
  let o = offset;
  let n = 0;
  // One reader per field: each field repeats its own values (mod, create, version, lease).
  const mods = new Int64Reader();
  const creates = new Int64Reader();
  const versions = new Int64Reader();
  const leases = new Int64Reader();
  const need = (len: number): void => {
    if (o + len > buf.length) throw new Error(`snapshot image truncated at byte ${o} (needs ${len} more, has ${buf.length - o})`);
  };
  // A pause every `chunk` keys or SLICE_BYTES of them (the values are copied out as strings).
  const budget = new SliceBudget(chunk);
  let start = o;
  while (o < buf.length) {
    need(4);
    const keyLen = buf.readUInt32LE(o);
    o += 4;
    need(keyLen + 4);
    const key = buf.toString('latin1', o, o + keyLen);
    o += keyLen;
    const count = buf.readUInt32LE(o);
    o += 4;
    const history: Rev[] = new Array<Rev>(count);
    for (let i = 0; i < count; i++) {
      need(REV_FIXED);
      const mod = mods.read(buf, o);
      const sub = buf.readUInt32LE(o + 8);
      // A key's first version is created at its own mod revision: the same bigint.
      const create = buf.readUInt32LE(o + 12) === buf.readUInt32LE(o) && buf.readInt32LE(o + 16) === buf.readInt32LE(o + 4) ? mod : creates.read(buf, o + 12);
      const version = versions.read(buf, o + 20);
      const lease = leases.read(buf, o + 28);
      const valueLen = buf.readUInt32LE(o + 36);
      o += REV_FIXED;
      need(valueLen);
      history[i] = { mod, sub, create, version, lease, value: buf.toString('latin1', o, o + valueLen) };
      o += valueLen;
    }
    onKey(key, history);
    n++;
    if (budget.spend(o - start)) await pause();
    start = o;
  }
  return n;
}
