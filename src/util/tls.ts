// TLS for the client and peer links, as etcd's pkg/transport TLSInfo: certificate files loaded
// once at start (or a self-signed certificate made at start for --auto-tls/--peer-auto-tls,
// kept under <data-dir>/fixtures/{client,peer} as etcd keeps it), turned into grpc-js
// credentials by grpc-tls.ts. The crypto is Node's TLS (through grpc-js); the self-signed certificate is made
// by the `selfsigned` package.
//
// A URL decides: an https:// URL is served and dialed with TLS, an http:// one in plaintext
// (etcd ignores the key/cert files for http URLs, with a warning).

import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';

/** One side's TLS settings (etcd's TLSInfo), loaded. */
export interface TlsSide {
  cert: Buffer;
  key: Buffer;
  /** --trusted-ca-file / --peer-trusted-ca-file (undefined: the system's roots). */
  ca?: Buffer;
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
    const [cert, key, ca] = await Promise.all([
      readFile(f.certFile!),
      readFile(f.keyFile!),
      f.trustedCaFile ? readFile(f.trustedCaFile) : Promise.resolve(undefined),
    ]);
    return { cert, key, ca, clientCertAuth: f.clientCertAuth, requireClientCert: f.clientCertAuth || ca !== undefined, selfSigned: false };
  }
  if (!f.autoTls) {
    if (f.trustedCaFile || f.clientCertAuth) warn('a trusted CA file or client cert auth without a cert/key pair is ignored');
    return undefined;
  }
  const { cert, key } = await selfCert(autoDir, hosts);
  const ca = f.trustedCaFile ? await readFile(f.trustedCaFile) : undefined;
  return { cert, key, ca, clientCertAuth: f.clientCertAuth, requireClientCert: f.clientCertAuth, selfSigned: true };
}

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
