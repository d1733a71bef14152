// Writes dist/raftkv.cjs, the member's code (dist/src/cli/main.js and all it imports, our modules
// and node_modules alike) as one CommonJS file, and dist/raftkv.cjs.cache, V8's code cache of it.
// Run by `npm run build` after tsc; src/cli/raftkv.ts says why and when the bundle is used.
//
// Also dist/raftkv.cjs.callers: for the lines of the bundle, the source file and line they
// came from (from esbuild's source map, itself chained through tsc's), so that the log's
// `caller` still names "server/etcd-server.ts:113" and not a line of the bundle: parsing the
// source map itself takes ~0.5 s, far too long for a member's first log line (src/util/log.ts).
//
// `import.meta.url` has no meaning in a CommonJS file; each module's use of it (files found next
// to the module: protos, the dashboard's pages, the bcrypt worker, createRequire) becomes the URL
// of that module's own file under dist/, found from the bundle's directory at run time, so the
// bundle resolves the same paths as the modules it was made of, wherever dist/ is.
import { build } from 'esbuild';
import { readFile, writeFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');
const outfile = resolve(dist, 'raftkv.cjs');

const importMetaUrl = {
  name: 'import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.[cm]?js$/ }, async (args) => {
      const src = await readFile(args.path, 'utf8');
      if (!src.includes('import.meta.url')) return undefined;
      const rel = relative(dist, args.path).split('\\').join('/');
      return { contents: src.replaceAll('import.meta.url', `__raftkvModuleUrl(${JSON.stringify(rel)})`), loader: 'js', resolveDir: dirname(args.path) };
    });
  },
};

await build({
  entryPoints: [resolve(dist, 'src/cli/main.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  plugins: [importMetaUrl],
  // A native (N-API) module, loaded from node_modules when used (src/cli/sd-notify.ts).
  external: ['node-unix-socket-linux-x64-gnu'],
  banner: { js: "const __raftkvModuleUrl = (p) => require('node:url').pathToFileURL(require('node:path').join(__dirname, p)).href;" },
});

// ASCII only, so that the launcher reads it as latin1: 10 ms against 50 ms for decoding 3.5 MB of
// UTF-8 at every start. esbuild escapes non-ASCII text in strings but leaves it in comments and
// regular expressions; a \uXXXX escape means the same character in both (and in identifiers and
// cooked template text), so each remaining UTF-16 unit is written as one.
const bundleText = (await readFile(outfile, 'utf8')).replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
if (/[^\x00-\x7f]/.test(bundleText)) throw new Error('bundle: not ASCII after escaping');
await writeFile(outfile, bundleText);

// The caller table, as runs: [first bundle line, source index, its line] wherever the mapping
// stops going on line by line (source -1: nothing maps). Binary, read without parsing: one JSON
// length (u32), the source names as JSON, then the runs as int32 triples (little-endian).
{
  const map = new SourceMap(JSON.parse(await readFile(`${outfile}.map`, 'utf8')));
  // The lines as written above (escaping changes columns, never lines).
  const lines = bundleText.split('\n');
  const files = [];
  const fileIndex = new Map();
  const runs = [];
  let last = { file: -2, line: 0 };
  for (let i = 0; i < lines.length; i++) {
    const column = lines[i].search(/\S/);
    const e = column < 0 ? {} : map.findEntry(i, column);
    let file = -1;
    let line = 0;
    if (e.originalSource) {
      // zap's short caller: the file's directory and name.
      const short = e.originalSource.split('/').slice(-2).join('/');
      if (!fileIndex.has(short)) fileIndex.set(short, files.push(short) - 1);
      file = fileIndex.get(short);
      line = e.originalLine + 1;
    }
    // 1-based bundle lines, as stack traces number them.
    if (file !== last.file || (file >= 0 && line !== last.line + 1)) runs.push(i + 1, file, line);
    last = { file, line };
  }
  const names = Buffer.from(JSON.stringify(files));
  const head = Buffer.alloc(4);
  head.writeUInt32LE(names.length);
  const pad = Buffer.alloc((4 - ((4 + names.length) % 4)) % 4, 0x20); // the runs start 4-aligned
  await writeFile(`${outfile}.callers`, Buffer.concat([head, names, pad, Buffer.from(new Int32Array(runs).buffer)]));
}

// The code cache: evaluate the bundle once (defining things only: main.js starts nothing until
// run() is called), load the member's modules the way a start does, then take V8's bytecode.
const { evaluateBundle, codeCacheOf } = await import(resolve(dist, 'src/cli/bundle-loader.js'));
const { exports, script } = evaluateBundle(outfile);
await exports.loadMemberCode();
await writeFile(codeCacheOf(outfile), script.createCachedData());
process.exit(0); // a module's timer or handle must not keep the build waiting
