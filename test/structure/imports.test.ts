// The shape of src/: no import cycles, and the wire formats kept at the edges. Reads the
// TypeScript sources (not dist/) with the compiler's parser, so every import counts: static,
// type-only, re-exports and dynamic import().
//
// Rules:
// - no cycle among the modules of src/ (as `madge --circular --extensions ts src` reports);
// - src/api/ (the client API) imports nothing from src/storage/ or src/transport/;
// - src/transport/ (the peer transport) imports no generated code that is, or depends on,
//   etcd's client API (src/gen/etcd/): peer messages are in proto/raftkv/peer.proto;
// - src/kv/ knows no transport: it does not import @grpc/grpc-js (errors carry our own codes,
//   mapped to gRPC statuses in src/api/grpc-status.ts).

import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root: the nearest directory above this file with a package.json and src/. */
function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error('repository root not found');
    d = up;
  }
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Every module specifier a source file imports or re-exports (incl. type-only and dynamic). */
function importsOf(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      out.push(n.moduleSpecifier.text);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      out.push(n.moduleReference.expression.text);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
      out.push(n.arguments[0].text);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push(n.argument.literal.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The import graph of src/: module path relative to the root (posix) -> the src modules it imports; and its packages. */
function srcGraph(root: string): { edges: Map<string, string[]>; packages: Map<string, string[]> } {
  const edges = new Map<string, string[]>();
  const packages = new Map<string, string[]>();
  const rel = (abs: string): string => relative(root, abs).split(sep).join('/');
  for (const file of walk(join(root, 'src'))) {
    const from = rel(file);
    const deps: string[] = [];
    const pkgs: string[] = [];
    for (const spec of importsOf(file, readFileSync(file, 'utf8'))) {
      if (!spec.startsWith('.')) {
        pkgs.push(spec);
        continue;
      }
      // NodeNext: './x.js' names the source './x.ts'.
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      const candidates = [target, target.endsWith('.ts') ? target : `${target}.ts`, join(target, 'index.ts')];
      const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile());
      assert.ok(hit, `${from}: cannot resolve import '${spec}'`);
      deps.push(rel(hit));
    }
    edges.set(from, [...new Set(deps)]);
    packages.set(from, [...new Set(pkgs)]);
  }
  return { edges, packages };
}

/** The cycles of a directed graph: one per strongly connected component with a cycle, as a path. */
function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  // Tarjan's strongly connected components, iterative (no recursion limit on deep chains).
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const sccs: string[][] = [];
  for (const start of edges.keys()) {
    if (index.has(start)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: start, i: 0 }];
    index.set(start, next);
    low.set(start, next++);
    stack.push(start);
    onStack.add(start);
    while (work.length > 0) {
      const top = work[work.length - 1]!;
      const ws = edges.get(top.v) ?? [];
      if (top.i < ws.length) {
        const w = ws[top.i++]!;
        if (!index.has(w)) {
          index.set(w, next);
          low.set(w, next++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!));
        }
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1]!.v;
        low.set(parent, Math.min(low.get(parent)!, low.get(top.v)!));
      }
      if (low.get(top.v) === index.get(top.v)) {
        const scc: string[] = [];
        let w: string;
        do {
          w = stack.pop()!;
          onStack.delete(w);
          scc.push(w);
        } while (w !== top.v);
        const selfLoop = (edges.get(top.v) ?? []).includes(top.v);
        if (scc.length > 1 || selfLoop) sccs.push(scc);
      }
    }
  }
  // Name one concrete cycle in each component (a shortest path back to its first module).
  return sccs.map((scc) => {
    const members = new Set(scc);
    const first = [...scc].sort()[0]!;
    const prev = new Map<string, string>();
    const queue = [first];
    const seen = new Set([first]);
    while (queue.length > 0) {
      const v = queue.shift()!;
      for (const w of edges.get(v) ?? []) {
        if (!members.has(w)) continue;
        if (w === first) {
          const path = [v];
          while (path[0] !== first) path.unshift(prev.get(path[0]!)!);
          return [...path, first];
        }
        if (!seen.has(w)) {
          seen.add(w);
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    return [...scc, scc[0]!];
  });
}

/** Every src module reachable from `from` (not including it unless on a cycle). */
function reachable(edges: ReadonlyMap<string, readonly string[]>, from: string): Set<string> {
  const seen = new Set<string>();
  const todo = [...(edges.get(from) ?? [])];
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    todo.push(...(edges.get(v) ?? []));
  }
  return seen;
}

const root = repoRoot();
const { edges, packages } = srcGraph(root);
const under = (dir: string) => (m: string): boolean => m.startsWith(`src/${dir}/`);

describe('the import structure of src/', () => {
  it('the checker sees every kind of import and finds cycles', () => {
    const text = [
      "import a from './a.js';",
      "import type { B } from './b.js';",
      "export { c } from './c.js';",
      "export * from './d.js';",
      "const e = await import('./e.js');",
      "type F = import('./f.js').F;",
      "import './g.js';",
      "// import h from './h.js';",
      "const s = \"import i from './i.js'\";",
    ].join('\n');
    assert.deepEqual(importsOf('x.ts', text).sort(), ['./a.js', './b.js', './c.js', './d.js', './e.js', './f.js', './g.js']);
    const g = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a', 'd']],
      ['d', []],
      ['e', ['e']],
      ['f', ['d']],
    ]);
    assert.deepEqual(
      findCycles(g).map((c) => c.join(' -> ')).sort(),
      ['a -> b -> c -> a', 'e -> e'],
    );
    assert.deepEqual(findCycles(new Map([['a', ['b']], ['b', []]])), []);
  });

  it('reads the whole of src/', () => {
    assert.ok(edges.size > 50, `only ${edges.size} modules found under ${root}/src`);
    for (const m of ['src/kv/mvcc.ts', 'src/api/grpc-util.ts', 'src/transport/codec.ts', 'src/server/snapshot-image.ts']) assert.ok(edges.has(m), m);
  });

  it('has no import cycles', () => {
    const cycles = findCycles(edges);
    assert.deepEqual(cycles.map((c) => c.join(' -> ')), [], 'import cycles in src/');
  });

  it('keeps the client API (src/api/) off storage and the peer transport', () => {
    const bad: string[] = [];
    for (const [m, deps] of edges) {
      if (!under('api')(m)) continue;
      for (const d of deps) if (under('storage')(d) || under('transport')(d)) bad.push(`${m} -> ${d}`);
    }
    assert.deepEqual(bad, []);
  });

  it('keeps the peer transport (src/transport/) off generated etcd API code', () => {
    const isEtcdGen = under('gen/etcd');
    const bad: string[] = [];
    for (const [m, deps] of edges) {
      if (!under('transport')(m)) continue;
      for (const d of deps) {
        if (isEtcdGen(d)) bad.push(`${m} -> ${d}`);
        else if (under('gen')(d)) {
          // A generated module that pulls in etcd's API (as raftpb.proto once did) counts too.
          const via = [...reachable(edges, d)].filter(isEtcdGen);
          if (via.length > 0) bad.push(`${m} -> ${d} -> ${via.join(', ')}`);
        }
      }
    }
    assert.deepEqual(bad, []);
  });

  it('keeps gRPC out of the KV layer (src/kv/)', () => {
    const bad = [...packages].filter(([m, pkgs]) => under('kv')(m) && pkgs.some((p) => p.startsWith('@grpc/'))).map(([m]) => m);
    assert.deepEqual(bad, []);
  });
});
