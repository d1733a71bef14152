// The peer stream's frames (MessageBatch of proto/raftkv/peer.proto), encoded and decoded by
// hand, straight from and into the core's Message objects.
//
// Why not the generated code (src/gen/raftkv/peer.ts): it wants bigint for every uint64, so
// each frame went core Message -> ts-proto object (a BigInt per number field) -> bytes, and back
// (a BigInt per field, then a range check back to number, and a copy of every entry's data).
// A MsgApp carrying 64 entries to two followers did all of that 128 times. Here:
// - term/index/commit/... stay numbers (they are safe integers; decoding a larger one throws,
//   as codec.ts's `num` does); only `to`/`from` and ConfState ids are 64-bit, and their varint
//   bytes come from a small cache, so the hot path does no BigInt arithmetic;
// - an Entry is encoded once: its sub-message bytes are kept (see "entries, encoded once" for
//   where, and why not in a WeakMap) and copied into every frame that carries it (every
//   follower, every retransmission);
// - a frame is one Buffer, sized first and then written (one allocation);
// - decoding copies nothing: Entry.data and context are views of the received frame, and a
//   decoded Entry's own bytes (also a view) are kept the same way, so a member that later
//   leads and sends that entry on does not encode it again.
//
// The bytes are exactly the generated encoder's for the batch codec.ts's messageToPb makes
// (proto3: default values left out, fields in number order, ConfState lists packed, an
// Entry/ConfState sub-message written even when empty); test/transport/peer-wire.test.ts
// checks that. The decoder takes anything a conforming encoder writes: unknown fields (groups
// too) are skipped, repeated ids packed or not, a known field with an unexpected wire type is
// skipped as the generated decoder does, and a repeated sub-message replaces the earlier one
// (as the generated decoder does, rather than merging).

import type { ConfState, Entry, Message, Snapshot } from '../raft/index.js';
import { lengthSize, putVarint } from '../util/varint.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const EMPTY = Buffer.alloc(0);

// Field tags (field number << 3 | wire type); all fit one byte.
const T_BATCH_MESSAGE = 10;
const T_TYPE = 8;
const T_TO = 16;
const T_FROM = 24;
const T_TERM = 32;
const T_LOG_TERM = 40;
const T_INDEX = 48;
const T_ENTRY = 58;
const T_COMMIT = 64;
const T_SNAPSHOT = 74;
const T_REJECT = 80;
const T_REJECT_HINT = 88;
const T_CONTEXT = 98;
const T_ENTRY_TERM = 8;
const T_ENTRY_INDEX = 16;
const T_ENTRY_TYPE = 24;
const T_ENTRY_DATA = 34;
const T_META_CONF_STATE = 10;
const T_META_INDEX = 16;
const T_META_TERM = 24;
const T_CS_AUTO_LEAVE = 40;

/** Counters for tests and profiling: how many entries were encoded (cache misses). */
export const peerWireStats = { entriesEncoded: 0 };

// ------------------------------------------------------------------ varints

/** Size of a number written as a uint64 varint; refuses what BigInt(v) in messageToPb would. */
function sizeU53(v: number): number {
  if (v >>> 0 === v) return lengthSize(v);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`peer wire: ${v} is not an unsigned integer the wire can carry`);
  return v < 2 ** 35 ? 5 : v < 2 ** 42 ? 6 : v < 2 ** 49 ? 7 : 8;
}

function checkU32(v: number): number {
  // As the generated writer's uint32(): anything else is a bug upstream, not something to truncate.
  if (v >>> 0 !== v) throw new Error(`peer wire: ${v} is not a uint32`);
  return v;
}

/** A safe unsigned integer as a varint (sized by sizeU53/lengthSize first). */
const writeU53: (buf: Uint8Array, p: number, v: number) => number = putVarint;

// ------------------------------------------------------------------ 64-bit ids

// Member ids are random uint64s, but a member only ever talks about a handful of them, so
// their varint bytes (encode) and their bigint values (decode) are cached. Bounded, because a
// forged or garbled frame can name any id: past the bound the cache simply starts over.
const ID_CACHE_MAX = 1024;
const idBytes = new Map<bigint, Uint8Array>();

function idVarint(id: bigint): Uint8Array {
  let b = idBytes.get(id);
  if (b === undefined) {
    if (BigInt.asUintN(64, id) !== id) throw new Error(`peer wire: id ${id} is not a uint64`);
    const out = new Uint8Array(10);
    b = out.slice(0, putVarint(out, 0, id));
    if (idBytes.size >= ID_CACHE_MAX) idBytes.clear();
    idBytes.set(id, b);
  }
  return b;
}

