// A WatchResponse's bytes with each event encoded once. Watchers of the same keys share their
// Event objects (src/kv/event-cache.ts); at a fan-out of thousands of watchers, encoding the
// same event once per watcher was much of a member's work. So a response is its envelope
// followed by its events' bytes, each encoded the first time any response carries it and kept
// as long as the event object lives. The envelope of an event response (header and watch id
// only) is written by hand, its header's bytes reused while the header's values stay the same
// (every response of a revision has the same header). The fields come in the generated
// encoder's order, so the bytes are the ones it writes.

import { Event } from '../gen/etcd/kv.js';
import { ResponseHeader, WatchResponse } from '../gen/etcd/rpc.js';
import { keyValueSize, putKeyValue } from '../util/keyvalue-wire.js';
import { lengthSize, putVarint, varintSize } from '../util/varint.js';
import { encodedBuffer } from './grpc-util.js';
import { GRPC_PREFIX, SLICED_ENCODING_MIN_BYTES, SLICED_ENCODING_MIN_KVS, attach } from './sliced-encoding.js';
import { SliceBudget } from '../util/yield.js';

/** WatchResponse.header: field 1, length-delimited; watch_id: field 2, varint; events: field 11, length-delimited. */
const HEADER_TAG = (1 << 3) | 2;
const WATCH_ID_TAG = 2 << 3;
const EVENTS_TAG = (11 << 3) | 2;

/** The last header encoded, and its bytes. */
let lastHeader: { h: ResponseHeader; bytes: Uint8Array } | undefined;

function headerBytes(h: ResponseHeader): Uint8Array {
  const m = lastHeader;
  if (m && m.h.revision === h.revision && m.h.raftTerm === h.raftTerm && m.h.memberId === h.memberId && m.h.clusterId === h.clusterId) return m.bytes;
  const bytes = ResponseHeader.encode(h).finish();
  lastHeader = { h: { ...h }, bytes };
  return bytes;
}

/** The envelope (all but the events): by hand for an event response, else the generated encoder's. */
function envelope(r: WatchResponse): Uint8Array {
  if (!r.header || r.created || r.canceled || r.compactRevision !== 0n || r.cancelReason !== '' || r.fragment) return WatchResponse.encode({ ...r, events: [] }).finish();
  const h = headerBytes(r.header);
  const out = new Uint8Array(1 + lengthSize(h.length) + h.length + (r.watchId === 0n ? 0 : 1 + varintSize(r.watchId)));
  out[0] = HEADER_TAG;
  let o = putVarint(out, 1, h.length);
  out.set(h, o);
  o += h.length;
  if (r.watchId !== 0n) {
    out[o++] = WATCH_ID_TAG;
    putVarint(out, o, r.watchId);
  }
  return out;
}

const encodedEvents = new WeakMap<Event, Uint8Array>();

/** An event's bytes, encoded the first time any response carries it (the same bytes after). */
export function eventBytes(ev: Event): Uint8Array {
  let b = encodedEvents.get(ev);
  if (!b) encodedEvents.set(ev, (b = encodeEvent(ev)));
  return b;
}

/** Event.kv is field 2, prev_kv field 3 (length-delimited); type field 1 (varint, PUT = 0 left out). */
const KV_TAG = (2 << 3) | 2;
const PREV_KV_TAG = (3 << 3) | 2;
const TYPE_TAG = 1 << 3;

/**
 * Event.encode's bytes, written by hand into one buffer (src/util/keyvalue-wire.ts): the
 * generated writer's growing chunks per event were most of the cost of a revision of many
 * events (a DeleteRange of 100 k keys with a prev_kv watcher: ~0.2 s of the apply's turn, and
 * garbage for the collector).
 */
