// The last line of defence of a member process: an error that no code path caught (a promise
// rejected with no handler, an exception thrown from a timer or an event callback) leaves the
// member in a state nobody reasoned about — a Raft loop half way through a Ready, a request
// neither answered nor failed. Running on could acknowledge what is not durable or apply what
// was not committed, so the member logs what happened and exits non-zero; a supervisor
// restarts it from its WAL, which is always consistent. Every background task in the server
// handles its own errors; reaching this handler is a bug, and the log says where.

export const EXIT_UNHANDLED = 70; // EX_SOFTWARE: an internal software error

/** What ends a member is said twice: in its log (flushed at once) and on stderr, for whoever started it. */
export function reportFatal(logger: { error(msg: string): void; flush(): void }, msg: string): void {
  logger.error(msg);
  logger.flush();
  process.stderr.write(`raftkv: ${msg}\n`);
}

export function installProcessGuards(log: (msg: string) => void, exit: (code: number) => void = (c) => process.exit(c)): void {
  let exiting = false;
  const die = (what: string, e: unknown): void => {
    if (exiting) return;
    exiting = true;
    log(`${what}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}; exiting rather than run on in an unknown state`);
    exit(EXIT_UNHANDLED);
  };
  process.on('unhandledRejection', (e) => die('unhandled promise rejection', e));
  process.on('uncaughtException', (e) => die('uncaught exception', e));
}

/**
 * Node's process warnings (a library's deprecation, say: grpc-js names an IP address as the TLS
 * server name when it dials a peer by IP) go to the member's log as JSON lines, instead of
 * Node's own plain-text lines on stderr, which a log shipper reading etcd's JSON would choke on.
 */
export function routeProcessWarnings(warn: (msg: string) => void): void {
  process.removeAllListeners('warning'); // Node's own printer
  process.on('warning', (w) => warn(`node: ${w.name}${'code' in w && w.code ? ` ${String(w.code)}` : ''}: ${w.message}`));
}

/**
 * Ends the process as etcd's interrupt handler ends etcd (osutil.HandleInterrupts): once its own
 * shutdown has run, by the signal that asked for it, restored to its default action — so its
 * parent sees it killed by SIGTERM or SIGINT (143 or 130 in a shell, a clean stop to systemd),
 * not an exit status of its own. A death by signal runs no `exit` listeners (the data dir's lock
 * is released by one), so they run first, each once. As pid 1 (a container's init, which the
 * kernel will not kill with a signal it does not handle) it exits 0, as etcd does (libuv gives
 * the signal its default action back, as Go's setDflSignal does, even if it was ignored at start;
 * the exit after the kill is for pid 1 only).
 */
export function exitBySignal(signal: 'SIGTERM' | 'SIGINT'): never {
  for (const listener of process.listeners('exit')) {
    process.removeListener('exit', listener);
    listener(0);
  }
  if (process.pid !== 1) {
    // With no listener left, Node gives the signal back its default action.
    process.removeAllListeners(signal);
    process.kill(process.pid, signal);
  }
  process.exit(0);
}
