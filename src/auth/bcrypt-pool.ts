// bcrypt (bcryptjs) on a worker thread: a cost-10 hash is ~100 ms of CPU, and a member must
// keep heartbeating while many clients authenticate at once. One worker per member, started on
// first use and unref'd (it never keeps a process alive); jobs queue in its message port. If a
// worker cannot be started, bcryptjs's async API is used instead (it yields to the event loop
// every 100 ms of work). bcryptjs itself is loaded only then: the main thread never needs it
// otherwise, and loading it is ~10-30 ms of every member's start.

import { Worker } from 'node:worker_threads';
import type { BcryptJob, BcryptResult } from './bcrypt-worker.js';

/** bcryptjs for the main thread, loaded when the worker cannot be used. */
const bcryptHere = async (): Promise<typeof import('bcryptjs')> => (await import('bcryptjs')).default;

type Waiter = { resolve: (v: string | boolean) => void; reject: (e: Error) => void };

export class BcryptPool {
  private worker: Worker | undefined;
  private failed = false;
  private nextId = 1;
  private readonly waiting = new Map<number, Waiter>();

  hash(password: string, cost: number): Promise<string> {
    const w = this.get();
    if (!w) return bcryptHere().then((b) => b.hash(password, cost));
    return this.run(w, { id: this.nextId++, op: 'hash', password, cost }) as Promise<string>;
  }

  compare(password: string, hash: string): Promise<boolean> {
    const w = this.get();
    if (!w) return bcryptHere().then((b) => b.compare(password, hash));
    return this.run(w, { id: this.nextId++, op: 'compare', password, hash }) as Promise<boolean>;
  }

  close(): void {
    void this.worker?.terminate();
    this.worker = undefined;
  }

  private run(w: Worker, job: BcryptJob): Promise<string | boolean> {
    return new Promise((resolve, reject) => {
      this.waiting.set(job.id, { resolve, reject });
      w.postMessage(job);
    });
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
      });
      const fail = (e: Error): void => {
        // The worker died: fail what it held, fall back to the async API from now on.
        this.worker = undefined;
        this.failed = true;
        for (const waiter of this.waiting.values()) waiter.reject(e);
        this.waiting.clear();
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
