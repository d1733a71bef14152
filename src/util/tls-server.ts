// The TLS listeners of both ports (the client port's front door, the peer port), as etcd's
// pkg/transport tlsListener: the handshake with the side's current certificate, key and CA
// (replaced in place when the files rotate: TlsSide.onChange), its cipher suites
// (--cipher-suites), client certificates required where the side says so, then the checks etcd
// makes of a client's certificate — the allowed CommonName (peer port) or hostname, the CRL
// (cert-checks.ts) and, on the peer port, that the certificate names the address the peer
// connects from (etcd's checkSAN, unless --experimental-peer-skip-client-san-verification). A refused connection is
// closed and reported; an accepted one is handed on, already decrypted by Node's TLS.

import { X509Certificate } from 'node:crypto';
import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { type SecureContextOptions, type Server as TlsServer, type TLSSocket, createServer } from 'node:tls';
import { presentedCertProblem, presentedChain, sansOf } from './cert-checks.js';
import type { TlsSide } from './tls.js';

export interface TlsListenerOptions {
  /** The ALPN protocol to agree to among the client's, or undefined to refuse (no_application_protocol). */
  alpn: (offered: string[]) => string | undefined;
  /** etcd's checkSAN (peer port): a client certificate with SANs must name the address it connects from. */
  checkSan?: boolean;
  /** --peer-cert-allowed-cn (peer port): a client certificate must carry this CommonName. */
  allowedCN?: string;
  /** Called with each accepted, checked connection. */
  accept: (socket: TLSSocket) => void;
  /** Told of a connection refused after its handshake. */
  rejected?: (r: RejectedConnection) => void;
}

/** What etcd logs of a refused TLS connection ("rejected connection", embed/etcd.go). */
export interface RejectedConnection {
  remoteAddr: string;
  /** The name the client asked for (SNI), '' if none. */
  serverName: string;
  /** The client certificate's SANs, when it sent one. */
  cert?: { ipAddresses: string[]; dnsNames: string[] };
  error: string;
}

/** What a side's TLS context is made of now. */
export function secureContextOptions(side: TlsSide): SecureContextOptions {
  return { key: side.key, cert: side.cert, ca: side.ca, ...(side.o.ciphers ? { ciphers: side.o.ciphers } : {}) };
}

/** A TLS server for `side` (listen on it as on any net.Server); `close` also stops following rotations. */
export function createTlsListener(side: TlsSide, o: TlsListenerOptions): { server: TlsServer; unwatch: () => void } {
  const server = createServer({
    ...secureContextOptions(side),
    requestCert: side.requireClientCert,
    rejectUnauthorized: side.requireClientCert,
    ALPNCallback: ({ protocols }) => o.alpn(protocols),
  });
  const unwatch = side.onChange(() => server.setSecureContext(secureContextOptions(side)));
  server.on('secureConnection', (s: TLSSocket) => {
    const leaf = s.getPeerCertificate(true);
    const why = presentedCertProblem(presentedChain(leaf), side, o.allowedCN);
    if (why !== undefined) return reject(s, leaf?.raw, why);
    if (!o.checkSan || !leaf?.raw) return o.accept(s);
    // Nothing reads the socket until it is handed on: what the peer sends meanwhile waits.
    void sanProblem(leaf.raw, s.remoteAddress ?? '').then(
      (problem) => (problem === undefined ? o.accept(s) : reject(s, leaf.raw, problem)),
      (e: unknown) => reject(s, leaf.raw, (e as Error).message),
    );
  });
  // A failed handshake (plaintext, a missing or untrusted certificate) only drops that client.
  server.on('tlsClientError', (_e, s) => s.destroy());
  const reject = (s: TLSSocket, cert: Buffer | undefined, why: string): void => {
    const servername = (s as TLSSocket & { servername?: string | false }).servername;
    o.rejected?.({
      remoteAddr: `${s.remoteAddress}:${s.remotePort}`,
      serverName: typeof servername === 'string' ? servername : '',
      ...(cert ? { cert: sansOf(new X509Certificate(cert)) } : {}),
      error: why,
    });
    s.destroy();
  };
  return { server, unwatch };
}

/**
 * etcd's checkCertSAN: a certificate without SANs passes; with IP SANs, one must be the remote
 * address; else (DNS names only, or IPs that did not match beside DNS names) a DNS name must
 * resolve to it, or the address's reverse lookup must give one of them (wildcards too).
 */
export async function sanProblem(raw: Buffer, remoteAddress: string): Promise<string | undefined> {
  const cert = new X509Certificate(raw);
  const { ipAddresses: ips, dnsNames: names } = sansOf(cert);
  const host = remoteAddress.startsWith('::ffff:') && isIP(remoteAddress.slice(7)) === 4 ? remoteAddress.slice(7) : remoteAddress;
  if (ips.length === 0 && names.length === 0) return undefined;
  if (ips.length > 0) {
    if (cert.checkIP(host) !== undefined) return undefined;
    if (names.length === 0) return `x509: certificate is valid for ${ips.join(', ')}, not ${host}`;
  }
  let lastError = '';
  try {
    for (const n of await dns.reverse(host)) {
      const name = n.replace(/\.$/, '');
      if (names.some((d) => (d.startsWith('*.') ? name.endsWith(d.slice(1)) : d === name))) return undefined;
    }
  } catch (e) {
    lastError = (e as Error).message;
  }
  for (const d of names.filter((x) => !x.startsWith('*.'))) {
    try {
      if ((await dns.lookup(d, { all: true })).some((a) => a.address === host)) return undefined;
    } catch (e) {
      lastError = (e as Error).message;
    }
  }
  return `tls: ${JSON.stringify(host)} does not match any of DNSNames ${JSON.stringify(names)}${lastError ? ` (${lastError})` : ''}`;
}
