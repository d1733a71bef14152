// The peer port: the gRPC services members call on each other (RaftPeer, PeerMaintenance).
// An http URL is served by grpc-js itself, in plaintext. An https one by the TLS listener the
// client port uses too (src/util/tls-server.ts: rotated certificates, --cipher-suites, the CRL,
// the allowed hostname, and etcd's checkSAN of a peer's certificate against the address it
// connects from, unless --experimental-peer-skip-client-san-verification, and
// --peer-cert-allowed-cn), whose decrypted connections are handed to grpc-js through its
// connection injector.

import * as grpc from '@grpc/grpc-js';
import type { Server as NetServer } from 'node:net';
import { type RejectedConnection, createTlsListener } from '../util/tls-server.js';
import { type TlsSide, isHttps } from '../util/tls.js';
import { listenAt } from '../util/listen.js';
import { grpcTarget } from '../util/url.js';

export class PeerListener {
  private injector: grpc.ConnectionInjector | undefined;
  private readonly tlsServers: NetServer[] = [];
  private readonly unwatch: Array<() => void> = [];

  constructor(
    private readonly server: grpc.Server,
    private readonly o: {
      /** --experimental-peer-skip-client-san-verification. */
      skipClientSanVerify: boolean;
      /** --peer-cert-allowed-cn. */
      allowedCN?: string;
      /** Told of a TLS connection refused after its handshake. */
      rejected?: (r: RejectedConnection) => void;
    },
  ) {}

  /** Serves `url`; resolves with the port bound. */
  listen(url: string, tls: TlsSide | undefined): Promise<number> {
    if (!isHttps(url)) {
      return new Promise((resolve, reject) =>
        this.server.bindAsync(grpcTarget(url), grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
      );
    }
    if (!tls) throw new Error(`cannot listen on TLS for ${url}: KeyFile and CertFile are not presented`);
    this.injector ??= this.server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const injector = this.injector;
    const l = createTlsListener(tls, {
      // gRPC clients (grpc-js, grpc-go) offer h2 and nothing else is served here.
      alpn: (offered) => (offered.includes('h2') ? 'h2' : undefined),
      checkSan: !this.o.skipClientSanVerify,
      allowedCN: this.o.allowedCN,
      accept: (s) => injector.injectConnection(s),
      rejected: this.o.rejected,
    });
    this.unwatch.push(l.unwatch);
    this.tlsServers.push(l.server);
    return listenAt(l.server, url);
  }

  /** Stops accepting (the gRPC server's sessions are closed by its owner: forceShutdown). */
  close(): void {
    for (const u of this.unwatch) u();
    for (const s of this.tlsServers) s.close();
    this.injector?.destroy();
  }
}
