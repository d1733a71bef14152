// Base64 as Go's encoding/json reads a []byte field (base64.StdEncoding: the standard alphabet,
// padding required, CR and LF ignored), with Go's error: "illegal base64 data at input byte N",
// N counted in bytes of the UTF-8 input exactly where Go's decoder stops. Node's own decoder
// accepts anything (it skips what it does not know), so etcd's 400 for a malformed key would
// become a request for another key.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const DECODE = new Int16Array(256).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

const PAD = 0x3d;
const isNewline = (b: number): boolean => b === 0x0a || b === 0x0d;

export class GoBase64Error extends Error {
  constructor(readonly offset: number) {
    super(`illegal base64 data at input byte ${offset}`);
  }
}

/** Go's base64.StdEncoding.DecodeString (its decodeQuantum, quantum by quantum). */
export function decodeGoBase64(text: string): Buffer {
  const src = Buffer.from(text, 'utf8');
  // Fast path: plain canonical input (what every client sends) is what Node decodes the same way.
  if (src.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0;
    if (pad === 0 || src.length >= 4) return Buffer.from(text, 'base64');
  }
  const out: number[] = [];
  let si = 0;
  while (si < src.length) {
    const dbuf = [0, 0, 0, 0];
    let dlen = 4;
    let j = 0;
    let done = false;
    for (; j < 4; j++) {
      if (si === src.length) {
        if (j === 0) return Buffer.from(out);
        // Padding is required: a short last quantum is an error where it began.
        throw new GoBase64Error(si - j);
      }
      const b = src[si]!;
      si++;
      const v = DECODE[b]!;
      if (v >= 0) {
        dbuf[j] = v;
        continue;
      }
      if (isNewline(b)) {
        j--;
        continue;
      }
      if (b !== PAD) throw new GoBase64Error(si - 1);
      // Padding: the end of the data.
      if (j === 0 || j === 1) throw new GoBase64Error(si - 1);
      if (j === 2) {
        while (si < src.length && isNewline(src[si]!)) si++;
        if (si === src.length) throw new GoBase64Error(src.length);
        if (src[si] !== PAD) throw new GoBase64Error(si - 1);
        si++;
      }
      while (si < src.length && isNewline(src[si]!)) si++;
      if (si < src.length) throw new GoBase64Error(si);
      dlen = j;
      done = true;
      break;
    }
    const val = (dbuf[0]! << 18) | (dbuf[1]! << 12) | (dbuf[2]! << 6) | dbuf[3]!;
    const bytes = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff];
    for (let k = 0; k < dlen - 1; k++) out.push(bytes[k]!);
    if (done) break;
    // Trailing newlines after the last full quantum end the input (Go: j === 0 at the end).
  }
  return Buffer.from(out);
}
