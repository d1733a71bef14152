// Types for the parts of hpack.js (CommonJS, untyped) that src/api/h2-authority.ts uses. The
// decompressor is driven one header field at a time (`_execute`) so that a header list can be
// cut off at a size limit while it is decoded (hpack.js 2.1.6 is the final release: stable).
declare module 'hpack.js' {
  interface DecodedField {
    name: string;
    value: string;
  }
  interface Decompressor {
    _decoder: { push(block: Buffer): void; isEmpty(): boolean };
    /** Decodes one representation; throws on malformed input. */
    _execute(): void;
    read(): DecodedField | null;
  }
  const hpack: { decompressor: { create(opts: { table: { maxSize: number } }): Decompressor } };
  export default hpack;
}
