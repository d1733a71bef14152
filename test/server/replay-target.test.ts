// How far a restarted member replays before serving (force-new-cluster.ts, replayTarget): a
// member alone in its configuration replays every entry it persisted — the commit index that
// covers them is written unsynced and may be lost with the process — so a single member never
// answers from a state older than writes it acknowledged; a member of several replays to the
// commit index it found (its tail may be uncommitted), as does one with a conf change pending.

import assert from 'node:assert/strict';
import { it } from 'node:test';
import { ConfChangeType, type Entry, EntryType, encodeConfChangeV1 } from '../../src/raft/index.js';
import { replayTarget } from '../../src/server/force-new-cluster.js';

const normal = (index: number): Entry => ({ term: 2, index, type: EntryType.Normal, data: new Uint8Array(0) });
const conf = (index: number, type: ConfChangeType, nodeId: bigint): Entry => ({
  term: 2,
  index,
  type: EntryType.ConfChange,
  data: encodeConfChangeV1({ type, nodeId, context: new Uint8Array(0) }),
});

it('a member alone replays all it persisted; one of several, or with a conf change pending, to its commit index', () => {
  const alone = [conf(1, ConfChangeType.AddNode, 7n), normal(2), normal(3), normal(4)];
  assert.equal(replayTarget(undefined, alone, 3, 4, 7n), 4);
  assert.equal(replayTarget({ voters: [7n], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false }, [normal(11), normal(12)], 11, 12, 7n), 12);
  const three = [conf(1, ConfChangeType.AddNode, 7n), conf(2, ConfChangeType.AddNode, 8n), conf(3, ConfChangeType.AddNode, 9n), normal(4), normal(5)];
  assert.equal(replayTarget(undefined, three, 4, 5, 7n), 4);
  // A member being added in the uncommitted tail: that entry needed two votes.
  assert.equal(replayTarget(undefined, [...alone, conf(5, ConfChangeType.AddNode, 8n), normal(6)], 4, 6, 7n), 4);
});
