// Accepting any `:authority` on the client port's HTTP/2 connections.
//
// Why this exists: Node's HTTP/2 server is nghttp2, which resets a request stream with
// PROTOCOL_ERROR when `:authority` is not a syntactically valid RFC 3986 authority, and Node
// offers no switch for it (nghttp2_option_set_no_http_messaging is not exposed). etcd's Go
// clients send such values: etcdctl 3.4's per-endpoint calls (`--cluster` commands) send
// `http://127.0.0.1:2379`, and clientv3 3.5.0–3.5.? sends `#initially=[http://...]`
// (etcd-io/etcd#13192); grpc-go does not check, so etcd serves them and raftkv must too.
//
// What we do, per connection, before nghttp2 sees it:
//  1. Read the client's bytes until its first header block is complete. A client that waits
//     for the server's preface before sending requests (grpc-go and grpcio's C core do) gets
//     an empty SETTINGS frame from us — a legal server preface; the native session's own
//     SETTINGS follow as a second SETTINGS frame — as soon as the reads of the turn that
//     brought its preface are consumed without a request, and the client's ACK of ours is
//     removed from the bytes (and waited for before the hand-over), so nghttp2 only ever sees
//     ACKs of its own SETTINGS. (It used to wait 5 ms for a request first: with the timer's
//     granularity that was 8–10 ms on every new connection of etcdctl and the Python client,
//     against etcd's 2 ms for a whole `etcdctl endpoint health`.)
//  2. If that block's `:authority` is valid, the socket goes to the native HTTP/2 session with
//     the bytes read so far put back (`unshift`): no cost on the request path of well-behaved
//     clients (grpc-js, grpcio, etcd 3.4's default endpoints). A JS stream between socket and
//     session costs about a third of the throughput of unary calls, measured.
//  3. Otherwise — or if no request arrives soon after the preface — the session gets a
//     `AuthorityRewriter` stream instead: every header block from the client is decoded (HPACK,
//     by the hpack.js library, keeping the client's dynamic table), an invalid `:authority` is
//     replaced by the address the client connected to, and the block is re-encoded as literals
//     without indexing (so the server's dynamic table is never touched and our encoder needs no
//     state). All other frames pass through untouched; what the server writes passes through.
//
// We read frame headers (9 bytes: length, type, flags, stream) and the HEADERS/CONTINUATION
// payload layout, and write SETTINGS (empty) and HEADERS/CONTINUATION frames; everything else
// about HTTP/2 stays in nghttp2. Limits: a connection whose first request carries a valid
// authority and a later one an invalid one (no known client does this) is not rewritten.

import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';
// hpack.js is CommonJS without types; its decompressor is a stream of decoded header fields.
import hpack from 'hpack.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const FRAME_HEADER = 9;
const T_HEADERS = 0x1;
const T_SETTINGS = 0x4;
const T_CONTINUATION = 0x9;
const F_ACK = 0x1;
const F_END_STREAM = 0x1;
const F_END_HEADERS = 0x4;
const F_PADDED = 0x8;
const F_PRIORITY = 0x20;
/** The frame size every HTTP/2 peer must accept (SETTINGS_MAX_FRAME_SIZE's initial value). */
const MAX_FRAME = 16_384;
/** The HPACK table size a server starts with (SETTINGS_HEADER_TABLE_SIZE's initial value). */
const HPACK_TABLE = 4096;
/** Bytes we buffer looking for the first header block before giving up and rewriting. */
const MAX_SNIFF_BYTES = 256 * 1024;
/** The largest header block (HEADERS + CONTINUATIONs) we collect, encoded. */
const MAX_HEADER_BLOCK = 256 * 1024;
/** The largest decoded header list (names + values + 32 per field, as HTTP/2 counts it). */
const MAX_HEADER_LIST = 1024 * 1024;
/** A connection with no complete request this long after our preface goes to the rewriter. */
export const DECIDE_AFTER_MS = 1000;

/** An empty SETTINGS frame: a valid server connection preface that changes no setting. */
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, T_SETTINGS, 0, 0, 0, 0, 0]);

/**
 * nghttp2's rule (nghttp2_check_authority), conservatively: host (a reg-name, IPv4 or a
 * bracketed IPv6 literal) and an optional port. Anything else is rewritten.
 */
const VALID_AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(:[0-9]*)?$/;
export const isValidAuthority = (a: string): boolean => VALID_AUTHORITY.test(a);

interface Frame {
  type: number;
  flags: number;
  stream: number;
  payload: Buffer;
  raw: Buffer;
}

