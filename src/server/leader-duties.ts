// What a member does on its own initiative, through the log like any client would: the
// leader revokes expired leases, checkpoints long leases' remaining TTL (when lease
// checkpoints are on: kv/lessor.ts) and compacts the history (etcd's --auto-compaction-*), and
// every member publishes its name and client URLs once it knows a leader (etcd's publish).
//
// Owns: when these proposals are made, and not making the same one twice at a time. Never:
// changes the state directly (every effect is an applied entry, the same on every member),
// or lets a failure escape (a failed duty is logged and tried again later).

import type { Logger } from '../raft/logger.js';
import type { Clock, Timer } from './clock.js';
import type { ServerConfig } from './config.js';
import type { Proposals } from './proposals.js';
import type { StateMachine } from './state-machine.js';

/** How often lease expiry and auto-compaction are looked at (etcd checks leases every 500 ms). */
const DUTY_INTERVAL_MS = 500;
/**
 * etcd's leaseRevokeRate (lessor.go): at most this many expired leases are revoked per second,
 * so that a mass expiry — after a leader change or a restart every lease's countdown starts
 * together, and all those of one TTL that nobody keeps alive expire in the same tick — is
 * proposed over seconds rather than in one turn (60,000 revokes in one turn held the loop ~1 s).
 */
export const LEASE_REVOKE_RATE = 1000;
const REVOKES_PER_DUTY = (LEASE_REVOKE_RATE * DUTY_INTERVAL_MS) / 1000;
/** Leases per checkpoint entry (etcd's maxLeaseCheckpointBatchSize). */
const CHECKPOINT_BATCH = 1000;
/** Auto-compaction samples the revision and decides this often. */
const COMPACT_CHECK_MS = 5000;

export class LeaderDuties {
  private timer: Timer | undefined;
  private revoking = new Map<bigint, number>();
  /** Periodic auto-compaction's samples of the revision, oldest first: one period's worth (and one older). */
  private revSamples: Array<{ at: number; rev: bigint }> = [];
  private compacting = false;
  private checkpointing = false;
  private lastCompactCheck = -Infinity;
  private published = false;
  private stopped = false;
  private markReady!: () => void;
  /**
   * Resolves once this member's name and client URLs are in the membership it has applied —
   * published by it now or found there already (a restart) — with a leader known: etcd's
   * ReadyNotify, which tells systemd the member is up (src/cli/sd-notify.ts).
   */
  readonly ready: Promise<void> = new Promise((resolve) => {
    this.markReady = resolve;
  });

