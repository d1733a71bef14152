// A minimal datadriven test runner in the style of cockroachdb/datadriven (used by
// etcd-io/raft): a file is a sequence of
//
//   command arg1 arg2 key=value ...
//   ----
//   expected output
//   (blank line)
//
// Each command runs against an environment and its output is compared with the expected
// block. With REWRITE=1 the file is rewritten with the actual outputs (review the diff!).

import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';

export interface Command {
  line: number;
  cmd: string;
  args: string[];
  kv: Map<string, string>;
  raw: string;
}

interface Block {
  command: Command;
  expected: string;
  comments: string[];
}

function parse(text: string, file: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  let comments: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.trim() === '' || l.startsWith('#')) {
      comments.push(l);
      i++;
      continue;
    }
    const raw = l.trim();
    const parts = raw.split(/\s+/);
    const args: string[] = [];
    const kv = new Map<string, string>();
    for (const p of parts.slice(1)) {
      const eq = p.indexOf('=');
      if (eq > 0) kv.set(p.slice(0, eq), p.slice(eq + 1));
      else args.push(p);
    }
    const cmd: Command = { line: i + 1, cmd: parts[0]!, args, kv, raw };
    i++;
    if (lines[i] !== '----') throw new Error(`${file}:${i + 1}: expected ---- after command`);
    i++;
    const out: string[] = [];
    while (i < lines.length && lines[i] !== '') out.push(lines[i++]!);
    blocks.push({ command: cmd, expected: out.join('\n'), comments });
    comments = [];
  }
  return blocks;
}

/** Runs every command of `file` through `run`; compares or (REWRITE=1) rewrites the outputs. */
export function runFile(file: string, run: (c: Command) => string): void {
  const blocks = parse(readFileSync(file, 'utf8'), file);
  const rewrite = process.env.REWRITE === '1';
  const out: string[] = [];
  for (const b of blocks) {
    let actual: string;
    try {
      actual = run(b.command).trimEnd() || 'ok';
    } catch (e) {
      // A harness error (bad command, impossible step) names the line, like a mismatch does.
      throw new Error(`${file}:${b.command.line}: ${b.command.raw}: ${(e as Error).message}`, { cause: e });
    }
    if (rewrite) {
      out.push(...b.comments.filter((l) => l.startsWith('#')), b.command.raw, '----', actual, '');
    } else {
      assert.equal(actual, b.expected, `${file}:${b.command.line}: ${b.command.raw}`);
    }
  }
  if (rewrite) writeFileSync(file, `${out.join('\n').replace(/\n+$/, '')}\n`);
}
