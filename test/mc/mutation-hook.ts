// A Node module-loader hook (module.register) that patches the compiled core's JS text as it
// is loaded, with the patches of one mutation (mutations.ts). Runs on the loader thread.

import { applyPatches, mutationByName, type Patch } from './mutations.js';

let patches: readonly Patch[] = [];

export function initialize(data: { mutation: string }): void {
  patches = mutationByName(data.mutation).patches;
}

interface LoadResult {
  format?: string;
  source?: string | ArrayBuffer | ArrayBufferView;
  shortCircuit?: boolean;
}

export async function load(url: string, context: object, nextLoad: (url: string, context: object) => Promise<LoadResult>): Promise<LoadResult> {
  const r = await nextLoad(url, context);
  const p = patches.find((x) => url.endsWith(`/src/raft/${x.file}`));
  if (!p || r.source === undefined) return r;
  const text = typeof r.source === 'string' ? r.source : Buffer.from(r.source as ArrayBuffer).toString('utf8');
  return { ...r, source: applyPatches(p.file, text, patches), shortCircuit: true };
}
