// Listening on a member URL: its host (an IPv6 literal without brackets) and port (the scheme's
// default when none is written, as etcd's URLs mean it). Shared by the client port, the peer
// port and the metrics URLs.
//
// Once listening, a server's 'error' is an accept that failed (EMFILE when the process is out of
// file descriptors: Node emits it on the server and goes on listening). Unheard, it would be an
// uncaught exception and take the member down; it is reported as a process warning instead
// (the member's JSON log, src/cli/process-guards.ts), as Go's server logs "http: Accept error"
// and goes on.

import { type Server, createServer } from 'node:net';
import { joinHostPort, urlHost, urlPort } from './url.js';

/** Starts `server` listening on `url`'s address; resolves with the port bound (the one chosen for port 0). */
export function listenAt(server: Server, url: string): Promise<number> {
  const u = new URL(url);
  const port = urlPort(u);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, urlHost(u), () => {
      server.removeListener('error', reject);
      server.on('error', (e) => process.emitWarning(`accept error on ${url}: ${e.message}`, 'AcceptError'));
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}

/**
 * Whether `url`'s address can be listened on now, tried before the member writes anything (etcd
 * opens its listeners first, so a port in use leaves no data dir behind): Go's words for why
 * not (`listen tcp 127.0.0.1:2379: bind: address already in use`), or undefined. Port 0 and
 * addresses that are not this host's are left to the real listen.
 */
export async function listenProblem(url: string): Promise<string | undefined> {
  const u = new URL(url);
  const port = urlPort(u);
  if (port === 0) return undefined;
  const probe = createServer();
  try {
    await listenAt(probe, url);
    return undefined;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'bind: address already in use' : code === 'EACCES' ? 'bind: permission denied' : undefined;
    return why && `listen tcp ${joinHostPort(urlHost(u), port)}: ${why}`;
  } finally {
    if (probe.listening) await new Promise((r) => probe.close(r));
  }
}
