// Proposals and their waiters: a client request becomes an InternalRequest with a unique id,
// goes to Raft, and its caller waits until this member applies it (or it times out).
//
// Owns: request ids, the waiters, the proposals still in flight (to propose them again when
// the leader changes, or when one has waited two election timeouts), request timeouts with
// etcd's error texts, and membership changes one at a time. Never: applies anything (the
// state machine does, and answers through `settle`), or proposes a request its caller has
// stopped waiting on. Re-proposing is safe because the state machine applies a request id
// once (applied-requests.ts); an id is never reused, even across restarts.

import { type ConfChangeV1, ErrProposalDropped, NONE, StateType } from '../raft/index.js';
import { InternalRequest } from '../gen/raftkv/entry.js';
import { type EtcdError, Errors } from '../kv/errors.js';
import type { Logger } from '../raft/logger.js';
import { IdGenerator, hex } from '../util/ids.js';
import { encodeKept } from '../util/kept-writer.js';
import { lengthSize, varintSize } from '../util/varint.js';
import { settled } from '../kv/kv-ops.js';
import type { Clock } from './clock.js';
import type { RaftNode } from './raft-node.js';
import type { ApplyOutcome, RequestKind, RequestResults, StateMachine } from './state-machine.js';
import { Wait } from './wait.js';

/** `handed`: given to Raft at least once (a member without a leader keeps it back). */
type Pending = { id: bigint; data: Uint8Array; proposedAt: number; handed: boolean };

/**
 * The size etcd gives the same request, which --max-request-bytes bounds (etcd's
 * processInternalRaftRequestOnce): the encoded request with etcd's envelope in place of ours.
 * etcd's InternalRaftRequest carries a RequestHeader (field 100: the request id, the caller's
 * name and auth revision); ours has id, proposer and settled_below (the exactly-once fields)
 * and the caller's name and auth revision at the top level. Ids are made alike (util/ids.ts),
 * and the body's field is the same size in both (tags of one byte for the KV and lease
 * requests, two for auth's), so the limit falls on the same byte as etcd's.
 */
function etcdRequestSize(encoded: number, req: InternalRequest): number {
  const id = 1 + varintSize(req.id);
  const nameBytes = req.username.length === 0 ? 0 : Buffer.byteLength(req.username);
  const name = nameBytes === 0 ? 0 : lengthSize(nameBytes) + nameBytes;
  const rev = req.authRevision === 0n ? 0 : varintSize(req.authRevision);
  const ours = id + (2 + varintSize(req.proposer)) + (req.settledBelow === 0n ? 0 : 2 + varintSize(req.settledBelow)) + (name && 2 + name) + (rev && 2 + rev);
  const header = id + (name && 1 + name) + (rev && 1 + rev);
  return encoded - ours + 2 + lengthSize(header) + header;
}

/**
 * Every field of an InternalRequest, unset. Each request is a copy of it with its fields set,
 * so that all of them have one shape: built as `{ [kind]: body, ...}` they had a shape per
 * kind and a slow path for the computed key, and the encoder, which looks at every field, saw
 * them all (with the kept writer, ../util/kept-writer.ts: ~14 → ~5 µs for a put's request).
 */
const UNSET: InternalRequest = InternalRequest.create();

export interface ProposalLimits {
  maxRequestBytes: number;
  requestTimeoutMs: number;
  electionMs: number;
}

export interface ProposalCounters {
  retried(): void;
  failed(): void;
}

export class Proposals {
  private readonly wait = new Wait<ApplyOutcome>();
  private readonly ids: IdGenerator;
  /**
   * Proposals of this member still waiting to be applied, in id order (ids only grow). Kept so
   * they can be proposed again when the leader changes.
   */
  private readonly inflight = new Map<bigint, Pending>();
  private readonly confWait = new Map<string, () => void>();
  private knownLead = NONE;
  private leaderChangedAt = -Infinity;
  private stopped = false;

