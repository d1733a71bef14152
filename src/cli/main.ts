// What `raftkv [etcd flags]` runs (started by ./raftkv.ts): one cluster member, exactly as
// `etcd` would run with the same flags.
//
// This file reads the flags, opens the log, locks the data dir and starts reading the WAL
// (segment-read.ts); only then does it load the member itself (member.ts: gRPC, the servers,
// the store), so that the main thread's loading of that code and the WAL's reading by the
// thread pool happen at the same time. A restart is that much shorter.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { listenProblem } from '../util/listen.js';
import { CommanderError, FlagError, type Flags, parseFlags } from './flags.js';
import { type ZapLogger, createLogger } from '../util/log.js';
import { type DirLock, acquireDirLock, dataDirPermissionWarning } from '../storage/dir-lock.js';
import { WalReadAhead } from '../storage/wal/segment-read.js';
import { newestSnapshotIndex } from '../storage/snap/snap-names.js';
import { snapDirOf, walDirOf } from '../server/config.js';
import { installProcessGuards, reportFatal, routeProcessWarnings } from './process-guards.js';

/** How ./raftkv.ts loaded this code: from the bundle (and whether V8 took its code cache) or as modules. */
export interface LoadedFrom {
  bundle?: string;
  codeCache?: 'accepted' | 'rejected' | 'none';
}

async function main(loadedFrom: LoadedFrom): Promise<void> {
  // `raftkv snapshot save|status|restore`: etcdctl's backup tooling (src/cli/snapshot-cmd.ts),
  // loaded only for that subcommand.
  if (process.argv[2] === 'snapshot') process.exit(await (await import('./snapshot-cmd.js')).snapshotCommand(process.argv.slice(3)));
  // `raftkv gateway start`: etcd's L4 gateway (src/cli/gateway-cmd.ts); it returns only if it could not start.
  if (process.argv[2] === 'gateway') process.exit(await (await import('./gateway-cmd.js')).gatewayCommand(process.argv.slice(3)));
  let flags: Flags;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      process.stderr.write(`raftkv: ${e.message.replace(/^error: /, '')}\n`);
      process.exit(2);
    }
    if (e instanceof FlagError) {
      process.stderr.write(`raftkv: ${e.message}\n`);
      process.exit(e.exitCode);
    }
    throw e;
  }
  let logger: ZapLogger;
  try {
    logger = createLogger({ level: flags.logLevel, outputs: flags.logOutputs, fields: { name: flags.name } });
  } catch (e) {
    // E.g. a --log-outputs file in a directory that does not exist.
    process.stderr.write(`raftkv: cannot open log output: ${(e as Error).message}\n`);
    process.exit(1);
  }
  for (const n of flags.notices) logger.log(n.level, n.msg, n.fields);
  logger.info(
    loadedFrom.bundle ? `member code loaded from ${loadedFrom.bundle} (code cache ${loadedFrom.codeCache ?? 'none'})` : 'member code loaded as modules (no current bundle)',
  );
  // A port in use fails the start before anything is written, as etcd's listeners open first.
  for (const url of [...flags.listenPeerUrls, ...flags.listenClientUrls, ...flags.listenMetricsUrls]) {
    const problem = await listenProblem(url);
    if (problem) {
      reportFatal(logger, problem);
      process.exit(1);
    }
  }
  // One process per data dir, before anything in it is read or written (src/storage/dir-lock.ts).
  let dirLock: DirLock;
  const permission = dataDirPermissionWarning(flags.dataDir);
  if (permission) logger.warn(permission);
  try {
    dirLock = acquireDirLock(flags.dataDir);
  } catch (e) {
    reportFatal(logger, (e as Error).message);
    process.exit(1);
  }
  process.on('exit', () => dirLock.release());
  // etcd's own data dir (its bbolt database and its WAL, in formats raftkv does not read): say
  // how to move it, rather than find its WAL "corrupt".
  const etcdDb = join(snapDirOf(flags), 'db');
  if (existsSync(etcdDb)) {
    reportFatal(
      logger,
      `data dir ${flags.dataDir} holds etcd's data (${etcdDb} is etcd's bbolt database), which raftkv does not run on: ` +
        `restore it into a new data dir with \`raftkv snapshot restore ${etcdDb} --skip-hash-check\` (or a file from \`etcdctl snapshot save\`), see "Migrating from etcd" in the README`,
    );
    process.exit(1);
  }
  installProcessGuards((msg) => reportFatal(logger, msg));
  routeProcessWarnings((msg) => logger.warn(msg));
  // The WAL's place: --wal-dir, or etcd's <data-dir>/member/wal; a new member has none. Read
  // from the newest snapshot on, where the replay begins (server/bootstrap.ts).
  const walReadAhead = WalReadAhead.start(walDirOf(flags), await newestSnapshotIndex(snapDirOf(flags)));
  const { runMember } = await import('./member.js');
  await runMember(flags, logger, walReadAhead);
}

/** Runs the command; a failure that escapes it is printed and exits 1. */
export function run(loadedFrom: LoadedFrom = {}): void {
  main(loadedFrom).catch((e: unknown) => {
    process.stderr.write(`raftkv: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}

/**
 * Evaluates the member's modules without running anything: what scripts/bundle.mjs does before
 * it takes V8's code cache of the bundle, so that the cache holds their compiled top-level code.
 */
export async function loadMemberCode(): Promise<void> {
  await import('./member.js');
}
