// The client-facing gRPC server: every etcd v3 service raftkv implements, on each
// --listen-client-urls address.

import * as grpc from '@grpc/grpc-js';
import type { EtcdServer } from '../server/etcd-server.js';
import { authService } from './auth-service.js';
import { clusterService } from './cluster-service.js';
import { electionService } from './election-service.js';
import { healthService } from './health-service.js';
import { kvService } from './kv-service.js';
import { leaseService } from './lease-service.js';
import { lockService } from './lock-service.js';
import { maintenanceService } from './maintenance-service.js';
import { watchService } from './watch-service.js';
import { receiveLimitInGrpcGoWords } from './receive-limit-text.js';

/** etcd lets a request exceed --max-request-bytes by this much at the gRPC layer. */
export const GRPC_OVERHEAD_BYTES = 512 * 1024;

/** A gRPC service: its definition and implementation (the JSON gateway calls the same ones). */
export type ClientService = [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];

/** Every client-facing service of a member, each made once and shared by gRPC and the gateway. */
export function clientServices(s: EtcdServer): ClientService[] {
  return [
    kvService(s),
    watchService(s, s.cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES),
    leaseService(s),
    clusterService(s),
    maintenanceService(s),
    authService(s),
    lockService(s),
    electionService(s),
    healthService(s),
  ];
}

export function createClientServer(s: EtcdServer, services: ClientService[] = clientServices(s)): grpc.Server {
  receiveLimitInGrpcGoWords();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': s.cfg.maxRequestBytes + GRPC_OVERHEAD_BYTES,
    'grpc.max_send_message_length': 2 ** 31 - 1,
    'grpc.keepalive_permit_without_calls': 1,
    // No channelz: nothing reads it, and it costs every call (timestamps, a tracker object).
    // Without it grpc-js's forceShutdown() no longer closes the open connections (it finds
    // them in channelz's session table): the front door that owns them closes them (close()).
    'grpc.enable_channelz': 0,
    // etcd's --max-concurrent-streams (default 2^32-1, HTTP/2's unlimited).
    'grpc.max_concurrent_streams': s.cfg.maxConcurrentStreams ?? 0xffffffff,
    // etcd's --grpc-keepalive-interval/--grpc-keepalive-timeout (2h, 20s): ping each client
    // connection that often, drop it when a ping goes unanswered that long, so a vanished
    // client's watch and lease streams are released. As etcd, 0 in either leaves gRPC's own
    // defaults (the same 2h and 20s). --grpc-keepalive-min-time has no grpc-js counterpart.
    ...(() => {
      const interval = s.cfg.grpcKeepAliveIntervalMs ?? 2 * 3600_000;
      const timeout = s.cfg.grpcKeepAliveTimeoutMs ?? 20_000;
      const set = interval > 0 && timeout > 0;
      return { 'grpc.keepalive_time_ms': set ? interval : 2 * 3600_000, 'grpc.keepalive_timeout_ms': set ? timeout : 20_000 };
    })(),
  });
  for (const [svc, impl] of services) server.addService(svc, impl);
  return server;
}
