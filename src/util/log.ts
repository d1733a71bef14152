// The process logger: JSON lines laid out as etcd's zap logger writes them (etcd 3.4
// pkg/logutil DefaultZapLoggerConfig), so log pipelines built for etcd parse raftkv's lines:
//
//   {"level":"info","ts":"2026-12-05T22:48:11.389Z","caller":"server/raft-node.ts:120","msg":"...","name":"n1"}
//
// `level` is zap's lower-case word, `ts` zap's ISO8601 encoder (local time, milliseconds, zone
// as Z or ±hhmm), `caller` the calling file's last directory, file and line (zap's short
// caller), then `msg`, then the member's fields. pino writes the lines; `caller` and `msg` are
// passed as the first fields of the logged object because pino puts its own message last.

import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { Logger } from '../raft/logger.js';

/** The levels the process logs at (the core's Logger interface). */
export type Level = 'debug' | 'info' | 'warn' | 'error';

/** etcd's --log-level values (zap's levels). */
export const ZAP_LEVELS = ['debug', 'info', 'warn', 'error', 'dpanic', 'panic', 'fatal'] as const;
export type ZapLevel = (typeof ZAP_LEVELS)[number];

export interface ProcessLogger extends Logger {
  flush(): void;
  /** Changes the level from now on (etcd 3.4's PUT /config/local/log). */
  setLevel?(level: ZapLevel): void;
}

/** A field value as zap would encode it. */
export type LogFieldValue = string | number | boolean | string[];

export interface ZapLogger extends ProcessLogger {
  /** Adds fields to every later line (e.g. the member id once it is known). */
  addFields(fields: Record<string, LogFieldValue>): void;
  /** One line with extra fields (etcd's `lg.Info(msg, zap.String(...))`). */
  log(level: Level, msg: string, fields?: Record<string, LogFieldValue>): void;
}

export interface LoggerOptions {
  /** --log-level (zap's levels). */
  level: ZapLevel;
  /**
   * --log-outputs: 'default' or 'stderr' (stderr), 'stdout', or file paths (opened for append,
   * as zap opens them). Several outputs get every line.
   */
  outputs: string[];
  /** Fields on every line (the member's name). */
  fields?: Record<string, LogFieldValue>;
}

/** zapcore.ISO8601TimeEncoder: 2006-01-02T15:04:05.000Z0700, in local time. */
export function zapTimestamp(d: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  const off = -d.getTimezoneOffset();
  const zone = off === 0 ? 'Z' : `${off > 0 ? '+' : '-'}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return (
    `${p(d.getFullYear(), 4)}-${p(d.getMonth() + 1)}-${p(d.getDate())}T` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}${zone}`
  );
}

/**
 * zap's short caller of the function that called `below`: "dir/file.js:line". The compiled
 * file and line: mapping them back to the TypeScript source would cost a source-map lookup per
 * line logged. In the bundle (dist/raftkv.cjs, src/cli/raftkv.ts) the build's caller table
 * gives the source's file and line instead of the bundle's.
 */
