// TLS for gRPC: the credentials a member serves and dials with, and the checks of a peer's
// certificate (--peer-cert-allowed-cn, and what cert-checks.ts checks). Apart from tls.ts
// (certificates and flags) so that reading the flags does not load grpc-js.
//
// Credentials follow a side's rotations (TlsSide.onChange): they are grpc-js's certificate-
// provider credentials fed by the side, so the peer server's TLS context is replaced in place
// (grpc-js calls setSecureContext) and every new outgoing connection is made with the material
// current at that moment.

import * as grpc from '@grpc/grpc-js';
import { type PresentedCert, presentedCertProblem } from './cert-checks.js';
import { type TlsConfig, type TlsSide, isHttps } from './tls.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

const providers = new WeakMap<TlsSide, grpc.experimental.CertificateProvider>();

/**
 * A side as a grpc-js CertificateProvider: its certificate, key and CA now, and again after
 * each rotation. Updates are delivered on the next tick, as grpc-js's own file watcher does:
 * its server credentials install their watcher only after subscribing.
 */
function providerOf(side: TlsSide): grpc.experimental.CertificateProvider {
  let p = providers.get(side);
  if (p) return p;
  const ca = new Set<CaListener>();
  const identity = new Set<IdentityListener>();
  // No CA file: `undefined` makes Node's TLS use its default roots, as createSsl(null, ...) does.
  const caUpdate = () => ({ caCertificate: side.ca as Buffer });
  const identityUpdate = () => ({ certificate: side.cert, privateKey: side.key });
  side.onChange(() => {
    for (const l of ca) l(caUpdate());
    for (const l of identity) l(identityUpdate());
  });
  p = {
    addCaCertificateListener: (l) => {
      ca.add(l);
      process.nextTick(() => ca.has(l) && l(caUpdate()));
    },
    removeCaCertificateListener: (l) => void ca.delete(l),
    addIdentityCertificateListener: (l) => {
      identity.add(l);
      process.nextTick(() => identity.has(l) && l(identityUpdate()));
    },
    removeIdentityCertificateListener: (l) => void identity.delete(l),
  };
  providers.set(side, p);
  return p;
}

/** Credentials to serve `url` with: TLS for https (client certificates required: TlsSide.requireClientCert). */
export function serverCredentials(url: string, side: TlsSide | undefined): grpc.ServerCredentials {
  if (!isHttps(url)) return grpc.ServerCredentials.createInsecure();
  if (!side) throw new Error(`cannot listen on TLS for ${url}: KeyFile and CertFile are not presented`);
  const p = providerOf(side);
  // grpc-js (1.14) declares (ca, identity, require) but reads its arguments as (identity, ca,
  // require): the provider serves both, so only the second one's presence matters — it asks
  // clients for a certificate (checked against the CA, or the default roots without one).
  return grpc.experimental.createCertificateProviderServerCredentials(p, side.requireClientCert ? p : null, side.requireClientCert);
}

/** grpc-js compares credentials (to share connections) by this function's identity: one for all. */
const skipServerIdentity = (): undefined => undefined;

/**
 * Credentials to dial `url` with: for https, this side's certificate as the client certificate
 * and its trusted CA for the server's (no verification of the server for a self-signed side, as
 * etcd); plaintext for http.
 */
export function channelCredentials(url: string, side: TlsSide | undefined): grpc.ChannelCredentials {
  if (!isHttps(url)) return grpc.credentials.createInsecure();
  if (!side) return grpc.credentials.createSsl();
  const p = providerOf(side);
  const verify = side.selfSigned && !side.ca ? { rejectUnauthorized: false, checkServerIdentity: skipServerIdentity } : {};
  return grpc.experimental.createCertificateProviderChannelCredentials(p, p, verify);
}

/** What a peer call shows of its caller's connection. */
interface PeerCall {
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: PresentedCert & { subject?: { CN?: string | string[] } } };
}

/**
 * Why the caller of a peer call (TLS connections only) may not talk to this member: a verified
 * client certificate without the allowed CommonName (--peer-cert-allowed-cn), not valid for the
 * allowed hostname, or revoked by the CRL (cert-checks.ts: only the leaf — grpc-js shows no
 * intermediates); undefined if it may go on.
 */
export function peerCertProblem(call: PeerCall, tls: TlsConfig | undefined): string | undefined {
  const ctx = call.getAuthContext();
  if (ctx.transportSecurityType !== 'ssl' || !tls) return undefined;
  const cert = ctx.sslPeerCertificate;
  const allowed = tls.peerAllowedCN;
  if (allowed) {
    const cn = cert?.subject?.CN;
    const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
    if (!cns.includes(allowed)) return `CommonName authentication failed (want ${allowed}, got ${cns.join(',') || 'none'})`;
  }
  return cert?.raw ? presentedCertProblem([cert], tls.peer) : undefined;
}
