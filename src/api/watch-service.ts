// etcdserverpb.Watch: one bidirectional stream carries many watchers.

import * as grpc from '@grpc/grpc-js';
import type { Event } from '../gen/etcd/kv.js';
import { WatchCreateRequest_FilterType, WatchRequest, WatchResponse, WatchService } from '../gen/etcd/rpc.js';
import { EtcdError, Errors } from '../kv/errors.js';
import type { Watcher } from '../kv/watch-hub.js';
import { encodeWatchResponse, encodeWatchResponseInSlices, encodesInSlices, eventBytes } from './watch-encoding.js';
import { SLICED_ENCODING_MIN_KVS, preEncodedParts, sendingFramedAsIs, usingPreEncoded } from './sliced-encoding.js';
import { yieldToEventLoop } from '../util/yield.js';
import { lengthSize } from '../util/varint.js';
import { forEachLengthDelimited } from '../util/wire-fields.js';
import { eventSize } from '../kv/event-cache.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { checkRange } from '../auth/apply-checks.js';
import { authOf } from '../auth/frontend.js';
import { guardStream, toServiceError } from './grpc-util.js';
import { goErrorText } from './grpc-status.js';

/**
 * What etcd 3.4 puts in cancel_reason for a refused watch: its gRPC error's text (Go's), for a bad
 * token, an old auth revision or no user; "permission denied" for anything else.
 */
const WATCH_PERMISSION_DENIED = goErrorText(Errors.permissionDenied());
const WATCH_CANCEL_REASONS = new Map([Errors.invalidAuthToken(), Errors.authOldRevision(), Errors.userEmpty()].map((e) => [e.message, goErrorText(e)]));
/** The smallest key ("\0"), which an empty key means in a watch. */
const ZERO_KEY = Buffer.from([0]);

/** etcd's default --experimental-watch-progress-notify-interval: 10 minutes. */
const DEFAULT_PROGRESS_NOTIFY_MS = 10 * 60_000;

/** A watch stream's bounds on responses not yet taken by the transport (see `send`). */
const STREAM_MAX_RESPONSES = 128;
const STREAM_MAX_BYTES = 256 * 1024;

/**
 * WatchRequest's decoder, with its oneof as protobuf means it: of create_request (1),
 * cancel_request (2) and progress_request (3), the one last on the wire, as etcd (Go's decoder)
 * takes it. The generated decoder keeps every member it read, and the stream then created a
 * watch where etcd cancelled one or answered a progress request.
 */
export function decodeWatchRequest(b: Buffer): WatchRequest {
  const m = WatchRequest.decode(b);
  if ((m.createRequest ? 1 : 0) + (m.cancelRequest ? 1 : 0) + (m.progressRequest ? 1 : 0) < 2) return m;
  let last = 0;
  forEachLengthDelimited(b, 0, b.length, (field) => {
    if (field >= 1 && field <= 3) last = field;
  });
  if (last !== 1) m.createRequest = undefined;
  if (last !== 2) m.cancelRequest = undefined;
  if (last !== 3) m.progressRequest = undefined;
  return m;
}

/**
 * etcd's sendFragments, to the byte: a response of two events or more whose encoded size reaches
 * `limit` goes out as several, all but the last marked `fragment`. Each takes events while its
 * size (its envelope marked `fragment`, which etcd measures with the flag set even for the last
 * one) stays below the limit, and at least one. Sizes are the protobuf encoding's, as etcd's
 * `Size()`: a response etcd sends whole is sent whole, and a split one ends where etcd's does
 * (an estimate split 1,400 deletions of 400-byte values with prev_kv 1,138 + 262 where etcd split
 * 1,190 + 210). The events' bytes are encoded here once and kept for the send (eventBytes).
 */
export function fragments(r: WatchResponse, limit: number): WatchResponse[] {
  if (r.events.length < 2) return [r];
  const sizes = r.events.map((ev) => {
    const n = eventBytes(ev).length;
    return 1 + lengthSize(n) + n; // events: field 11, length-delimited
  });
  let whole = envelopeSize(r);
  for (const n of sizes) whole += n;
  if (whole < limit) return [r];
  const envelope = envelopeSize({ ...r, fragment: true });
  const out: WatchResponse[] = [];
  let from = 0;
  while (from < r.events.length) {
    let size = envelope + sizes[from]!;
    let to = from + 1;
    while (to < r.events.length && size + sizes[to]! < limit) size += sizes[to++]!;
    out.push({ ...r, events: r.events.slice(from, to), fragment: to < r.events.length });
    from = to;
  }
  return out;
}

