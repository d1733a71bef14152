// ETCD_* environment variables for every flag, with etcd 3.4's rules (pkg/flags
// SetFlagsFromEnv and verifyEnv), so Debian's /etc/default/etcd and a unit file's
// Environment= lines configure raftkv as they configure etcd:
//   - the variable is the flag's name upper-cased with '-' as '_', prefixed ETCD_ (--data-dir:
//     ETCD_DATA_DIR); an empty value counts as unset;
//   - a value that the flag would refuse stops the start (exit 1, naming the variable);
//   - a flag given on the command line AND its variable present (even empty) is fatal, as in
//     etcd: "conflicting environment variable ... is shadowed by corresponding command-line
//     flag", so a unit file never silently runs with a value other than the one it shows;
//   - any other ETCD_ variable is warned about ("unrecognized environment variable").
// Not used at all when a config file is given (etcd ignores the environment then).

import type { LogFieldValue } from '../util/log.js';
import { FLAG_SPECS, FlagError, flagToEnv, kindError } from './flag-specs.js';

/** Something to log once the logger exists (flags decide where logs go, so parsing comes first). */
export interface StartupNotice {
  level: 'info' | 'warn';
  msg: string;
  fields?: Record<string, LogFieldValue>;
}

/**
 * Sets `values` (flag name -> value) from the environment for every flag not in `given` (the
 * flags on the command line). Returns the names set this way.
 */
export function applyEnv(values: Map<string, string>, given: ReadonlySet<string>, env: NodeJS.ProcessEnv, notices: StartupNotice[]): Set<string> {
  const used = new Set<string>();
  const fromEnv = new Set<string>();
  // Flag order (etcd visits its flags sorted by name).
  for (const spec of [...FLAG_SPECS].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    if (given.has(spec.name)) continue;
    const key = flagToEnv(spec.name);
    const v = env[key];
    if (v === undefined || v === '') continue;
    used.add(key);
    const why = kindError(spec, v);
    if (why) throw new FlagError(`invalid value "${v}" for ${key}: ${why}`, 1);
    values.set(spec.name, v);
    fromEnv.add(spec.name);
    notices.push(
      spec.ignored
        ? { level: 'warn', msg: `flag "-${spec.name}" is no longer supported - ignoring.` }
        : { level: 'info', msg: `recognized and used environment variable ${key}=${v}` },
    );
  }
  const shadowed = new Set([...given].map(flagToEnv));
  for (const [key, v] of Object.entries(env)) {
    if (used.has(key)) continue;
    if (shadowed.has(key)) {
      throw new FlagError(
        `conflicting environment variable "${key}" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)`,
        1,
      );
    }
    if (key.startsWith('ETCD_')) notices.push({ level: 'warn', msg: `unrecognized environment variable ${key}=${v ?? ''}` });
  }
  return fromEnv;
}
