// etcd 3.4's gateway JSON (grpc-gateway's JSONPb with OrigName, i.e. golang/protobuf's jsonpb)
// to and from the objects ts-proto's generated code uses (camelCase properties, bigint for 64-bit
// integers, Buffer for bytes, numbers for enums), driven by the message schema (./schema.ts).
//
// Reading, as jsonpb: a field by its proto name or its lowerCamel JSON name (the latter wins
// when both are given), unknown fields ignored, null as absent, 64-bit integers as numbers or
// quoted numbers, bytes as padded standard base64, enums by name or number; the first bad
// field (in jsonpb's order) fails the request with Go's error text.
// Writing, as jsonpb: proto names in declaration order, zero values and empty lists left out
// (a oneof member is written even when zero), 64-bit integers quoted, Go's string escaping.

import { GoBase64Error, decodeGoBase64 } from './go-base64.js';
import { type GoJson, unmarshal } from './go-json.js';
import type { FieldSchema, MessageSchema, ScalarKind } from './schema.js';
import { SliceBudget } from '../../util/yield.js';

/** A request body jsonpb refuses: the message is Go's (the gateway answers InvalidArgument). */
export class JsonpbError extends Error {}

const GO_TYPE: Record<ScalarKind, string> = {
  int64: 'int64',
  uint64: 'uint64',
  int32: 'int32',
  uint32: 'uint32',
  double: 'float64',
  float: 'float32',
  bool: 'bool',
  string: 'string',
  bytes: '[]uint8',
};

/** encoding/json's UnmarshalTypeError. */
function typeError(value: string, goType: string): JsonpbError {
  return new JsonpbError(`json: cannot unmarshal ${value} into Go value of type ${goType}`);
}

/** What encoding/json calls a JSON value's kind in its errors (object, array, string, number, bool). */
function kindName(v: GoJson): string {
  return v.kind;
}

const INT_RANGE: Record<'int64' | 'uint64' | 'int32' | 'uint32' | 'uint8', [bigint, bigint]> = {
  uint8: [0n, 255n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
};

/** An integer as encoding/json stores a number into an integer type (strconv.ParseInt/ParseUint). */
function integer(v: GoJson, kind: keyof typeof INT_RANGE, goType: string): bigint {
  if (v.kind !== 'number') throw typeError(kindName(v), goType);
  const [lo, hi] = INT_RANGE[kind];
  if (!/^-?\d+$/.test(v.raw)) throw typeError(`number ${v.raw}`, goType);
  const n = BigInt(v.raw);
  if (n < lo || n > hi) throw typeError(`number ${v.raw}`, goType);
  return n;
}

/** jsonpb's trimQuote: a quoted number is read as JSON without its quotes (escapes and all). */
function unquoted(v: GoJson): GoJson {
  if (v.kind !== 'string') return v;
  try {
    return unmarshal(v.raw.slice(1, -1));
  } catch (e) {
    throw new JsonpbError((e as Error).message);
  }
}

function scalar(f: FieldSchema, kind: ScalarKind, v: GoJson): unknown {
  const goType = GO_TYPE[kind];
  switch (kind) {
    case 'bool':
      if (v.kind !== 'bool') throw typeError(kindName(v), goType);
      return v.value;
    case 'string':
      if (v.kind !== 'string') throw typeError(kindName(v), goType);
      return v.value;
    case 'bytes':
      // encoding/json also reads a []byte from an array of numbers, one per byte.
      if (v.kind === 'array') return Buffer.from(v.items.map((b) => (b.kind === 'null' ? 0 : Number(integer(b, 'uint8', 'uint8')))));
      if (v.kind !== 'string') throw typeError(kindName(v), goType);
      try {
        return decodeGoBase64(v.value);
      } catch (e) {
        if (e instanceof GoBase64Error) throw new JsonpbError(e.message);
        throw e;
      }
    case 'int64':
    case 'uint64':
      return integer(unquoted(v), kind, goType);
    case 'int32':
    case 'uint32':
      return Number(integer(unquoted(v), kind, goType));
    case 'double':
    case 'float': {
      const u = unquoted(v);
      if (u.kind !== 'number') throw typeError(kindName(u), goType);
      return Number(u.raw);
    }
  }
  throw new JsonpbError(`unsupported field ${f.orig}`);
}

function singular(f: FieldSchema, v: GoJson): unknown {
  // null (an element of a list here; a null field is skipped before) is the zero value.
  if (f.kind === 'message') return decodeMessage(f.message!, v) ?? emptyMessage(f.message!);
  if (v.kind === 'null') return zeroOf(f);
  if (f.kind === 'enum') {
    const e = f.enumSchema!;
    if (v.raw.startsWith('"')) {
      // jsonpb looks the name up as written between the quotes (no unescaping).
      const name = v.raw.slice(1, -1);
      const n = e.byName.get(name);
      if (n === undefined) throw new JsonpbError(`unknown value ${JSON.stringify(name)} for enum ${e.goName}`);
      return n;
    }
    return Number(integer(v, 'int32', e.goName));
  }
  return scalar(f, f.kind, v);
}

function zeroOf(f: FieldSchema): unknown {
  switch (f.kind) {
    case 'int64':
    case 'uint64':
      return 0n;
    case 'int32':
    case 'uint32':
    case 'double':
    case 'float':
    case 'enum':
      return 0;
    case 'bool':
      return false;
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'message':
      return undefined;
  }
}

/** ts-proto's empty message: every field at its zero value, messages and oneof members unset. */
export function emptyMessage(m: MessageSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of m.fields) out[f.ts] = f.repeated ? [] : f.oneof ? undefined : zeroOf(f);
  return out;
}

