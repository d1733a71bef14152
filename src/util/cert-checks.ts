// What etcd checks of a client's certificate beyond the TLS handshake's own verification
// (pkg/transport: TLSInfo.baseConfig's VerifyPeerCertificate, listener_tls.go's checkCRL):
//  - --client-cert-allowed-hostname / --peer-cert-allowed-hostname: the leaf must be valid for
//    that name (Go's VerifyHostname: DNS names and IP addresses of its SANs, no CommonName);
//  - --peer-cert-allowed-cn: the leaf's CommonName (peer port, and the peers a member dials:
//    grpc-tls.ts);
//  - --client-crl-file / --peer-crl-file: no certificate the client presented may carry a serial
//    the CRL revokes (TlsSide.crl; a CRL that cannot be read refuses every certificate).
// A refused client's connection is closed right after its handshake (tls-server.ts).

import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { normalizeSerial } from './crl.js';
import type { TlsSide } from './tls.js';

/** A certificate as Node's TLS shows a peer's (getPeerCertificate): its serial (hex) and DER. */
export interface PresentedCert {
  serialNumber?: string;
  raw?: Buffer;
}

/** A certificate's SANs, as etcd lists them: IP addresses and DNS names. */
export function sansOf(cert: X509Certificate): { ipAddresses: string[]; dnsNames: string[] } {
  const sans = (cert.subjectAltName ?? '').split(', ').filter(Boolean);
  return {
    ipAddresses: sans.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice('IP Address:'.length)),
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice('DNS:'.length)),
  };
}

/** The CommonNames of a certificate's subject, as Node's TLS shows them. */
export function commonNames(cert: { subject?: { CN?: string | string[] } }): string[] {
  const cn = cert.subject?.CN;
  return Array.isArray(cn) ? cn : cn ? [cn] : [];
}

/**
 * etcd's VerifyPeerCertificate: with an allowed CN, the certificate must carry it; with an
 * allowed hostname, be valid for it. True when it fails.
 */
export function peerIdentityProblem(cert: PresentedCert & { subject?: { CN?: string | string[] } }, allowedCN: string | undefined, allowedHostname: string | undefined): boolean {
  if (allowedCN && !commonNames(cert).includes(allowedCN)) return true;
  return Boolean(allowedHostname && !(cert.raw && validForHost(cert.raw, allowedHostname)));
}

const VALID_HOSTNAME = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/;

/** Go's matchHostnames: trailing dots ignored, as many labels, '*' allowed as the whole first label. */
function matchHostnames(pattern: string, host: string): boolean {
  const p = pattern.replace(/\.$/, '').split('.');
  const h = host.replace(/\.$/, '').split('.');
  return p.length === h.length && p.every((label, i) => (i === 0 && label === '*') || label === h[i]);
}

/**
 * Whether the certificate `raw` (DER) is valid for `name`, by Go's x509 VerifyHostname (etcd's
 * AllowedHostname check): an IP address (bracketed or not) against the IP SANs; a name against
 * the DNS SANs, case-insensitively, with wildcards and a trailing dot where both are valid
 * hostnames and exactly otherwise. The CommonName is not looked at.
 */
export function validForHost(raw: Buffer, name: string): boolean {
  const cert = new X509Certificate(raw);
  const ip = name.length >= 3 && name.startsWith('[') && name.endsWith(']') ? name.slice(1, -1) : name;
  if (isIP(ip)) return cert.checkIP(ip) !== undefined;
  const host = name.toLowerCase();
  const dnsNames = sansOf(cert).dnsNames.map((d) => d.toLowerCase());
  const validHost = VALID_HOSTNAME.test(host);
  return dnsNames.some((d) =>
    validHost && VALID_HOSTNAME.test(d.startsWith('*.') ? d.slice(2) : d) ? matchHostnames(d, host) : d !== '' && d !== '.' && d === host,
  );
}

/**
 * Why `chain` (the leaf first, then any intermediates the client sent) may not connect to
 * `side`, or undefined: the leaf's identity (`allowedCN`, the side's allowed hostname), then the
 * CRL. No certificate, nothing to check (etcd checks what was presented).
 */
export function presentedCertProblem(chain: Array<PresentedCert & { subject?: { CN?: string | string[] } }>, side: TlsSide | undefined, allowedCN?: string): string | undefined {
  const leaf = chain[0];
  if (!side || !leaf) return undefined;
  if (peerIdentityProblem(leaf, allowedCN, side.o.allowedHostname)) return 'client certificate authentication failed';
  const crl = side.crl;
  if (crl && 'error' in crl) return crl.error;
  if (crl) {
    for (const c of chain) {
      const serial = c.serialNumber ? normalizeSerial(c.serialNumber) : undefined;
      if (serial && crl.revoked.has(serial)) return `transport: certificate serial ${serial} revoked`;
    }
  }
  return undefined;
}

/** A detailed peer certificate (getPeerCertificate(true)): each links to its issuer, a root to itself. */
interface DetailedCert extends PresentedCert {
  subject?: { CN?: string | string[] };
  issuerCertificate?: DetailedCert;
}

/**
 * The chain a TLS client presented, as Node shows it: the leaf and its issuers, without the
 * self-signed root at the end (the server's own trusted CA, which Go's PeerCertificates do not
 * hold either).
 */
export function presentedChain(leaf: DetailedCert | undefined): DetailedCert[] {
  const chain: DetailedCert[] = [];
  const seen = new Set<DetailedCert>();
  for (let c = leaf; c && c.raw && !seen.has(c); c = c.issuerCertificate) {
    seen.add(c);
    if (c.issuerCertificate === c && chain.length > 0) break; // the root
    chain.push(c);
  }
  return chain;
}
