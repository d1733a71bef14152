// grpc-js's receive-limit error in grpc-go's words, for the calls grpc-js still serves (the
// streams: Watch, LeaseKeepAlive, and the rare unary method off the lean path).
//
// Why: etcd (grpc-go) refuses a message over its receive limit with RESOURCE_EXHAUSTED
// "grpc: received message larger than max (N vs. M)"; grpc-js says "Received message larger than
// max (N vs M)". The lean unary path (./lean-unary.ts) and the JSON gateway write grpc-go's text
// themselves (receivedTooLargeText); a Watch stream sent a 2.2 MB request got grpc-js's. grpc-js makes that text in its
// StreamDecoder, whose error becomes the call's status as it is; so its `write` is wrapped to
// give grpc-go's text instead. If grpc-js no longer has that class or method, nothing is
// wrapped and its own text stays (test/integration/watch-stream.test.ts notices).

import { StreamDecoder } from '@grpc/grpc-js/build/src/stream-decoder.js';

const GRPC_JS_TEXT = /^Received message larger than max \((\d+) vs (\d+)\)$/;
const WRAPPED = Symbol('raftkv: receive limit in grpc-go words');

/** grpc-go's refusal of a message of `size` bytes over its receive limit `max`. */
export function receivedTooLargeText(size: number | string, max: number | string): string {
  return `grpc: received message larger than max (${size} vs. ${max})`;
}

/** grpc-go's text for grpc-js's, or undefined if `message` is not grpc-js's receive-limit text. */
function grpcGoReceiveLimitText(message: string): string | undefined {
  const m = GRPC_JS_TEXT.exec(message);
  return m ? receivedTooLargeText(m[1]!, m[2]!) : undefined;
}

/** Wraps grpc-js's StreamDecoder.write once; whether its errors now carry grpc-go's text. */
export function receiveLimitInGrpcGoWords(): boolean {
  const proto = (StreamDecoder as unknown as { prototype?: Record<string | symbol, unknown> } | undefined)?.prototype;
  if (!proto || typeof proto.write !== 'function') return false;
  if (proto[WRAPPED]) return true;
  const write = proto.write as (this: unknown, data: Buffer) => Buffer[];
  proto.write = function (this: unknown, data: Buffer): Buffer[] {
    try {
      return write.call(this, data);
    } catch (e) {
      const text = e instanceof Error ? grpcGoReceiveLimitText(e.message) : undefined;
      throw text ? new Error(text) : e;
    }
  };
  proto[WRAPPED] = true;
  return true;
}
