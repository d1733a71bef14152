// TLS for the client and peer links, as etcd's pkg/transport TLSInfo: certificate files loaded
// at start (or a self-signed certificate made at start for --auto-tls/--peer-auto-tls, kept
// under <data-dir>/fixtures/{client,peer} as etcd keeps it), turned into grpc-js dialing
// credentials by grpc-tls.ts and into both ports' TLS listeners by tls-server.ts. The crypto is Node's TLS;
// the self-signed certificate is made by the `selfsigned` package.
//
// Certificates are rotated without a restart, as etcd reads its cert and key files at every
// handshake: watchTlsFiles looks at the files every second, and once they changed and hold a
// key that matches its certificate (checked by making a TLS context of them), new connections
// — served and dialed — use them; connections already open keep theirs. Files caught half
// written, or a key that does not match, leave the last good material in use, with a warning.
// The CRL file (read again when it changes) and the allowed hostname (--client-crl-file,
// --client-cert-allowed-hostname and their --peer-* twins) are checked per connection:
// cert-checks.ts.
//
// A URL decides: an https:// URL is served and dialed with TLS, an http:// one in plaintext
// (etcd ignores the key/cert files for http URLs, with a warning).

import { existsSync } from 'node:fs';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { createSecureContext } from 'node:tls';
import { opensslCiphers } from './cipher-suites.js';
import { revokedSerials } from './crl.js';

/** The certificate files a side was loaded from (none for a self-signed auto-TLS side). */
export interface TlsFiles {
  cert: string;
  key: string;
  ca?: string;
}

/** One side's TLS settings (etcd's TLSInfo), loaded; `cert`, `key` and `ca` change when the files are rotated. */
export class TlsSide {
  /** What the files were when last loaded (inode, size, mtime of each), to notice a rotation. */
  private loadedStamp = '';
  /** The stamp of files that were found unusable (warned about once). */
  private badStamp = '';
  private readonly listeners = new Set<() => void>();
  /**
   * The CRL file as last read (--client-crl-file / --peer-crl-file): the serials it revokes, or
   * why it cannot be used — then every certificate is refused, as etcd's checkCRL fails.
   */
  crl: { revoked: Set<string> } | { error: string } | undefined;
  private crlStamp = '';

  constructor(
    public cert: Buffer,
    public key: Buffer,
    /** --trusted-ca-file / --peer-trusted-ca-file (undefined: the system's roots). */
    public ca: Buffer | undefined,
    readonly o: {
      /** --client-cert-auth / --peer-client-cert-auth: a client certificate's CommonName is its user (auth). */
      clientCertAuth: boolean;
      /**
       * The server requires a client certificate signed by `ca`: with --client-cert-auth, and also
       * whenever a trusted CA file is given (etcd's TLSInfo.ServerConfig: RequireAndVerifyClientCert
       * when TrustedCAFile is set or ClientCertAuth).
       */
      requireClientCert: boolean;
      /** Made by --auto-tls/--peer-auto-tls: whoever dials with it does not verify the other end (etcd's InsecureSkipVerify). */
      selfSigned: boolean;
      /** --client-crl-file / --peer-crl-file: certificates whose serial it lists are refused. */
      crlFile?: string;
      /** --client-cert-allowed-hostname / --peer-cert-allowed-hostname: a client certificate must be valid for this name. */
      allowedHostname?: string;
      /** --cipher-suites, as OpenSSL's cipher list (cipher-suites.ts); undefined: Node's defaults (test sides). */
      ciphers?: string;
      /** Where cert, key and ca were read from (none: made by auto TLS, never reloaded). */
      files?: TlsFiles;
    },
  ) {}

  get clientCertAuth(): boolean {
    return this.o.clientCertAuth;
  }

  get requireClientCert(): boolean {
    return this.o.requireClientCert;
  }

  get selfSigned(): boolean {
    return this.o.selfSigned;
  }

