// The cluster's member list: part of the replicated state (changed only by applied conf
// changes and member-attribute updates), so every node answers MemberList the same way.

import type { Member } from '../gen/etcd/rpc.js';
import { MemberInfo } from '../gen/raftkv/member.js';
import { compareOrdered } from '../util/compare.js';

export class Membership {
  readonly members = new Map<bigint, MemberInfo>();
  /** Ids of removed members: they may never rejoin (etcd forbids id reuse). */
  readonly removed = new Set<bigint>();

  add(m: MemberInfo): void {
    this.members.set(m.id, { ...m });
    this.removed.delete(m.id);
  }

  remove(id: bigint): void {
    this.members.delete(id);
    this.removed.add(id);
  }

  promote(id: bigint): void {
    const m = this.members.get(id);
    if (m) m.isLearner = false;
  }

  setAttributes(id: bigint, name: string, clientUrls: string[]): void {
    const m = this.members.get(id);
    if (!m) return;
    m.name = name;
    m.clientUrls = clientUrls;
  }

  updatePeerUrls(id: bigint, peerUrls: string[]): void {
    const m = this.members.get(id);
    if (m) m.peerUrls = peerUrls;
  }

  get(id: bigint): MemberInfo | undefined {
    return this.members.get(id);
  }

  /** Members in etcd's API shape, sorted by id. */
  list(): Member[] {
    return [...this.members.values()]
      .sort((a, b) => compareOrdered(a.id, b.id))
      .map((m) => ({ ID: m.id, name: m.name, peerURLs: [...m.peerUrls], clientURLs: [...m.clientUrls], isLearner: m.isLearner }));
  }

  toImage(): { members: string[]; removed: string[] } {
    return {
      members: [...this.members.values()].map((m) => Buffer.from(MemberInfo.encode(m).finish()).toString('base64')),
      removed: [...this.removed].map(String),
    };
  }

  restore(img: { members: string[]; removed: string[] }): void {
    this.members.clear();
    this.removed.clear();
    for (const b of img.members) {
      const m = MemberInfo.decode(Buffer.from(b, 'base64'));
      this.members.set(m.id, m);
    }
    for (const r of img.removed) this.removed.add(BigInt(r));
  }
}
