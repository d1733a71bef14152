// The hand-written peer stream codec (src/transport/peer-wire.ts) against the generated one:
// the same bytes for the same batch, round trips, anything a conforming encoder writes is read,
// out-of-range numbers and broken frames are refused, and entries are encoded once.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { MessageBatch } from '../../src/gen/raftkv/peer.js';
import { type ConfState, type Entry, type Message, MessageType, newMessage } from '../../src/raft/index.js';
import { messageFromPb, messageToPb } from '../../src/transport/codec.js';
import { GrpcTransport, type PeerTrafficObserver } from '../../src/transport/grpc-transport.js';
import { ENTRY_CACHE_SLOTS, cachedEntryBytes, decodeBatch, encodeBatch, peerWireStats } from '../../src/transport/peer-wire.js';
import { freePorts } from '../support/ports.js';
import { eventually } from '../support/proc-cluster.js';

// ------------------------------------------------------------------ arbitraries

const U64_MAX = 2n ** 64n - 1n;
const id = fc.oneof(
  fc.constant(0n),
  fc.bigInt({ min: 1n, max: 9n }),
  fc.bigInt({ min: 0n, max: U64_MAX }),
  fc.bigInt({ min: 2n ** 63n, max: U64_MAX }),
  fc.constantFrom(U64_MAX, 2n ** 63n, 2n ** 32n - 1n, 2n ** 32n, 127n, 128n),
);
const num = fc.oneof(
  fc.constant(0),
  fc.integer({ min: 0, max: 300 }),
  fc.integer({ min: 0, max: 2 ** 32 + 5 }),
  fc.maxSafeNat(),
  fc.constantFrom(Number.MAX_SAFE_INTEGER, 2 ** 31, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 35, 2 ** 49 - 1, 2 ** 49),
);
const u32 = fc.oneof(fc.integer({ min: 0, max: 18 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }));
// Data as the core has it: a Buffer, or a plain Uint8Array (possibly a view into a larger one).
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u)),
  fc.uint8Array({ minLength: 4, maxLength: 60 }).map((u) => u.subarray(2, u.length - 1)),
);
const entry: fc.Arbitrary<Entry> = fc.record({ term: num, index: num, type: fc.oneof(fc.constantFrom(0, 1, 2), u32), data: bytes });
const ids = fc.array(id, { maxLength: 5 });
const confState: fc.Arbitrary<ConfState> = fc.record({ voters: ids, learners: ids, votersOutgoing: ids, learnersNext: ids, autoLeave: fc.boolean() });
const message: fc.Arbitrary<Message> = fc.record(
  {
    type: fc.oneof(fc.integer({ min: 0, max: 18 }), u32),
    to: id,
    from: id,
    term: num,
    logTerm: num,
    index: num,
    entries: fc.array(entry, { maxLength: 6 }),
    commit: num,
    snapshot: fc.record({ data: fc.constant(new Uint8Array(0)), metadata: fc.record({ confState, index: num, term: num }) }),
    reject: fc.boolean(),
    rejectHint: num,
    context: bytes,
  },
  { requiredKeys: ['type', 'to', 'from', 'term', 'logTerm', 'index', 'entries', 'commit', 'reject', 'rejectHint'] },
);
const batch = fc.array(message, { maxLength: 5 });

// ------------------------------------------------------------------ helpers

const generated = (msgs: readonly Message[]): Buffer => Buffer.from(MessageBatch.encode({ messages: msgs.map(messageToPb) }).finish());
/** Whether two byte ranges are the same memory (not merely equal bytes). */
const sameMemory = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && a.buffer === b.buffer && a.byteOffset === b.byteOffset && a.length === b.length;
const hex = (u: Uint8Array): string => Buffer.from(u.buffer, u.byteOffset, u.byteLength).toString('hex');

