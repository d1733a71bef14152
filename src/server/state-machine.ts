// The replicated state machine: applies committed log entries to the MVCC store, the lessor
// and the member list, deterministically. Its results are what the proposing node returns
// to the waiting client.

import {
  type ConfChangeV2,
  ConfChangeType,
  type Entry,
  EntryType,
  decodeConfChangeEntry,
} from '../raft/index.js';
import type { ResponseHeader } from '../gen/etcd/rpc.js';
import { InternalRequest, MemberInfo } from '../gen/raftkv/raftpb.js';
import { EtcdError } from '../kv/errors.js';
import { applyDelete, applyPut, applyTxn } from '../kv/kv-ops.js';
import { Lessor } from '../kv/lessor.js';
import { MvccStore, type StoreImage } from '../kv/mvcc.js';
import { Membership } from './membership.js';

export type ApplyOutcome = { ok: true; value: Record<string, unknown> } | { ok: false; error: EtcdError };

export interface AppliedConfChange {
  cc: ConfChangeV2;
  member?: MemberInfo;
}

export interface StateImage {
  version: 1;
  store: StoreImage;
  leases: Array<[string, string]>;
  members: { members: string[]; removed: string[] };
}

export class StateMachine {
  store = new MvccStore();
  readonly membership = new Membership();
  appliedIndex = 0;

  constructor(
    readonly lessor: Lessor,
    /** Fills the header of responses (ids, term); revision is set here. */
    private readonly header: () => ResponseHeader,
  ) {
    this.store.leases = lessor;
  }

  private hdr(): ResponseHeader {
    return { ...this.header(), revision: this.store.currentRev };
  }

  /** Applies a normal entry. Returns the request id (0 for none) and its outcome. */
  applyNormal(e: Entry): { id: bigint; outcome: ApplyOutcome } {
    this.appliedIndex = e.index;
    if (e.data.length === 0) return { id: 0n, outcome: { ok: true, value: {} } }; // leader no-op
    const req = InternalRequest.decode(e.data);
    try {
      return { id: req.id, outcome: { ok: true, value: this.applyRequest(req) } };
    } catch (err) {
      if (err instanceof EtcdError) return { id: req.id, outcome: { ok: false, error: err } };
      throw err;
    }
  }

  private applyRequest(req: InternalRequest): Record<string, unknown> {
    const s = this.store;
    if (req.put) {
      const put = req.put;
      const r = s.write((w) => applyPut(w, s, put));
      return { header: this.hdr(), ...r };
    }
    if (req.deleteRange) {
      const del = req.deleteRange;
      const r = s.write((w) => applyDelete(w, del));
      return { header: this.hdr(), ...r };
    }
    if (req.txn) {
      const txn = req.txn;
      // Sub-response headers carry the revision the txn produced, so they are filled after.
      const subHeaders: ResponseHeader[] = [];
      const mk = (): ResponseHeader => {
        const h = this.hdr();
        subHeaders.push(h);
        return h;
      };
      const r = s.write((w) => applyTxn(w, s, txn, mk));
      for (const h of subHeaders) h.revision = s.currentRev;
      return { header: this.hdr(), ...r };
    }
    if (req.compaction) {
      s.compact(req.compaction.revision);
      return { header: this.hdr() };
    }
    if (req.leaseGrant) {
      const l = this.lessor.grant(req.leaseGrant.ID, req.leaseGrant.TTL);
      return { header: this.hdr(), ID: l.id, TTL: l.ttl, error: '' };
    }
    if (req.leaseRevoke) {
      const id = req.leaseRevoke.ID;
      const keys = this.lessor.revoke(id);
      if (keys.length > 0) {
        s.write((w) => {
          for (const k of keys) w.deleteRange(Buffer.from(k, 'latin1'), undefined);
        });
      }
      return { header: this.hdr() };
    }
    if (req.memberAttributes) {
      const a = req.memberAttributes;
      this.membership.setAttributes(a.id, a.name, a.clientUrls);
      return {};
    }
    return {};
  }

  /** Decodes a conf change entry and records its membership effect. */
  applyConfChangeEntry(e: Entry): AppliedConfChange {
    this.appliedIndex = e.index;
    const cc = decodeConfChangeEntry(e.type, e.data);
    let member: MemberInfo | undefined;
    if (cc.context.length > 0) {
      try {
        member = MemberInfo.decode(cc.context);
      } catch {
        member = undefined;
      }
    }
    for (const c of cc.changes) {
      switch (c.type) {
        case ConfChangeType.AddNode:
          if (this.membership.get(c.nodeId)) this.membership.promote(c.nodeId);
          else if (member && member.id === c.nodeId) this.membership.add({ ...member, isLearner: false });
          break;
        case ConfChangeType.AddLearnerNode:
          if (member && member.id === c.nodeId) this.membership.add({ ...member, isLearner: true });
          break;
        case ConfChangeType.RemoveNode:
          this.membership.remove(c.nodeId);
          break;
        case ConfChangeType.UpdateNode:
          if (member && member.id === c.nodeId) this.membership.updatePeerUrls(c.nodeId, member.peerUrls);
          break;
      }
    }
    return { cc, member };
  }

  isConfChange(e: Entry): boolean {
    return e.type === EntryType.ConfChange || e.type === EntryType.ConfChangeV2;
  }

  toImage(): StateImage {
    return { version: 1, store: this.store.toImage(), leases: this.lessor.toImage(), members: this.membership.toImage() };
  }

  /**
   * A snapshot image (JSON) of the state at the current applied index, built without blocking
   * the event loop for long. Returns the index it reflects.
   */
  async imageAsync(pause: () => Promise<void>): Promise<{ index: number; json: string }> {
    const index = this.appliedIndex;
    const leases = JSON.stringify(this.lessor.toImage());
    const members = JSON.stringify(this.membership.toImage());
    const store = await this.store.imageJsonAsync(pause);
    return { index, json: `{"version":1,"store":${store},"leases":${leases},"members":${members}}` };
  }

  restore(img: StateImage, index: number): void {
    const onEvents = this.store.onEvents;
    this.store = MvccStore.fromImage(img.store);
    this.store.onEvents = onEvents;
    this.store.leases = this.lessor;
    this.lessor.restore(img.leases);
    this.store.forEachLeasedKey((lease, key) => this.lessor.attach(lease, key));
    this.membership.restore(img.members);
    this.appliedIndex = index;
  }
}
