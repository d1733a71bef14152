// Differential steps over etcd's JSON gateway (./differential.ts runs them): the KV, Txn,
// compaction and lease steps of differential.ts sent as HTTP/JSON to /v3/... on the client port,
// and each answer compared as text — status and body byte for byte (field names, field order,
// which zero fields are left out, int64s as strings, enums as names, error bodies), with only
// the header's cluster_id, member_id and raft_term masked, a lease id the server chose, and a
// lease's remaining TTL (a countdown: compared as alive or not). What the gateway has no
// unary route for here (watches and keep-alives are streams, HashKV is not routed by etcd 3.4's
// gateway, a lease list comes in Go map order) goes over gRPC, so both servers stay in step.

import {
  CompactionRequest,
  DeleteRangeRequest,
  LeaseGrantRequest,
  LeaseRevokeRequest,
  LeaseTimeToLiveRequest,
  PutRequest,
  RangeRequest,
  TxnRequest,
} from '../../src/gen/etcd/rpc.js';
import { type Outcome, type Step, StepGenerator, type Steps, type Target, learn, runStep } from './differential.js';

/** The route and JSON body of a step the gateway serves, or undefined. */
function request(s: Step): { path: string; body: unknown } | undefined {
  switch (s.kind) {
    case 'range':
      return { path: '/v3/kv/range', body: RangeRequest.toJSON(s.req) };
    case 'put':
      return { path: '/v3/kv/put', body: PutRequest.toJSON({ key: s.key, value: s.value, lease: s.lease, prevKv: s.prevKv, ignoreValue: s.ignoreValue, ignoreLease: s.ignoreLease }) };
    case 'delete':
      return { path: '/v3/kv/deleterange', body: DeleteRangeRequest.toJSON({ key: s.key, rangeEnd: s.rangeEnd, prevKv: s.prevKv }) };
    case 'txn':
      return { path: '/v3/kv/txn', body: TxnRequest.toJSON(s.req) };
    case 'compact':
      return { path: '/v3/kv/compaction', body: CompactionRequest.toJSON({ revision: s.revision, physical: s.physical }) };
    case 'grant':
      return { path: '/v3/lease/grant', body: LeaseGrantRequest.toJSON({ ID: s.id, TTL: s.ttl }) };
    case 'revoke':
      return { path: '/v3/lease/revoke', body: LeaseRevokeRequest.toJSON({ ID: s.id }) };
    case 'ttl':
      return { path: '/v3/lease/timetolive', body: LeaseTimeToLiveRequest.toJSON({ ID: s.id, keys: s.keys }) };
    default:
      return undefined;
  }
}

/** The body with what is each server's own masked (see the header). */
function masked(s: Step, body: string): string {
  let b = body.replace(/"(cluster_id|member_id|raft_term)":"\d+"/g, '"$1":"*"');
  if (s.kind === 'grant' && s.id === 0n) b = b.replace(/"ID":"\d+"/, '"ID":"chosen"');
  if (s.kind === 'ttl') b = b.replace(/"TTL":"(-?\d+)"/, (_m, ttl: string) => `"TTL":"${BigInt(ttl) > 0n ? 'alive' : ttl}"`);
  return b;
}

/** One step on one server: over HTTP/JSON if the gateway serves it, else over gRPC. */
export async function runGatewayStep(t: Target, s: Step): Promise<Outcome> {
  const r = request(s);
  if (!r) return runStep(t, s);
  const res = await fetch(`http://${t.endpoint}${r.path}`, { method: 'POST', body: JSON.stringify(r.body), headers: { 'content-type': 'application/json' } });
  const body = await res.text();
  // A lease id the server chose is named as the gRPC steps name it (later steps list it).
  const chosen = s.kind === 'grant' && s.id === 0n ? /"ID":"(\d+)"/.exec(body)?.[1] : undefined;
  if (chosen) t.nameChosenLease(BigInt(chosen));
  // The revision, for the generator (learn reads `rev`), when the answer has a header.
  const rev = /"header":\{[^}]*"revision":"(\d+)"/.exec(body)?.[1];
  return { status: res.status, contentType: res.headers.get('content-type'), body: masked(s, body), ...(rev ? { rev } : {}) };
}

/** Gateway steps for runSequence. */
export function gatewaySteps(seed: number): Steps<Step> {
  const gen = new StepGenerator(seed);
  // An HTTP error is an error to the generator too (a compaction that failed moved nothing).
  const failed = (o: Outcome): boolean => typeof (o as { status?: number }).status === 'number' && (o as { status: number }).status !== 200;
  return { next: (k) => gen.next(k), run: runGatewayStep, learn: (k, s, o) => learn(k, s, failed(o) ? { error: 'HTTP error' } : o) };
}
