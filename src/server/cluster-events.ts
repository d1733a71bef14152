// Membership and leadership events as this member sees them happen (a member joined, was
// promoted or removed; a leader was elected or lost), for operators: the dashboard lists the
// recent ones live and marks leader changes on its charts.
//
// Owns: a short in-memory list of recent events and who listens to new ones. Never: decides
// anything (the server reports what already happened) or persists (a restart starts empty,
// except that replaying the log reports its conf changes again, with their Raft index).

import { EventEmitter } from 'node:events';

export type ClusterEventKind = 'joined' | 'joined-as-learner' | 'promoted' | 'removed' | 'updated' | 'became-leader' | 'new-leader' | 'leader-lost';

export interface ClusterEvent {
  /** Wall-clock time the member saw it (ms since the epoch). */
  at: number;
  kind: ClusterEventKind;
  /** The member it is about (hex id); for leader events, the leader (none for leader-lost). */
  member: string;
  term: number;
  /** The Raft index of the conf change entry (membership events only). */
  index?: number;
}

/** How many events are kept for a page that opens later. */
const KEPT = 100;

export class ClusterEvents {
  private readonly recentEvents: ClusterEvent[] = [];
  private readonly emitter = new EventEmitter();

  /** `wallNow`: the server's clock (clock.ts: nothing in src/server reads time by itself). */
  constructor(private readonly wallNow: () => number) {
    // Every open dashboard page listens; more than 10 is not a leak.
    this.emitter.setMaxListeners(0);
  }

  record(e: Omit<ClusterEvent, 'at'>): void {
    const ev: ClusterEvent = { at: this.wallNow(), ...e };
    this.recentEvents.push(ev);
    if (this.recentEvents.length > KEPT) this.recentEvents.splice(0, this.recentEvents.length - KEPT);
    this.emitter.emit('event', ev);
  }

  recent(): readonly ClusterEvent[] {
    return this.recentEvents;
  }

  /** Calls `f` for each new event; returns the function that stops it. */
  subscribe(f: (e: ClusterEvent) => void): () => void {
    this.emitter.on('event', f);
    return () => this.emitter.off('event', f);
  }
}
