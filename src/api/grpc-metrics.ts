// gRPC server metrics as go-grpc-prometheus names them (etcd registers its interceptors, and
// etcd's Grafana dashboard and alerts are written against them): every call counted when it
// starts and when it ends with its status code, by grpc_type, grpc_service, grpc_method and
// grpc_code ("OK", "NotFound", "Unavailable"... — Go's code names), and timed.
//
// Owns: wrapping service implementations so that each call is reported once, whatever way it
// ends (callback, stream end, error, client cancel). Never: changes what a call does or answers,
// or reads a stream's messages (a listener on 'data' would start the flow before the handler).

import type * as grpc from '@grpc/grpc-js';
// grpc_code: Go's name of the code, as go-grpc-prometheus puts it.
import { CODE_NAMES, grpcCodeName } from './grpc-status.js';

/** A service definition and its implementation (client-server.ts' ClientService; not imported
 * from there, which imports the server, which imports the metrics that import this). */
export type Service = [grpc.ServiceDefinition, grpc.UntypedServiceImplementation];

export type GrpcType = 'unary' | 'client_stream' | 'server_stream' | 'bidi_stream';

export interface GrpcCallLabels {
  grpc_type: GrpcType;
  /** The full service name, as etcd's: `etcdserverpb.KV`. */
  grpc_service: string;
  grpc_method: string;
}

/** Where the wrapped calls are reported (src/server/metrics.ts implements it with prom-client). */
export interface GrpcServerMetrics {
  /**
   * The recorder of one method's calls, asked once per method (labels resolved once, not per
   * call); its series exist from the start, handled ones for each of `codes` (go-grpc-prometheus'
   * preRegisterMethod, which etcd's /metrics shows at 0).
   */
  method(call: GrpcCallLabels, codes: readonly string[]): GrpcMethodMetrics;
}

export interface GrpcMethodMetrics {
  /** A call begins; `clientApiVersion`: its `client-api-version` metadata (etcd's clients send "3.4"). */
  started(clientApiVersion: string | undefined): void;
  handled(code: string, seconds: number): void;
  /** A request message of `bytes` (its protobuf encoding) was read (etcd's codec, go-grpc-prometheus' RecvMsg). */
  received(bytes: number): void;
  /** A response message of `bytes` was encoded for sending (etcd's codec, go-grpc-prometheus' SendMsg). */
  sent(bytes: number): void;
}

/**
 * A response serializer that counts what it encodes. `countSent`: for a sender that sends bytes
 * encoded beforehand instead of calling it (the lean unary path, src/api/lean-unary.ts).
 */
export type CountingSerializer = ((v: unknown) => Buffer) & { countSent?: (bytes: number) => void };

/** A request deserializer that counts what it decodes; `countReceived`: for a message that came as an object (the JSON gateway). */
export type CountingDeserializer = ((b: Buffer) => unknown) & { countReceived?: (bytes: number) => void };

function typeOf(m: grpc.MethodDefinition<unknown, unknown>): GrpcType {
  if (m.requestStream) return m.responseStream ? 'bidi_stream' : 'client_stream';
  return m.responseStream ? 'server_stream' : 'unary';
}

/** `/etcdserverpb.KV/Range` -> service `etcdserverpb.KV`, method `Range`. */
function labelsOf(m: grpc.MethodDefinition<unknown, unknown>): GrpcCallLabels {
  const [, service = '', method = ''] = m.path.split('/');
  return { grpc_type: typeOf(m), grpc_service: service, grpc_method: method };
}

/** The call's `client-api-version` metadata, which etcd's clients send (etcd_server_client_requests_total). */
function clientApiVersion(call: unknown): string | undefined {
  const v = (call as { metadata?: grpc.Metadata }).metadata?.get('client-api-version')[0];
  return typeof v === 'string' ? v : undefined;
}

type AnyHandler = (...args: unknown[]) => unknown;
type Callback = (err: { code?: number } | null, ...rest: unknown[]) => void;