/** Decoded ids by their low 32 bits, then high 32 bits (two numbers: no BigInt to look up). */
const idValues = new Map<number, Map<number, bigint>>();
let idValueCount = 0;

function idValue(lo: number, hi: number): bigint {
  let byHi = idValues.get(lo);
  let v = byHi?.get(hi);
  if (v === undefined) {
    v = (BigInt(hi) << 32n) | BigInt(lo);
    if (idValueCount >= ID_CACHE_MAX) {
      idValues.clear();
      idValueCount = 0;
      byHi = undefined;
    }
    if (byHi === undefined) {
      byHi = new Map();
      idValues.set(lo, byHi);
    }
    byHi.set(hi, v);
    idValueCount++;
  }
  return v;
}

// ------------------------------------------------------------------ entries, encoded once

// Where an Entry's encoded bytes are kept. Not a WeakMap<Entry, ...>, though that was the
// first idea: WeakMap.set cost ten times more than all the rest of decoding a frame (V8 gives
// each key an identity hash and the GC walks the ephemeron table; measured at 64 entries a
// frame: ~5,700 decodes/s with it, ~58,000 without). Instead a direct-mapped table by entry
// index: a leader sends the same recent indexes to every follower and again on retransmission,
// so a few thousand slots catch every reuse that matters, with no hashing and no allocation on
// a hit, and a bounded amount of memory held.
//
// A slot remembers the fields its bytes were made from and is used only while they all still
// match the entry at hand (same term, index and type, the very same data object): so a hit is
// always the right bytes, whichever Entry object asks. That matters because the core changes
// entries after they were encoded: the leader stamps term and index on proposed entries, which
// may have arrived over the wire in a MsgProp. (Data changed in place is not noticed; the core
// never does that, and nor did anything here before.)
//
// The bytes are a range of a Buffer: of the frame that first carried the entry, sent or
// received. So keeping them costs no copy and no allocation; it keeps that frame alive while
// the slot holds it, which the byte budget bounds.

/** Slots in the table (a power of two). */
export const ENTRY_CACHE_SLOTS = 4096;
/** Entries whose encoding is larger are not kept: the copy dominates, and a few header bytes are all a hit would save. */
const ENTRY_CACHE_MAX_ENTRY = 64 * 1024;
/**
 * The most bytes of entries the table refers to at once. Enough for what is in flight to the
 * followers (the same bytes go to each within a turn or two); more would only keep frames alive
 * that every follower already has (at 32 MiB a leader held ~24 MiB more after a bulk load).
 */
const ENTRY_CACHE_MAX_BYTES = 8 * 1024 * 1024;

class EncodedEntry {
  term = 0;
  index = -1;
  type = 0;
  data: Uint8Array = EMPTY;
  buf: Buffer = EMPTY;
  off = 0;
  len = 0;
}

const slots: Array<EncodedEntry | undefined> = new Array<EncodedEntry | undefined>(ENTRY_CACHE_SLOTS).fill(undefined);
let cachedBytes = 0;

/** The slot holding `e`'s bytes, if one does. */
function cached(e: Entry): EncodedEntry | undefined {
  // `&` keeps the low bits of any index, even above 2^32.
  const c = slots[e.index & (ENTRY_CACHE_SLOTS - 1)];
  return c !== undefined && c.index === e.index && c.term === e.term && c.type === e.type && c.data === e.data ? c : undefined;
}

/** Remembers that buf[off, off+len) is the encoding of `e`. */
function remember(e: Entry, buf: Buffer, off: number, len: number): void {
  const i = e.index & (ENTRY_CACHE_SLOTS - 1);
  let c = slots[i];
  const old = c === undefined ? 0 : c.len;
  if (len > ENTRY_CACHE_MAX_ENTRY || cachedBytes - old + len > ENTRY_CACHE_MAX_BYTES) {
    // Not kept; nor is the slot's older entry, which would only hold its frame (or, after a
    // restart, a whole WAL segment its data is a view of) alive for nothing.
    if (c !== undefined) {
      cachedBytes -= old;
      slots[i] = undefined;
    }
    return;
  }
  if (c === undefined) {
    c = new EncodedEntry();
    slots[i] = c;
  }
  cachedBytes += len - old;
  c.term = e.term;
  c.index = e.index;
  c.type = e.type;
  c.data = e.data;
  c.buf = buf;
  c.off = off;
  c.len = len;
}

