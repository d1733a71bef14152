// Where etcd errors meet gRPC: an EtcdError's code (src/kv/errors.ts, transport-neutral) as the
// gRPC status a client sees, and a forwarded call's gRPC error back as an EtcdError. The code
// numbers are the same on both sides (etcd's rpctypes are gRPC codes), so what a client sees on
// the wire is exactly etcd's status and message.
//
// A leaf module (gRPC and the error types only): the client services (grpc-util.ts) and the
// peer HashKV service (src/server/corrupt-check.ts) use it alike.

import * as grpc from '@grpc/grpc-js';
import { ErrorCode, EtcdError } from '../kv/errors.js';

const toGrpc: Readonly<Record<ErrorCode, grpc.status>> = {
  [ErrorCode.OK]: grpc.status.OK,
  [ErrorCode.CANCELLED]: grpc.status.CANCELLED,
  [ErrorCode.UNKNOWN]: grpc.status.UNKNOWN,
  [ErrorCode.INVALID_ARGUMENT]: grpc.status.INVALID_ARGUMENT,
  [ErrorCode.DEADLINE_EXCEEDED]: grpc.status.DEADLINE_EXCEEDED,
  [ErrorCode.NOT_FOUND]: grpc.status.NOT_FOUND,
  [ErrorCode.ALREADY_EXISTS]: grpc.status.ALREADY_EXISTS,
  [ErrorCode.PERMISSION_DENIED]: grpc.status.PERMISSION_DENIED,
  [ErrorCode.RESOURCE_EXHAUSTED]: grpc.status.RESOURCE_EXHAUSTED,
  [ErrorCode.FAILED_PRECONDITION]: grpc.status.FAILED_PRECONDITION,
  [ErrorCode.ABORTED]: grpc.status.ABORTED,
  [ErrorCode.OUT_OF_RANGE]: grpc.status.OUT_OF_RANGE,
  [ErrorCode.UNIMPLEMENTED]: grpc.status.UNIMPLEMENTED,
  [ErrorCode.INTERNAL]: grpc.status.INTERNAL,
  [ErrorCode.UNAVAILABLE]: grpc.status.UNAVAILABLE,
  [ErrorCode.DATA_LOSS]: grpc.status.DATA_LOSS,
  [ErrorCode.UNAUTHENTICATED]: grpc.status.UNAUTHENTICATED,
};

const fromGrpc = new Map<grpc.status, ErrorCode>(
  (Object.entries(toGrpc) as Array<[string, grpc.status]>).map(([code, st]) => [st, Number(code) as ErrorCode]),
);

/** The gRPC status of an etcd error code. */
export function grpcStatusOf(code: ErrorCode): grpc.status {
  return toGrpc[code] ?? grpc.status.UNKNOWN;
}

/** Go's codes.Code names, by code number (grpc_code labels; Go's error texts). */
/** grpc-go's names of the status codes, by number. */
export const CODE_NAMES: readonly string[] = [
  'OK', 'Canceled', 'Unknown', 'InvalidArgument', 'DeadlineExceeded', 'NotFound', 'AlreadyExists', 'PermissionDenied',
  'ResourceExhausted', 'FailedPrecondition', 'Aborted', 'OutOfRange', 'Unimplemented', 'Internal', 'Unavailable',
  'DataLoss', 'Unauthenticated',
];

export function grpcCodeName(code: number | undefined): string {
  // grpc-js sends an error without a numeric code as UNKNOWN.
  return CODE_NAMES[code ?? 2] ?? 'Unknown';
}

/** An etcd error as grpc-go's status error prints it (etcd's rpctypes.ErrGRPC*.Error()). */
export function goErrorText(e: EtcdError): string {
  return `rpc error: code = ${grpcCodeName(grpcStatusOf(e.code))} desc = ${e.message}`;
}

/** What a handler's failure looks like on the wire: etcd's status and message, INTERNAL for the unexpected. */
export function toServiceError(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof EtcdError) return { code: grpcStatusOf(e.code), details: e.message };
  const msg = e instanceof Error ? e.message : String(e);
  return { code: grpc.status.INTERNAL, details: msg };
}

/** A gRPC error from a call forwarded to another member (the leader), as the etcd error it carries. */
export function fromServiceError(err: Pick<grpc.ServiceError, 'code' | 'details'>): EtcdError {
  return new EtcdError(fromGrpc.get(err.code) ?? ErrorCode.UNKNOWN, err.details);
}