function callerOf(below: Function): string {
  const prepare = Error.prepareStackTrace;
  const limit = Error.stackTraceLimit;
  try {
    Error.prepareStackTrace = (_e, sites) => sites;
    Error.stackTraceLimit = 1;
    const holder: { stack?: NodeJS.CallSite[] } = {};
    Error.captureStackTrace(holder, below);
    const site = holder.stack?.[0];
    const file = site?.getFileName();
    if (!site || !file) return 'unknown';
    const line = site.getLineNumber() ?? 0;
    const mapped = callerTableOf(file)?.(line);
    if (mapped) return mapped;
    const parts = file.replace(/^file:\/\//, '').split('/');
    return `${parts.slice(-2).join('/')}:${line}`;
  } finally {
    Error.prepareStackTrace = prepare;
    Error.stackTraceLimit = limit;
  }
}

/** Each bundled file's caller table as a lookup (undefined: the file has none), read once. */
const callerTables = new Map<string, ((line: number) => string | undefined) | undefined>();

/**
 * `${file}.callers` (written by scripts/bundle.mjs): runs of `file`'s lines and the source lines
 * they came from — a u32 length, that many bytes of JSON (the source names), padding to 4, then
 * int32 triples [first line, source index or -1, source line]. Read without parsing (a JSON
 * table of every line took 25 ms at the first log line).
 */
function callerTableOf(file: string): ((line: number) => string | undefined) | undefined {
  if (!file.endsWith('.cjs')) return undefined;
  if (callerTables.has(file)) return callerTables.get(file);
  let lookup: ((line: number) => string | undefined) | undefined;
  try {
    const b = readFileSync(`${file}.callers`);
    const namesEnd = 4 + b.readUInt32LE(0);
    const files = JSON.parse(b.toString('utf8', 4, namesEnd)) as string[];
    const from = namesEnd + ((4 - (namesEnd % 4)) % 4);
    // A copy: a Buffer's bytes may start at an offset an Int32Array cannot view from.
    const runs = new Int32Array(b.buffer.slice(b.byteOffset + from, b.byteOffset + b.length));
    lookup = (line) => {
      // The last run starting at or before `line`.
      let lo = 0;
      let hi = runs.length / 3 - 1;
      if (hi < 0 || line < runs[0]!) return undefined;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if (runs[3 * mid]! <= line) lo = mid;
        else hi = mid - 1;
      }
      const f = runs[3 * lo + 1]!;
      return f < 0 ? undefined : `${files[f]}:${runs[3 * lo + 2]! + (line - runs[3 * lo]!)}`;
    };
  } catch {
    lookup = undefined;
  }
  callerTables.set(file, lookup);
  return lookup;
}

/** zap levels above error filter out everything raftkv logs: pino's highest level does that. */
function pinoLevel(level: ZapLevel): pino.Level {
  return level === 'dpanic' || level === 'panic' || level === 'fatal' ? 'fatal' : level;
}

function destination(output: string): pino.DestinationStream & { flushSync(): void } {
  if (output === 'default' || output === 'stderr') return pino.destination({ dest: 2, sync: false });
  if (output === 'stdout') return pino.destination({ dest: 1, sync: false });
  // Opened now, so a bad path fails at startup; appended to, as zap opens its output files.
  return pino.destination({ dest: output, sync: true, append: true, mkdir: false });
}

export function createLogger(opts: LoggerOptions): ZapLogger {
  const dests = [...new Set(opts.outputs.map((o) => (o === 'default' ? 'stderr' : o)))].map(destination);
  const stream = dests.length === 1 ? dests[0]! : pino.multistream(dests.map((d) => ({ stream: d, level: 'trace' as const })));
  const p = pino(
    {
      level: pinoLevel(opts.level),
      base: undefined,
      messageKey: 'msg',
      timestamp: () => `,"ts":"${zapTimestamp(new Date())}"`,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
  let fields: Record<string, LogFieldValue> = { ...(opts.fields ?? {}) };
  const write = (level: Level, msg: string, extra: Record<string, LogFieldValue> | undefined, caller: string): void => {
    if (!p.isLevelEnabled(level)) return;
    p[level]({ caller, msg, ...fields, ...(extra ?? {}) });
  };
  const logger: ZapLogger = {
    debug: function debug(m) {
      if (p.isLevelEnabled('debug')) write('debug', m, undefined, callerOf(debug));
    },
    info: function info(m) {
      if (p.isLevelEnabled('info')) write('info', m, undefined, callerOf(info));
    },
    warn: function warn(m) {
      if (p.isLevelEnabled('warn')) write('warn', m, undefined, callerOf(warn));
    },
    error: function error(m) {
      if (p.isLevelEnabled('error')) write('error', m, undefined, callerOf(error));
    },
    log: function log(level, m, extra) {
      if (p.isLevelEnabled(level)) write(level, m, extra, callerOf(log));
    },
    addFields: (f) => {
      fields = { ...fields, ...f };
    },
    setLevel: (level) => {
      p.level = pinoLevel(level);
    },
    flush: () => {
      for (const d of dests) {
        try {
          d.flushSync();
        } catch {
          /* not yet ready: nothing buffered */
        }
      }
    },
  };
  return logger;
}
