// Linearizability checking of recorded client histories, one register per key (reads, writes
// and compare-and-set), with the Wing–Gong/Lowe search and memoization of
// (set of linearized operations, register state), as in Porcupine and Knossos.
//
// Operations whose outcome is unknown (timed out, connection lost) may or may not have taken
// effect: they are given an infinite return time, so the search may linearize them anywhere
// after their invocation — including after everything else, which is the same as never.

export type OpKind = 'read' | 'write' | 'cas';

export interface Op {
  client: number;
  key: string;
  kind: OpKind;
  /** write/cas: the value written. */
  value?: string;
  /** cas: the expected current value. */
  expect?: string;
  /** read: the value seen (null: key absent). */
  out?: string | null;
  /** cas: whether it succeeded (known only when status is ok). */
  succeeded?: boolean;
  /** Monotonic timestamps (ms). */
  call: number;
  ret: number;
  status: 'ok' | 'fail' | 'unknown';
  /** Response header revision (ok operations). */
  revision?: string;
}

type State = string | null;

/** The register model. Returns the next state, or undefined if `op` cannot happen in `s`. */
function step(s: State, op: Op): State | undefined {
  switch (op.kind) {
    case 'read':
      return op.out === s ? s : undefined;
    case 'write':
      return op.value!;
    case 'cas':
      if (op.status === 'unknown') return s === op.expect ? op.value! : s;
      if (op.succeeded) return s === op.expect ? op.value! : undefined;
      return s !== op.expect ? s : undefined;
  }
}

interface Node {
  op: Op | undefined; // undefined for the list head
  id: number;
  isCall: boolean;
  match: Node | undefined; // call -> its return event
  prev: Node | undefined;
  next: Node | undefined;
}

export interface CheckResult {
  ok: boolean;
  /** Operations checked (after dropping failed and unknown reads). */
  ops: number;
  /** When not linearizable: the smallest failing prefix's last operations. */
  window?: Op[];
}

function prepare(history: readonly Op[]): Op[] {
  // Failed operations had no effect; unknown reads constrain nothing.
  return history
    .filter((o) => o.status !== 'fail' && !(o.kind === 'read' && o.status !== 'ok'))
    .map((o) => (o.status === 'unknown' ? { ...o, ret: Number.POSITIVE_INFINITY } : o));
}

/** Lowe's just-in-time linearizability search over one key's operations. */
export class CheckerBudgetExceeded extends Error {}

/** Search budget (memoized states) per key: beyond it the answer is "inconclusive". */
export const MAX_STATES = 3_000_000;