  /** Calls `f` after every rotation; returns the unsubscribe. */
  onChange(f: () => void): () => void {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  /**
   * Reads the files again if they changed since they were loaded. Usable material (a key that
   * matches its certificate, a CA that parses) replaces the current one and is announced;
   * unusable material is reported once through `warn` and retried at the next call.
   * Returns whether the material changed.
   */
  async reload(warn: (msg: string) => void): Promise<boolean> {
    const files = this.o.files;
    if (!files) return false;
    const stamp = await stampOf(pathsOf(files));
    if (stamp === this.loadedStamp || stamp === this.badStamp) return false;
    try {
      const m = await readTlsFiles(files, stamp);
      createSecureContext({ cert: m.cert, key: m.key, ca: m.ca, ciphers: this.o.ciphers }); // throws for a mismatched key or a file that is not PEM
      this.cert = m.cert;
      this.key = m.key;
      this.ca = m.ca;
      this.loadedStamp = m.stamp;
      this.badStamp = '';
    } catch (e) {
      if (this.badStamp !== stamp) warn(`failed to reload certificate files (cert-file ${files.cert}, key-file ${files.key}); keeping the previous ones: ${(e as Error).message}`);
      this.badStamp = stamp;
      return false;
    }
    for (const f of this.listeners) f();
    return true;
  }

  /** Reads the CRL file if it changed since it was read; returns whether it did. */
  async reloadCrl(): Promise<boolean> {
    const file = this.o.crlFile;
    if (!file) return false;
    const stamp = await stampOf([file]);
    if (stamp === this.crlStamp) return false;
    this.crlStamp = stamp;
    try {
      this.crl = { revoked: revokedSerials(await readFile(file)) };
    } catch (e) {
      this.crl = { error: (e as Error).message };
    }
    return true;
  }

  /** Records what the files were when the material was read (see readTlsFiles). */
  loadedFrom(stamp: string): this {
    this.loadedStamp = stamp;
    return this;
  }
}

const pathsOf = (files: TlsFiles): string[] => [files.cert, files.key, ...(files.ca ? [files.ca] : [])];

/** Inode, size and mtime of each file: what changes when a file is rewritten or replaced. */
async function stampOf(paths: string[]): Promise<string> {
  try {
    const stats = await Promise.all(paths.map((p) => stat(p)));
    return stats.map((st) => `${st.ino}:${st.size}:${st.mtimeMs}`).join(' ');
  } catch (e) {
    return `unreadable: ${(e as Error).message}`;
  }
}

/**
 * Reads the files, with their stamp taken first (or given, taken just before): a file replaced
 * while it is read leaves an older stamp, so the next look reads it again.
 */
async function readTlsFiles(files: TlsFiles, stampTaken?: string): Promise<{ stamp: string; cert: Buffer; key: Buffer; ca: Buffer | undefined }> {
  const stamp = stampTaken ?? (await stampOf(pathsOf(files)));
  const [cert, key, ca] = await Promise.all([readFile(files.cert), readFile(files.key), files.ca ? readFile(files.ca) : undefined]);
  return { stamp, cert, key, ca };
}

/** How often certificate files are looked at for a rotation. */
export const TLS_RELOAD_INTERVAL_MS = 1_000;

/**
 * Looks at both sides' certificate files every `intervalMs` and reloads them when they change
 * (TlsSide.reload); `info` is told of each rotation. Returns the stop.
 */
export function watchTlsFiles(cfg: TlsConfig, log: { info(msg: string): void; warn(msg: string): void }, intervalMs = TLS_RELOAD_INTERVAL_MS): () => void {
  const sides = ([['client', cfg.client], ['peer', cfg.peer]] as const).filter(([, s]) => s?.o.files || s?.o.crlFile);
  if (sides.length === 0) return () => undefined;
  let busy = false;
  const t = setInterval(() => {
    if (busy) return;
    busy = true;
    void Promise.all(
      sides.map(async ([name, side]) => {
        if (await side!.reload((m) => log.warn(m))) log.info(`reloaded the ${name} certificate files (cert-file ${side!.o.files!.cert})`);
        if (await side!.reloadCrl()) log.info(`read the ${name} CRL file ${side!.o.crlFile}${side!.crl && 'error' in side!.crl ? `: ${side!.crl.error}; certificates are refused until it is fixed` : ''}`);
      }),
    ).finally(() => (busy = false));
  }, intervalMs);
  t.unref();
  return () => clearInterval(t);
}

/** The member's TLS configuration (ServerConfig.tls). */
export interface TlsConfig {
  /** The client-facing side (--cert-file, ...): served on https client URLs, used to dial an https leader. */
  client?: TlsSide;
  /** The peer side (--peer-cert-file, ...): served on https peer URLs, used to dial https peers. */
  peer?: TlsSide;
  /** --peer-cert-allowed-cn: a peer's client certificate must have this CommonName. */
  peerAllowedCN?: string;
}

/** One side's flags, as given. */
export interface TlsFlags {
  certFile?: string;
  keyFile?: string;
  trustedCaFile?: string;
  clientCertAuth: boolean;
  autoTls: boolean;
  /** --client-crl-file / --peer-crl-file. */
  crlFile?: string;
  /** --client-cert-allowed-hostname / --peer-cert-allowed-hostname. */
  allowedHostname?: string;
  /** --cipher-suites (both sides), as OpenSSL's cipher list. */
  ciphers?: string;
}

export const isHttps = (url: string): boolean => url.startsWith('https://');

/** etcd's TLSInfo.Empty(): no key/cert pair. */
export const tlsFlagsEmpty = (f: TlsFlags): boolean => !f.certFile || !f.keyFile;

/**
 * Loads one side's certificate files, or (auto TLS, no files given) makes a self-signed
 * certificate for `hosts` in `dir` if none is there yet (etcd's SelfCert). Undefined: no TLS.
 */
export async function loadTlsSide(f: TlsFlags, autoDir: string, hosts: string[], warn: (msg: string) => void): Promise<TlsSide | undefined> {
  if (!tlsFlagsEmpty(f)) {
    if (f.autoTls) warn('ignoring auto TLS since certs given');
    const files = { cert: f.certFile!, key: f.keyFile!, ...(f.trustedCaFile ? { ca: f.trustedCaFile } : {}) };
    const { stamp, cert, key, ca } = await readTlsFiles(files);
    const o = { ...checks(f), clientCertAuth: f.clientCertAuth, requireClientCert: f.clientCertAuth || ca !== undefined, selfSigned: false, files };
    return withCrl(new TlsSide(cert, key, ca, o).loadedFrom(stamp));
  }
  if (!f.autoTls) {
    if (f.trustedCaFile || f.clientCertAuth) warn('a trusted CA file or client cert auth without a cert/key pair is ignored');
    return undefined;
  }
  const { cert, key } = await selfCert(autoDir, hosts);
  const ca = f.trustedCaFile ? await readFile(f.trustedCaFile) : undefined;
  return withCrl(new TlsSide(cert, key, ca, { ...checks(f), clientCertAuth: f.clientCertAuth, requireClientCert: f.clientCertAuth, selfSigned: true }));
}

async function withCrl(side: TlsSide): Promise<TlsSide> {
  await side.reloadCrl();
  return side;
}

/** The per-connection checks a side's flags ask for. */
const checks = (f: TlsFlags): { crlFile?: string; allowedHostname?: string; ciphers?: string } => ({
  ...(f.crlFile ? { crlFile: f.crlFile } : {}),
  ...(f.allowedHostname ? { allowedHostname: f.allowedHostname } : {}),
  // No --cipher-suites: Go's defaults, as etcd serves them (Node's own would add DHE, CBC-SHA384...).
  ciphers: f.ciphers ?? opensslCiphers([]),
});

/** etcd's transport.SelfCert: an ECDSA P-256 certificate for `hosts`, valid one year, reused if present. */
export async function selfCert(dir: string, hosts: string[]): Promise<{ cert: Buffer; key: Buffer }> {
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { cert: await readFile(certPath), key: await readFile(keyPath) };
  }
  const { generate } = await import('selfsigned');
  const altNames = [...new Set(hosts)].map((h) =>
    isIP(h) ? ({ type: 7, ip: h } as const) : ({ type: 2, value: h } as const),
  );
  const now = new Date();
  const pems = await generate([{ name: 'organizationName', value: 'etcd' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: now,
    notAfterDate: new Date(now.getTime() + 365 * 24 * 3600 * 1000),
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(certPath, pems.cert, { mode: 0o600 });
  await writeFile(keyPath, pems.private, { mode: 0o600 });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private) };
}
