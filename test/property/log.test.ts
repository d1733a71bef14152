// The raft log (stable storage + unstable tail) against a plain array model.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import fc from 'fast-check';
import { RaftLog } from '../../src/raft/log.js';
import { silentLogger } from '../../src/raft/logger.js';
import { MemoryStorage } from '../../src/raft/storage.js';
import { Inflights } from '../../src/raft/tracker/inflights.js';
import { type Entry, EntryType, NO_LIMIT } from '../../src/raft/types.js';

type Op =
  | { kind: 'append'; at: number; terms: number[] } // truncate after `at` (relative) and append
  | { kind: 'persist' }
  | { kind: 'commit'; at: number }
  | { kind: 'compact' };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('append' as const), at: fc.nat(30), terms: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 5 }) }),
  fc.constant({ kind: 'persist' as const }),
  fc.record({ kind: fc.constant('commit' as const), at: fc.nat(30) }),
  fc.constant({ kind: 'compact' as const }),
);

it('append/truncate/persist/commit/compact keep the log equal to an array model', () => {
  fc.assert(
    fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
      const storage = new MemoryStorage();
      const log = new RaftLog(storage, silentLogger);
      let model: Entry[] = []; // model[i] has index i+1
      let term = 1;
      for (const o of ops) {
        if (o.kind === 'append') {
          // Truncation point can't go below commit (committed entries are never replaced).
          const after = Math.max(log.committed, Math.min(o.at, model.length));
          if (after < storage.firstIndex() - 1) continue;
          term = Math.max(term, ...o.terms);
          const es = o.terms.map((_, i) => ({ term, index: after + 1 + i, type: EntryType.Normal, data: new Uint8Array([i]) }));
          log.append(es);
          model = model.slice(0, after).concat(es);
        } else if (o.kind === 'persist') {
          const ents = log.unstableEntries();
          storage.append(ents);
          if (ents.length > 0) log.stableTo(ents[ents.length - 1]!.index, ents[ents.length - 1]!.term);
        } else if (o.kind === 'commit') {
          const c = Math.min(o.at, model.length);
          log.commitTo(c);
        } else {
          // compact up to the applied index (apply everything committed and persisted first)
          const stable = log.lastStableIndex();
          const a = Math.min(log.committed, stable);
          if (a >= storage.firstIndex()) {
            log.appliedTo(Math.max(log.applied, a));
            storage.compact(a);
          }
        }
        // Check: last index, terms of every available entry, and the slice contents.
        assert.equal(log.lastIndex(), model.length);
        const first = log.firstIndex();
        for (let i = first; i <= model.length; i++) assert.equal(log.term(i), model[i - 1]!.term);
        if (first <= model.length) {
          const got = log.slice(first, model.length + 1, NO_LIMIT).map((e) => [e.index, e.term]);
          assert.deepEqual(got, model.slice(first - 1).map((e) => [e.index, e.term]));
        }
        assert.ok(log.committed <= log.lastIndex());
      }
    }),
    { numRuns: 400 },
  );
});

it('findConflictByTerm returns the largest index <= i with term <= t', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 20 }), fc.nat(25), fc.integer({ min: 0, max: 6 }), (deltas, i, t) => {
      // Terms must be non-decreasing in a log.
      const terms: number[] = [];
      let cur = 0;
      for (const d of deltas) terms.push((cur += d % 2));
      const fixed = terms.map((x) => x + 1);
      const storage = new MemoryStorage();
      storage.append(fixed.map((term, k) => ({ term, index: k + 1, type: EntryType.Normal, data: new Uint8Array() })));
      const log = new RaftLog(storage, silentLogger);
      const idx = Math.min(i, fixed.length);
      let want = 0;
      for (let k = idx; k >= 1; k--) {
        if (fixed[k - 1]! <= t) {
          want = k;
          break;
        }
      }
      assert.equal(log.findConflictByTerm(idx, t).index, want);
    }),
  );
});

it('inflights: count and byte limits against a queue model', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 8 }),
      fc.integer({ min: 0, max: 50 }),
      fc.array(fc.oneof(fc.record({ add: fc.integer({ min: 0, max: 20 }) }), fc.record({ free: fc.nat(40) })), { maxLength: 60 }),
      (size, maxBytes, ops) => {
        const inf = new Inflights(size, maxBytes);
        const model: Array<{ index: number; bytes: number }> = [];
        let next = 1;
        for (const o of ops) {
          if ('add' in o) {
            const full = model.length === size || (maxBytes !== 0 && model.reduce((s, x) => s + x.bytes, 0) >= maxBytes);
            assert.equal(inf.full(), full);
            if (full) continue;
            inf.add(next, o.add);
            model.push({ index: next++, bytes: o.add });
          } else {
            inf.freeLE(o.free);
            while (model.length > 0 && model[0]!.index <= o.free) model.shift();
          }
          assert.equal(inf.len(), model.length);
        }
      },
    ),
    { numRuns: 400 },
  );
});
