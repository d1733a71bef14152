// The linearizability checker on hand-made and randomized histories.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { type Op, checkHistory, checkKey, checkMonotonicRevisions } from './checker.js';

const w = (client: number, call: number, ret: number, value: string, status: Op['status'] = 'ok'): Op => ({ client, key: 'k', kind: 'write', value, call, ret, status });
const r = (client: number, call: number, ret: number, out: string | null, status: Op['status'] = 'ok'): Op => ({ client, key: 'k', kind: 'read', out, call, ret, status });
const cas = (client: number, call: number, ret: number, expect: string, value: string, succeeded: boolean, status: Op['status'] = 'ok'): Op => ({
  client,
  key: 'k',
  kind: 'cas',
  expect,
  value,
  succeeded,
  call,
  ret,
  status,
});

describe('linearizability checker', () => {
  it('accepts a sequential history and concurrent reads seeing either side of a write', () => {
    assert.ok(checkKey([w(1, 0, 1, 'a'), r(2, 2, 3, 'a')]));
    assert.ok(checkKey([w(1, 0, 10, 'a'), r(2, 1, 2, null), r(3, 3, 4, 'a'), r(2, 11, 12, 'a')]));
  });

  it('rejects a stale read (a completed write not visible to a later read)', () => {
    assert.equal(checkKey([w(1, 0, 1, 'a'), r(2, 2, 3, null)]), false);
    assert.equal(checkKey([w(1, 0, 1, 'a'), w(1, 2, 3, 'b'), r(2, 4, 5, 'a')]), false);
  });

  it('rejects a read that goes back in time (new value, then the old one)', () => {
    assert.equal(checkKey([w(1, 0, 10, 'a'), r(2, 1, 2, 'a'), r(3, 3, 4, null)]), false);
  });

  it('rejects a lost write', () => {
    assert.equal(checkKey([w(1, 0, 1, 'a'), w(2, 2, 3, 'b'), r(3, 4, 5, 'a'), r(3, 6, 7, 'a')]), false);
  });

  it('rejects two successful CAS from the same expected value (double CAS success)', () => {
    assert.equal(checkKey([w(1, 0, 1, 'a'), cas(2, 2, 5, 'a', 'b', true), cas(3, 3, 6, 'a', 'c', true)]), false);
    assert.ok(checkKey([w(1, 0, 1, 'a'), cas(2, 2, 5, 'a', 'b', true), cas(3, 3, 6, 'a', 'c', false)]));
  });

  it('rejects a failed CAS whose expected value was certainly current', () => {
    assert.equal(checkKey([w(1, 0, 1, 'a'), cas(2, 2, 3, 'a', 'b', false)]), false);
  });

  it('unknown operations may or may not have happened', () => {
    // The unknown write is seen: it happened.
    assert.ok(checkKey([w(1, 0, 1, 'x', 'unknown'), r(2, 5, 6, 'x')]));
    // Never seen: it did not happen (or happened after everything).
    assert.ok(checkKey([w(1, 0, 1, 'x', 'unknown'), r(2, 5, 6, null)]));
    // Seen, then not seen any more with no other write: impossible.
    assert.equal(checkKey([w(1, 0, 1, 'x', 'unknown'), r(2, 5, 6, 'x'), r(2, 7, 8, null)]), false);
    // An unknown CAS can explain a value change.
    assert.ok(checkKey([w(1, 0, 1, 'a'), cas(2, 2, 3, 'a', 'b', false, 'unknown'), r(3, 10, 11, 'b')]));
    // Failed reads constrain nothing.
    assert.ok(checkHistory([w(1, 0, 1, 'a'), r(2, 2, 3, 'zzz', 'fail')]).ok);
  });

  it('accepts random linearizable histories and rejects them once a read is corrupted (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ kind: fc.constantFrom('read', 'write', 'cas'), before: fc.integer({ min: 0, max: 30 }), after: fc.integer({ min: 0, max: 30 }), unknown: fc.boolean() }), {
          minLength: 1,
          maxLength: 40,
        }),
        fc.nat(),
        (specs, pickRaw) => {
          // Build a history from a sequential execution: op i takes effect at time 100*i, and
          // its interval [call, ret] contains that point.
          let state: string | null = null;
          const ops: Op[] = specs.map((s, i) => {
            const t = 100 * (i + 1);
            const call = t - s.before;
            const ret = t + s.after;
            if (s.kind === 'write') {
              state = `v${i}`;
              return w(i % 5, call, ret, state, s.unknown ? 'unknown' : 'ok');
            }
            if (s.kind === 'cas') {
              const expect = i % 2 === 0 && state !== null ? state : `nope${i}`;
              const ok = state === expect;
              if (ok) state = `c${i}`;
              return cas(i % 5, call, ret, expect, `c${i}`, ok);
            }
            return r(i % 5, call, ret, state);
          });
          assert.ok(checkHistory(ops).ok);
          const reads = ops.filter((o) => o.kind === 'read');
          if (reads.length > 0) {
            const victim = reads[pickRaw % reads.length]!;
            victim.out = 'never-written';
            assert.equal(checkHistory(ops).ok, false);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reports the minimal failing window', () => {
    const ops = [w(1, 0, 1, 'a'), r(2, 2, 3, 'a'), w(1, 4, 5, 'b'), r(2, 6, 7, 'a'), r(2, 8, 9, 'b')];
    const res = checkHistory(ops);
    assert.equal(res.ok, false);
    assert.equal(res.failures[0]!.window.at(-1)!.call, 6);
  });

  it('revisions going backwards for one client are reported', () => {
    const a: Op = { ...w(1, 0, 1, 'a'), revision: '10' };
    const b: Op = { ...r(1, 2, 3, 'a'), revision: '9' };
    assert.match(checkMonotonicRevisions([a, b]) ?? '', /revision 9 after 10/);
    assert.equal(checkMonotonicRevisions([a, { ...b, revision: '10' }]), undefined);
  });

  it('handles long histories with 10 concurrent clients quickly', () => {
    const ops: Op[] = [];
    let state: string | null = null;
    for (let i = 0; i < 3000; i++) {
      const t = 10 * i;
      if (i % 3 === 0) {
        state = `v${i}`;
        ops.push(w(i % 10, t - 40, t + 40, state));
      } else ops.push(r(i % 10, t - 40, t + 40, state));
    }
    const t0 = performance.now();
    assert.ok(checkHistory(ops).ok);
    assert.ok(performance.now() - t0 < 60_000);
  });
});
