// The etcd API's message schemas, read from the same .proto files the gRPC code is generated
// from (proto/etcd/*.proto), with protobufjs: which fields a message has, in declaration order,
// with their proto names (etcd's JSON uses them: `cluster_id`, `raft_term` but `raftTerm` in
// StatusResponse), types and nesting. ts-proto's generated code keeps none of this at run time,
// and the gateway needs it to read and write every message, including those of services added
// later (v3lock, v3election), looked up by their gRPC method path.
//
// Loaded once per process, when the gateway first needs it (its first request, or its warm()
// once the member has replayed its log: see index.ts); building it is synchronous.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The proto/ directory of this checkout (from dist/src/api/gateway/ or src/api/gateway/). */
const PROTO_ROOT = fileURLToPath(new URL('../../../../proto/', import.meta.url));
const PROTO_ROOT_FROM_SRC = fileURLToPath(new URL('../../../proto/', import.meta.url));

export type ScalarKind = 'int64' | 'uint64' | 'int32' | 'uint32' | 'double' | 'float' | 'bool' | 'string' | 'bytes';

export interface FieldSchema {
  /** The proto name: etcd's JSON output key. */
  readonly orig: string;
  /** protoc's json_name (lowerCamelCase): accepted as input beside the proto name. */
  readonly json: string;
  /** The property of ts-proto's generated object. */
  readonly ts: string;
  readonly kind: ScalarKind | 'enum' | 'message';
  readonly repeated: boolean;
  /** A member of a oneof: set (and written) even when it holds the zero value. */
  readonly oneof: boolean;
  readonly message?: MessageSchema;
  readonly enumSchema?: EnumSchema;
}

export interface EnumSchema {
  /** Go's name of the enum type, as jsonpb names it in errors: etcdserverpb.RangeRequest_SortOrder. */
  readonly goName: string;
  readonly byName: ReadonlyMap<string, number>;
  readonly byNumber: ReadonlyMap<number, string>;
}

export interface MessageSchema {
  readonly fullName: string;
  /** Declaration order (etcd's output order). */
  readonly fields: readonly FieldSchema[];
  /** jsonpb's reading order: plain fields in declaration order, then oneof members. */
  readonly readOrder: readonly FieldSchema[];
}

export interface MethodSchema {
  readonly request: MessageSchema;
  readonly response: MessageSchema;
}

/** ts-proto's property name for a proto field (its snakeToCamel, applied to names with `_`). */
export function tsProtoName(orig: string): string {
  if (!orig.includes('_')) return orig;
  const hasLower = /[a-z]/.test(orig);
  return orig
    .split('_')
    .map((w, i) => {
      const word = hasLower ? w : w.toLowerCase();
      return i === 0 ? word : word.charAt(0).toUpperCase() + word.slice(1);
    })
    .join('');
}

/** protoc's json_name: underscores dropped, the letter after each upper-cased. */
export function protocJsonName(orig: string): string {
  let out = '';
  let upper = false;
  for (const c of orig) {
    if (c === '_') upper = true;
    else {
      out += upper ? c.toUpperCase() : c;
      upper = false;
    }
  }
  return out;
}

const SCALARS: Record<string, ScalarKind> = {
  int64: 'int64',
  sint64: 'int64',
  sfixed64: 'int64',
  uint64: 'uint64',
  fixed64: 'uint64',
  int32: 'int32',
  sint32: 'int32',
  sfixed32: 'int32',
  uint32: 'uint32',
  fixed32: 'uint32',
  double: 'double',
  float: 'float',
  bool: 'bool',
  string: 'string',
  bytes: 'bytes',
};

export class ApiSchema {
  private readonly messages = new Map<string, MessageSchema>();
  private readonly enums = new Map<string, EnumSchema>();

  private constructor(private readonly root: protobuf.Root) {}