/**
 * A JSON value as the message `m` (jsonpb's Unmarshal): undefined for null (top level: an empty
 * request, as jsonpb treats it).
 */
export function decodeMessage(m: MessageSchema, v: GoJson): Record<string, unknown> | undefined {
  if (v.kind === 'null') return undefined;
  if (v.kind !== 'object') throw typeError(kindName(v), 'map[string]json.RawMessage');
  const out = emptyMessage(m);
  for (const f of m.readOrder) {
    const value = v.fields.get(f.json) ?? v.fields.get(f.orig);
    if (value === undefined || value.kind === 'null') continue;
    if (f.repeated) {
      if (value.kind !== 'array') throw typeError(kindName(value), '[]json.RawMessage');
      out[f.ts] = value.items.map((item) => singular(f, item));
    } else {
      out[f.ts] = singular(f, value);
    }
  }
  keepLastOneofMember(m, v, out);
  return out;
}

/**
 * A oneof given more than one member (hand-made JSON): the member last in the text stays, as
 * the last on the wire does in protobuf. jsonpb sets them in Go's map order, at random, so
 * etcd's gateway keeps any one; here a request means one thing on every call. Each of etcd's
 * messages has one oneof at most, so a message's oneof members are one group.
 */
function keepLastOneofMember(m: MessageSchema, v: Extract<GoJson, { kind: 'object' }>, out: Record<string, unknown>): void {
  let set = 0;
  for (const f of m.readOrder) if (f.oneof && out[f.ts] !== undefined) set++;
  if (set < 2) return;
  const keys = [...v.fields.keys()];
  const at = (f: FieldSchema): number => Math.max(keys.indexOf(f.json), keys.indexOf(f.orig));
  let last: FieldSchema | undefined;
  for (const f of m.readOrder) if (f.oneof && out[f.ts] !== undefined && (!last || at(f) > at(last))) last = f;
  for (const f of m.readOrder) if (f.oneof && f !== last) out[f.ts] = undefined;
}