/** One method's implementation, reporting each call to `metrics`. */
function instrument(def: grpc.MethodDefinition<unknown, unknown>, impl: AnyHandler, metrics: GrpcMethodMetrics): AnyHandler {
  if (!def.responseStream) {
    // Unary and client-streaming: the call ends when the implementation calls back.
    return (call: unknown, callback: unknown) => {
      metrics.started(clientApiVersion(call));
      const t0 = performance.now();
      const cb = callback as Callback;
      return impl(call, (err: { code?: number } | null, ...rest: unknown[]) => {
        metrics.handled(err ? grpcCodeName(err.code) : 'OK', (performance.now() - t0) / 1000);
        cb(err, ...rest);
      });
    };
  }
  // Server- and bidi-streaming: the stream ends with an error (emitted by the implementation,
  // after which grpc-js ends it), by end() (OK), or by the client cancelling.
  return (call: unknown) => {
    metrics.started(clientApiVersion(call));
    const t0 = performance.now();
    const stream = call as grpc.ServerWritableStream<unknown, unknown>;
    let reported = false;
    const report = (code: string): void => {
      if (reported) return;
      reported = true;
      metrics.handled(code, (performance.now() - t0) / 1000);
    };
    // The first sign wins. A stream the implementation ends itself is OK, also when it ends it
    // because the client half-closed or went away (grpc-js reports 'cancelled' after every
    // stream's close, so a later 'cancelled' says nothing).
    stream.once('error', (e: { code?: number }) => report(grpcCodeName(e?.code)));
    // The implementation's end() is the OK (the JSON gateway's calls have no 'finish'). Looked at
    // a microtask later: grpc-js calls end() itself from its own 'error' listener, before ours.
    const end = stream.end.bind(stream) as (...args: unknown[]) => unknown;
    (stream as { end: (...args: unknown[]) => unknown }).end = (...args: unknown[]) => {
      queueMicrotask(() => report('OK'));
      return end(...args);
    };
    stream.once('finish', () => report('OK'));
    stream.once('cancelled', () => report('Canceled'));
    stream.once('close', () => report('Canceled'));
    return impl(call);
  };
}

/**
 * A method's definition whose (de)serializers count the messages and their bytes, as etcd's
 * gRPC codec counts etcd_network_client_grpc_*_bytes_total and go-grpc-prometheus counts
 * grpc_server_msg_*_total: a message is counted once decoded, a response once encoded. The JSON
 * gateway, whose messages reach the implementations as objects, counts them through
 * `countReceived` and `countSent` with their protobuf sizes (etcd's gateway is a gRPC client of
 * its own member, so its calls are counted as any other).
 */
function countingDefinition(def: grpc.MethodDefinition<unknown, unknown>, metrics: GrpcMethodMetrics): grpc.MethodDefinition<unknown, unknown> {
  const decode = def.requestDeserialize;
  const encode = def.responseSerialize;
  const serialize: CountingSerializer = (v: unknown): Buffer => {
    const b = encode(v);
    metrics.sent(b.length);
    return b;
  };
  serialize.countSent = (bytes) => metrics.sent(bytes);
  const deserialize: CountingDeserializer = (b: Buffer) => {
    const v = decode(b);
    metrics.received(b.length);
    return v;
  };
  deserialize.countReceived = (bytes) => metrics.received(bytes);
  return { ...def, requestDeserialize: deserialize, responseSerialize: serialize };
}

/**
 * The same services with every method reporting its calls and messages to `metrics`
 * (go-grpc-prometheus' server interceptors, etcd's codec): give the result to the gRPC server
 * (and any gateway) instead of the plain definitions and implementations.
 */
export function instrumentServices<S extends Service>(services: S[], metrics: GrpcServerMetrics): S[] {
  return services.map(([svc, impl]) => {
    const defs: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    const wrapped: grpc.UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(svc as Record<string, grpc.MethodDefinition<unknown, unknown>>)) {
      const m = metrics.method(labelsOf(def), CODE_NAMES);
      defs[name] = countingDefinition(def, m);
      const h = impl[name];
      if (h) wrapped[name] = instrument(def, h as AnyHandler, m) as grpc.UntypedHandleCall;
    }
    for (const [name, h] of Object.entries(impl)) if (!(name in wrapped)) wrapped[name] = h;
    return [defs, wrapped] as S;
  });
}
