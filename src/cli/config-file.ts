// --config-file: etcd's YAML configuration file (embed.Config's yaml names, etcd.conf.yml),
// read into the same flag-name -> value form the command line gives, so one validation path
// (flags.ts) serves both. As etcd 3.4, a file replaces the command line and the environment.
//
// Keys are the flags' names; the TLS settings sit in two blocks, as in etcd's file:
//   client-transport-security: { cert-file, key-file, client-cert-auth, trusted-ca-file, auto-tls }
//   peer-transport-security:   { the same five, for the peer side }
// Values take etcd's YAML types: durations are nanosecond counts (Go's time.Duration; a
// duration string such as '5s' is accepted too), log-outputs and cipher-suites are lists.
//
// One deliberate difference: etcd 3.4 silently ignores a key it does not know, so a typo such
// as `initial-cluster-stat: existing` starts a member with the default; raftkv refuses the file
// and names the key.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import { FLAG_SPECS, FlagError, type FlagSpec, kindError } from './flag-specs.js';

/** The yaml package (72 files) is loaded only when a config file is given: most members start without one. */
const yaml = (): typeof Yaml => createRequire(import.meta.url)('yaml') as typeof Yaml;

const TLS_BLOCKS = ['client-transport-security', 'peer-transport-security'] as const;

/** YAML key (or block.key) -> the flag it sets. */
const BY_KEY: ReadonlyMap<string, FlagSpec> = new Map(
  FLAG_SPECS.filter((s) => s.yaml !== false).map((s) => [typeof s.yaml === 'string' ? s.yaml : s.name, s]),
);

/** Reads `path` into flag name -> value (as the flag would be written on the command line). */
export function readConfigFile(path: string): Map<string, string> {
  const fail = (msg: string) => new FlagError(`config file ${path}: ${msg}`, 1);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // etcd's (Go's) wording for a missing or unreadable file.
    const why = err.code === 'ENOENT' ? 'no such file or directory' : err.code === 'EACCES' ? 'permission denied' : err.message;
    throw new FlagError(`open ${path}: ${why}`, 1);
  }
  const { isMap, parseDocument } = yaml();
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw fail(`invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  const top: unknown = doc.toJS();
  if (top === null || top === undefined) return new Map(); // an empty file: every default
  if (!isMap(doc.contents) || typeof top !== 'object' || Array.isArray(top)) {
    throw fail(`expected a mapping of etcd configuration keys (name: ..., data-dir: ...), got ${Array.isArray(top) ? 'a list' : `"${String(top)}"`}`);
  }
  const out = new Map<string, string>();
  const set = (key: string, raw: unknown): void => {
    const spec = BY_KEY.get(key);
    if (!spec) {
      const block = TLS_BLOCKS.find((b) => BY_KEY.has(`${b}.${key}`));
      const hint = block ? ` (TLS settings go in the ${key.startsWith('peer-') ? 'peer-transport-security' : block} block)` : '';
      throw fail(`unknown key "${key}"${hint}`);
    }
    if (raw === null || raw === undefined) return; // `key:` with no value leaves the default
    const v = scalar(spec, key, raw, fail);
    const why = kindError(spec, v);
    if (why) throw fail(`invalid value "${v}" for "${key}": ${why}`);
    out.set(spec.name, v);
  };
  for (const [key, raw] of Object.entries(top as Record<string, unknown>)) {
    if ((TLS_BLOCKS as readonly string[]).includes(key)) {
      if (raw === null || raw === undefined) continue;
      if (typeof raw !== 'object' || Array.isArray(raw)) throw fail(`"${key}" must be a mapping (cert-file: ..., key-file: ...)`);
      for (const [sub, v] of Object.entries(raw as Record<string, unknown>)) {
        if (!BY_KEY.has(`${key}.${sub}`)) throw fail(`unknown key "${sub}" in ${key} (cert-file, key-file, client-cert-auth, trusted-ca-file, auto-tls)`);
        set(`${key}.${sub}`, v);
      }
      continue;
    }
    set(key, raw);
  }
  return out;
}

/** A YAML value as the command line would spell it, checked against etcd's type for the key. */
function scalar(spec: FlagSpec, key: string, raw: unknown, fail: (m: string) => FlagError): string {
  const shown = JSON.stringify(raw);
  switch (spec.kind) {
    case 'bool':
      if (typeof raw === 'boolean') return String(raw);
      if (typeof raw === 'string') return raw;
      throw fail(`"${key}" must be true or false, got ${shown}`);
    case 'uint':
    case 'int':
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return String(raw);
      if (typeof raw === 'string') return raw;
      throw fail(`"${key}" must be an integer, got ${shown}`);
    case 'duration':
      // Go's time.Duration in JSON: nanoseconds.
      if (typeof raw === 'number' && Number.isSafeInteger(raw)) return raw === 0 ? '0' : `${raw}ns`;
      if (typeof raw === 'string') return raw;
      throw fail(`"${key}" must be a duration in nanoseconds (or a string such as "5s"), got ${shown}`);
    default:
      if (Array.isArray(raw) && spec.yamlList && raw.every((x) => typeof x === 'string')) return raw.join(',');
      if (typeof raw === 'string') return raw;
      if (typeof raw === 'number' || typeof raw === 'boolean') return String(raw);
      throw fail(`"${key}" must be a ${spec.yamlList ? 'list of strings' : 'string'}, got ${shown}`);
  }
}
