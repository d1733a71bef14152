// raftkv against real etcd 3.4, request by request (./differential.ts): seeded sequences of KV,
// Txn, lease, compaction, HashKV and watch requests sent to an etcd member and to a 3-member
// raftkv cluster must get the same answers — revisions, key-values, prev_kv, counts, events,
// hashes, and every error's gRPC code and message; then the same with auth (./auth-steps.ts:
// users, roles, permissions, enable/disable, and the KV steps made as those users), and over
// the JSON gateway (./gateway-steps.ts: status and body compared as text). Each
// divergence this found is fixed with a unit test of its own; this keeps the whole surface
// honest as the code changes. Longer runs: `node dist/test/compat/cli.js --seeds 20 --steps 500
// [--auth | --gateway]`.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { etcdAvailable } from '../backup/etcd-process.js';
import { authSteps, forgetPasswords } from './auth-steps.js';
import { gatewaySteps } from './gateway-steps.js';
import { FRESH, type Known, type Steps, type Target, describeDivergence, runSequence } from './differential.js';
import { type Servers, startServers } from './servers.js';

// Per kind, seeds 1-N with 250 steps each, one after the other on the same servers (each goes
// on from the state the one before left): about 1,500 KV, 750 auth and 500 gateway requests,
// under two minutes on this machine (Authenticate's bcrypt is most of the auth part).
const KINDS: Array<{ name: string; seeds: number[]; steps?: (seed: number) => Steps<unknown> }> = [
  { name: 'KV, Txn, leases, compaction, HashKV and watches', seeds: [1, 2, 3, 4, 5, 6] },
  { name: 'auth: users, roles, permissions, and KV as those users', seeds: [1, 2, 3], steps: authSteps as (seed: number) => Steps<unknown> },
  { name: 'the JSON gateway: KV, Txn, compaction and leases as HTTP bodies', seeds: [1, 2], steps: gatewaySteps as (seed: number) => Steps<unknown> },
];
const STEPS = 250;

for (const kind of KINDS) describe(`differential, ${kind.name}: raftkv answers as etcd 3.4 does`, { skip: !etcdAvailable && 'etcd is not installed' }, () => {
  let servers: Servers | undefined;
  let ref: Target;
  let cand: Target;
  let known: Known = FRESH;
  /** Set when a seed diverged: the servers' states differ from then on, so later seeds skip. */
  let diverged = false;

  before(async () => {
    forgetPasswords();
    servers = await startServers();
    ({ ref, cand } = servers);
  });

  after(async () => {
    await servers?.close();
  });

  for (const seed of kind.seeds) {
    it(`seed ${seed}: ${STEPS} requests, the same answers`, { timeout: 120_000 }, async (t) => {
      if (diverged) return t.skip('an earlier seed diverged');
      const r = kind.steps ? await runSequence(ref, cand, seed, STEPS, known, undefined, kind.steps) : await runSequence(ref, cand, seed, STEPS, known);
      if (r.divergence) {
        diverged = true;
        assert.fail(describeDivergence(r.divergence));
      }
      known = r.known;
    });
  }
});
