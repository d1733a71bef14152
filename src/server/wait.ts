// Proposals waiting for their entry to be applied, keyed by request id. The node that
// proposed an entry resolves the waiter when it applies it (on every node the same result).
// Never: times out by itself (proposals.ts owns the timeouts).

export interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

export class Wait<T> {
  private waiters = new Map<bigint, Waiter<T>>();

  register(id: bigint): Promise<T> {
    return new Promise<T>((resolve, reject) => this.waiters.set(id, { resolve, reject }));
  }

  trigger(id: bigint, v: T): boolean {
    const w = this.waiters.get(id);
    if (!w) return false;
    this.waiters.delete(id);
    w.resolve(v);
    return true;
  }

  has(id: bigint): boolean {
    return this.waiters.has(id);
  }

  fail(id: bigint, e: Error): void {
    const w = this.waiters.get(id);
    if (!w) return;
    this.waiters.delete(id);
    w.reject(e);
  }

  failAll(e: Error): void {
    for (const [id] of this.waiters) this.fail(id, e);
  }

  get size(): number {
    return this.waiters.size;
  }
}
