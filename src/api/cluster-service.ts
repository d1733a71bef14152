// etcdserverpb.Cluster: membership, changed one member at a time through Raft conf changes.

import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import {
  ClusterClient,
  ClusterService,
  type MemberAddRequest,
  type MemberAddResponse,
  type MemberListResponse,
  type MemberPromoteRequest,
  type MemberPromoteResponse,
  type MemberRemoveRequest,
  type MemberRemoveResponse,
  type MemberUpdateRequest,
  type MemberUpdateResponse,
} from '../gen/etcd/rpc.js';
import type { MemberInfo } from '../gen/raftkv/raftpb.js';
import { EtcdError, Errors } from '../kv/errors.js';
import { ConfChangeType } from '../raft/index.js';
import { MemberInfo as MemberInfoCodec } from '../gen/raftkv/raftpb.js';
import type { EtcdServer } from '../server/etcd-server.js';
import { grpcTarget } from '../transport/grpc-transport.js';
import { unary } from './grpc-util.js';

function validUrls(urls: string[]): boolean {
  if (urls.length === 0) return false;
  for (const u of urls) {
    try {
      const p = new URL(u);
      if ((p.protocol !== 'http:' && p.protocol !== 'https:') || !p.port || p.pathname !== '/') return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** A learner may be promoted once its log is within 90% of the leader's (etcd's rule). */
const LEARNER_READY_PERCENT = 0.9;

export function clusterService(s: EtcdServer): [typeof ClusterService, grpc.UntypedServiceImplementation] {
  const members = () => s.sm.membership.list();
  const hdr = () => s.header(s.sm.store.currentRev);
  let leaderClient: { url: string; c: InstanceType<typeof ClusterClient> } | undefined;

  const memberList = async (req: { linearizable: boolean }): Promise<MemberListResponse> => {
    // etcd 3.5's linearizable flag: read the list at a ReadIndex point instead of locally.
    if (req.linearizable) await s.linearizableRead();
    return { header: hdr(), members: members() };
  };

  const memberAdd = async (req: MemberAddRequest): Promise<MemberAddResponse> => {
    if (!validUrls(req.peerURLs)) throw Errors.memberBadURLs();
    for (const m of s.sm.membership.members.values()) {
      if (m.peerUrls.some((u) => req.peerURLs.includes(u))) throw Errors.peerURLExist();
    }
    // etcd: sha1(sorted peer URLs + cluster token + time) — unique per add.
    const h = createHash('sha1').update([...req.peerURLs].sort().join('') + s.cfg.initialClusterToken + String(Date.now())).digest();
    const id = h.readBigUInt64BE(0);
    if (s.sm.membership.get(id) || s.sm.membership.removed.has(id)) throw Errors.memberExist();
    if (!req.isLearner) checkReadyToAddVoter(s);
    const info: MemberInfo = { id, name: '', peerUrls: req.peerURLs, clientUrls: [], isLearner: req.isLearner };
    await s.proposeConfChange({
      type: req.isLearner ? ConfChangeType.AddLearnerNode : ConfChangeType.AddNode,
      nodeId: id,
      context: MemberInfoCodec.encode(info).finish(),
    });
    const member = members().find((m) => m.ID === id);
    return { header: hdr(), member, members: members() };
  };

  const memberRemove = async (req: MemberRemoveRequest): Promise<MemberRemoveResponse> => {
    const m = s.sm.membership.get(req.ID);
    if (!m) throw Errors.memberNotFound();
    // Removing a learner never endangers the quorum.
    if (!m.isLearner) checkReadyToRemoveVoter(s, req.ID);
    await s.proposeConfChange({ type: ConfChangeType.RemoveNode, nodeId: req.ID, context: new Uint8Array(0) });
    return { header: hdr(), members: members() };
  };

  const memberUpdate = async (req: MemberUpdateRequest): Promise<MemberUpdateResponse> => {
    const m = s.sm.membership.get(req.ID);
    if (!m) throw Errors.memberNotFound();
    if (!validUrls(req.peerURLs)) throw Errors.memberBadURLs();
    const info: MemberInfo = { ...m, peerUrls: req.peerURLs };
    await s.proposeConfChange({ type: ConfChangeType.UpdateNode, nodeId: req.ID, context: MemberInfoCodec.encode(info).finish() });
    return { header: hdr(), members: members() };
  };

  const memberPromote = async (req: MemberPromoteRequest): Promise<MemberPromoteResponse> => {
    const m = s.sm.membership.get(req.ID);
    if (!m) throw Errors.memberNotFound();
    if (!m.isLearner) throw Errors.memberNotLearner();
    if (!s.isLeader()) {
      // Only the leader knows how far the learner has caught up: ask it.
      const url = s.leaderClientUrl();
      if (!url) throw Errors.noLeader();
      if (!leaderClient || leaderClient.url !== url) leaderClient = { url, c: new ClusterClient(grpcTarget(url), grpc.credentials.createInsecure()) };
      const c = leaderClient.c;
      return new Promise((resolve, reject) =>
        c.memberPromote(req, new grpc.Metadata(), { deadline: Date.now() + s.requestTimeoutMs }, (err: grpc.ServiceError | null, res?: MemberPromoteResponse) =>
          err ? reject(new EtcdError(err.code, err.details)) : resolve(res!),
        ),
      );
    }
    const lead = s.progressOf(s.id)?.match ?? 0;
    const pr = s.progressOf(req.ID);
    if (!pr || pr.match < lead * LEARNER_READY_PERCENT) throw Errors.learnerNotReady();
    // The learner counts as started: it has just proven so by catching up.
    const { voters, started } = voterCounts(s);
    if (started + 1 < quorum(voters + 1)) throw Errors.memberNotEnoughStarted();
    await s.proposeConfChange({ type: ConfChangeType.AddNode, nodeId: req.ID, context: new Uint8Array(0) });
    return { header: hdr(), members: members() };
  };

  return [
    ClusterService,
    {
      memberAdd: unary(s, memberAdd),
      memberRemove: unary(s, memberRemove),
      memberUpdate: unary(s, memberUpdate),
      memberList: unary(s, memberList, { learnerOk: true }),
      memberPromote: unary(s, memberPromote),
    },
  ];
}

// etcd's strict reconfiguration checks (--strict-reconfig-check, on by default): a change must
// not leave the new configuration without a quorum of started members (a member is started
// once it has published its name), and the serving leader must hear from the voters it counts
// on. Followers cannot judge activity; the leader's Raft still orders what they forward.

const quorum = (n: number): number => Math.floor(n / 2) + 1;

/**
 * The voters (all but `except`): how many, how many have started, and, on the leader, how many
 * it heard from recently (itself included). Followers cannot judge activity: `active` is
 * undefined there.
 */
function voterCounts(s: EtcdServer, except?: bigint): { voters: number; started: number; active: number | undefined } {
  const leader = s.isLeader();
  let voters = 0;
  let started = 0;
  let active = 0;
  for (const m of s.sm.membership.members.values()) {
    if (m.isLearner || m.id === except) continue;
    voters++;
    if (m.name !== '') started++;
    if (leader && (m.id === s.id || s.recentlyActive(m.id))) active++;
  }
  return { voters, started, active: leader ? active : undefined };
}

function checkReadyToAddVoter(s: EtcdServer): void {
  const { voters, started, active } = voterCounts(s);
  // etcd's exception: a second member may join a 1-member cluster (restoring from a backup).
  const restoring = started === 1 && voters + 1 === 2;
  if (!restoring && started < quorum(voters + 1)) throw Errors.memberNotEnoughStarted();
  // The leader must hear from every voter before it counts on one more.
  if (active !== undefined && active < voters) throw Errors.unhealthy();
}

/** Removing a voter must leave a quorum of started, and of active, voters. */
function checkReadyToRemoveVoter(s: EtcdServer, id: bigint): void {
  const { voters, started, active } = voterCounts(s, id);
  if (started < quorum(voters)) throw Errors.memberNotEnoughStarted();
  if (active !== undefined && active < quorum(voters)) throw Errors.unhealthy();
}
