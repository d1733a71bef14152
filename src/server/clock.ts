// Time, as the server sees it: one interface, so that the real process runs on Node's timers
// and an in-process test cluster runs on a manual clock that a test advances by hand.
//
// Invariant: nothing under src/server/ reads Date.now(), performance.now() or calls
// setTimeout/setInterval directly; it asks its Clock. (Scheduling "as soon as possible"
// with setImmediate is not time and stays as it is.)

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds, for durations and deadlines. */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for ids and what people read. */
  wallNow(): number;
  setTimeout(f: () => void, ms: number): Timer;
  setInterval(f: () => void, ms: number): Timer;
}

/**
 * Node's clock. Timers do not keep the process alive (the listening servers do), so a member
 * that stops is never held up by a pending retry.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout(f, ms) {
    const t = setTimeout(f, ms).unref();
    return { cancel: () => clearTimeout(t) };
  },
  setInterval(f, ms) {
    const t = setInterval(f, ms).unref();
    return { cancel: () => clearInterval(t) };
  },
};

/**
 * A clock that moves only when told to (tests). advance(ms) fires every timer that falls due,
 * in due order (ties in the order they were set), with now() at its due time.
 */
export class ManualClock implements Clock {
  private t = 0;
  private seq = 0;
  private timers = new Map<number, { due: number; seq: number; f: () => void; every?: number }>();

  constructor(private readonly epoch = 1_700_000_000_000) {}

  now(): number {
    return this.t;
  }

  wallNow(): number {
    return this.epoch + this.t;
  }

  setTimeout(f: () => void, ms: number): Timer {
    return this.add(f, ms, undefined);
  }

  setInterval(f: () => void, ms: number): Timer {
    return this.add(f, ms, Math.max(1, ms));
  }

  private add(f: () => void, ms: number, every: number | undefined): Timer {
    const id = ++this.seq;
    this.timers.set(id, { due: this.t + Math.max(0, ms), seq: id, f, every });
    return { cancel: () => this.timers.delete(id) };
  }

  /** Moves time forward by `ms`, firing what falls due on the way. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { due: number; seq: number; f: () => void; every?: number }] | undefined;
      for (const e of this.timers) {
        if (e[1].due > end) continue;
        if (!next || e[1].due < next[1].due || (e[1].due === next[1].due && e[1].seq < next[1].seq)) next = e;
      }
      if (!next) break;
      const [id, timer] = next;
      this.t = Math.max(this.t, timer.due);
      if (timer.every !== undefined) timer.due += timer.every;
      else this.timers.delete(id);
      timer.f();
    }
    this.t = end;
  }

  /** How many timers are pending (tests check that a stopped server left none). */
  pending(): number {
    return this.timers.size;
  }
}
