// Evaluating dist/raftkv.cjs (the member's code as one CommonJS file, scripts/bundle.mjs) as Node
// evaluates a CommonJS file, but through a vm.Script of our own so that V8's code cache can be
// handed to it and taken from it. Used by ./raftkv.ts to start a member and by the build to
// make the cache, so that both compile exactly the same text.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

export interface EvaluatedBundle<T extends object> {
  exports: T;
  script: Script;
  /** What V8 made of the cache it was given. */
  codeCache: 'accepted' | 'rejected' | 'none';
}

/** Node's CommonJS wrapper around a file's text; the shebang line is not JavaScript inside it. */
function wrapCommonJs(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) { ${source.replace(/^#!.*/, '')}\n});`;
}

/** Evaluates the CommonJS file `file` (with `cachedData`, V8's code cache of it, if given). */
export function evaluateBundle<T extends object>(file: string, cachedData?: Buffer): EvaluatedBundle<T> {
  // latin1: the build writes the bundle in ASCII (scripts/bundle.mjs), where latin1 and UTF-8 read
  // alike and latin1 skips decoding (10 ms against 50 for 3.5 MB).
  const script = new Script(wrapCommonJs(readFileSync(file, 'latin1')), { filename: file, cachedData });
  const fn = script.runInThisContext() as (exports: object, require: NodeJS.Require, module: object, filename: string, dirname: string) => void;
  const module = { exports: {} as T };
  fn.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  return { exports: module.exports, script, codeCache: cachedData === undefined ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted' };
}

/** Where the code cache of bundle `file` is kept. */
export const codeCacheOf = (file: string): string => `${file}.cache`;
