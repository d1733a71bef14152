// The client-facing gRPC server: every etcd v3 service raftkv implements, on each
// --listen-client-urls address.

import * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/etcd-server.js';
import { type TlsSide, serverCredentials } from '../util/tls.js';
import { grpcTarget } from '../util/url.js';
import { authService } from './auth-service.js';
import { clusterService } from './cluster-service.js';
import { kvService } from './kv-service.js';
import { leaseService } from './lease-service.js';
import { maintenanceService } from './maintenance-service.js';
import { watchService } from './watch-service.js';

/** etcd lets a request exceed --max-request-bytes by this much at the gRPC layer. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** A gRPC service: its definition and implementation (the JSON gateway calls the same ones). */
export type ClientService = [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];

/** Every client-facing service of a member, each made once and shared by gRPC and the gateway. */
export function clientServices(s: EtcdServer): ClientService[] {
  return [kvService(s), watchService(s), leaseService(s), clusterService(s), maintenanceService(s), authService(s)];
}

export function createClientServer(s: EtcdServer, services: ClientService[] = clientServices(s)): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': s.cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
  });
  for (const [svc, impl] of services) server.addService(svc, impl);
  return server;
}

/**
 * Serves `server` on `url`: with TLS (`tls`: the side's certificate, and client certificates
 * required under client cert auth) for an https URL, in plaintext for an http one. A client
 * that fails the TLS handshake (plaintext, no or an untrusted certificate) is dropped by TLS.
 */
export async function bind(server: grpc.Server, url: string, tls?: TlsSide): Promise<number> {
  const creds = serverCredentials(url, tls);
  return new Promise((resolve, reject) => server.bindAsync(grpcTarget(url), creds, (err, port) => (err ? reject(err) : resolve(port))));
}