/** The size of an entry's encoding (the Entry sub-message, without its tag and length). */
function entrySize(e: Entry): number {
  const c = cached(e);
  if (c !== undefined) return c.len;
  const { term, index, type, data } = e;
  return (
    (term !== 0 ? 1 + sizeU53(term) : 0) +
    (index !== 0 ? 1 + sizeU53(index) : 0) +
    (type !== 0 ? 1 + lengthSize(checkU32(type)) : 0) +
    (data.length !== 0 ? 1 + lengthSize(data.length) + data.length : 0)
  );
}

/** Writes an entry's encoding at buf[p], `len` bytes (from entrySize): copied if kept, else encoded (and kept). */
function writeEntry(buf: Buffer, p: number, e: Entry, len: number): number {
  const c = cached(e);
  if (c !== undefined) {
    // Buffer.copy: no view to allocate, unlike set(subarray()).
    c.buf.copy(buf, p, c.off, c.off + len);
    return p + len;
  }
  const start = p;
  const { term, index, type, data } = e;
  if (term !== 0) {
    buf[p++] = T_ENTRY_TERM;
    p = writeU53(buf, p, term);
  }
  if (index !== 0) {
    buf[p++] = T_ENTRY_INDEX;
    p = writeU53(buf, p, index);
  }
  if (type !== 0) {
    buf[p++] = T_ENTRY_TYPE;
    p = writeU53(buf, p, type);
  }
  if (data.length !== 0) {
    buf[p++] = T_ENTRY_DATA;
    p = writeU53(buf, p, data.length);
    buf.set(data, p);
    p += data.length;
  }
  peerWireStats.entriesEncoded++;
  remember(e, buf, start, p - start);
  return p;
}

/** The bytes kept as `e`'s encoding, if any (for tests: a view of the frame that carried it). */
export function cachedEntryBytes(e: Entry): Buffer | undefined {
  const c = cached(e);
  return c === undefined ? undefined : c.buf.subarray(c.off, c.off + c.len);
}

// ------------------------------------------------------------------ encode

function idsSize(ids: readonly bigint[]): number {
  let n = 0;
  for (const id of ids) n += idVarint(id).length;
  return n;
}

function confStateSize(cs: ConfState): number {
  let n = 0;
  for (const ids of [cs.voters, cs.learners, cs.votersOutgoing, cs.learnersNext]) {
    if (ids.length !== 0) {
      const k = idsSize(ids);
      n += 1 + lengthSize(k) + k;
    }
  }
  return cs.autoLeave ? n + 2 : n;
}

function snapshotSize(s: Snapshot): number {
  const md = s.metadata;
  const cs = confStateSize(md.confState);
  return 1 + lengthSize(cs) + cs + (md.index !== 0 ? 1 + sizeU53(md.index) : 0) + (md.term !== 0 ? 1 + sizeU53(md.term) : 0);
}

function writeIds(buf: Uint8Array, p: number, tag: number, ids: readonly bigint[]): number {
  if (ids.length === 0) return p;
  buf[p++] = tag;
  p = writeU53(buf, p, idsSize(ids));
  for (const id of ids) {
    const b = idVarint(id);
    buf.set(b, p);
    p += b.length;
  }
  return p;
}

function writeSnapshot(buf: Uint8Array, p: number, s: Snapshot): number {
  // Only MsgSnap carries one, and MsgSnap goes by InstallSnapshot: sizes are simply recomputed.
  const md = s.metadata;
  const cs = md.confState;
  buf[p++] = T_SNAPSHOT;
  p = writeU53(buf, p, snapshotSize(s));
  buf[p++] = T_META_CONF_STATE;
  p = writeU53(buf, p, confStateSize(cs));
  p = writeIds(buf, p, 10, cs.voters);
  p = writeIds(buf, p, 18, cs.learners);
  p = writeIds(buf, p, 26, cs.votersOutgoing);
  p = writeIds(buf, p, 34, cs.learnersNext);
  if (cs.autoLeave) {
    buf[p++] = T_CS_AUTO_LEAVE;
    buf[p++] = 1;
  }
  if (md.index !== 0) {
    buf[p++] = T_META_INDEX;
    p = writeU53(buf, p, md.index);
  }
  if (md.term !== 0) {
    buf[p++] = T_META_TERM;
    p = writeU53(buf, p, md.term);
  }
  return p;
}