/**
 * Splits a byte stream (after the preface) into frames; keeps a partial frame for later. A frame
 * longer than the size every server starts with (we never raise it: nghttp2's SETTINGS come
 * later) is a FRAME_SIZE_ERROR, which also bounds what is kept to one frame.
 */
class FrameSplitter {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const out: Frame[] = [];
    while (buf.length >= FRAME_HEADER) {
      const len = buf.readUIntBE(0, 3);
      if (len > MAX_FRAME) throw new Error(`frame of ${len} bytes exceeds the maximum frame size`);
      if (buf.length < FRAME_HEADER + len) break;
      const raw = buf.subarray(0, FRAME_HEADER + len);
      out.push({ type: buf[3]!, flags: buf[4]!, stream: buf.readUInt32BE(5) & 0x7fffffff, payload: raw.subarray(FRAME_HEADER), raw });
      buf = buf.subarray(FRAME_HEADER + len);
    }
    this.pending = buf;
    return out;
  }

  /** The bytes of a frame not yet complete. */
  rest(): Buffer {
    return this.pending;
  }
}

/** The header block fragment of a HEADERS frame (without padding and priority fields). */
function headersFragment(f: Frame): { priority: Buffer | undefined; fragment: Buffer } {
  let p = f.payload;
  let padLen = 0;
  if (f.flags & F_PADDED) {
    padLen = p[0] ?? 0;
    p = p.subarray(1);
  }
  let priority: Buffer | undefined;
  if (f.flags & F_PRIORITY) {
    priority = p.subarray(0, 5);
    p = p.subarray(5);
  }
  if (padLen > p.length) throw new Error('HEADERS padding exceeds the frame');
  return { priority, fragment: p.subarray(0, p.length - padLen) };
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(FRAME_HEADER);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** An HPACK string literal without Huffman coding: 7-bit-prefix length, then the bytes. */
function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes]);
}

function hpackInt(n: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (n < max) return Buffer.from([firstByteFlags | n]);
  const out = [firstByteFlags | max];
  n -= max;
  while (n >= 128) {
    out.push((n & 0x7f) | 0x80);
    n >>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

/** One header block as literals without indexing (new name): leaves the peer's table alone. */
function encodeLiterals(fields: Array<[string, string]>): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00]), hpackString(n), hpackString(v)]));
}

/**
 * Mirrors the client's HPACK encoder: decodes its header blocks in order, with the table size
 * a server starts with (a client's size update above it is a COMPRESSION_ERROR), and stops
 * at MAX_HEADER_LIST decoded bytes (a block of one-byte references to a large table entry
 * would otherwise expand a thousandfold).
 */
class HeaderDecoder {
  private readonly d = hpack.decompressor.create({ table: { maxSize: HPACK_TABLE } });

  decode(block: Buffer): Array<[string, string]> {
    const fields: Array<[string, string]> = [];
    let size = 0;
    this.d._decoder.push(block);
    while (!this.d._decoder.isEmpty()) {
      this.d._execute(); // throws on malformed input
      for (let h = this.d.read(); h !== null; h = this.d.read()) {
        size += h.name.length + h.value.length + 32;
        if (size > MAX_HEADER_LIST) throw new Error('header list too large');
        fields.push([h.name, h.value]);
      }
    }
    return fields;
  }
}

/** One header block: a HEADERS frame and its CONTINUATIONs. */
interface HeaderBlock {
  first: Frame;
  priority: Buffer | undefined;
  block: Buffer;
}

/**
 * Collects header blocks from a connection's frames (capped at MAX_HEADER_BLOCK, so a flood of
 * CONTINUATIONs cannot pile up): `add` answers the block a frame completes, 'more' while one is
 * being collected, or undefined for a frame that is not part of one.
 */
class HeaderBlockCollector {
  private current: { first: Frame; priority: Buffer | undefined; parts: Buffer[]; bytes: number } | undefined;

  add(f: Frame): HeaderBlock | 'more' | undefined {
    if (f.type === T_HEADERS) {
      const { priority, fragment } = headersFragment(f);
      this.current = { first: f, priority, parts: [fragment], bytes: fragment.length };
    } else if (f.type === T_CONTINUATION && this.current) {
      this.current.parts.push(f.payload);
      this.current.bytes += f.payload.length;
      if (this.current.bytes > MAX_HEADER_BLOCK) throw new Error('header block too large');
    } else {
      return undefined;
    }
    if (!(f.flags & F_END_HEADERS)) return 'more';
    const c = this.current!;
    this.current = undefined;
    return { first: c.first, priority: c.priority, block: Buffer.concat(c.parts) };
  }
}

/**
 * Rewrites the client's header blocks (see the file comment): the stream nghttp2 reads from in
 * place of the socket, for connections whose requests carry an invalid `:authority`.
 */