export function checkKey(history: readonly Op[], initial: State = null): boolean {
  const ops = prepare(history);
  const n = ops.length;
  if (n === 0) return true;
  // Build the event list: calls and returns sorted by time (calls first on ties: permissive).
  const events: Array<{ t: number; isCall: boolean; id: number }> = [];
  ops.forEach((o, id) => {
    events.push({ t: o.call, isCall: true, id });
    events.push({ t: o.ret, isCall: false, id });
  });
  events.sort((a, b) => a.t - b.t || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: Node = { op: undefined, id: -1, isCall: false, match: undefined, prev: undefined, next: undefined };
  const calls: Node[] = new Array(n);
  let tail = head;
  const returns: Node[] = new Array(n);
  for (const e of events) {
    const node: Node = { op: ops[e.id], id: e.id, isCall: e.isCall, match: undefined, prev: tail, next: undefined };
    tail.next = node;
    tail = node;
    if (e.isCall) calls[e.id] = node;
    else returns[e.id] = node;
  }
  for (let i = 0; i < n; i++) calls[i]!.match = returns[i];

  const lift = (c: Node): void => {
    c.prev!.next = c.next;
    if (c.next) c.next.prev = c.prev;
    const r = c.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Node): void => {
    const r = c.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    c.prev!.next = c;
    if (c.next) c.next.prev = c;
  };

  // Memo of visited (linearized set, state) pairs: a 32-bit rolling hash to bucket, exact compare.
  const words = Math.ceil(n / 32);
  const bits = new Uint32Array(words);
  const rnd = new Uint32Array(n);
  let seed = 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    rnd[i] = seed >>> 0;
  }
  let hash = 0;
  const cache = new Map<string, Uint32Array[]>();
  let states = 0;
  const seen = (h: number, s: State): boolean => {
    if (++states > MAX_STATES) {
      throw new CheckerBudgetExceeded(`inconclusive: search exceeded ${MAX_STATES} states (${ops.filter((x) => x.status === 'unknown').length} operations with unknown outcome)`);
    }
    const k = `${h}:${s ?? '\u0000null'}`;
    const bucket = cache.get(k);
    if (bucket) {
      for (const b of bucket) {
        let eq = true;
        for (let w = 0; w < words; w++) {
          if (b[w] !== bits[w]) {
            eq = false;
            break;
          }
        }
        if (eq) return true;
      }
      bucket.push(bits.slice());
    } else cache.set(k, [bits.slice()]);
    return false;
  };

  const stack: Array<{ node: Node; state: State }> = [];
  let state: State = initial;
  let entry = head.next;
  while (head.next) {
    if (!entry) return false; // should not happen: a return event always follows
    if (entry.isCall) {
      const next = step(state, entry.op!);
      if (next !== undefined) {
        const id = entry.id;
        bits[id >>> 5]! |= 1 << (id & 31);
        const h = (hash ^ rnd[id]!) >>> 0;
        if (!seen(h, next)) {
          stack.push({ node: entry, state });
          hash = h;
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        bits[id >>> 5]! &= ~(1 << (id & 31));
      }
      entry = entry.next;
    } else {
      // A return event: the operation it belongs to must be linearized before this point.
      const top = stack.pop();
      if (!top) return false;
      const id = top.node.id;
      bits[id >>> 5]! &= ~(1 << (id & 31));
      hash = (hash ^ rnd[id]!) >>> 0;
      state = top.state;
      unlift(top.node);
      entry = top.node.next;
    }
  }
  return true;
}

/** Checks every key of a history; on failure finds a minimal failing prefix for the report. */
export function checkHistory(history: readonly Op[]): { ok: boolean; ops: number; failures: Array<{ key: string; window: Op[] }> } {
  const byKey = new Map<string, Op[]>();
  for (const o of prepare(history)) {
    let a = byKey.get(o.key);
    if (!a) byKey.set(o.key, (a = []));
    a.push(o);
  }
  const failures: Array<{ key: string; window: Op[] }> = [];
  let total = 0;
  for (const [key, ops] of byKey) {
    total += ops.length;
    try {
      if (checkKey(ops)) continue;
    } catch (e) {
      if (e instanceof CheckerBudgetExceeded) {
        failures.push({ key: `${key} (${e.message})`, window: [] });
        continue;
      }
      throw e;
    }
    failures.push({ key, window: minimalWindow(ops) });
  }
  return { ok: failures.length === 0, ops: total, failures };
}

/** The shortest prefix (by invocation time) that is already not linearizable; its last ops. */
function minimalWindow(ops: Op[], width = 16): Op[] {
  const sorted = [...ops].sort((a, b) => a.call - b.call);
  let lo = 1;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    let ok: boolean;
    try {
      ok = checkKey(sorted.slice(0, mid));
    } catch {
      ok = false;
    }
    if (ok) lo = mid + 1;
    else hi = mid;
  }
  return sorted.slice(Math.max(0, lo - width), lo);
}

/** Each client's observed revisions must never go backwards. */
export function checkMonotonicRevisions(history: readonly Op[]): string | undefined {
  const last = new Map<number, { rev: bigint; op: Op }>();
  for (const o of [...history].filter((x) => x.status === 'ok' && x.revision !== undefined).sort((a, b) => a.call - b.call)) {
    const r = BigInt(o.revision!);
    const prev = last.get(o.client);
    if (prev && r < prev.rev) {
      return `client ${o.client} saw revision ${r} after ${prev.rev} (${describeOp(prev.op)} then ${describeOp(o)})`;
    }
    last.set(o.client, { rev: r, op: o });
  }
  return undefined;
}

export function describeOp(o: Op): string {
  const t = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '∞');
  const what =
    o.kind === 'read'
      ? `read ${o.key} -> ${o.out === undefined ? '?' : JSON.stringify(o.out)}`
      : o.kind === 'write'
        ? `write ${o.key} := ${JSON.stringify(o.value)}`
        : `cas ${o.key} ${JSON.stringify(o.expect)} -> ${JSON.stringify(o.value)}${o.status === 'ok' ? (o.succeeded ? ' ok' : ' failed') : ''}`;
  return `[c${o.client} ${t(o.call)}..${t(o.ret)} ${o.status}] ${what}`;
}
