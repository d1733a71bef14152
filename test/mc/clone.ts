// A deep copy of a cluster of pure cores, to branch the search without re-running it. Keeps
// classes (prototypes), Maps, Sets and shared references (a member's raft log and the driver
// hold the same storage; the copy does too). Not copied, because nothing mutates them once
// they exist: byte arrays, log entries and messages (the core never changes an entry once it
// is in a log or a message; the model hands a receiver its own copy of a message), and the
// objects registered with share() (the logger, the election timer's random source).

const shared = new WeakSet<object>();

export function share<T extends object>(o: T): T {
  shared.add(o);
  return o;
}

const OBJECT_PROTO = Object.prototype;

/** A plain object shaped like an Entry or a Message (immutable once created, see above). */
function isImmutableRecord(v: Record<string, unknown>): boolean {
  return (v.data instanceof Uint8Array && typeof v.index === 'number') || (typeof v.type === 'number' && Array.isArray(v.entries) && 'from' in v);
}

export function deepClone<T>(root: T): T {
  const seen = new Map<object, unknown>();
  const copy = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object') return v; // primitives, bigint, functions
    const done = seen.get(v);
    if (done !== undefined) return done;
    if (shared.has(v) || ArrayBuffer.isView(v)) return v;
    if (Array.isArray(v)) {
      const out: unknown[] = new Array(v.length);
      seen.set(v, out);
      for (let i = 0; i < v.length; i++) out[i] = copy(v[i]);
      return out;
    }
    const proto = Object.getPrototypeOf(v) as object;
    if (proto === OBJECT_PROTO && isImmutableRecord(v as Record<string, unknown>)) return v;
    if (v instanceof Map) {
      // Subclasses keep their prototype and own fields.
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
    const out = Object.create(proto) as object;
    seen.set(v, out);
    copyOwn(v, out);
    return out;
  };
  const copyOwn = (from: object, to: object): void => {
    // Plain assignment (the core's fields are writable data properties; `readonly` is TypeScript's only).
    const src = from as Record<string, unknown>;
    const dst = to as Record<string, unknown>;
    for (const k of Object.keys(src)) dst[k] = copy(src[k]);
  };
  return copy(root) as T;
}