export class AuthorityRewriter extends Duplex {
  private readonly splitter = new FrameSplitter();
  private readonly decoder = new HeaderDecoder();
  private readonly blocks = new HeaderBlockCollector();
  private prefaceSeen = false;
  private prefaceBuf = Buffer.alloc(0);

  constructor(
    private readonly socket: Socket,
    private readonly replacement: string,
    /** Bytes already read from the socket (the sniffed start of the connection). */
    initial: Buffer,
    /** Our empty SETTINGS is not acknowledged yet: its ACK must not reach nghttp2. */
    private ackPending = false,
  ) {
    super();
    socket.on('data', (chunk: Buffer) => {
      if (!this.feed(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (e) => this.destroy(e));
    socket.on('close', () => this.destroy());
    if (initial.length) this.feed(initial);
  }

  /** Feeds client bytes; false when the reader wants no more for now. */
  private feed(chunk: Buffer): boolean {
    if (!this.prefaceSeen) {
      this.prefaceBuf = Buffer.concat([this.prefaceBuf, chunk]);
      if (this.prefaceBuf.length < PREFACE.length) return true;
      this.prefaceSeen = true;
      chunk = this.prefaceBuf.subarray(PREFACE.length);
      this.push(this.prefaceBuf.subarray(0, PREFACE.length));
    }
    let ok = true;
    let frames: Frame[];
    try {
      frames = this.splitter.push(chunk);
      for (const f of frames) ok = this.push(this.transform(f)) && ok;
    } catch (e) {
      // A header block that does not decode is a COMPRESSION_ERROR, fatal to the connection.
      this.socket.destroy();
      this.destroy(e as Error);
      return false;
    }
    return ok;
  }

  private transform(f: Frame): Buffer {
    if (f.type === T_SETTINGS && f.flags & F_ACK && this.ackPending) {
      this.ackPending = false;
      return Buffer.alloc(0);
    }
    const b = this.blocks.add(f);
    if (b === undefined) return f.raw;
    if (b === 'more') return Buffer.alloc(0);
    const fields = this.decoder.decode(b.block).map(([n, v]): [string, string] =>
      n === ':authority' && !isValidAuthority(v) ? [n, this.replacement] : [n, v],
    );
    return encodeHeaderFrames(b.first.stream, b.first.flags & F_END_STREAM, b.priority, encodeLiterals(fields));
  }

  override _read(): void {
    this.socket.resume();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.socket.write(chunk, cb);
  }
  override _final(cb: () => void): void {
    this.socket.end();
    cb();
  }
  override _destroy(err: Error | null, cb: (e: Error | null) => void): void {
    this.socket.destroy();
    cb(err);
  }
  // What nghttp2's session and grpc-js ask of their socket.
  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }
  get remotePort(): number | undefined {
    return this.socket.remotePort;
  }
  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }
  get localPort(): number | undefined {
    return this.socket.localPort;
  }
  setNoDelay(v?: boolean): this {
    this.socket.setNoDelay(v);
    return this;
  }
  setKeepAlive(enable?: boolean, delay?: number): this {
    this.socket.setKeepAlive(enable, delay);
    return this;
  }
  setTimeout(ms: number, cb?: () => void): this {
    this.socket.setTimeout(ms, cb);
    return this;
  }
}

/** A header block as HEADERS (+ CONTINUATION) frames no larger than every peer accepts. */
function encodeHeaderFrames(stream: number, endStream: number, priority: Buffer | undefined, block: Buffer): Buffer {
  const out: Buffer[] = [];
  const firstRoom = MAX_FRAME - (priority ? 5 : 0);
  const first = block.subarray(0, firstRoom);
  let rest = block.subarray(first.length);
  const flags = endStream | (priority ? F_PRIORITY : 0) | (rest.length === 0 ? F_END_HEADERS : 0);
  out.push(frame(T_HEADERS, flags, stream, priority ? Buffer.concat([priority, first]) : first));
  while (rest.length > 0) {
    const part = rest.subarray(0, MAX_FRAME);
    rest = rest.subarray(part.length);
    out.push(frame(T_CONTINUATION, rest.length === 0 ? F_END_HEADERS : 0, stream, part));
  }
  return Buffer.concat(out);
}

export type H2Route =
  /** Hand the socket itself to the native session (the bytes read were put back). */
  | { kind: 'native' }
  /** Hand the session this stream instead of the socket. */
  | { kind: 'rewrite'; stream: AuthorityRewriter };

/**
 * Watches the start of an HTTP/2 connection (`head`: the bytes already read, starting with the
 * preface) and decides how nghttp2 gets it (see the file comment). The socket is paused while
 * we decide; `decide` is called once.
 */
export function routeH2Connection(socket: Socket, head: Buffer, decide: (r: H2Route) => void): void {
  const replacement = `${socket.localAddress?.includes(':') ? `[${socket.localAddress}]` : socket.localAddress}:${socket.localPort}`;
  const splitter = new FrameSplitter();
  const decoder = new HeaderDecoder();
  let bytes = 0;
  let decided = false;
  /** We sent an empty SETTINGS: its ACK must be read and removed before nghttp2 takes over. */
  let ourSettingsSent = false;
  let ourSettingsAcked = false;
  /** The first header block seen, complete: its authority decides. */
  let firstAuthority: string | undefined | null = null;
  const blocks = new HeaderBlockCollector();
  /** Frames after the preface, as read (minus our ACK), kept to be put back. */
  const kept: Buffer[] = [];
  let prefaceDone = false;
  let prefaceBuf = Buffer.alloc(0);
  let prefaceCheck: NodeJS.Immediate | undefined;
  let decideTimer: NodeJS.Timeout | undefined;

  /** Our SETTINGS write has not completed yet (see `finish`). */
  let writing = false;
  let deferred: 'native' | 'rewrite' | undefined;
  const finish = (route: 'native' | 'rewrite'): void => {
    if (decided) return;
    if (writing) {
      // Node's TLS stream asserts (aborting the process) if the HTTP/2 session writes while a
      // write of ours is in flight: hand over only after it completed.
      deferred = route;
      return;
    }
    decided = true;
    clearImmediate(prefaceCheck);
    clearTimeout(decideTimer);
    socket.removeListener('data', onData);
    socket.removeListener('error', onError);
    socket.removeListener('close', onClose);
    socket.pause();
    // What nghttp2 must read: the preface and every frame read so far except our ACK.
    const pending = Buffer.concat([PREFACE, ...kept, splitter.rest()]);
    if (route === 'native') {
      socket.unshift(pending);
      decide({ kind: 'native' });
    } else {
      decide({ kind: 'rewrite', stream: new AuthorityRewriter(socket, replacement, pending, ourSettingsSent && !ourSettingsAcked) });
    }
  };
  const onFrames = (frames: Frame[]): void => {
    for (const f of frames) {
      if (f.type === T_SETTINGS && f.flags & F_ACK && ourSettingsSent && !ourSettingsAcked) {
        ourSettingsAcked = true;
        continue;
      }
      kept.push(f.raw);
      if (firstAuthority !== null) continue;
      const b = blocks.add(f);
      if (b !== undefined && b !== 'more') firstAuthority = decoder.decode(b.block).find(([n]) => n === ':authority')?.[1];
    }
  };

  const tryDecide = (): void => {
    if (firstAuthority === null) return;
    if (ourSettingsSent && !ourSettingsAcked) return;
    finish(firstAuthority === undefined || isValidAuthority(firstAuthority) ? 'native' : 'rewrite');
  };

  const onData = (chunk: Buffer): void => {
    bytes += chunk.length;
    try {
      consume(chunk);
    } catch {
      // Undecodable: let the rewriter (and nghttp2) fail the connection properly.
      finish('rewrite');
      return;
    }
    if (bytes > MAX_SNIFF_BYTES) finish('rewrite');
    else tryDecide();
  };
  const consume = (chunk: Buffer): void => {
    if (!prefaceDone) {
      prefaceBuf = Buffer.concat([prefaceBuf, chunk]);
      if (prefaceBuf.length < PREFACE.length) return;
      prefaceDone = true;
      chunk = prefaceBuf.subarray(PREFACE.length);
      armPrefaceCheck();
    }
    onFrames(splitter.push(chunk));
  };
  /** After this turn's reads: a client that has sent no request yet is waiting for our preface. */
  const armPrefaceCheck = (): void => {
    prefaceCheck = setImmediate(() => {
      if (decided || firstAuthority !== null) return;
      ourSettingsSent = true;
      writing = true;
      socket.write(EMPTY_SETTINGS, () => {
        writing = false;
        if (deferred) finish(deferred);
      });
      decideTimer = setTimeout(() => finish('rewrite'), DECIDE_AFTER_MS);
    });
  };
  const onError = (): void => {
    decided = true;
    clearImmediate(prefaceCheck);
    clearTimeout(decideTimer);
    socket.destroy();
  };
  const onClose = onError;

  socket.on('error', onError);
  socket.on('close', onClose);
  // The head was read by the caller: parse it, then keep reading.
  onData(head);
  if (!decided) {
    socket.on('data', onData);
    socket.resume();
  }
}
