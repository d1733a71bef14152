// bcrypt (bcryptjs) on a worker thread: a cost-10 hash is ~100 ms of CPU, and a member must
// keep heartbeating while many clients authenticate at once. One worker per member, started on
// first use and unref'd (it never keeps a process alive). If a worker cannot be started,
// bcryptjs's async API is used instead (it yields to the event loop every 100 ms of work).
// bcryptjs itself is loaded only then: the main thread never needs it otherwise, and loading it
// is ~10-30 ms of every member's start.
//
// Jobs wait here, not in the worker's message port, and go to the worker one at a time: a job
// whose caller has gone (its call cancelled, its deadline passed) is dropped before it costs
// ~100 ms of the worker, and at most MAX_QUEUED wait — past that a job is refused with etcd's
// "too many requests". Before, every Authenticate was posted at once: 150 attempts abandoned
// after 200 ms made a correct login wait 12.9 s behind them.

import { Worker } from 'node:worker_threads';
import type { BcryptJob, BcryptResult } from './bcrypt-worker.js';

/** bcryptjs for the main thread, loaded when the worker cannot be used. */
const bcryptHere = async (): Promise<typeof import('bcryptjs')> => (await import('bcryptjs')).default;

type Waiter = { resolve: (v: string | boolean) => void; reject: (e: Error) => void };
type Queued = Waiter & { job: BcryptJob; signal?: AbortSignal };

/** Jobs that may wait for the worker; more are refused (at ~10 compares a second, a minute and a half of them). */
export const MAX_QUEUED = 1000;

export class BcryptPool {
  private worker: Worker | undefined;
  private failed = false;
  private nextId = 1;
  /** The job the worker has (one at a time). */
  private readonly waiting = new Map<number, Waiter>();
  private readonly queue: Queued[] = [];
  /** Jobs handed to the worker so far. */
  jobsRun = 0;

  constructor(
    /** The error a job past MAX_QUEUED is refused with. */
    private readonly tooMany: () => Error = () => new Error('too many requests'),
  ) {}

  hash(password: string, cost: number): Promise<string> {
    const w = this.get();
    if (!w) return bcryptHere().then((b) => b.hash(password, cost));
    return this.run({ id: this.nextId++, op: 'hash', password, cost }) as Promise<string>;
  }

  /** `signal`: the caller gave up; its job is dropped if the worker has not started it. */
  compare(password: string, hash: string, signal?: AbortSignal): Promise<boolean> {
    const w = this.get();
    if (!w) return bcryptHere().then((b) => b.compare(password, hash));
    return this.run({ id: this.nextId++, op: 'compare', password, hash }, signal) as Promise<boolean>;
  }

  /** Jobs waiting for the worker (not counting the one it has). */
  get queued(): number {
    return this.queue.length;
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private run(job: BcryptJob, signal?: AbortSignal): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('cancelled'));
      if (this.queue.length >= MAX_QUEUED) return reject(this.tooMany());
      this.queue.push({ job, signal, resolve, reject });
      this.next();
    });
  }

  /** Hands the worker the next job whose caller still waits, if it has none. */
  private next(): void {
    const w = this.worker;
    if (!w || this.waiting.size > 0) return;
    for (let q = this.queue.shift(); q; q = this.queue.shift()) {
      if (q.signal?.aborted) {
        q.reject(new Error('cancelled'));
        continue;
      }
      this.waiting.set(q.job.id, q);
      this.jobsRun++;
      w.postMessage(q.job);
      return;
    }
  }

  private get(): Worker | undefined {
    if (this.worker || this.failed) return this.worker;
    try {
      const w = new Worker(new URL('./bcrypt-worker.js', import.meta.url));
      w.on('message', (r: BcryptResult) => {
        const waiter = this.waiting.get(r.id);
        if (!waiter) return;
        this.waiting.delete(r.id);
        if (r.ok) waiter.resolve(r.value);
        else waiter.reject(new Error(r.error));
        this.next();
      });
      const fail = (e: Error): void => {
        // The worker died: fail what it held, fall back to the async API from now on.
        this.worker = undefined;
        this.failed = true;
        for (const waiter of this.waiting.values()) waiter.reject(e);
        this.waiting.clear();
        for (const q of this.queue.splice(0)) q.reject(e);
      };
      w.on('error', fail);
      w.on('exit', (code) => {
        if (this.worker === w) fail(new Error(`bcrypt worker exited with code ${code}`));
      });
      // After the listeners (adding a 'message' listener refs the worker's port again).
      w.unref();
      this.worker = w;
    } catch {
      this.failed = true;
    }
    return this.worker;
  }
}
