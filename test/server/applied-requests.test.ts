// Exactly-once application of re-proposed requests: the AppliedRequests table and the state
// machine that uses it.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { AppliedRequests } from '../../src/server/applied-requests.js';
import { newStateMachine, applyNow } from '../support/state-machine.js';
import { InternalRequest } from '../../src/gen/raftkv/entry.js';
import { EntryType, type Entry } from '../../src/raft/index.js';

const P = 0xabcn; // a proposing member

function putEntry(index: number, id: bigint, settledBelow: bigint, key = 'k'): Entry {
  const data = InternalRequest.encode(
    InternalRequest.fromPartial({ id, proposer: P, settledBelow, put: { key: Buffer.from(key), value: Buffer.from(String(id)) } }),
  ).finish();
  return { term: 1, index, type: EntryType.Normal, data };
}

describe('AppliedRequests', () => {
  it('applies the first copy, skips later copies, and skips settled ids', () => {
    const t = new AppliedRequests();
    assert.equal(t.admit(P, 10n, 10n), 'apply');
    assert.equal(t.admit(P, 11n, 10n), 'apply');
    assert.equal(t.admit(P, 10n, 10n), 'duplicate');
    // The proposer stopped waiting on 10 and 11: both are forgotten, late copies are skipped.
    assert.equal(t.admit(P, 13n, 12n), 'apply');
    assert.equal(t.size, 1);
    assert.equal(t.admit(P, 11n, 10n), 'settled');
    assert.equal(t.admit(P, 12n, 10n), 'apply', 'an id at the floor is still open');
    // Another proposer has its own ids; proposer 0 (no session) is always applied.
    assert.equal(t.admit(7n, 10n, 10n), 'apply');
    assert.equal(t.admit(0n, 13n, 0n), 'apply');
    assert.equal(t.admit(0n, 13n, 0n), 'apply');
    assert.equal(t.settledBelow(P), 12n);
  });

  it('survives a snapshot image round trip', () => {
    const t = new AppliedRequests();
    t.admit(P, 20n, 18n);
    t.admit(P, 21n, 18n);
    const u = new AppliedRequests();
    u.restore(JSON.parse(JSON.stringify(t.toImage())));
    assert.equal(u.admit(P, 21n, 18n), 'duplicate');
    assert.equal(u.admit(P, 17n, 18n), 'settled');
    assert.equal(u.admit(P, 19n, 18n), 'apply');
  });

  it('never applies an id twice and never skips a request its proposer still waits on (random schedules)', () => {
    // A model proposer: proposes requests, copies waiting ones into the log again (as on a
    // leader change), loses some copies (dropped by a transferring leader), and stops waiting on
    // some (timeout). The log is applied in order; a request is answered when first applied.
    const action = fc.oneof(
      fc.constant({ kind: 'propose' as const }),
      fc.record({ kind: fc.constant('repropose' as const), lose: fc.boolean() }),
      fc.record({ kind: fc.constant('timeout' as const), pick: fc.nat() }),
      fc.record({ kind: fc.constant('lose-next' as const) }),
    );
    fc.assert(
      fc.property(fc.array(action, { maxLength: 200 }), (actions) => {
        const t = new AppliedRequests();
        const waiting = new Map<bigint, bigint>(); // id -> settledBelow it was proposed with
        const appliedCount = new Map<bigint, number>();
        let nextId = 100n;
        let loseNext = false;
        const commit = (id: bigint, settledBelow: bigint) => {
          if (loseNext) {
            loseNext = false;
            return;
          }
          const stillWaiting = waiting.has(id);
          const a = t.admit(P, id, settledBelow);
          if (a === 'apply') {
            appliedCount.set(id, (appliedCount.get(id) ?? 0) + 1);
            waiting.delete(id);
          }
          if (stillWaiting) assert.equal(a, 'apply', `request ${id} skipped while its proposer waits on it`);
        };
        for (const act of actions) {
          if (act.kind === 'propose') {
            const id = nextId++;
            const oldest = waiting.keys().next();
            const floor = oldest.done ? id : oldest.value;
            waiting.set(id, floor);
            commit(id, floor);
          } else if (act.kind === 'repropose') {
            for (const [id, floor] of [...waiting]) if (!act.lose) commit(id, floor);
          } else if (act.kind === 'timeout') {
            const ids = [...waiting.keys()];
            if (ids.length > 0) waiting.delete(ids[act.pick % ids.length]!);
          } else loseNext = true;
        }
        for (const [id, n] of appliedCount) assert.equal(n, 1, `request ${id} applied ${n} times`);
        assert.ok(t.size <= nextId - 100n);
      }),
      { numRuns: 300, seed: 4242 },
    );
  });
});

describe('StateMachine with re-proposed requests', () => {
  it('a request committed twice makes one revision; a snapshot keeps the table', async () => {
    const sm = newStateMachine();
    const r1 = applyNow(sm, putEntry(1, 500n, 500n));
    assert.equal(r1.id, 500n);
    assert.ok(r1.outcome.ok);
    assert.equal(sm.store.currentRev, 2n);
    const dup = applyNow(sm, putEntry(2, 500n, 500n));
    assert.equal(dup.id, 0n, 'the copy wakes no waiter: the first copy answered');
    assert.equal(sm.store.currentRev, 2n, 'the copy wrote nothing');
    applyNow(sm, putEntry(3, 501n, 500n));
    assert.equal(sm.store.currentRev, 3n);

    const img = await sm.imageAsync(async () => {});
    const other = newStateMachine();
    await other.restoreAsync(img.data, img.index, async () => {});
    applyNow(other, putEntry(4, 501n, 500n));
    assert.equal(other.store.currentRev, 3n, 'a restored member skips the same copies');
    const settled = applyNow(other, putEntry(5, 499n, 499n));
    assert.equal(settled.outcome.ok, false);
    assert.equal(other.store.currentRev, 3n);
  });
});
