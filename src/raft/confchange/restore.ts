// Rebuilds a tracker configuration from a ConfState (at start-up or when a snapshot is
// installed) by replaying a sequence of changes onto an empty config, so that every
// configuration is produced by the same, checked, Changer code.

import type { ProgressTracker } from '../tracker/tracker.js';
import type { ConfState } from '../types.js';
import { type ChangeResult, Changer } from './changer.js';
import { type ConfChangeSingle, ConfChangeType } from './types.js';

function toConfChangeSingle(cs: ConfState): { outgoing: ConfChangeSingle[]; incoming: ConfChangeSingle[] } {
  // Example: voters=(1 2 3) learners=(5) outgoing=(1 2 4 6) learners_next=(4).
  // outgoing = add 1,2,4,6 (establishes the old config), then
  // incoming = remove 1,2,4,6; add 1,2,3; add-learner 5; add-learner 4 (entered jointly).
  const outgoing = cs.votersOutgoing.map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId }));
  const incoming: ConfChangeSingle[] = [
    ...cs.votersOutgoing.map((nodeId) => ({ type: ConfChangeType.RemoveNode, nodeId })),
    ...cs.voters.map((nodeId) => ({ type: ConfChangeType.AddNode, nodeId })),
    ...cs.learners.map((nodeId) => ({ type: ConfChangeType.AddLearnerNode, nodeId })),
    ...cs.learnersNext.map((nodeId) => ({ type: ConfChangeType.AddLearnerNode, nodeId })),
  ];
  return { outgoing, incoming };
}

/** `tracker` must hold an empty configuration; returns the configuration `cs` describes. */
export function restoreConfig(tracker: ProgressTracker, lastIndex: number, cs: ConfState): ChangeResult {
  const { outgoing, incoming } = toConfChangeSingle(cs);
  const step = (f: (c: Changer) => ChangeResult): void => {
    const r = f(new Changer(tracker, lastIndex));
    tracker.config = r.config;
    tracker.progress = r.progress;
  };
  if (outgoing.length === 0) {
    for (const cc of incoming) step((c) => c.simple([cc]));
  } else {
    for (const cc of outgoing) step((c) => c.simple([cc]));
    step((c) => c.enterJoint(cs.autoLeave, incoming));
  }
  return { config: tracker.config, progress: tracker.progress };
}
