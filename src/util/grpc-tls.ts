// TLS for gRPC: the credentials a member dials with. Apart from tls.ts (certificates and flags)
// so that reading the flags does not load grpc-js. (Both ports' TLS servers, with their checks
// of a client's certificate, are src/util/tls-server.ts.)
//
// Dialing credentials follow a side's rotations (TlsSide.onChange): they are grpc-js's
// certificate-provider credentials fed by the side, so every new outgoing connection is made
// with the certificate, key and CA current at that moment.

import * as grpc from '@grpc/grpc-js';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import { peerIdentityProblem } from './cert-checks.js';
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

const peerVerify = new WeakMap<TlsConfig, grpc.VerifyOptions>();

/**
 * Credentials to dial a peer at `url`: the peer side's, and as etcd (its TLSInfo's
 * VerifyPeerCertificate serves dialing too) the peer's server certificate must carry the
 * allowed CommonName (--peer-cert-allowed-cn) or be valid for the allowed hostname
 * (--peer-cert-allowed-hostname), else the connection fails: a member with the wrong
 * certificate is cut off both ways.
 */
export function peerChannelCredentials(url: string, tls: TlsConfig | undefined): grpc.ChannelCredentials {
  const side = tls?.peer;
  const cn = tls?.peerAllowedCN;
  const host = side?.o.allowedHostname;
  if (!isHttps(url) || !side || (side.selfSigned && !side.ca) || (!cn && !host)) return channelCredentials(url, side);
  let verify = peerVerify.get(tls);
  if (!verify) {
    verify = {
      checkServerIdentity: (hostname: string, cert: PeerCertificate): Error | undefined =>
        checkServerIdentity(hostname, cert) ?? (peerIdentityProblem(cert, cn, host) ? new Error('client certificate authentication failed') : undefined),
    };
    peerVerify.set(tls, verify);
  }
  const p = providerOf(side);
  return grpc.experimental.createCertificateProviderChannelCredentials(p, p, verify);
}
