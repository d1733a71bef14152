// JSON as Go's encoding/json reads it, for the gateway's request bodies: etcd's gateway answers
// malformed JSON with Go's own error texts ("unexpected EOF", "invalid character 'x' looking for
// beginning of value", ...), so a body is scanned with Go's grammar and messages. Values keep
// their source text, because jsonpb decides on it: int64 fields parse the digits themselves
// (beyond 2^53, "5.0" refused), and a quoted number is re-read as JSON without its quotes.
//
// Pure functions on strings; no I/O.

export type GoJson =
  | { kind: 'object'; fields: Map<string, GoJson>; raw: string }
  | { kind: 'array'; items: GoJson[]; raw: string }
  | { kind: 'string'; value: string; raw: string }
  | { kind: 'number'; raw: string }
  | { kind: 'bool'; value: boolean; raw: string }
  | { kind: 'null'; raw: string };

/** A syntax error with Go's message; `eof`: the input ended inside a value. */
export class GoJsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly eof: boolean,
  ) {
    super(message);
  }
}

/** Go's quoteChar: how its scanner names an offending input byte. */
function quoteChar(s: string, i: number): string {
  const c = s.charCodeAt(i);
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  if (c < 0x20 || c === 0x7f) {
    const named: Record<number, string> = { 7: '\\a', 8: '\\b', 9: '\\t', 10: '\\n', 11: '\\v', 12: '\\f', 13: '\\r' };
    return `'${named[c] ?? `\\x${c.toString(16).padStart(2, '0')}`}'`;
  }
  if (c < 0x80) return `'${s[i]}'`;
  // Go names the first byte of the UTF-8 sequence, read as a Latin-1 character.
  const first = Buffer.from(String.fromCodePoint(s.codePointAt(i)!), 'utf8')[0]!;
  return `'${String.fromCharCode(first)}'`;
}

