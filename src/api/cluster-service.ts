// etcdserverpb.Cluster: membership, changed one member at a time through Raft conf changes.
// The rules (etcd's validation and strict reconfiguration checks) live in the server
// (src/server/membership-changes.ts); this is the wire face, plus forwarding a promotion to
// the leader, the only member that knows how far a learner has caught up.

import type * as grpc from '@grpc/grpc-js';
import {
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
import type { EtcdServer } from '../server/etcd-server.js';
import { tokenMetadata, unary } from './grpc-util.js';
import { LeaderClient } from './leader-client.js';

export function clusterService(s: EtcdServer): [typeof ClusterService, grpc.UntypedServiceImplementation] {
  const members = () => s.sm.membership.list();
  // etcd's ClusterServer.header(): cluster, member and term, no revision (membership is not in the MVCC store).
  const hdr = () => s.header(0n);
  const leader = new LeaderClient(s);

  const memberList = async (req: { linearizable: boolean }): Promise<MemberListResponse> => {
    // etcd 3.5's linearizable flag: read the list at a ReadIndex point instead of locally.
    if (req.linearizable) await s.linearizableRead();
    return { header: hdr(), members: members() };
  };

  const memberAdd = async (req: MemberAddRequest): Promise<MemberAddResponse> => {
    const member = await s.members.add(req.peerURLs, req.isLearner);
    return { header: hdr(), member, members: members() };
  };

  const memberRemove = async (req: MemberRemoveRequest): Promise<MemberRemoveResponse> => {
    await s.members.remove(req.ID);
    return { header: hdr(), members: members() };
  };

  const memberUpdate = async (req: MemberUpdateRequest): Promise<MemberUpdateResponse> => {
    await s.members.update(req.ID, req.peerURLs);
    return { header: hdr(), members: members() };
  };

  const memberPromote = async (req: MemberPromoteRequest, call: grpc.ServerUnaryCall<MemberPromoteRequest, MemberPromoteResponse>): Promise<MemberPromoteResponse> => {
    // Only the leader knows whether the learner has caught up: it checks everything, in etcd's order.
    if (!s.isLeader()) {
      const c = leader.cluster();
      // With auth on the leader checks the caller again: forward the caller's token.
      return leader.call(c.memberPromote.bind(c), req, s.sm.auth.enabled ? tokenMetadata(call.metadata) : undefined);
    }
    await s.members.promote(req.ID);
    return { header: hdr(), members: members() };
  };

  return [
    ClusterService,
    {
      // Membership changes: root only with auth on (etcd's checkMembershipOperationPermission).
      memberAdd: unary(s, memberAdd, { admin: true }),
      memberRemove: unary(s, memberRemove, { admin: true }),
      memberUpdate: unary(s, memberUpdate, { admin: true }),
      // Not on a learner: etcd 3.4 serves only Status and serializable Range there (isRPCSupportedForLearner).
      memberList: unary(s, memberList),
      memberPromote: unary(s, memberPromote, { admin: true }),
    },
  ];
}
