// Benchmark output: a console table, a JSON file and an SVG chart (vega-lite) per experiment.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';

export const RESULTS_DIR = 'bench/results';

export type Row = Record<string, string | number>;

export function printTable(title: string, rows: Row[]): string {
  if (rows.length === 0) return '';
  const cols = Object.keys(rows[0]!);
  const fmt = (v: string | number | undefined): string => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : (v ?? ''));
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(width[i]!)).join(' | ')} |`;
  const out = [
    `### ${title}`,
    '',
    line(cols),
    `|${width.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map((r) => line(cols.map((c) => fmt(r[c])))),
    '',
  ].join('\n');
  console.log(out);
  return out;
}

export interface ChartSpec {
  title: string;
  mark: 'bar' | 'line' | 'point' | 'boxplot' | 'tick';
  x: { field: string; type: 'nominal' | 'ordinal' | 'quantitative'; title?: string };
  y: { field: string; type: 'quantitative'; title?: string; scale?: { type?: string } };
  color?: { field: string; type: 'nominal' };
  column?: { field: string; type: 'nominal' };
}

export async function writeResults(name: string, meta: Record<string, unknown>, rows: Row[], chart?: ChartSpec, markdown?: string): Promise<void> {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${name}.json`), `${JSON.stringify({ experiment: name, date: new Date().toISOString(), ...meta, rows }, null, 2)}\n`);
  if (markdown) writeFileSync(join(RESULTS_DIR, `${name}.md`), markdown);
  if (!chart) return;
  const encoding: Record<string, unknown> = { x: chart.x, y: chart.y };
  if (chart.color) encoding.color = chart.color;
  if (chart.column) encoding.column = chart.column;
  const spec = vl.compile({
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title: chart.title,
    width: 420,
    height: 260,
    data: { values: rows },
    mark: chart.mark === 'line' ? { type: 'line', point: true } : chart.mark,
    encoding,
  } as vl.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  writeFileSync(join(RESULTS_DIR, `${name}.svg`), svg);
}

/** CPU time (ms) used so far by processes, from /proc (utime + stime). */
export function cpuMs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* process gone */
    }
  }
  return ticks * 10; // USER_HZ = 100
}
