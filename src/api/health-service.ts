// grpc.health.v1.Health on the client port, as etcd serves it: grpc-go's health server with the
// empty service name ("every etcd service") SERVING from the moment the member serves clients
// (etcd 3.4 v3rpc/grpc.go; 3.5 flips it to NOT_SERVING only during a defrag, and only under an
// experimental flag raftkv does not have). Any other service name is unknown: Check answers
// NOT_FOUND "unknown service" (grpc-go's text) and Watch streams SERVICE_UNKNOWN and stays open,
// as the protocol says. As on etcd, where the health server sits behind the same interceptors as
// every service, a learner refuses it and `hasleader` metadata is honoured.
//
// Why not grpc-health-check (grpc-node's package, used here before): it parses its .proto with
// proto-loader and protobufjs when it is loaded, ~0.1 s of every member's start — a restarted
// member serves nothing until its code is loaded. The service is generated at build time like
// every other one (proto/grpc/health/v1/health.proto), and since the status of the one known
// service never changes while a member serves, there is no status map or watcher list to keep:
// a Watch gets the status once and stays open until the client or the server ends it.

import * as grpc from '@grpc/grpc-js';
import {
  type HealthCheckRequest,
  type HealthCheckResponse,
  HealthCheckResponse_ServingStatus as ServingStatus,
  HealthService,
} from '../gen/grpc/health/v1/health.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { checkCall, guardStream, toServiceError } from './grpc-util.js';

/** The service name for the health of the whole member (gRPC's convention, and etcd's only one). */
export const ALL_SERVICES = '';

/** The status of `service`: SERVING for the whole member, undefined for any other name. */
const statusOf = (service: string): ServingStatus | undefined => (service === ALL_SERVICES ? ServingStatus.SERVING : undefined);

export function healthService(s: EtcdServer): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const check: grpc.handleUnaryCall<HealthCheckRequest, HealthCheckResponse> = (call, cb) => {
    try {
      checkCall(s, call.metadata, false);
    } catch (e) {
      cb(toServiceError(e), null);
      return;
    }
    const status = statusOf(call.request.service);
    if (status === undefined) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' }, null);
    else cb(null, { status });
  };
  const watch: grpc.handleServerStreamingCall<HealthCheckRequest, HealthCheckResponse> = (call) => {
    if (!guardStream(s, call as grpc.ServerWritableStream<unknown, unknown>)) return;
    call.write({ status: statusOf(call.request.service) ?? ServingStatus.SERVICE_UNKNOWN });
  };
  return [HealthService as unknown as grpc.ServiceDefinition, { check, watch } as grpc.UntypedServiceImplementation];
}