function encodeEvent(ev: Event): Uint8Array {
  if (ev.type !== 0 && ev.type !== 1) return Event.encode(ev).finish(); // no such event is made
  const kvSize = ev.kv ? keyValueSize(ev.kv) : 0;
  const prevSize = ev.prevKv ? keyValueSize(ev.prevKv) : 0;
  const n = (ev.type === 0 ? 0 : 2) + (ev.kv ? 1 + lengthSize(kvSize) + kvSize : 0) + (ev.prevKv ? 1 + lengthSize(prevSize) + prevSize : 0);
  const b = Buffer.allocUnsafe(n);
  let o = 0;
  if (ev.type !== 0) {
    b[o++] = TYPE_TAG;
    b[o++] = ev.type;
  }
  if (ev.kv) {
    b[o++] = KV_TAG;
    o = putKeyValue(b, putVarint(b, o, kvSize), ev.kv);
  }
  if (ev.prevKv) {
    b[o++] = PREV_KV_TAG;
    putKeyValue(b, putVarint(b, o, prevSize), ev.prevKv);
  }
  return b;
}

/**
 * Whether `r` is too large to encode in one go (grpc-js's serializer runs in the turn that
 * sends it): a large revision's response (src/kv/watch-hub.ts) of thousands of events or a MiB.
 */
export function encodesInSlices(r: WatchResponse, bytes: number): boolean {
  return r.events.length > SLICED_ENCODING_MIN_KVS || bytes >= SLICED_ENCODING_MIN_BYTES;
}

/**
 * encodeWatchResponse's bytes, put together over several turns with a yield (`pause`) after
 * each slice of events (about SLICE_BYTES): their bytes gathered (each event's encoded once),
 * then copied into one buffer, attached to `r` for the serializer (usingPreEncoded) — one
 * buffer, since grpc-js copies what the serializer gives it once more.
 */
export async function encodeWatchResponseInSlices(r: WatchResponse, pause: () => Promise<void>): Promise<WatchResponse> {
  const head = envelope(r);
  const bodies = new Array<Uint8Array>(r.events.length);
  let total = 0;
  const gathered = new SliceBudget(SLICED_ENCODING_MIN_KVS);
  for (let i = 0; i < r.events.length; i++) {
    const b = eventBytes(r.events[i]!);
    bodies[i] = b;
    const field = eventFieldSize(b);
    total += field;
    if (gathered.spend(field) && i + 1 < r.events.length) await pause();
  }
  // With room for gRPC's message prefix in front, so that it can go out as it is (framed).
  const framed = Buffer.allocUnsafe(GRPC_PREFIX + head.length + total);
  framed[0] = 0;
  framed.writeUInt32BE(head.length + total, 1);
  const out = framed.subarray(GRPC_PREFIX);
  out.set(head, 0);
  let o = head.length;
  const copied = new SliceBudget(SLICED_ENCODING_MIN_KVS);
  for (let i = 0; i < bodies.length; i++) {
    const b = bodies[i]!;
    o = putEventField(out, o, b);
    if (copied.spend(1 + b.length) && i + 1 < bodies.length) await pause();
  }
  return attach(r, [out], framed);
}

/** WatchResponse.encode's bytes, with each event's encoded once for all the responses carrying it. */
export function encodeWatchResponse(r: WatchResponse): Buffer {
  if (r.events.length === 0) return encodedBuffer(WatchResponse.encode(r).finish());
  const head = envelope(r);
  let total = head.length;
  const bodies = new Array<Uint8Array>(r.events.length);
  for (let i = 0; i < r.events.length; i++) {
    const b = eventBytes(r.events[i]!);
    bodies[i] = b;
    total += eventFieldSize(b);
  }
  const out = Buffer.allocUnsafe(total);
  out.set(head, 0);
  let o = head.length;
  for (const b of bodies) o = putEventField(out, o, b);
  return out;
}

/** The bytes of a WatchResponse.events field holding an event encoded as `b`: tag, length, `b`. */
const eventFieldSize = (b: Uint8Array): number => 1 + lengthSize(b.length) + b.length;

/** Writes `b` (an encoded event) as a WatchResponse.events field at out[o]; returns the offset after it. */
function putEventField(out: Uint8Array, o: number, b: Uint8Array): number {
  out[o++] = EVENTS_TAG;
  o = putVarint(out, o, b.length);
  out.set(b, o);
  return o + b.length;
}
