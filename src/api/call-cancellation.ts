// A gRPC call's cancellation as an AbortSignal, for handlers that wait (a Lock queued behind
// another holder, a Campaign behind the leader, an Observe stream): the client cancelling the
// call or its deadline passing aborts the wait, so nothing waits on behalf of a caller that is
// gone (etcd's handlers wait on the call's context the same way).

import { EtcdError, ErrorCode } from '../kv/errors.js';

/** What grpc-js gives every server call: a `cancelled` flag and event. */
export interface CancellableCall {
  readonly cancelled: boolean;
  once(event: 'cancelled', listener: () => void): unknown;
}

/** An AbortSignal that fires when `call` is cancelled (already aborted if it was). */
export function cancellationOf(call: CancellableCall): AbortSignal {
  const ac = new AbortController();
  if (call.cancelled) ac.abort();
  else call.once('cancelled', () => ac.abort());
  return ac.signal;
}

/** Go's context.Canceled as etcd's handlers return it (the client no longer listens anyway). */
export function callCancelled(): EtcdError {
  return new EtcdError(ErrorCode.CANCELLED, 'context canceled');
}

export function throwIfCancelled(signal: AbortSignal): void {
  if (signal.aborted) throw callCancelled();
}

/**
 * Settles as `wait` does, or rejects with callCancelled() as soon as `signal` aborts (the
 * caller then releases what the wait holds, e.g. a watcher). Leaves no listener behind.
 */
export function untilCancelled<T>(signal: AbortSignal, wait: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(callCancelled());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(callCancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    wait.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