/** A response's encoded size without its events. */
function envelopeSize(r: WatchResponse): number {
  return WatchResponse.encode({ ...r, events: [] }).finish().length;
}

/** About what a response takes in memory: its events' keys and values, and a little per event. */
function responseBytes(r: WatchResponse): number {
  let n = 64;
  for (const ev of r.events) n += eventSize(ev);
  return n;
}

/**
 * The Watch service. `fragmentBytes`: where a response of a watcher created with `fragment` is
 * split (what the member takes in, as etcd's maxRequestBytes there).
 */
export function watchService(s: EtcdServer, fragmentBytes: number): [typeof WatchService, grpc.UntypedServiceImplementation] {
  const auth = authOf(s);
  // A large revision's events are encoded as they are made, in its slices: only putting its
  // response together is left for the turn that sends it.
  s.watchHub.prepare = eventBytes;
  const watch = (call: grpc.ServerDuplexStream<WatchRequest, WatchResponse>): void => {
    if (!guardStream(s, call)) return;
    // A large revision's response goes out as it was put together, with no copy by grpc-js.
    sendingFramedAsIs(call);
    /**
     * etcd's isWatchPermitted: READ on the watched range, as the caller of the stream's token;
     * undefined if permitted, else the cancel reason etcd gives (a bad token, an old auth
     * revision or no user say so; anything else is "permission denied").
     */
    const refusal = (key: Buffer, rangeEnd: Buffer): string | undefined => {
      if (!auth.checksCaller(call)) return undefined;
      try {
        const caller = auth.authInfoNow(call); // a token is checked with auth off too
        if (s.sm.auth.enabled) checkRange(s.sm.auth, caller, { key, rangeEnd });
        return undefined;
      } catch (e) {
        return (e instanceof EtcdError ? WATCH_CANCEL_REASONS.get(e.message) : undefined) ?? WATCH_PERMISSION_DENIED;
      }
    };
    const mine = new Map<bigint, Watcher>();
    /**
     * Ids of watches canceled by a compaction: etcd's stream keeps them until the client cancels
     * them (a create may not take one; a cancel of one is answered).
     */
    const compacted = new Set<bigint>();
    const inUse = (id: bigint): boolean => mine.has(id) || compacted.has(id);
    let nextId = 0n;
    let closed = false;
    // What the stream holds that the transport has not taken yet, bounded like etcd's
    // per-stream channel (128 responses) and in bytes. grpc-js's own mark (16 responses) made
    // watchers of a busy stream fall behind at every other put, to be caught up from the
    // history instead of sent live.
    let pending = 0;
    let pendingBytes = 0;
    let full = false;
    /**
     * A client that reads again: catch its watchers up from the history (src/kv/watch-hub.ts),
     * until the stream is full again (a watcher still behind with room left waits on a large
     * revision being read: the next goes on).
     */
    const catchUp = (): void => {
      for (const w of mine.values()) {
        if (closed || full) return;
        if (s.watchHub.isUnsynced(w)) s.watchHub.resume(w);
      }
    };
    /**
     * A large response being encoded in slices, and what was sent after it: later responses
     * wait behind it, so that the stream's order is the order they were sent in.
     */
    let encoding: Promise<void> | undefined;
    /** False when the stream is full: the hub then stops sending to that watcher until it has room. */
    const send = (r: WatchResponse): boolean => {
      if (closed) return true;
      s.watchHub.eventsSent += r.events.length;
      // A response of many events (a large revision) is weighed as it is encoded, in slices.
      const many = r.events.length > SLICED_ENCODING_MIN_KVS;
      let size = many ? 0 : responseBytes(r);
      const sliced = encodesInSlices(r, size);
      pending++;
      pendingBytes += size;
      const write = (m: WatchResponse): void => {
        if (closed) return;
        call.write(m, () => {
          pending--;
          pendingBytes -= size;
          // Room again (half the bounds, so a stream at the edge is not woken per response).
          if (full && pending <= STREAM_MAX_RESPONSES / 2 && pendingBytes <= STREAM_MAX_BYTES / 2) {
            full = false;
            if (!closed) call.resume?.();
            setImmediate(catchUp);
          }
        });
      };
      if (encoding || sliced) {
        const after = (encoding ?? Promise.resolve()).then(async () => {
          if (!sliced) return write(r);
          const m = await encodeWatchResponseInSlices(r, yieldToEventLoop);
          if (many) {
            size = preEncodedParts(m)![0]!.length;
            pendingBytes += size;
            checkFull();
          }
          write(m);
        });
        encoding = after;
        after.then(
          () => {
            if (encoding === after) encoding = undefined;
          },
          (e: unknown) => {
            s.logger.warn(`watch stream failed: ${(e as Error)?.message ?? String(e)}`);
            cleanup();
            call.emit('error', toServiceError(e));
          },
        );
      } else {
        write(r);
      }
      checkFull();
      return !full;
    };
    const checkFull = (): void => {
      if (!full && (pending >= STREAM_MAX_RESPONSES || pendingBytes >= STREAM_MAX_BYTES)) {
        full = true;
        // Nor are the client's requests read while it does not read its answers: each create,
        // cancel or progress request is answered, and a client sending them without reading
        // would otherwise queue answers without bound (etcd's recvLoop blocks on its control
        // channel just so). HTTP/2 flow control then holds the client back.
        call.pause?.();
      }
    };
    /**
     * Watchers created with progress_notify, and whether they are due one: etcd's sendLoop ticks
     * per stream, and at each tick tells each such watcher that is current and got no events
     * since the last tick the revision it is at (a response with no events); events sent clear it.
     */
    const progress = new Map<bigint, boolean>();
    /** A progress response: no events, at the store's revision (etcd's RequestProgress; -1 answers a progress request). */
    const sendProgress = (watchId: bigint): boolean =>
      send({ header: s.header(s.sm.store.currentRev), watchId, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [] });
    const progressMs = s.cfg.watchProgressNotifyIntervalMs ?? DEFAULT_PROGRESS_NOTIFY_MS;
    const progressTimer =
      progressMs > 0
        ? s.clock.setInterval(() => {
            for (const [id, due] of progress) {
              const w = mine.get(id);
              if (due && w && !s.watchHub.isUnsynced(w)) sendProgress(id);
              progress.set(id, true);
            }
          }, progressMs)
        : undefined;
    s.watchHub.streams++;
    const cleanup = (): void => {
      if (!closed) s.watchHub.streams--;
      closed = true;
      progressTimer?.cancel();
      for (const w of mine.values()) s.watchHub.remove(w);
      mine.clear();
      progress.clear();
      compacted.clear();
    };
    call.on('data', (req: WatchRequest) => {
      // An event callback: whatever throws here would escape to the process. End this stream
      // with the error instead.
      try {
        onRequest(req);
      } catch (e) {
        s.logger.warn(`watch stream failed: ${(e as Error)?.message ?? String(e)}`);
        cleanup();
        call.emit('error', toServiceError(e));
      }
    });
    const onRequest = (req: WatchRequest): void => {
      const header = () => s.header(s.sm.store.currentRev);
      if (req.createRequest) {
        const c = req.createRequest;
        const refused = refusal(c.key, c.rangeEnd);
        if (refused !== undefined) {
          send({ header: header(), watchId: -1n, created: true, canceled: true, compactRevision: 0n, cancelReason: refused, fragment: false, events: [] });
          return;
        }
        // etcd's watchStream.Watch refuses an empty range (key at or after range_end; an empty key
        // is "\0", a range_end of "\0" means every key from it) and a watch id in use: created
        // and canceled at once, as watch -1, with its error as the reason.
        const from = c.key.length > 0 ? c.key : ZERO_KEY;
        const fromKey = c.rangeEnd.length === 1 && c.rangeEnd[0] === 0;
        const emptyRange = c.rangeEnd.length > 0 && !fromKey && Buffer.compare(from, c.rangeEnd) >= 0;
        const duplicate = c.watchId !== 0n && inUse(c.watchId);
        if (emptyRange || duplicate) {
          const cancelReason = emptyRange ? 'mvcc: watcher range is empty' : 'mvcc: duplicate watch ID provided on the WatchStream';
          send({ header: header(), watchId: -1n, created: true, canceled: true, compactRevision: 0n, cancelReason, fragment: false, events: [] });
          return;
        }
        let id = c.watchId;
        if (id === 0n) {
          while (inUse(nextId)) nextId++;
          id = nextId++;
        }
        const watchId = id;
        const w: Watcher = {
          // Copies: the request's bytes are views of its whole message, kept as long as the watch.
          // An empty key is "\0", the smallest key, as etcd's watch server takes it.
          key: Buffer.from(from),
          rangeEnd: c.rangeEnd.length > 0 ? Buffer.from(c.rangeEnd) : undefined,
          startRevision: c.startRevision,
          prevKv: c.prevKv,
          noPut: c.filters.includes(WatchCreateRequest_FilterType.NOPUT),
          noDelete: c.filters.includes(WatchCreateRequest_FilterType.NODELETE),
          deliver: (events: Event[], rev: bigint) => {
            if (events.length > 0 && progress.get(watchId)) progress.set(watchId, false);
            const r: WatchResponse = { header: s.header(rev), watchId, created: false, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events };
            if (!c.fragment) return send(r);
            let room = true;
            for (const part of fragments(r, fragmentBytes)) room = send(part);
            return room;
          },
          // Fell behind and its history was compacted: etcd cancels it with the compact revision
          // (its header without a revision, as etcd's mvcc gives none for it).
          onCompacted: (compactRev: bigint) => {
            mine.delete(watchId);
            progress.delete(watchId);
            compacted.add(watchId);
            send({ header: s.header(0n), watchId, created: false, canceled: true, compactRevision: compactRev, cancelReason: '', fragment: false, events: [] });
          },
        };
        try {
          s.watchHub.add(w);
        } catch (e) {
          // start_revision compacted: created, then canceled with the compact revision.
          send({ header: header(), watchId, created: true, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [] });
          // As etcd's sendLoop: a compacted response is canceled by its compact revision alone
          // (no reason; no revision in its header), so with a compact revision of 0 (after a
          // Compact(0), for a negative start) it is not marked canceled — the watch just ends.
          if (!(e instanceof EtcdError)) throw e;
          const compactRev = s.sm.store.compactRev;
          compacted.add(watchId);
          send({ header: s.header(0n), watchId, created: false, canceled: compactRev !== 0n, compactRevision: compactRev, cancelReason: '', fragment: false, events: [] });
          return;
        }
        mine.set(watchId, w);
        if (c.progressNotify) progress.set(watchId, true);
        send({ header: header(), watchId, created: true, canceled: false, compactRevision: 0n, cancelReason: '', fragment: false, events: [] });
        // Catch-up events (start_revision in the past), several revisions per response, while
        // the stream takes them; the rest comes from the history when it has room again.
        if (s.watchHub.isUnsynced(w)) s.watchHub.resume(w);
      } else if (req.cancelRequest) {
        const id = req.cancelRequest.watchId;
        const w = mine.get(id);
        // Answered only when there was such a watch, as etcd's recvLoop (its Cancel succeeded).
        if (!w && !compacted.delete(id)) return;
        if (w) s.watchHub.remove(w);
        mine.delete(id);
        progress.delete(id);
        send({ header: header(), watchId: id, created: false, canceled: true, compactRevision: 0n, cancelReason: '', fragment: false, events: [] });
      } else if (req.progressRequest) {
        sendProgress(-1n);
      }
    };
    // A client's half-close does not end its watches: etcd's recvLoop returns on EOF and the
    // stream goes on until the client cancels it or goes away.
    call.on('end', () => undefined);
    call.on('error', cleanup);
    call.on('cancelled', cleanup);
  };
  // Responses carry events shared between watchers, each encoded once (./watch-encoding.ts).
  return [{ ...WatchService, watch: { ...WatchService.watch, requestDeserialize: decodeWatchRequest, responseSerialize: usingPreEncoded(encodeWatchResponse) } }, { watch }];
}
