// The etcd API's message schemas, as the JSON gateway reads and writes them: which fields a
// message has, in declaration order, with their proto names (etcd's JSON uses them: `cluster_id`,
// `raft_term` but `raftTerm` in StatusResponse), types and nesting. ts-proto's generated code
// keeps none of this at run time, and the gateway needs it to read and write every message,
// including those of services added later (v3lock, v3election), looked up by their gRPC method
// path.
//
// Built from src/gen/etcd/api-schema.ts, generated from the same .proto files as the gRPC code
// (proto/etcd/*.proto: scripts/gen-api-schema.mjs, through ./schema-description.ts; a test keeps
// it current). Built once per process, when the gateway first needs it (its first request, or
// its warm() once the member has replayed its log: see index.ts), in about a millisecond.

import { API_DESCRIPTION } from '../../gen/etcd/api-schema.js';
import type { ApiDescription } from './schema-description.js';

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

  constructor(private readonly d: ApiDescription) {}

  /** The request and response of a gRPC method path (`/etcdserverpb.KV/Range`), if known. */
  method(grpcPath: string): MethodSchema | undefined {
    const m = Object.hasOwn(this.d.methods, grpcPath) ? this.d.methods[grpcPath] : undefined;
    return m && { request: this.messageNamed(m[0])!, response: this.messageNamed(m[1])! };
  }

  /** A message by its full proto name (`etcdserverpb.RangeRequest`), if known. */
  messageNamed(fullName: string): MessageSchema | undefined {
    const known = this.messages.get(fullName);
    if (known) return known;
    const declared = Object.hasOwn(this.d.messages, fullName) ? this.d.messages[fullName] : undefined;
    if (!declared) return undefined;
    const fields: FieldSchema[] = [];
    const readOrder: FieldSchema[] = [];
    const schema: MessageSchema = { fullName, fields, readOrder };
    // Registered before its fields: messages may nest themselves (TxnRequest in RequestOp).
    this.messages.set(fullName, schema);
    for (const f of declared) {
      const base = { orig: f.name, json: protocJsonName(f.name), ts: tsProtoName(f.name), repeated: f.repeated === true, oneof: f.oneof === true };
      const scalar = Object.hasOwn(SCALARS, f.type) ? SCALARS[f.type] : undefined;
      const enumSchema = scalar ? undefined : this.enumNamed(f.type);
      if (scalar) fields.push({ ...base, kind: scalar });
      else if (enumSchema) fields.push({ ...base, kind: 'enum', enumSchema });
      else {
        const field: { -readonly [K in keyof FieldSchema]: FieldSchema[K] } = { ...base, kind: 'message' };
        fields.push(field);
        field.message = this.messageNamed(f.type);
        if (!field.message) throw new Error(`gateway schema: ${fullName}.${f.name} has an unknown type ${f.type}`);
      }
    }
    readOrder.push(...fields.filter((f) => !f.oneof), ...fields.filter((f) => f.oneof));
    return schema;
  }

  private enumNamed(fullName: string): EnumSchema | undefined {
    const known = this.enums.get(fullName);
    if (known) return known;
    const declared = Object.hasOwn(this.d.enums, fullName) ? this.d.enums[fullName] : undefined;
    if (!declared) return undefined;
    const byName = new Map(declared.values);
    const byNumber = new Map<number, string>();
    for (const [name, n] of declared.values) if (!byNumber.has(n)) byNumber.set(n, name);
    const schema: EnumSchema = { goName: declared.goName, byName, byNumber };
    this.enums.set(fullName, schema);
    return schema;
  }
}

let loaded: ApiSchema | undefined;

/** The schema, loaded on first use. */
export function apiSchema(): ApiSchema {
  loaded ??= new ApiSchema(API_DESCRIPTION);
  return loaded;
}