// Scratch space between the sizing pass and the writing pass of encodeBatch (not reentrant,
// and need not be: encoding never calls out).
const msgSizes: number[] = [];
const entrySizes: number[] = [];

function messageSize(m: Message): number {
  let n = 0;
  if (m.type !== 0) n += 1 + lengthSize(checkU32(m.type));
  if (m.to !== 0n) n += 1 + idVarint(m.to).length;
  if (m.from !== 0n) n += 1 + idVarint(m.from).length;
  if (m.term !== 0) n += 1 + sizeU53(m.term);
  if (m.logTerm !== 0) n += 1 + sizeU53(m.logTerm);
  if (m.index !== 0) n += 1 + sizeU53(m.index);
  for (const e of m.entries) {
    const k = entrySize(e);
    entrySizes.push(k);
    n += 1 + lengthSize(k) + k;
  }
  if (m.commit !== 0) n += 1 + sizeU53(m.commit);
  if (m.snapshot !== undefined) {
    const k = snapshotSize(m.snapshot);
    n += 1 + lengthSize(k) + k;
  }
  if (m.reject) n += 2;
  if (m.rejectHint !== 0) n += 1 + sizeU53(m.rejectHint);
  const ctx = m.context;
  if (ctx !== undefined && ctx.length !== 0) n += 1 + lengthSize(ctx.length) + ctx.length;
  return n;
}

/** One MessageBatch frame for `msgs`, in a single Buffer. */
export function encodeBatch(msgs: readonly Message[]): Buffer {
  msgSizes.length = 0;
  entrySizes.length = 0;
  let total = 0;
  for (const m of msgs) {
    const n = messageSize(m);
    msgSizes.push(n);
    total += 1 + lengthSize(n) + n;
  }
  const buf = Buffer.allocUnsafe(total);
  let p = 0;
  let ei = 0;
  for (let i = 0; i < msgs.length; i++) {
    const m = msgs[i]!;
    buf[p++] = T_BATCH_MESSAGE;
    p = writeU53(buf, p, msgSizes[i]!);
    if (m.type !== 0) {
      buf[p++] = T_TYPE;
      p = writeU53(buf, p, m.type);
    }
    if (m.to !== 0n) {
      buf[p++] = T_TO;
      const b = idVarint(m.to);
      buf.set(b, p);
      p += b.length;
    }
    if (m.from !== 0n) {
      buf[p++] = T_FROM;
      const b = idVarint(m.from);
      buf.set(b, p);
      p += b.length;
    }
    if (m.term !== 0) {
      buf[p++] = T_TERM;
      p = writeU53(buf, p, m.term);
    }
    if (m.logTerm !== 0) {
      buf[p++] = T_LOG_TERM;
      p = writeU53(buf, p, m.logTerm);
    }
    if (m.index !== 0) {
      buf[p++] = T_INDEX;
      p = writeU53(buf, p, m.index);
    }
    for (const e of m.entries) {
      // The size from the first pass: an entry's encoding is the same whether kept or not,
      // even if writing an earlier entry of this frame took its slot meanwhile.
      const k = entrySizes[ei++]!;
      buf[p++] = T_ENTRY;
      p = writeU53(buf, p, k);
      p = writeEntry(buf, p, e, k);
    }
    if (m.commit !== 0) {
      buf[p++] = T_COMMIT;
      p = writeU53(buf, p, m.commit);
    }
    if (m.snapshot !== undefined) p = writeSnapshot(buf, p, m.snapshot);
    if (m.reject) {
      buf[p++] = T_REJECT;
      buf[p++] = 1;
    }
    if (m.rejectHint !== 0) {
      buf[p++] = T_REJECT_HINT;
      p = writeU53(buf, p, m.rejectHint);
    }
    const ctx = m.context;
    if (ctx !== undefined && ctx.length !== 0) {
      buf[p++] = T_CONTEXT;
      p = writeU53(buf, p, ctx.length);
      buf.set(ctx, p);
      p += ctx.length;
    }
  }
  // The two passes must agree; a mismatch is a bug here, and would corrupt the stream.
  if (p !== total) throw new Error(`peer wire: encoded ${p} bytes, sized ${total}`);
  return buf;
}

// ------------------------------------------------------------------ decode