  constructor(
    private readonly memberId: bigint,
    private readonly node: RaftNode,
    private readonly sm: StateMachine,
    private readonly limits: ProposalLimits,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly counters: ProposalCounters,
  ) {
    this.ids = new IdGenerator(memberId, clock.wallNow());
  }

  /** Replicates a request and resolves with what applying it answered (or rejects with an etcd error). */
  async propose<K extends RequestKind>(
    kind: K,
    body: NonNullable<InternalRequest[K]>,
    caller?: Pick<InternalRequest, 'username' | 'authRevision'>,
  ): Promise<RequestResults[K]> {
    if (this.stopped) throw Errors.stopped();
    // `caller`: who asked (etcd's RequestHeader username/auth_revision), for the auth checks at apply.
    const req: InternalRequest = { ...UNSET, username: caller?.username ?? '', authRevision: caller?.authRevision ?? 0n };
    (req as Pick<InternalRequest, K>)[kind] = body;
    const refused = this.sm.alarms.refusal(req); // a raised alarm (also checked when applied)
    if (refused) throw refused;
    let id = this.ids.next();
    const settledFloor = this.sm.appliedRequests.settledBelow(this.memberId);
    if (id < settledFloor) {
      // The clock went back across a restart: never reuse ids the log already settled.
      this.ids.atLeast(settledFloor);
      id = this.ids.next();
    }
    const oldest = this.inflight.keys().next();
    const settledBelow = oldest.done ? id : oldest.value;
    req.id = id;
    req.proposer = this.memberId;
    req.settledBelow = settledBelow;
    const data = encodeKept(InternalRequest, req);
    if (etcdRequestSize(data.length, req) > this.limits.maxRequestBytes) throw Errors.requestTooLarge();
    const p = this.wait.register(id);
    const pending: Pending = { id, data, proposedAt: this.clock.now(), handed: false };
    // Never handed to Raft: there was no leader all along (etcd: its Propose blocked until the
    // deadline, and the context's error is what the client gets).
    const timer = this.clock.setTimeout(() => this.wait.fail(id, pending.handed ? this.timeoutError() : Errors.noLeaderDeadline()), this.limits.requestTimeoutMs);
    this.inflight.set(id, pending);
    this.proposeData(pending);
    try {
      const outcome = await p;
      if (!outcome.ok) throw outcome.error;
      // The state machine answers a request of kind K with the result of kind K (RequestResults),
      // complete once the ranges it reads after applying are read (a txn's: kv-ops.ts).
      return (await settled(outcome.value)) as RequestResults[K];
    } catch (e) {
      this.counters.failed();
      throw e;
    } finally {
      timer.cancel();
      this.inflight.delete(id);
    }
  }

  /** Whether a caller here still waits on request `id` (else applying it needs no response). */
  isWaiting(id: bigint): boolean {
    return this.wait.has(id);
  }

  /** The state machine applied request `id` (proposed here) with this outcome. */
  settle(id: bigint, outcome: ApplyOutcome): void {
    this.wait.trigger(id, outcome);
  }

  /**
   * Hands a waiting proposal to Raft (queued for this turn's batch); false if it was not
   * (settled, no leader). One Raft refuses is proposed again 50 ms later.
   */
  private proposeData(p: Pending): boolean {
    // Answered or timed out meanwhile: its id is settled, proposing it again would be wasted.
    if (this.stopped || !this.inflight.has(p.id)) return false;
    // No leader yet: the proposal waits in `inflight` and goes out when one is known.
    if (this.node.raw.lead === NONE) return false;
    p.proposedAt = this.clock.now();
    p.handed = true;
    this.node.propose(p.data, (e) => {
      if (!(e instanceof ErrProposalDropped)) {
        this.wait.fail(p.id, e);
        return;
      }
      // Dropped (this node leads and is transferring leadership, or just lost it): retry
      // shortly, within the request timeout.
      this.clock.setTimeout(() => {
        try {
          this.proposeData(p);
        } catch (err) {
          // Not from a client's call stack any more: fail the request, not the process.
          this.wait.fail(p.id, Errors.stopped());
          this.logger.warn(`proposal ${p.id} could not be proposed again: ${(err as Error).message}`);
        }
      }, 50);
    });
    return true;
  }