/** A message as the wire sees it: bytes as hex, an empty context as none, snapshot data not carried. */
function norm(m: Message): unknown {
  return {
    type: m.type,
    to: m.to,
    from: m.from,
    term: m.term,
    logTerm: m.logTerm,
    index: m.index,
    entries: m.entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: hex(e.data) })),
    commit: m.commit,
    snapshot: m.snapshot && { index: m.snapshot.metadata.index, term: m.snapshot.metadata.term, confState: { ...m.snapshot.metadata.confState } },
    reject: m.reject,
    rejectHint: m.rejectHint,
    context: m.context && m.context.length > 0 ? hex(m.context) : undefined,
  };
}

/** A tiny seeded PRNG, so that the "other conforming encoder" below is reproducible by fast-check. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * Another conforming encoder: fields in any order, defaults sometimes written out, unknown
 * fields of every wire type (groups too) in between, ConfState ids packed or not (or split
 * over several packed runs), and over-long varints for small uint32s.
 */
function scrambled(msgs: readonly Message[], seed: number): Buffer {
  const r = rng(seed);
  const w = new BinaryWriter();
  const unknown = (wr: BinaryWriter): void => {
    if (r() >= 0.3) return;
    const f = 100 + Math.floor(r() * 1000);
    switch (Math.floor(r() * 5)) {
      case 0:
        wr.tag(f, WireType.Varint).uint64(BigInt(Math.floor(r() * 2 ** 32)) << 20n);
        break;
      case 1:
        wr.tag(f, WireType.Bit64).fixed64(7n);
        break;
      case 2:
        wr.tag(f, WireType.LengthDelimited).bytes(new Uint8Array([1, 2, 3, 0xff]));
        break;
      case 3:
        wr.tag(f, WireType.Bit32).fixed32(9);
        break;
      case 4:
        // A group, with a nested group and a field inside.
        wr.tag(f, WireType.StartGroup).tag(f + 1, WireType.StartGroup).tag(1, WireType.Varint).uint32(5).tag(f + 1, WireType.EndGroup).tag(f, WireType.EndGroup);
        break;
    }
  };
  /** Writes the items in a random order, keeping the relative order of those with the same key. */
  const shuffled = (wr: BinaryWriter, items: Array<[string, (wr: BinaryWriter) => void]>): void => {
    const order = items.map((_, i) => [r(), i] as const).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
    const byKey = new Map<string, number[]>();
    items.forEach(([k], i) => byKey.set(k, [...(byKey.get(k) ?? []), i]));
    const next = new Map<string, number>();
    for (const i of order) {
      const k = items[i]![0];
      const n = next.get(k) ?? 0;
      next.set(k, n + 1);
      unknown(wr);
      items[byKey.get(k)![n]!]![1](wr);
    }
    unknown(wr);
  };
  const u64 = (f: number, v: number | bigint, items: Array<[string, (wr: BinaryWriter) => void]>): void => {
    if (v !== 0 && v !== 0n) items.push([`f${f}`, (wr) => wr.tag(f, WireType.Varint).uint64(v)]);
    else if (r() < 0.3) items.push([`f${f}`, (wr) => wr.tag(f, WireType.Varint).uint64(0)]);
  };
  const u32f = (f: number, v: number, items: Array<[string, (wr: BinaryWriter) => void]>): void => {
    // An int64 writer writes a uint32 with more bytes when it is "negative" as an int32; a
    // conforming reader takes the low 32 bits.
    if (v !== 0 || r() < 0.3) items.push([`f${f}`, (wr) => wr.tag(f, WireType.Varint).uint64(r() < 0.5 ? v : BigInt(v) | (BigInt(Math.floor(r() * 8)) << 32n))]);
  };
  const idList = (f: number, list: bigint[], items: Array<[string, (wr: BinaryWriter) => void]>): void => {
    const mode = Math.floor(r() * 3);
    if (mode === 0) for (const v of list) items.push([`f${f}`, (wr) => wr.tag(f, WireType.Varint).uint64(v)]);
    else if (mode === 1 && list.length > 0)
      items.push([`f${f}`, (wr) => {
        wr.tag(f, WireType.LengthDelimited).fork();
        for (const v of list) wr.uint64(v);
        wr.join();
      }]);
    else
      for (let i = 0; i < list.length; i += 2)
        items.push([`f${f}`, (wr) => {
          wr.tag(f, WireType.LengthDelimited).fork();
          for (const v of list.slice(i, i + 2)) wr.uint64(v);
          wr.join();
        }]);
  };
  const bytesF = (f: number, v: Uint8Array | undefined, items: Array<[string, (wr: BinaryWriter) => void]>): void => {
    if ((v && v.length > 0) || r() < 0.3) items.push([`f${f}`, (wr) => wr.tag(f, WireType.LengthDelimited).bytes(v ?? new Uint8Array(0))]);
  };
  const sub = (f: number, key: string, items: Array<[string, (wr: BinaryWriter) => void]>, body: (wr: BinaryWriter) => void): void => {
    items.push([key, (wr) => {
      wr.tag(f, WireType.LengthDelimited).fork();
      body(wr);
      wr.join();
    }]);
  };
  for (const m of msgs) {
    unknown(w);
    w.tag(1, WireType.LengthDelimited).fork();
    const items: Array<[string, (wr: BinaryWriter) => void]> = [];
    u32f(1, m.type, items);
    u64(2, m.to, items);
    u64(3, m.from, items);
    u64(4, m.term, items);
    u64(5, m.logTerm, items);
    u64(6, m.index, items);
    for (const e of m.entries)
      sub(7, 'entries', items, (wr) => {
        const es: Array<[string, (wr: BinaryWriter) => void]> = [];
        u64(1, e.term, es);
        u64(2, e.index, es);
        u32f(3, e.type, es);
        bytesF(4, e.data, es);
        shuffled(wr, es);
      });
    u64(8, m.commit, items);
    const s = m.snapshot;
    if (s)
      sub(9, 'snapshot', items, (wr) => {
        const ss: Array<[string, (wr: BinaryWriter) => void]> = [];
        const cs = s.metadata.confState;
        sub(1, 'cs', ss, (wr2) => {
          const cis: Array<[string, (wr: BinaryWriter) => void]> = [];
          idList(1, cs.voters, cis);
          idList(2, cs.learners, cis);
          idList(3, cs.votersOutgoing, cis);
          idList(4, cs.learnersNext, cis);
          if (cs.autoLeave || r() < 0.3) cis.push(['f5', (wr3) => wr3.tag(5, WireType.Varint).bool(cs.autoLeave)]);
          shuffled(wr2, cis);
        });
        u64(2, s.metadata.index, ss);
        u64(3, s.metadata.term, ss);
        shuffled(wr, ss);
      });
    if (m.reject || r() < 0.3) items.push(['f10', (wr) => wr.tag(10, WireType.Varint).bool(m.reject)]);
    u64(11, m.rejectHint, items);
    bytesF(12, m.context, items);
    shuffled(w, items);
    w.join();
  }
  unknown(w);
  return Buffer.from(w.finish());
}

