// etcd's adjustTicks (etcdserver/server.go): a member that starts does not sit out a whole
// election timeout before it may campaign.
//  - The only member of its cluster (a fresh single-node cluster, or one restarted): its
//    election clock is advanced by electionTicks - 1 at once (it can only elect itself).
//  - With --initial-election-tick-advance (etcd's default, true): once the links to more than
//    one peer are up (checked every 50 ms for up to 5 s, rafthttp's ConnReadTimeout), the
//    clock is advanced by electionTicks - 2, leaving two ticks (and the randomized part of the
//    timeout) for a leader's heartbeat to arrive first. A restarted member of a running cluster
//    hears the leader within a tick, and PreVote with CheckQuorum keeps its early campaign, if
//    any, from disturbing the leader. (Like etcd, a 2-member cluster never advances: it never
//    has more than one peer.)
// The driver does the ticking (RaftNode.tick), exactly as its ticker would: the core stays pure.

import type { Clock, Timer } from './clock.js';

export interface TickAdvanceHost {
  /** Members in the configuration at start (voters and learners). */
  members(): number;
  /** Peers whose link is up now. */
  activePeers(): number;
  tick(): void;
  isStopped(): boolean;
}

const POLL_MS = 50;
const WAIT_MS = 5_000;

/** Starts the advance; returns its cancel (for a stop before it happened). */
export function adjustTicks(host: TickAdvanceHost, electionTicks: number, advance: boolean, clock: Clock, log: (msg: string) => void): () => void {
  const forward = (ticks: number): void => {
    for (let i = 0; i < ticks; i++) host.tick();
  };
  if (host.members() === 1) {
    log(`started as single-node; fast-forwarding election ticks (forward-ticks ${electionTicks - 1}, election-ticks ${electionTicks})`);
    forward(electionTicks - 1);
    return () => undefined;
  }
  if (!advance) {
    log(`skipping initial election tick advance (election-ticks ${electionTicks})`);
    return () => undefined;
  }
  log(`starting initial election tick advance (election-ticks ${electionTicks})`);
  let timer: Timer | undefined;
  let polls = 0;
  const poll = (): void => {
    if (host.isStopped()) return;
    if (host.activePeers() > 1) {
      log(`initialized peer connections; fast-forwarding election ticks (forward-ticks ${electionTicks - 2}, election-ticks ${electionTicks}, active-remote-members ${host.activePeers()})`);
      forward(electionTicks - 2);
      return;
    }
    if (++polls < WAIT_MS / POLL_MS) timer = clock.setTimeout(poll, POLL_MS);
  };
  timer = clock.setTimeout(poll, POLL_MS);
  return () => timer?.cancel();
}
