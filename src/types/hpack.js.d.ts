// Types for the parts of hpack.js (CommonJS, untyped) that src/api/h2-authority.ts uses.
declare module 'hpack.js' {
  import type { EventEmitter } from 'node:events';
  interface DecodedField {
    name: string;
    value: string;
  }
  interface Decompressor extends EventEmitter {
    write(block: Buffer): boolean;
    execute(): void;
    read(): DecodedField | null;
  }
  const hpack: { decompressor: { create(opts: { table: { size: number } }): Decompressor } };
  export default hpack;
}
