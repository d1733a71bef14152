// What the JSON gateway needs to know of etcd's .proto files (proto/etcd/*.proto), read with
// protobufjs: each gRPC method's request and response, each message's fields in declaration
// order (proto name, type, repeated, oneof member) and each enum's values. Only the generator
// (scripts/gen-api-schema.mjs, which writes src/gen/etcd/api-schema.ts) and the test that keeps
// that file current use this module: a member never parses .proto files. Parsing them with
// protobufjs took 40-60 ms of the main thread at the gateway's first use (just after a restarted
// member's replay, when its first reads come); the generated description is built from in ~1 ms.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';

/** A field: its proto name, its type (a scalar type of proto, or an enum's or message's full name). */
export interface FieldDescription {
  readonly name: string;
  readonly type: string;
  readonly repeated?: true;
  /** A member of a oneof. */
  readonly oneof?: true;
}

export interface ApiDescription {
  /** gRPC method path (`/etcdserverpb.KV/Range`) → its request's and response's full names. */
  readonly methods: Readonly<Record<string, readonly [string, string]>>;
  /** A message's full name (`etcdserverpb.RangeRequest`) → its fields, in declaration order. */
  readonly messages: Readonly<Record<string, readonly FieldDescription[]>>;
  /** An enum's full name → Go's name of its type, and its values in declaration order. */
  readonly enums: Readonly<Record<string, { readonly goName: string; readonly values: ReadonlyArray<readonly [string, number]> }>>;
}

/** Every .proto file under `protoRoot`/etcd, loaded and resolved (imports relative to `protoRoot`). */
export function loadEtcdProtos(protoRoot: string): protobuf.Root {
  const files = readdirSync(join(protoRoot, 'etcd')).filter((f) => f.endsWith('.proto'));
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => join(protoRoot, target);
  root.loadSync(
    files.map((f) => `etcd/${f}`),
    { keepCase: true },
  );
  root.resolveAll();
  return root;
}

const fullName = (t: protobuf.ReflectionObject): string => t.fullName.replace(/^\./, '');

/** The description of everything `root` declares (sorted by name: the generated file diffs well). */
export function describeApi(root: protobuf.Root): ApiDescription {
  const methods: Record<string, readonly [string, string]> = {};
  const messages: Record<string, readonly FieldDescription[]> = {};
  const enums: Record<string, { goName: string; values: Array<readonly [string, number]> }> = {};
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const o of ns.nestedArray) {
      if (o instanceof protobuf.Service) {
        for (const m of o.methodsArray) {
          m.resolve();
          if (!m.resolvedRequestType || !m.resolvedResponseType) throw new Error(`gateway schema: unresolved method ${o.fullName}.${m.name}`);
          methods[`/${fullName(o)}/${m.name}`] = [fullName(m.resolvedRequestType), fullName(m.resolvedResponseType)];
        }
      } else if (o instanceof protobuf.Type) {
        messages[fullName(o)] = o.fieldsArray.map((f) => {
          f.resolve();
          let type = f.type;
          if (f.resolvedType) type = fullName(f.resolvedType);
          else if (!(f.type in protobuf.types.basic)) throw new Error(`gateway schema: unsupported field ${o.fullName}.${f.name} (${f.type})`);
          return { name: f.name, type, ...(f.repeated ? { repeated: true as const } : {}), ...(f.partOf ? { oneof: true as const } : {}) };
        });
      } else if (o instanceof protobuf.Enum) {
        enums[fullName(o)] = { goName: goEnumName(o), values: Object.entries(o.values) };
      }
      if (o instanceof protobuf.Namespace) visit(o);
    }
  };
  visit(root);
  const sorted = <T>(r: Record<string, T>): Record<string, T> => Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { methods: sorted(methods), messages: sorted(messages), enums: sorted(enums) };
}

/** Go's type name of an enum, as jsonpb names it in errors: the package, then its nesting joined by `_`. */
function goEnumName(e: protobuf.Enum): string {
  const nesting: string[] = [e.name];
  let p = e.parent;
  while (p instanceof protobuf.Type) {
    nesting.unshift(p.name);
    p = p.parent;
  }
  const pkg = p && !(p instanceof protobuf.Root) ? fullName(p) : '';
  return `${pkg ? `${pkg}.` : ''}${nesting.join('_')}`;
}
