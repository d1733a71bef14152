// TLS for gRPC: the credentials a member serves and dials with, and --peer-cert-allowed-cn.
// Apart from tls.ts (certificates and flags) so that reading the flags does not load grpc-js.

import * as grpc from '@grpc/grpc-js';
import { type TlsSide, isHttps } from './tls.js';

/** Credentials to serve `url` with: TLS for https (client certificates required: TlsSide.requireClientCert). */
export function serverCredentials(url: string, side: TlsSide | undefined): grpc.ServerCredentials {
  if (!isHttps(url)) return grpc.ServerCredentials.createInsecure();
  if (!side) throw new Error(`cannot listen on TLS for ${url}: KeyFile and CertFile are not presented`);
  return grpc.ServerCredentials.createSsl(side.ca ?? null, [{ private_key: side.key, cert_chain: side.cert }], side.requireClientCert);
}

/**
 * Credentials to dial `url` with: for https, this side's certificate as the client certificate
 * and its trusted CA for the server's (no verification of the server for a self-signed side, as
 * etcd); plaintext for http.
 */
export function channelCredentials(url: string, side: TlsSide | undefined): grpc.ChannelCredentials {
  if (!isHttps(url)) return grpc.credentials.createInsecure();
  if (!side) return grpc.credentials.createSsl();
  return grpc.credentials.createSsl(
    side.ca ?? null,
    side.key,
    side.cert,
    side.selfSigned && !side.ca ? { rejectUnauthorized: false, checkServerIdentity: () => undefined } : undefined,
  );
}

/**
 * --peer-cert-allowed-cn: an error text if the caller's verified client certificate (TLS
 * connections only) does not carry the allowed CommonName; undefined if it may go on.
 */
export function checkAllowedCN(call: { getAuthContext(): { transportSecurityType?: string; sslPeerCertificate?: { subject?: { CN?: string | string[] } } } }, allowed: string | undefined): string | undefined {
  if (!allowed) return undefined;
  const ctx = call.getAuthContext();
  if (ctx.transportSecurityType !== 'ssl') return undefined;
  const cn = ctx.sslPeerCertificate?.subject?.CN;
  const cns = Array.isArray(cn) ? cn : cn ? [cn] : [];
  return cns.includes(allowed) ? undefined : `CommonName authentication failed (want ${allowed}, got ${cns.join(',') || 'none'})`;
}