/** A cursor over the frame; `end` is the end of the (sub-)message being read. */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    pos: number,
    public end: number,
  ) {
    this.pos = pos;
  }

  private truncated(): never {
    throw new Error('peer wire: truncated message');
  }

  byte(): number {
    if (this.pos >= this.end) this.truncated();
    return this.buf[this.pos++]!;
  }

  /** A uint64 varint as a number; above 2^53-1 it is refused, as codec.ts's `num` does. */
  u53(): number {
    let b = this.byte();
    if (b < 0x80) return b;
    let v = b & 0x7f;
    let mul = 0x80;
    for (let i = 1; i < 10; i++) {
      b = this.byte();
      // Float additions are monotonic and exact below 2^53, so a true value above 2^53-1 never
      // comes out at or under it.
      v += (b & 0x7f) * mul;
      if (b < 0x80) {
        if (v > MAX_SAFE) throw new Error(`peer wire: value ${v} out of range`);
        return v;
      }
      mul *= 0x80;
    }
    throw new Error('peer wire: malformed varint');
  }

  /** A varint's low 32 bits (uint32 fields; a conforming encoder may write up to 10 bytes). */
  u32(): number {
    let v = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      if (i < 5) v |= (b & 0x7f) << (7 * i);
      if (b < 0x80) return v >>> 0;
    }
    throw new Error('peer wire: malformed varint');
  }

  bool(): boolean {
    let nonzero = false;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      if ((b & 0x7f) !== 0) nonzero = true;
      if (b < 0x80) return nonzero;
    }
    throw new Error('peer wire: malformed varint');
  }

  /** A uint64 varint as a bigint id, by its two 32-bit halves (no BigInt arithmetic). */
  id(): bigint {
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      const b = this.byte();
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32); // the 10th byte's bits above 64 shift out, as protobuf drops them
      if (b < 0x80) return idValue(lo >>> 0, hi >>> 0);
    }
    throw new Error('peer wire: malformed varint');
  }

  /** The end of a length-delimited field whose length comes next. */
  sub(): number {
    const n = this.u53();
    if (n > this.end - this.pos) this.truncated();
    return this.pos + n;
  }

  /** Skips the field whose tag was just read (a group with everything up to its end). */
  skip(tag: number): void {
    const groups: number[] = [];
    for (;;) {
      const wt = tag & 7;
      if (wt === 0) this.u32();
      else if (wt === 1) this.advance(8);
      else if (wt === 2) this.pos = this.sub();
      else if (wt === 5) this.advance(4);
      else if (wt === 3) groups.push(tag >>> 3);
      else if (wt === 4) {
        if (groups.pop() !== tag >>> 3) throw new Error('peer wire: unmatched end group');
      } else throw new Error(`peer wire: invalid wire type ${wt}`);
      if (groups.length === 0) return;
      tag = this.tag();
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) this.truncated();
    this.pos += n;
  }

  tag(): number {
    const t = this.u32();
    if (t >>> 3 === 0) throw new Error('peer wire: field number 0');
    return t;
  }

  /** A repeated uint64 id field, packed (wire type 2) or one value (wire type 0). */
  ids(tag: number, into: bigint[]): void {
    if ((tag & 7) === 0) {
      into.push(this.id());
      return;
    }
    const outer = this.end;
    this.end = this.sub();
    while (this.pos < this.end) into.push(this.id());
    this.end = outer;
  }
}

