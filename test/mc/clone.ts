// A deep copy of an object graph that keeps classes (prototypes), Maps, Sets, typed arrays and
// shared references (a node's raft log and its driver hold the same storage; the copy does
// too). Functions and the objects in `shared` (loggers) are not copied. The model checker
// copies a whole cluster of pure cores this way to branch the search without re-running it.

export function deepClone<T>(root: T, shared: ReadonlySet<unknown> = new Set()): T {
  const seen = new Map<unknown, unknown>();
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v; // primitives, bigint, functions
    if (shared.has(v)) return v;
    const done = seen.get(v);
    if (done !== undefined) return done;
    if (ArrayBuffer.isView(v)) {
      // Entry data is never mutated in place: sharing the bytes is safe and keeps copies cheap.
      return v;
    }
    if (Array.isArray(v)) {
      const out: unknown[] = new Array(v.length);
      seen.set(v, out);
      for (let i = 0; i < v.length; i++) out[i] = copy(v[i]);
      return out;
    }
    if (v instanceof Map) {
      // Subclasses (the core's configs extend Set and Map) keep their prototype and own fields.
      const out = Reflect.construct(Map, [], v.constructor) as Map<unknown, unknown>;
      seen.set(v, out);
      for (const [k, x] of v) out.set(copy(k), copy(x));
      copyOwn(v, out);
      return out;
    }
    if (v instanceof Set) {
      const out = Reflect.construct(Set, [], v.constructor) as Set<unknown>;
      seen.set(v, out);
      for (const x of v) out.add(copy(x));
      copyOwn(v, out);
      return out;
    }
    const out = Object.create(Object.getPrototypeOf(v) as object) as object;
    seen.set(v, out);
    copyOwn(v, out);
    return out;
  };
  const copyOwn = (from: object, to: object): void => {
    for (const k of Reflect.ownKeys(from)) {
      const d = Object.getOwnPropertyDescriptor(from, k)!;
      if ('value' in d) d.value = copy(d.value);
      Object.defineProperty(to, k, d);
    }
  };
  return copy(root) as T;
}
