// TLS for gRPC: the credentials a member dials with, and the check of a peer call's certificate
// (--peer-cert-allowed-cn). Apart from tls.ts (certificates and flags) so that reading the
// flags does not load grpc-js. (Both ports' TLS servers are src/util/tls-server.ts.)
//
// Dialing credentials follow a side's rotations (TlsSide.onChange): they are grpc-js's
// certificate-provider credentials fed by the side, so every new outgoing connection is made
// with the certificate, key and CA current at that moment.

import * as grpc from '@grpc/grpc-js';
import { type TlsConfig, type TlsSide, isHttps } from './tls.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

const providers = new WeakMap<TlsSide, grpc.experimental.CertificateProvider>();

/**
 * A side as a grpc-js CertificateProvider: its certificate, key and CA now, and again after
 * each rotation. Updates are delivered on the next tick, as grpc-js's own file watcher does.
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
  getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: { subject?: { CN?: string | string[] } } };
}

/**
 * Why the caller of a peer call (TLS connections only) may not talk to this member: a verified
 * client certificate without the allowed CommonName (--peer-cert-allowed-cn); undefined if it
 * may go on. (The CRL, the allowed hostname and the SANs were checked when it connected.)
 */
export function peerCertProblem(call: PeerCall, tls: TlsConfig | undefined): string | undefined {
  const ctx = call.getAuthContext();
  const allowed = tls?.peerAllowedCN;
  if (ctx.transportSecurityType !== 'ssl' || !allowed) return undefined;
  const cn = ctx.sslPeerCertificate?.subject?.CN;
  const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
  return cns.includes(allowed) ? undefined : `CommonName authentication failed (want ${allowed}, got ${cns.join(',') || 'none'})`;
}