function decodeConfState(r: Reader): ConfState {
  const cs: ConfState = { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  while (r.pos < r.end) {
    const t = r.tag();
    const wt = t & 7;
    switch (t >>> 3) {
      case 1:
      case 2:
      case 3:
      case 4:
        if (wt === 0 || wt === 2) {
          r.ids(t, t >>> 3 === 1 ? cs.voters : t >>> 3 === 2 ? cs.learners : t >>> 3 === 3 ? cs.votersOutgoing : cs.learnersNext);
          continue;
        }
        break;
      case 5:
        if (wt === 0) {
          cs.autoLeave = r.bool();
          continue;
        }
        break;
    }
    r.skip(t);
  }
  return cs;
}

function decodeSnapshotMetadata(r: Reader): Snapshot {
  let confState: ConfState | undefined;
  let index = 0;
  let term = 0;
  while (r.pos < r.end) {
    const t = r.tag();
    if (t === T_META_CONF_STATE) {
      const outer = r.end;
      r.end = r.sub();
      confState = decodeConfState(r);
      r.end = outer;
    } else if (t === T_META_INDEX) index = r.u53();
    else if (t === T_META_TERM) term = r.u53();
    else r.skip(t);
  }
  // As messageFromPb: the data streams separately (InstallSnapshot), so none here.
  return {
    data: new Uint8Array(0),
    metadata: { confState: confState ?? { voters: [], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, index, term },
  };
}

/**
 * An Entry from r.pos to r.end. Its bytes are kept as its encoding only if they are exactly
 * what writeEntry would write (fields in order, defaults left out, shortest varints, nothing
 * unknown), so that a re-sent entry is byte for byte what the generated encoder makes.
 */
function decodeEntry(r: Reader): Entry {
  const start = r.pos;
  let term = 0;
  let index = 0;
  let type = 0;
  let data: Buffer = EMPTY;
  let canonical = true;
  let last = 0; // the last field number read, for the order check
  while (r.pos < r.end) {
    const t = r.tag();
    const f = t >>> 3;
    if (f <= last) canonical = false;
    last = f;
    const at = r.pos;
    if (t === T_ENTRY_TERM) {
      term = r.u53();
      if (term === 0 || r.pos - at !== sizeU53(term)) canonical = false;
    } else if (t === T_ENTRY_INDEX) {
      index = r.u53();
      if (index === 0 || r.pos - at !== sizeU53(index)) canonical = false;
    } else if (t === T_ENTRY_TYPE) {
      type = r.u32();
      // A 5-byte varint of the right length can still carry bits above 32 that u32() dropped.
      const n = r.pos - at;
      if (type === 0 || n !== lengthSize(type) || (n === 5 && r.buf[r.pos - 1]! > 0x0f)) canonical = false;
    } else if (t === T_ENTRY_DATA) {
      const end = r.sub();
      if (end === r.pos || r.pos - at !== lengthSize(end - r.pos)) canonical = false;
      // A view of the frame, not a copy.
      data = r.buf.subarray(r.pos, end);
      r.pos = end;
    } else {
      canonical = false;
      r.skip(t);
    }
  }
  const e: Entry = { term, index, type, data };
  if (canonical) remember(e, r.buf, start, r.end - start);
  return e;
}

function decodeMessage(r: Reader): Message {
  const m: Message = {
    type: 0,
    to: 0n,
    from: 0n,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    snapshot: undefined,
    reject: false,
    rejectHint: 0,
    context: undefined,
  };
  while (r.pos < r.end) {
    const t = r.tag();
    switch (t) {
      case T_TYPE:
        m.type = r.u32();
        continue;
      case T_TO:
        m.to = r.id();
        continue;
      case T_FROM:
        m.from = r.id();
        continue;
      case T_TERM:
        m.term = r.u53();
        continue;
      case T_LOG_TERM:
        m.logTerm = r.u53();
        continue;
      case T_INDEX:
        m.index = r.u53();
        continue;
      case T_ENTRY: {
        const outer = r.end;
        r.end = r.sub();
        m.entries.push(decodeEntry(r));
        r.end = outer;
        continue;
      }
      case T_COMMIT:
        m.commit = r.u53();
        continue;
      case T_SNAPSHOT: {
        const outer = r.end;
        r.end = r.sub();
        m.snapshot = decodeSnapshotMetadata(r);
        r.end = outer;
        continue;
      }
      case T_REJECT:
        m.reject = r.bool();
        continue;
      case T_REJECT_HINT:
        m.rejectHint = r.u53();
        continue;
      case T_CONTEXT: {
        const end = r.sub();
        // As messageFromPb: an empty context is no context. A view of the frame, not a copy.
        m.context = end > r.pos ? r.buf.subarray(r.pos, end) : undefined;
        r.pos = end;
        continue;
      }
    }
    r.skip(t);
  }
  return m;
}

/**
 * The messages of a MessageBatch frame. A frame that is not a MessageBatch throws. A message
 * inside it that does not decode (malformed, or a number above 2^53-1) throws too, unless
 * `onBadMessage` is given: then it hears of it and the other messages are still returned.
 * The messages' entry data and context are views of `frame`, which must not change afterwards.
 */
export function decodeBatch(frame: Uint8Array, onBadMessage?: (e: Error) => void): Message[] {
  const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  const r = new Reader(buf, 0, buf.length);
  const out: Message[] = [];
  while (r.pos < r.end) {
    const t = r.tag();
    if (t !== T_BATCH_MESSAGE) {
      r.skip(t);
      continue;
    }
    const end = r.sub();
    const mr = new Reader(buf, r.pos, end);
    r.pos = end;
    try {
      out.push(decodeMessage(mr));
    } catch (e) {
      if (!onBadMessage) throw e;
      onBadMessage(e instanceof Error ? e : new Error(String(e)));
    }
  }
  return out;
}
