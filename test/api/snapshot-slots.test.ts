// Maintenance.Snapshot holds a whole image of the state while its client reads it, so a member
// serves SNAPSHOTS_AT_ONCE of them at a time: a further call waits for a slot (until its client
// goes away) instead of building one more image. Before, any number of calls each built and held
// their own (a client that stalls its stream held a database-sized buffer as long as it lived).

import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { SNAPSHOTS_AT_ONCE, maintenanceService } from '../../src/api/maintenance-service.js';
import { withCluster } from '../support/inproc-cluster.js';

/** A server stream whose client reads nothing: every write says the stream is full. */
class StalledCall extends EventEmitter {
  cancelled = false;
  readonly request = {};
  readonly metadata = new grpc.Metadata();
  written = 0;
  ended = false;
  write(): boolean {
    this.written++;
    return false;
  }
  end(): void {
    this.ended = true;
    this.emit('finish');
  }
  cancel(): void {
    this.cancelled = true;
    this.emit('cancelled', 'cancelled');
  }
}

it(`serves ${SNAPSHOTS_AT_ONCE} snapshot streams at a time; the next waits for a slot, a cancelled waiter leaves`, async () => {
  await withCluster({ size: 1, seed: 6 }, async (c) => {
    const m = await c.waitIdle();
    await c.run(c.put(m, 'k', 'v'));
    const snapshot = maintenanceService(m.server)[1].snapshot as (call: unknown) => void;
    const calls = Array.from({ length: SNAPSHOTS_AT_ONCE + 2 }, () => new StalledCall());
    for (const call of calls) snapshot(call);
    const started = (): number => calls.filter((x) => x.written > 0).length;
    await c.until(() => started() === SNAPSHOTS_AT_ONCE, { what: 'the first streams started' });
    await c.tick(5);
    assert.equal(started(), SNAPSHOTS_AT_ONCE, 'the others wait (they built no image)');
    // A waiting client goes away: it never starts.
    const gone = calls[SNAPSHOTS_AT_ONCE + 1]!;
    gone.cancel();
    // A streaming client goes away: its slot goes to the one waiting.
    calls[0]!.cancel();
    const next = calls[SNAPSHOTS_AT_ONCE]!;
    await c.until(() => next.written > 0, { what: 'the waiting stream started' });
    await c.tick(5);
    assert.equal(gone.written, 0);
    // It streams to the end once its client reads.
    next.write = function (): boolean {
      this.written++;
      return true;
    };
    next.emit('drain');
    await c.until(() => next.ended, { what: 'the snapshot sent whole' });
    for (const call of calls) if (!call.ended) call.cancel();
  });
});