  /** Every .proto under proto/etcd/ of this checkout. */
  static load(): ApiSchema {
    let base = PROTO_ROOT;
    let files: string[];
    try {
      files = readdirSync(join(base, 'etcd'));
    } catch {
      base = PROTO_ROOT_FROM_SRC;
      files = readdirSync(join(base, 'etcd'));
    }
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => join(base, target);
    root.loadSync(
      files.filter((f) => f.endsWith('.proto')).map((f) => `etcd/${f}`),
      { keepCase: true },
    );
    root.resolveAll();
    return new ApiSchema(root);
  }

  /** The request and response of a gRPC method path (`/etcdserverpb.KV/Range`), if known. */
  method(grpcPath: string): MethodSchema | undefined {
    const m = /^\/([^/]+)\/([^/]+)$/.exec(grpcPath);
    if (!m) return undefined;
    let svc: protobuf.Service;
    try {
      svc = this.root.lookupService(m[1]!);
    } catch {
      return undefined;
    }
    const method = svc.methods[m[2]!];
    if (!method?.resolvedRequestType || !method.resolvedResponseType) return undefined;
    return { request: this.message(method.resolvedRequestType), response: this.message(method.resolvedResponseType) };
  }

  /** A message by its full proto name (`etcdserverpb.RangeRequest`), if known. */
  messageNamed(fullName: string): MessageSchema | undefined {
    try {
      return this.message(this.root.lookupType(fullName));
    } catch {
      return undefined;
    }
  }

  private message(t: protobuf.Type): MessageSchema {
    const known = this.messages.get(t.fullName);
    if (known) return known;
    const fields: FieldSchema[] = [];
    const readOrder: FieldSchema[] = [];
    const schema: MessageSchema = { fullName: t.fullName.replace(/^\./, ''), fields, readOrder };
    // Registered before its fields: messages may nest themselves (TxnRequest in RequestOp).
    this.messages.set(t.fullName, schema);
    for (const f of t.fieldsArray) {
      f.resolve();
      const base = {
        orig: f.name,
        json: protocJsonName(f.name),
        ts: tsProtoName(f.name),
        repeated: f.repeated,
        oneof: f.partOf !== null && f.partOf !== undefined,
      };
      const scalar = SCALARS[f.type];
      if (scalar) fields.push({ ...base, kind: scalar });
      else if (f.resolvedType instanceof protobuf.Enum) fields.push({ ...base, kind: 'enum', enumSchema: this.enumOf(f.resolvedType) });
      else if (f.resolvedType instanceof protobuf.Type) {
        const field: { -readonly [K in keyof FieldSchema]: FieldSchema[K] } = { ...base, kind: 'message' };
        fields.push(field);
        field.message = this.message(f.resolvedType);
      } else throw new Error(`gateway schema: unsupported field ${t.fullName}.${f.name} (${f.type})`);
    }
    readOrder.push(...fields.filter((f) => !f.oneof), ...fields.filter((f) => f.oneof));
    return schema;
  }

  private enumOf(e: protobuf.Enum): EnumSchema {
    const known = this.enums.get(e.fullName);
    if (known) return known;
    // Go's type name: the package, then the enum's nesting joined by `_`.
    const nesting: string[] = [e.name];
    let p = e.parent;
    while (p instanceof protobuf.Type) {
      nesting.unshift(p.name);
      p = p.parent;
    }
    const pkg = p && !(p instanceof protobuf.Root) ? p.fullName.replace(/^\./, '') : '';
    const byName = new Map(Object.entries(e.values));
    const byNumber = new Map<number, string>();
    for (const [name, n] of byName) if (!byNumber.has(n)) byNumber.set(n, name);
    const schema: EnumSchema = { goName: `${pkg ? `${pkg}.` : ''}${nesting.join('_')}`, byName, byNumber };
    this.enums.set(e.fullName, schema);
    return schema;
  }
}

let loaded: ApiSchema | undefined;

/** The schema, loaded on first use. */
export function apiSchema(): ApiSchema {
  loaded ??= ApiSchema.load();
  return loaded;
}