const ESCAPES: Record<string, string> = { '"': '\\"', '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** A JSON string as Go's encoding/json writes it (HTML-safe: <, >, & and U+2028/9 escaped). */
export function goString(s: string): string {
  // eslint-disable-next-line no-control-regex
  if (!/[\u0000-\u001f"\\<>&\u2028\u2029\ud800-\udfff]/.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    const code = s.charCodeAt(i);
    if (ESCAPES[c]) out += ESCAPES[c];
    else if (code < 0x20 || c === '<' || c === '>' || c === '&' || code === 0x2028 || code === 0x2029) {
      out += `\\u${code.toString(16).padStart(4, '0')}`;
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) {
      out += c + s[i + 1]!;
      i++;
    } else if (code >= 0xd800 && code <= 0xdfff) out += '\ufffd'; // invalid UTF-8 becomes U+FFFD in Go
    else out += c;
  }
  return `${out}"`;
}

function isZero(f: FieldSchema, v: unknown): boolean {
  if (v === undefined || v === null) return true;
  switch (f.kind) {
    case 'message':
      return false;
    case 'bytes':
      return (v as Uint8Array).length === 0;
    default:
      // 0n, 0, false, '' (bigint and number zero alike).
      return v === 0n || v === 0 || v === false || v === '';
  }
}

/** Whether jsonpb leaves a field out: an empty list, an unset oneof member, a zero value. */
function omitted(f: FieldSchema, v: unknown): boolean {
  if (f.repeated) return !Array.isArray(v) || v.length === 0;
  if (f.oneof) return v === undefined || v === null; // a oneof member is written even when zero
  return isZero(f, v);
}

function encodeSingular(f: FieldSchema, v: unknown): string {
  switch (f.kind) {
    case 'message':
      return encodeMessage(f.message!, v as object);
    case 'int64':
    case 'uint64':
      return `"${String(v)}"`;
    case 'int32':
    case 'uint32':
    case 'double':
    case 'float':
      return String(v);
    case 'bool':
      return v ? 'true' : 'false';
    case 'string':
      return goString(v as string);
    case 'bytes':
      return `"${Buffer.from(v as Uint8Array).toString('base64')}"`;
    case 'enum': {
      const name = f.enumSchema!.byNumber.get(v as number);
      return name === undefined ? String(v) : `"${name}"`;
    }
  }
}

/**
 * encodeMessage's text built in slices, for a large answer (a Range of millions of key-values,
 * or of a few values of a MiB: seconds, or hundreds of ms, of base64 and string building in one
 * turn otherwise): a yield (`pause`) whenever the elements of repeated fields written since the
 * last one reach the budget (util/yield.ts). The text is encodeMessage's, in pieces of UTF-8.
 */
export async function encodeMessageInSlices(m: MessageSchema, message: object | undefined, pause: () => Promise<void>): Promise<Buffer[]> {
  const out = new SlicedText();
  await writeMessage(m, message, out, new SliceBudget(2000), pause);
  return out.done();
}

/** Text in pieces: each slice joined and made UTF-8 at its pause (the work spread with the rest). */
class SlicedText {
  private readonly slices: Buffer[] = [];
  private cur: string[] = [];
  /** Characters written so far. */
  length = 0;

  push(s: string): void {
    this.cur.push(s);
    this.length += s.length;
  }

  /** Ends the current slice. */
  cut(): void {
    if (this.cur.length > 0) this.slices.push(Buffer.from(this.cur.join(''), 'utf8'));
    this.cur = [];
  }

  done(): Buffer[] {
    this.cut();
    return this.slices;
  }
}

async function writeMessage(m: MessageSchema, message: object | undefined, out: SlicedText, budget: SliceBudget, pause: () => Promise<void>): Promise<void> {
  if (!message) return out.push('{}');
  const obj = message as Record<string, unknown>;
  let first = true;
  out.push('{');
  for (const f of m.fields) {
    const v = obj[f.ts];
    if (omitted(f, v)) continue;
    out.push(`${first ? '' : ','}"${f.orig}":`);
    first = false;
    if (!f.repeated) {
      if (f.kind === 'message') await writeMessage(f.message!, v as object, out, budget, pause);
      else out.push(encodeSingular(f, v));
      continue;
    }
    out.push('[');
    const list = v as unknown[];
    for (let i = 0; i < list.length; i++) {
      if (i > 0) out.push(',');
      const before = out.length;
      if (f.kind === 'message') await writeMessage(f.message!, list[i] as object, out, budget, pause);
      else out.push(encodeSingular(f, list[i]));
      if (budget.spend(out.length - before)) {
        out.cut();
        await pause();
      }
    }
    out.push(']');
  }
  out.push('}');
}

/** A ts-proto message object as etcd's gateway writes it (jsonpb, OrigName, no defaults). */
export function encodeMessage(m: MessageSchema, message: object | undefined): string {
  if (!message) return '{}';
  const obj = message as Record<string, unknown>;
  let out = '';
  for (const f of m.fields) {
    const v = obj[f.ts];
    if (omitted(f, v)) continue;
    const text = f.repeated ? `[${(v as unknown[]).map((x) => encodeSingular(f, x)).join(',')}]` : encodeSingular(f, v);
    out += `${out ? ',' : ''}"${f.orig}":${text}`;
  }
  return `{${out}}`;
}