  constructor(
    private readonly memberId: bigint,
    private readonly cfg: Pick<ServerConfig, 'name' | 'advertiseClientUrls' | 'autoCompaction'>,
    private readonly sm: StateMachine,
    private readonly proposals: Proposals,
    private readonly isLeader: () => boolean,
    private readonly requestTimeoutMs: number,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  start(): void {
    this.timer = this.clock.setInterval(() => {
      this.checkLeases();
      this.checkpointLeases();
      this.maybeAutoCompact();
    }, DUTY_INTERVAL_MS);
  }

  /** Periodic auto-compaction's revision samples held (a period's worth: bounded). */
  get revisionSamples(): number {
    return this.revSamples.length;
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
  }

  /**
   * The primary lessor (on the leader) revokes what expired, one proposal per lease, at most
   * REVOKES_PER_DUTY per tick and LEASE_REVOKE_RATE in flight (etcd's rate).
   */
  private checkLeases(): void {
    if (this.stopped || !this.sm.lessor.isPrimary()) return;
    const now = this.clock.now();
    let started = 0;
    for (const id of this.sm.lessor.expired()) {
      if (started >= REVOKES_PER_DUTY || this.revoking.size >= LEASE_REVOKE_RATE) break;
      const last = this.revoking.get(id);
      if (last !== undefined && now - last < this.requestTimeoutMs) continue;
      started++;
      this.revoking.set(id, now);
      this.proposals
        .propose('leaseRevoke', { ID: id })
        .then(
          () => void this.sm.lessor.stats.expired++,
          () => {},
        )
        .finally(() => this.revoking.delete(id));
    }
  }

  /**
   * The primary lessor's due checkpoints, one entry of up to 1,000 leases at a time until none
   * is due (etcd's checkpointScheduledLeases). Those whose entry failed are due again an
   * interval later (etcd drops them until the next checkpoint or promotion).
   */
  private checkpointLeases(): void {
    const lessor = this.sm.lessor;
    if (this.stopped || this.checkpointing || !lessor.isPrimary()) return;
    const checkpoints = lessor.dueCheckpoints(CHECKPOINT_BATCH);
    if (checkpoints.length === 0) return;
    this.checkpointing = true;
    this.proposals
      .propose('leaseCheckpoint', { checkpoints })
      .then(
        () => {
          this.checkpointing = false;
          this.checkpointLeases();
        },
        (e: Error) => {
          this.checkpointing = false;
          this.logger.warn(`lease checkpoint of ${checkpoints.length} leases failed: ${e.message}`);
          lessor.retryCheckpoints(checkpoints);
        },
      );
  }

  /**
   * etcd's auto-compaction, run by the leader through Raft: 'revision' keeps the last N
   * revisions (checked every 5 s here); 'periodic' keeps the history of the last retention
   * period (sampled every 5 s, compacting to the revision current one period ago).
   */
  private maybeAutoCompact(): void {
    const ac = this.cfg.autoCompaction;
    if (!ac || ac.retention <= 0 || this.stopped || this.compacting) return;
    const now = this.clock.now();
    if (now - this.lastCompactCheck < COMPACT_CHECK_MS) return;
    this.lastCompactCheck = now;
    const store = this.sm.store;
    if (ac.mode === 'periodic') {
      // Every member samples (a follower that becomes leader has the period's samples), and
      // keeps only the period's: a follower kept every sample, 1.6 MB a day, for ever.
      this.revSamples.push({ at: now, rev: store.currentRev });
      let drop = 0;
      // The newest sample at least one period old is the compaction target: kept, with all after it.
      while (drop + 1 < this.revSamples.length && this.revSamples[drop + 1]!.at <= now - ac.retention) drop++;
      if (drop > 0) this.revSamples.splice(0, drop);
    }
    if (!this.isLeader()) return;
    let target: bigint;
    if (ac.mode === 'revision') {
      target = store.currentRev - BigInt(ac.retention);
    } else {
      const old = this.revSamples.filter((x) => x.at <= now - ac.retention);
      if (old.length === 0) return;
      target = old[old.length - 1]!.rev;
    }
    if (target <= 0n || target <= store.compactRev) return;
    this.compacting = true;
    this.proposals
      .propose('compaction', { revision: target, physical: false })
      .then(() => this.logger.info(`auto-compaction: compacted to revision ${target}`))
      .catch((e: Error) => this.logger.warn(`auto-compaction to ${target} failed: ${e.message}`))
      .finally(() => {
        this.compacting = false;
      });
  }

  /** Publishes this member's name and client URLs through the log (etcd's "publish"), once. */
  maybePublish(): void {
    if (this.published) return;
    this.published = true;
    const attempt = (): void => {
      if (this.stopped) return;
      const mine = this.sm.membership.get(this.memberId);
      const want = this.cfg.advertiseClientUrls.join(',');
      if (mine && mine.name === this.cfg.name && mine.clientUrls.join(',') === want) return this.markReady();
      this.proposals
        .propose('memberAttributes', { id: this.memberId, name: this.cfg.name, clientUrls: this.cfg.advertiseClientUrls })
        .then(() => {
          this.logger.info(`published ${this.cfg.name} ${want} to the cluster`);
          this.markReady();
        })
        .catch(() => this.clock.setTimeout(attempt, DUTY_INTERVAL_MS));
    };
    attempt();
  }
}
