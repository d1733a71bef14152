// Tells systemd that the member is up, as etcd does: Debian's etcd unit is `Type=notify`, and
// systemd waits for "READY=1" on the datagram socket named by $NOTIFY_SOCKET (sd_notify(3))
// before it counts the service as started — without it, a unit written for etcd would time out
// and kill raftkv. etcd sends it once the member has joined the cluster (its ReadyNotify, after
// its attributes are published through Raft), so that `systemctl start` of a member returns when
// the member serves, and a member that cannot reach a quorum is not "started"; so does raftkv.
//
// The datagram must come from the main process itself (NotifyAccess=main, the default): systemd
// checks the sender's pid. Node cannot open a Unix datagram socket, and a helper process (such as
// systemd-notify) would send from another pid, so the socket is node-unix-socket's (a prebuilt
// N-API module), loaded only when $NOTIFY_SOCKET is set. raftkv depends on its Linux x64 binary
// package directly (an optional dependency): the wrapper package lists binaries for other
// platforms that were never published, which a lock file cannot hold (`npm ci` refuses it). On
// another platform the binary is absent and the notification fails, logged. etcd's log lines are
// kept: it logs "successfully notified init daemon" even when there is no socket to notify
// (go-systemd's SdNotify returns no error then), and scripts wait for that line. A path is what
// systemd gives its services (/run/systemd/notify); an abstract address is refused (see sdNotify).

import { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import type { Logger } from '../raft/logger.js';

/** The binding's datagram socket (what node-unix-socket's DgramSocket wraps). */
interface DgramSocketWrap {
  init(self: DgramSocketWrap): void;
  startRecv(): void;
  sendTo(buf: Buffer, offset: number, length: number, path: string, cb: (err?: Error) => void): void;
  close(): void;
}
type Binding = { DgramSocketWrap: new (emitter: EventEmitter) => DgramSocketWrap };

/** A datagram socket, set up as node-unix-socket's DgramSocket sets it up (its I/O watcher too). */
function dgramSocket(): DgramSocketWrap {
  // require, not import(): the bundle runs in a vm.Script, which has no dynamic import.
  const { DgramSocketWrap } = createRequire(import.meta.url)('node-unix-socket-linux-x64-gnu') as Binding;
  // The binding reports through an emitter's emit ('_error', '_data'); a send's error comes to its callback.
  const events = new EventEmitter();
  events.emit = events.emit.bind(events); // called without a receiver, as the wrapper allows for
  events.on('_error', () => {});
  const wrap = new DgramSocketWrap(events);
  wrap.init(wrap);
  wrap.startRecv();
  return wrap;
}

/** Sends `state` (e.g. "READY=1") to $NOTIFY_SOCKET, if set; resolves whether it was sent. */
export async function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): Promise<boolean> {
  const socket = env['NOTIFY_SOCKET'];
  if (!socket) return false;
  // The module binds and sends with the whole sun_path as the name, which for an abstract
  // address ("@name": a leading NUL byte) is another name than the one systemd binds.
  if (socket.startsWith('@')) throw new Error(`abstract socket addresses are not supported: NOTIFY_SOCKET=${socket}`);
  const s = dgramSocket();
  try {
    const msg = Buffer.from(state);
    await new Promise<void>((resolve, reject) => s.sendTo(msg, 0, msg.length, socket, (e) => (e ? reject(e) : resolve())));
    return true;
  } finally {
    s.close();
  }
}

/** etcd's notifySystemd (etcdmain): READY=1, with its log lines. Never throws. */
export async function notifySystemd(logger: Pick<Logger, 'info' | 'error'>, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  logger.info('notifying init daemon');
  try {
    await sdNotify('READY=1', env);
    logger.info('successfully notified init daemon');
  } catch (e) {
    logger.error(`failed to notify systemd for readiness: ${(e as Error)?.message ?? String(e)}`);
  }
}
