// grpc.health.v1.Health on the client port, as etcd serves it: grpc-go's health server with the
// empty service name ("every etcd service") SERVING from the moment the member serves clients
// (etcd 3.4 v3rpc/grpc.go; 3.5 flips it to NOT_SERVING only during a defrag, and only under an
// experimental flag raftkv does not have). Any other service name is unknown: Check answers
// NOT_FOUND "unknown service" (grpc-go's text) and Watch streams SERVICE_UNKNOWN.
//
// The status map and Watch streams are grpc-health-check's (the official grpc-node package);
// only Check's unknown-service text is grpc-go's, and the List method grpc-go's health server
// did not have in etcd 3.4/3.5 is left out. As on etcd, where the health server sits behind the
// same interceptors as every service, a learner refuses it and `hasleader` metadata is honoured.

import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { EtcdServer } from '../server/etcd-server.js';
import { checkCall, guardStream, toServiceError } from './grpc-util.js';

/** The service name for the health of the whole member (gRPC's convention, and etcd's only one). */
export const ALL_SERVICES = '';

export function healthService(s: EtcdServer): [grpc.ServiceDefinition, grpc.UntypedServiceImplementation] {
  const health = new HealthImplementation({ [ALL_SERVICES]: 'SERVING' });
  // The package registers itself on a server; take its definition and handlers instead, so the
  // member's one list of client services (client-server.ts) stays the single place they are added.
  let definition: grpc.ServiceDefinition | undefined;
  let handlers: grpc.UntypedServiceImplementation | undefined;
  health.addToServer({
    addService: (d, h) => {
      definition = d as unknown as grpc.ServiceDefinition;
      handlers = h as unknown as grpc.UntypedServiceImplementation;
    },
  });
  if (!definition || !handlers) throw new Error('grpc-health-check did not register its service');
  const { check, watch } = handlers as { check: grpc.handleUnaryCall<unknown, unknown>; watch: grpc.handleServerStreamingCall<unknown, unknown> };
  const { Check, Watch } = definition as Record<string, grpc.MethodDefinition<unknown, unknown>>;
  if (!Check || !Watch) throw new Error('grpc-health-check: no Check/Watch methods');

  const etcdCheck: grpc.handleUnaryCall<unknown, unknown> = (call, cb) => {
    try {
      checkCall(s, call.metadata, false);
    } catch (e) {
      cb(toServiceError(e), null);
      return;
    }
    check(call, (err, res) => {
      if (err && err.code === grpc.status.NOT_FOUND) cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' }, null);
      else cb(err, res);
    });
  };
  const etcdWatch: grpc.handleServerStreamingCall<unknown, unknown> = (call) => {
    if (!guardStream(s, call)) return;
    watch(call);
  };
  return [{ Check, Watch }, { check: etcdCheck, watch: etcdWatch }];
}