  /**
   * A new leader: whatever was forwarded to the old one may have been dropped (a leader
   * transferring leadership drops proposals; one that lost it may lose its uncommitted tail).
   * Propose every waiting request again rather than let its client time out.
   */
  onLeader(lead: bigint): void {
    this.leaderChangedAt = this.clock.now();
    if (lead !== NONE && lead !== this.knownLead) {
      for (const p of [...this.inflight.values()]) if (this.proposeData(p)) this.counters.retried();
    }
    this.knownLead = lead;
  }

  /**
   * Proposes again what has waited two election timeouts without being applied: a forwarded
   * proposal can be lost without a leader change (a transfer that was aborted dropped it, a
   * peer stream broke). Safe for the same reason as on a leader change: applied once.
   */
  reproposeStale(): void {
    const staleBefore = this.clock.now() - 2 * this.limits.electionMs;
    for (const p of this.inflight.values()) {
      if (p.proposedAt < staleBefore && this.proposeData(p)) this.counters.retried();
    }
  }

  /** etcd distinguishes a timeout right after a leader change. */
  timeoutError(): EtcdError {
    if (this.clock.now() - this.leaderChangedAt < this.limits.requestTimeoutMs) return Errors.timeoutDueToLeaderFail();
    return Errors.timeout();
  }

  /** Waits for `p` up to the request timeout (etcd's error texts on expiry). */
  async withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: { cancel(): void } | undefined;
    try {
      return await Promise.race([
        p,
        new Promise<never>((_, reject) => {
          timer = this.clock.setTimeout(() => reject(this.timeoutError()), this.limits.requestTimeoutMs);
        }),
      ]);
    } finally {
      timer?.cancel();
    }
  }

  /** Proposes a membership change and resolves once it is applied. */
  async proposeConfChange(cc: ConfChangeV1): Promise<void> {
    let st = this.node.raw.basicStatus();
    // The previous change may be applied (and answered) while the Ready that applied it is
    // still writing its new entries: wait for that Ready's advance, or the change would look
    // pending to Raft, which would drop this one.
    if (st.raftState === StateType.Leader && st.pendingConfIndex > st.applied && this.sm.appliedIndex >= st.pendingConfIndex) {
      await this.node.advanced();
      st = this.node.raw.basicStatus();
    }
    if (st.lead === NONE) throw Errors.noLeader();
    if (st.raftState === StateType.Leader && st.pendingConfIndex > st.applied) {
      // One change at a time: Raft would turn this one into a no-op and etcd's caller would
      // wait out its timeout; answer with the same error at once.
      this.logger.warn(`rejecting membership change of ${hex(cc.nodeId)}: the change at index ${st.pendingConfIndex} is not applied yet`);
      throw Errors.timeout();
    }
    const key = `${cc.type}:${cc.nodeId}`;
    const applied = new Promise<void>((resolve) => this.confWait.set(key, resolve));
    try {
      this.node.proposeConfChange(cc);
    } catch (e) {
      this.confWait.delete(key);
      if (e instanceof ErrProposalDropped) throw Errors.timeout();
      throw e;
    }
    try {
      await this.withTimeout(applied);
    } finally {
      this.confWait.delete(key);
    }
  }

  /** A conf change was applied: its proposer (if here) stops waiting. */
  confChangeApplied(type: number, nodeId: bigint): void {
    const key = `${type}:${nodeId}`;
    this.confWait.get(key)?.();
    this.confWait.delete(key);
  }

  stop(): void {
    this.stopped = true;
    this.wait.failAll(Errors.stopped());
  }
}
