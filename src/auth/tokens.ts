// etcd's simple tokens (auth/simple_token.go): "<16 random letters>.<log index>", held in
// this member's memory only, each valid for --auth-token-ttl seconds after its last use. The
// token is proposed through the log by the member that checked the password and assigned by
// every member when it applies the entry, so it works on any member that has applied it (a
// member asked with a token from an index it has not applied yet waits for it, as etcd). A
// restart forgets every token: clients get `etcdserver: invalid auth token` and authenticate
// again (etcd's clients do so by themselves).

import { randomInt } from 'node:crypto';

const LETTERS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';
const PREFIX_LEN = 16;

export class SimpleTokens {
  private readonly tokens = new Map<string, { user: string; lastUsed: number }>();
  private assigned = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
  ) {}

  /** etcd's genTokenPrefix: the random part; the log index is appended when applied. */
  static genPrefix(): string {
    let s = '';
    for (let i = 0; i < PREFIX_LEN; i++) s += LETTERS[randomInt(LETTERS.length)];
    return s;
  }

  /** The log index a token was assigned at (NaN if it is not a simple token). */
  static indexOf(token: string): number {
    const parts = token.split('.');
    if (parts.length !== 2 || !/^\d+$/.test(parts[1]!)) return NaN;
    return Number(parts[1]);
  }

  assign(user: string, token: string): void {
    this.tokens.set(token, { user, lastUsed: this.now() });
    if (++this.assigned % 1024 === 0) this.sweep();
  }

  /** The user of a live token (and its TTL starts again), or undefined. */
  user(token: string): string | undefined {
    const t = this.tokens.get(token);
    if (!t) return undefined;
    const now = this.now();
    if (now - t.lastUsed > this.ttlMs) {
      this.tokens.delete(token);
      return undefined;
    }
    t.lastUsed = now;
    return t.user;
  }

  /** A user deleted or its password changed: its tokens are dropped (etcd's invalidateUser). */
  invalidateUser(user: string): void {
    for (const [tok, t] of this.tokens) if (t.user === user) this.tokens.delete(tok);
  }

  clear(): void {
    this.tokens.clear();
  }

  size(): number {
    return this.tokens.size;
  }

  private sweep(): void {
    const now = this.now();
    for (const [tok, t] of this.tokens) if (now - t.lastUsed > this.ttlMs) this.tokens.delete(tok);
  }
}
