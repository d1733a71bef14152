// instrumentServices (src/api/grpc-metrics.ts) on plain call objects, as the JSON gateway hands
// them to the services (an EventEmitter with write/end, no 'finish'): each call is reported
// started once and handled once, with go-grpc-prometheus' labels and Go's code names. Real
// grpc-js calls are covered by test/integration/metrics.test.ts.

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { type CountingSerializer, type GrpcCallLabels, type Service, instrumentServices } from '../../src/api/grpc-metrics.js';
import { grpcCodeName } from '../../src/api/grpc-status.js';

const method = (path: string, requestStream: boolean, responseStream: boolean) => ({
  path,
  requestStream,
  responseStream,
  requestSerialize: (v: Buffer) => v,
  requestDeserialize: (b: Buffer) => b,
  responseSerialize: (v: Buffer) => v,
  responseDeserialize: (b: Buffer) => b,
});

class FakeStream extends EventEmitter {
  ended = 0;
  end(): void {
    this.ended++;
  }
}

it('reports every call once, with its labels and code, however it ends', async () => {
  const seen: string[] = [];
  const metrics = {
    method: (l: GrpcCallLabels) => ({
      started: () => seen.push(`start ${l.grpc_type} ${l.grpc_service} ${l.grpc_method}`),
      handled: (code: string) => seen.push(`done ${l.grpc_method} ${code}`),
      received: (bytes: number) => seen.push(`in ${l.grpc_method} ${bytes}`),
      sent: (bytes: number) => seen.push(`out ${l.grpc_method} ${bytes}`),
    }),
  };
  const def = {
    range: method('/etcdserverpb.KV/Range', false, false),
    watch: method('/etcdserverpb.Watch/Watch', true, true),
    snapshot: method('/etcdserverpb.Maintenance/Snapshot', false, true),
  } as unknown as grpc.ServiceDefinition;
  const impl = {
    range: (call: { request: string }, cb: (e: unknown, v?: unknown) => void) =>
      call.request === 'bad' ? cb({ code: grpc.status.INVALID_ARGUMENT, details: 'no' }) : cb(null, 'ok'),
    watch: (call: FakeStream) => call.on('data', () => call.end()),
    snapshot: (call: FakeStream) => queueMicrotask(() => call.emit('error', { code: grpc.status.UNAVAILABLE })),
  };
  const [[defs, wrapped]] = instrumentServices([[def, impl as unknown as grpc.UntypedServiceImplementation]] as Service[], metrics);
  const w = wrapped as unknown as typeof impl;

  // Messages and their bytes are counted as the definitions (de)serialize them (gRPC calls;
  // the gateway's objects never pass through them), the request once decoded.
  const range = (defs as unknown as typeof def)['range'] as unknown as grpc.MethodDefinition<Buffer, Buffer>;
  assert.deepEqual(range.requestDeserialize(Buffer.from('abc')), Buffer.from('abc'));
  assert.deepEqual(range.responseSerialize(Buffer.from('hello')), Buffer.from('hello'));
  (range.responseSerialize as CountingSerializer).countSent!(7);
  assert.deepEqual(seen.splice(0), ['in Range 3', 'out Range 5', 'out Range 7']);

  const answers: unknown[] = [];
  w.range({ request: 'fine' }, (e, v) => answers.push(e ?? v));
  w.range({ request: 'bad' }, (e, v) => answers.push(e ?? v));
  assert.deepEqual(answers, ['ok', { code: grpc.status.INVALID_ARGUMENT, details: 'no' }], 'the answers pass through');

  const ended = new FakeStream();
  w.watch(ended);
  ended.emit('data', {});
  const cancelled = new FakeStream();
  w.watch(cancelled);
  cancelled.emit('cancelled', 'cancelled');
  cancelled.emit('close');
  const failed = new FakeStream();
  failed.on('error', () => {}); // the gateway's own listener
  w.snapshot(failed);
  await new Promise((r) => setImmediate(r));

  assert.equal(ended.ended, 1, "the implementation's end() still ends the stream");
  assert.deepEqual(seen, [
    'start unary etcdserverpb.KV Range',
    'done Range OK',
    'start unary etcdserverpb.KV Range',
    'done Range InvalidArgument',
    'start bidi_stream etcdserverpb.Watch Watch',
    'start bidi_stream etcdserverpb.Watch Watch',
    'done Watch Canceled',
    'start server_stream etcdserverpb.Maintenance Snapshot',
    'done Watch OK',
    'done Snapshot Unavailable',
  ]);
  assert.equal(grpcCodeName(grpc.status.UNAUTHENTICATED), 'Unauthenticated');
  assert.equal(grpcCodeName(undefined), 'Unknown');
});
