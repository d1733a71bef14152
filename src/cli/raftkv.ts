#!/usr/bin/env node
// `raftkv [etcd flags]`: the member's command (./main.ts is what it runs).
//
// Why this file: loading the member's code — a few hundred modules of our own and of grpc-js,
// protobuf, pino, prom-client... — took ~0.35 s of a restart's main thread, more than half of
// etcd's whole restart with 100 k keys. `npm run build` therefore also writes the member's code
// as one CommonJS file, dist/raftkv.cjs (scripts/bundle.mjs, esbuild), and V8's code cache of
// it, dist/raftkv.cjs.cache (the bytecode of its modules' top-level code, made by evaluating
// them once at build time): one file read, and no compiling of what the cache holds.
//
// The bundle is used only when it is current: when it is missing or older than ./main.js (tsc
// rewrites every output, so a later `tsc` alone leaves it stale), the modules are imported as
// they are. V8 refuses a cache made by another V8 or under other flags (`--cpu-prof`, say); the
// bundle is then compiled as usual. The member's first log lines say which way it was loaded.

import { readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { codeCacheOf, evaluateBundle } from './bundle-loader.js';
import type { LoadedFrom } from './main.js';

interface MainModule {
  run(loadedFrom?: LoadedFrom): void;
}

const BUNDLE = fileURLToPath(new URL('../../raftkv.cjs', import.meta.url));
const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

/** The bundle's path when it is current (see above); RAFTKV_NO_BUNDLE=1 ignores it. */
function currentBundle(): string | undefined {
  if (process.env.RAFTKV_NO_BUNDLE === '1') return undefined;
  try {
    return statSync(BUNDLE).mtimeMs >= statSync(MAIN).mtimeMs ? BUNDLE : undefined;
  } catch {
    return undefined; // no bundle (a build by tsc alone)
  }
}

function readCodeCache(bundle: string): Buffer | undefined {
  try {
    return readFileSync(codeCacheOf(bundle));
  } catch {
    return undefined;
  }
}

const bundle = currentBundle();
if (bundle) {
  const { exports, codeCache } = evaluateBundle<MainModule>(bundle, readCodeCache(bundle));
  exports.run({ bundle, codeCache });
} else {
  ((await import('./main.js')) as MainModule).run();
}