const isSpace = (c: number): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isDigit = (c: number): boolean => c >= 0x30 && c <= 0x39;
const isHex = (c: number): boolean => isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  private eof(): never {
    throw new GoJsonSyntaxError('unexpected EOF', true);
  }

  private bad(context: string): never {
    throw new GoJsonSyntaxError(`invalid character ${quoteChar(this.s, this.pos)} ${context}`, false);
  }

  skipSpace(): void {
    while (this.pos < this.s.length && isSpace(this.s.charCodeAt(this.pos))) this.pos++;
  }

  value(): GoJson {
    this.skipSpace();
    if (this.pos >= this.s.length) this.eof();
    const start = this.pos;
    const c = this.s.charCodeAt(this.pos);
    switch (c) {
      case 0x7b /* { */: {
        this.pos++;
        const fields = new Map<string, GoJson>();
        this.skipSpace();
        if (this.pos >= this.s.length) this.eof();
        if (this.s.charCodeAt(this.pos) === 0x7d) {
          this.pos++;
          return { kind: 'object', fields, raw: this.s.slice(start, this.pos) };
        }
        for (;;) {
          this.skipSpace();
          if (this.pos >= this.s.length) this.eof();
          if (this.s.charCodeAt(this.pos) !== 0x22) this.bad('looking for beginning of object key string');
          const key = this.string().value;
          this.skipSpace();
          if (this.pos >= this.s.length) this.eof();
          if (this.s.charCodeAt(this.pos) !== 0x3a) this.bad('after object key');
          this.pos++;
          fields.set(key, this.value()); // a repeated key: the last one wins, as in Go
          this.skipSpace();
          if (this.pos >= this.s.length) this.eof();
          const d = this.s.charCodeAt(this.pos);
          if (d === 0x2c) {
            this.pos++;
            continue;
          }
          if (d === 0x7d) {
            this.pos++;
            return { kind: 'object', fields, raw: this.s.slice(start, this.pos) };
          }
          this.bad('after object key:value pair');
        }
      }
      case 0x5b /* [ */: {
        this.pos++;
        const items: GoJson[] = [];
        this.skipSpace();
        if (this.pos >= this.s.length) this.eof();
        if (this.s.charCodeAt(this.pos) === 0x5d) {
          this.pos++;
          return { kind: 'array', items, raw: this.s.slice(start, this.pos) };
        }
        for (;;) {
          items.push(this.value());
          this.skipSpace();
          if (this.pos >= this.s.length) this.eof();
          const d = this.s.charCodeAt(this.pos);
          if (d === 0x2c) {
            this.pos++;
            continue;
          }
          if (d === 0x5d) {
            this.pos++;
            return { kind: 'array', items, raw: this.s.slice(start, this.pos) };
          }
          this.bad('after array element');
        }
      }
      case 0x22:
        return this.string();
      case 0x74 /* t */:
        return { kind: 'bool', value: true, raw: this.literal('true') };
      case 0x66 /* f */:
        return { kind: 'bool', value: false, raw: this.literal('false') };
      case 0x6e /* n */:
        return { kind: 'null', raw: this.literal('null') };
      default:
        if (c === 0x2d || isDigit(c)) return this.number();
        this.bad('looking for beginning of value');
    }
  }

  private literal(word: string): string {
    const start = this.pos;
    for (let k = 1; k < word.length; k++) {
      this.pos = start + k;
      if (this.pos >= this.s.length) this.eof();
      if (this.s[this.pos] !== word[k]) this.bad(`in literal ${word} (expecting '${word[k]}')`);
    }
    this.pos = start + word.length;
    return word;
  }

  private number(): GoJson {
    const s = this.s;
    const start = this.pos;
    const need = (ok: (c: number) => boolean): void => {
      if (this.pos >= s.length) this.eof();
      if (!ok(s.charCodeAt(this.pos))) this.bad('in numeric literal');
    };
    if (s.charCodeAt(this.pos) === 0x2d) {
      this.pos++;
      need(isDigit);
    }
    if (s.charCodeAt(this.pos) === 0x30) this.pos++;
    else while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    if (s.charCodeAt(this.pos) === 0x2e) {
      this.pos++;
      need(isDigit);
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    }
    const e = s.charCodeAt(this.pos);
    if (e === 0x65 || e === 0x45) {
      this.pos++;
      const sign = s.charCodeAt(this.pos);
      if (sign === 0x2b || sign === 0x2d) this.pos++;
      need(isDigit);
      while (this.pos < s.length && isDigit(s.charCodeAt(this.pos))) this.pos++;
    }
    return { kind: 'number', raw: s.slice(start, this.pos) };
  }

  private string(): { kind: 'string'; value: string; raw: string } {
    const s = this.s;
    const start = this.pos;
    this.pos++;
    // Fast path: no escapes and no control characters up to the closing quote.
    const close = s.indexOf('"', this.pos);
    if (close >= 0) {
      const plain = s.slice(this.pos, close);
      // eslint-disable-next-line no-control-regex
      if (!/[\\\u0000-\u001f]/.test(plain)) {
        this.pos = close + 1;
        return { kind: 'string', value: plain, raw: s.slice(start, this.pos) };
      }
    }
    let out = '';
    let run = this.pos;
    for (;;) {
      if (this.pos >= s.length) this.eof();
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) {
        out += s.slice(run, this.pos);
        this.pos++;
        return { kind: 'string', value: out, raw: s.slice(start, this.pos) };
      }
      if (c < 0x20) this.bad('in string literal');
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += s.slice(run, this.pos);
      this.pos++;
      if (this.pos >= s.length) this.eof();
      const e = s[this.pos]!;
      const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
      if (e in simple) {
        out += simple[e];
        this.pos++;
      } else if (e === 'u') {
        this.pos++;
        for (let k = 0; k < 4; k++) {
          if (this.pos + k >= s.length) {
            this.pos += k;
            this.eof();
          }
          if (!isHex(s.charCodeAt(this.pos + k))) {
            this.pos += k;
            this.bad('in \\u hexadecimal character escape');
          }
        }
        out += String.fromCharCode(parseInt(s.slice(this.pos, this.pos + 4), 16));
        this.pos += 4;
      } else {
        this.bad('in string escape code');
      }
      run = this.pos;
    }
  }
}

/**
 * The next JSON value of a body (Go's json.Decoder.Decode): undefined when only whitespace
 * is left (io.EOF: an empty request). What follows the value is not looked at.
 */
export function decodeNext(text: string, from: number): { value: GoJson; end: number } | undefined {
  const p = new Parser(text);
  p.pos = from;
  p.skipSpace();
  if (p.pos >= text.length) return undefined;
  const value = p.value();
  return { value, end: p.pos };
}

/**
 * The whole of `text` as one value (Go's json.Unmarshal): its errors are Unmarshal's ("unexpected
 * end of JSON input", "... after top-level value").
 */
export function unmarshal(text: string): GoJson {
  const p = new Parser(text);
  let value: GoJson;
  try {
    value = p.value();
  } catch (e) {
    if (e instanceof GoJsonSyntaxError && e.eof) throw new GoJsonSyntaxError('unexpected end of JSON input', true);
    throw e;
  }
  p.skipSpace();
  if (p.pos < text.length) {
    throw new GoJsonSyntaxError(`invalid character ${quoteChar(text, p.pos)} after top-level value`, false);
  }
  return value;
}