// ------------------------------------------------------------------ properties

describe('peer-wire: the MessageBatch codec', () => {
  it('(a) encodes exactly the bytes of the generated encoder (via messageToPb)', () => {
    fc.assert(
      fc.property(batch, (msgs) => {
        assert.equal(encodeBatch(msgs).toString('hex'), generated(msgs).toString('hex'));
        // Again, now from the entry cache.
        assert.equal(encodeBatch(msgs).toString('hex'), generated(msgs).toString('hex'));
      }),
      { numRuns: 500 },
    );
  });

  it('(b) decode(encode(x)) is x', () => {
    fc.assert(
      fc.property(batch, (msgs) => {
        const frame = encodeBatch(msgs);
        const back = decodeBatch(frame);
        assert.deepStrictEqual(back.map(norm), msgs.map(norm));
        for (const m of back) {
          assert.equal(typeof m.term, 'number');
          assert.equal(typeof m.to, 'bigint');
        }
        // What this encoder wrote is canonical: every entry keeps its received bytes (a view of
        // the frame), but for one whose cache slot a later entry of the frame took.
        const all = back.flatMap((m) => m.entries);
        all.forEach((e, i) => {
          const slotTakenLater = all.slice(i + 1).some((x) => (x.index & (ENTRY_CACHE_SLOTS - 1)) === (e.index & (ENTRY_CACHE_SLOTS - 1)));
          if (!slotTakenLater) assert.equal(cachedEntryBytes(e)?.buffer, frame.buffer);
        });
      }),
      { numRuns: 500 },
    );
  });

  it('(c) decodes the generated encoder output, as messageFromPb does', () => {
    fc.assert(
      fc.property(batch, (msgs) => {
        const frame = generated(msgs);
        const ours = decodeBatch(frame);
        const theirs = MessageBatch.decode(frame).messages.map((p) => messageFromPb(p));
        assert.deepStrictEqual(ours.map(norm), theirs.map(norm));
        assert.deepStrictEqual(ours.map(norm), msgs.map(norm));
      }),
      { numRuns: 300 },
    );
  });

  it('(c) decodes any conforming encoding (order, defaults, unknown fields, packed or not), and re-encodes it canonically', () => {
    fc.assert(
      fc.property(batch, fc.integer(), (msgs, seed) => {
        const frame = scrambled(msgs, seed);
        // The generated decoder agrees that this is the same batch.
        assert.deepStrictEqual(MessageBatch.decode(frame).messages.map((p) => norm(messageFromPb(p))), msgs.map(norm));
        const ours = decodeBatch(frame);
        assert.deepStrictEqual(ours.map(norm), msgs.map(norm));
        // Entries kept with their received bytes re-encode to the canonical bytes all the same.
        assert.equal(encodeBatch(ours).toString('hex'), generated(msgs).toString('hex'));
      }),
      { numRuns: 500 },
    );
  });

  it('(d) refuses a number above 2^53-1, in any number field', () => {
    const big = 2n ** 53n;
    const base = messageToPb(newMessage(MessageType.MsgApp, { to: 1n, from: 2n, term: 3, entries: [{ term: 3, index: 4, type: 0, data: Buffer.from('x') }] }));
    const cases = {
      term: { ...base, term: big },
      logTerm: { ...base, logTerm: big },
      index: { ...base, index: big },
      commit: { ...base, commit: big },
      rejectHint: { ...base, rejectHint: U64_MAX },
      entryTerm: { ...base, entries: [{ ...base.entries[0]!, term: big }] },
      entryIndex: { ...base, entries: [{ ...base.entries[0]!, index: big + 12345n }] },
      snapshotIndex: { ...base, snapshot: { index: big, term: 1n } },
    };
    for (const [what, pb] of Object.entries(cases)) {
      const frame = Buffer.from(MessageBatch.encode({ messages: [pb] }).finish());
      assert.throws(() => decodeBatch(frame), (e: unknown) => e instanceof Error && /out of range/.test(e.message), what);
      // With a handler, that message alone is dropped.
      const good = Buffer.from(MessageBatch.encode({ messages: [base, pb, base] }).finish());
      const bad: Error[] = [];
      const got = decodeBatch(good, (e) => bad.push(e));
      assert.equal(got.length, 2, what);
      assert.equal(bad.length, 1, what);
    }
    // 2^53-1 itself is fine.
    const max = Buffer.from(MessageBatch.encode({ messages: [{ ...base, term: 2n ** 53n - 1n }] }).finish());
    assert.equal(decodeBatch(max)[0]!.term, Number.MAX_SAFE_INTEGER);
    // And the encoder refuses what messageToPb's BigInt() would.
    for (const term of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => encodeBatch([newMessage(MessageType.MsgHeartbeat, { term })]), Error, String(term));
    }
    assert.throws(() => encodeBatch([newMessage(MessageType.MsgHeartbeat, { to: 2n ** 64n })]), Error);
    assert.throws(() => encodeBatch([newMessage(MessageType.MsgHeartbeat, { to: -1n })]), Error);
  });

  it('(e) encodes an entry once, for every follower and every retransmission', () => {
    const entries: Entry[] = Array.from({ length: 64 }, (_, i) => ({ term: 7, index: 100 + i, type: 0, data: Buffer.alloc(300, i) }));
    const to = (f: bigint): Message => newMessage(MessageType.MsgApp, { to: f, from: 1n, term: 7, index: 99, logTerm: 7, commit: 90, entries });
    const before = peerWireStats.entriesEncoded;
    const f1 = encodeBatch([to(2n)]);
    assert.equal(peerWireStats.entriesEncoded - before, 64);
    const cached = entries.map(cachedEntryBytes);
    const f2 = encodeBatch([to(3n)]);
    const f1again = encodeBatch([to(2n)]);
    assert.equal(peerWireStats.entriesEncoded - before, 64, 'not encoded again');
    entries.forEach((e, i) => assert.ok(sameMemory(cachedEntryBytes(e), cached[i]), 'the same bytes, not new ones'));
    // They are kept in the first frame that carried them: no copy of their own.
    assert.equal(cached[0]!.buffer, f1.buffer);
    assert.deepEqual(f1again, f1);
    assert.equal(f2.toString('hex'), generated([to(3n)]).toString('hex'));

    // A received entry keeps its bytes (a view of the frame): sending it on encodes nothing.
    const got = decodeBatch(f1)[0]!;
    const e0 = got.entries[0]!;
    assert.equal(e0.data.buffer, f1.buffer, 'data is a view of the frame');
    assert.equal(cachedEntryBytes(e0)!.buffer, f1.buffer, 'its bytes are a view of the frame');
    const mark = peerWireStats.entriesEncoded;
    assert.deepEqual(encodeBatch([{ ...got, to: 3n }]), f2);
    assert.equal(peerWireStats.entriesEncoded, mark);

    // The leader stamps term and index on proposed entries (raft.appendEntry), possibly ones that
    // came over the wire in a MsgProp: their old bytes must not be sent.
    const prop = decodeBatch(encodeBatch([newMessage(MessageType.MsgProp, { to: 1n, from: 2n, entries: [{ term: 0, index: 0, type: 0, data: Buffer.from('v') }] })]))[0]!;
    const pe = prop.entries[0]!;
    pe.term = 9;
    pe.index = 1234;
    const app = newMessage(MessageType.MsgApp, { to: 2n, from: 1n, term: 9, entries: [pe] });
    assert.equal(encodeBatch([app]).toString('hex'), generated([app]).toString('hex'));
    pe.data = Buffer.from('other');
    assert.equal(encodeBatch([app]).toString('hex'), generated([app]).toString('hex'));
  });

  it('(f) a truncated frame throws, except where it ends between messages', () => {
    fc.assert(
      fc.property(fc.array(message, { minLength: 1, maxLength: 4 }), (msgs) => {
        const frame = encodeBatch(msgs);
        const ends = new Set<number>();
        let at = 0;
        ends.add(0);
        for (const m of msgs) {
          at += encodeBatch([m]).length;
          ends.add(at);
        }
        for (let cut = 0; cut < frame.length; cut++) {
          const part = Buffer.from(frame.subarray(0, cut)); // a copy: nothing after it to read by mistake
          if (ends.has(cut)) {
            const k = [...ends].indexOf(cut);
            assert.deepStrictEqual(decodeBatch(part).map(norm), msgs.slice(0, k).map(norm));
          } else {
            assert.throws(() => decodeBatch(part), Error, `cut at ${cut} of ${frame.length}`);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('(f) garbage throws an Error or decodes to well-formed messages, and never hangs', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (junk) => {
        let msgs: Message[];
        try {
          msgs = decodeBatch(junk);
        } catch (e) {
          assert.ok(e instanceof Error);
          return;
        }
        for (const m of msgs) {
          for (const n of [m.term, m.logTerm, m.index, m.commit, m.rejectHint, ...m.entries.flatMap((e) => [e.term, e.index])]) assert.ok(Number.isSafeInteger(n) && n >= 0);
          assert.ok(m.to >= 0n && m.to <= U64_MAX && m.from >= 0n && m.from <= U64_MAX);
          assert.ok(m.type >= 0 && m.type < 2 ** 32);
        }
      }),
      { numRuns: 2000 },
    );
    const cases: Record<string, number[]> = {
      'varint longer than 10 bytes': [0x0a, 0x0b, 0x20, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
      'length past the end': [0x0a, 0x05, 0x08, 0x01],
      'entry length past the message': [0x0a, 0x04, 0x3a, 0x05, 0x08, 0x01],
      'wire type 6': [0x0e],
      'wire type 7 inside a message': [0x0a, 0x01, 0x0f],
      'field number 0': [0x00],
      'unmatched end group': [0x0c],
      'unterminated group': [0x0b, 0x08, 0x01],
      'group closed by another field': [0x0b, 0x14],
      'fixed64 cut short': [0x09, 1, 2, 3],
      'tag cut short': [0x80],
    };
    for (const [what, b] of Object.entries(cases)) {
      assert.throws(() => decodeBatch(Buffer.from(b)), Error, what);
      assert.throws(() => decodeBatch(new Uint8Array(b)), Error, what);
    }
  });

  it('reads ids beyond the id cache bound, and 64-bit ids exactly', () => {
    const msgs: Message[] = [];
    for (let i = 0; i < 3000; i++) msgs.push(newMessage(MessageType.MsgHeartbeat, { to: (BigInt(i) << 40n) | 0xabcdefn, from: U64_MAX - BigInt(i) }));
    const back = decodeBatch(encodeBatch(msgs));
    assert.deepStrictEqual(back.map((m) => [m.to, m.from]), msgs.map((m) => [m.to, m.from]));
    assert.equal(encodeBatch(msgs).toString('hex'), generated(msgs).toString('hex'));
  });
});

// ------------------------------------------------------------------ over gRPC

describe('peer-wire over the gRPC transport', () => {
  it('a MsgApp reaches two followers with 64-bit ids; bytes sent and received are counted alike', async () => {
    const ports = await freePorts(2);
    const quiet = { debug() {}, info() {}, warn() {}, error() {} };
    const leaderId = 2n ** 63n + 1n;
    const followerIds = [U64_MAX, 0x8000_0000_0000_0042n];
    const traffic = (): PeerTrafficObserver & { sentBytes: number; receivedBytes: number; active: string[] } => ({
      sentBytes: 0,
      receivedBytes: 0,
      active: [],
      sent(_to, n) {
        this.sentBytes += n;
      },
      received(_from, n) {
        this.receivedBytes += n;
      },
      sendFailed() {},
      roundTrip() {},
      peerActive(to, up) {
        this.active.push(`${to.toString(16)} ${up ? 'up' : 'down'}`);
      },
      receiveFailed() {},
      snapshotSend() {},
      snapshotReceive() {},
    });
    const got: Message[][] = [[], []];
    const servers: grpc.Server[] = [];
    const followers: GrpcTransport[] = [];
    const followerTraffic = [traffic(), traffic()];
    for (let i = 0; i < 2; i++) {
      const t = new GrpcTransport({
        id: followerIds[i]!,
        clusterId: 0x77n,
        logger: quiet,
        handler: { step: (m) => got[i]!.push(m), reportUnreachable() {}, reportSnapshot() {}, isMember: (x) => x === leaderId || followerIds.includes(x) },
      });
      t.observer = followerTraffic[i];
      const g = new grpc.Server();
      const [svc, impl] = t.service();
      g.addService(svc, impl);
      await new Promise<void>((r, j) => g.bindAsync(`127.0.0.1:${ports[i]}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
      servers.push(g);
      followers.push(t);
    }
    const leader = new GrpcTransport({ id: leaderId, clusterId: 0x77n, logger: quiet, handler: { step() {}, reportUnreachable() {}, reportSnapshot() {} } });
    const leaderTraffic = traffic();
    leader.observer = leaderTraffic;
    followerIds.forEach((f, i) => leader.addPeer(f, [`http://127.0.0.1:${ports[i]}`]));
    try {
      const entries: Entry[] = Array.from({ length: 64 }, (_, i) => ({ term: 5, index: 11 + i, type: 0, data: Buffer.alloc(300, i) }));
      const before = peerWireStats.entriesEncoded;
      leader.send(
        followerIds.flatMap((f) => [
          newMessage(MessageType.MsgApp, { to: f, from: leaderId, term: 5, index: 10, logTerm: 5, commit: 10, entries }),
          newMessage(MessageType.MsgHeartbeat, { to: f, from: leaderId, term: 5, commit: 10, context: Buffer.from('rid') }),
        ]),
      );
      await eventually(async () => assert.ok(got.every((g) => g.length === 2)), 5000);
      assert.equal(peerWireStats.entriesEncoded - before, 64, 'one encoding for both followers');
      for (let i = 0; i < 2; i++) {
        const [app, hb] = got[i]!;
        assert.equal(app!.to, followerIds[i]);
        assert.equal(app!.from, leaderId);
        assert.equal(app!.entries.length, 64);
        assert.deepEqual(app!.entries.map((e) => [e.term, e.index, e.data.length, e.data[0]]), entries.map((e) => [e.term, e.index, 300, e.data[0]]));
        assert.equal(Buffer.from(hb!.context!).toString(), 'rid');
      }
      const received = followerTraffic[0]!.receivedBytes + followerTraffic[1]!.receivedBytes;
      assert.ok(received > 2 * 64 * 300, `received ${received}`);
      assert.equal(leaderTraffic.sentBytes, received);
      // Each peer became active once its channel connected (etcd_network_active_peers).
      await eventually(async () => assert.deepEqual([...leaderTraffic.active].sort(), followerIds.map((f) => `${f.toString(16)} up`).sort()), 5000);
    } finally {
      leader.close();
      for (const f of followers) f.close();
      for (const g of servers) g.forceShutdown();
    }
  });

  it('a frame that is not a MessageBatch fails the call; the receiver goes on', async () => {
    const [port] = await freePorts(1);
    const warnings: string[] = [];
    const got: Message[] = [];
    const t = new GrpcTransport({
      id: 1n,
      clusterId: 0x77n,
      logger: { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error: (m: string) => warnings.push(m) },
      handler: { step: (m) => got.push(m), reportUnreachable() {}, reportSnapshot() {} },
    });
    const g = new grpc.Server();
    const [svc, impl] = t.service();
    g.addService(svc, impl);
    await new Promise<void>((r, j) => g.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? j(e) : r())));
    const raw = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set('raftkv-cluster-id', '77');
      md.set('raftkv-from', '2');
      const call = (frames: Buffer[]): Promise<grpc.ServiceError | null> =>
        new Promise((resolve) => {
          const s = raw.makeClientStreamRequest('/raftkv.RaftPeer/Stream', (b: Buffer) => b, () => ({}), md, (err: grpc.ServiceError | null) => resolve(err));
          s.on('error', () => {});
          for (const f of frames) s.write(f);
          s.end();
        });
      const hb = newMessage(MessageType.MsgHeartbeat, { to: 1n, from: 2n, term: 3 });
      const err = await call([Buffer.from([0x0a, 0x7f, 0x01])]);
      assert.equal(err?.code, grpc.status.INTERNAL);
      assert.ok(warnings.some((w) => /malformed frame/.test(w)), warnings.join('\n'));
      // An out-of-range number drops that message only.
      const bad = Buffer.from(MessageBatch.encode({ messages: [{ ...messageToPb(hb), term: 2n ** 60n }] }).finish());
      assert.equal(await call([bad, encodeBatch([hb])]), null);
      assert.equal(got.length, 1);
      assert.equal(got[0]!.term, 3);
      assert.ok(warnings.some((w) => /malformed message/.test(w)), warnings.join('\n'));
    } finally {
      raw.close();
      t.close();
      g.forceShutdown();
    }
  });
});
