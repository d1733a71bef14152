// etcd's client-visible errors: gRPC status code and the exact message text. The etcd3 npm
// client picks its error classes by these messages, so they must match etcd's byte for byte.

import { status } from '@grpc/grpc-js';

export class EtcdError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const e = (code: status, msg: string) => () => new EtcdError(code, msg);

export const Errors = {
  emptyKey: e(status.INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: e(status.INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: e(status.INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: e(status.INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: e(status.INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(status.INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  compacted: e(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: e(status.OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: e(status.RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: e(status.NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExist: e(status.FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: e(status.OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  memberExist: e(status.FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  peerURLExist: e(status.FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: e(status.FAILED_PRECONDITION, 'etcdserver: re-configuration failed due to not enough started members'),
  memberBadURLs: e(status.INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  memberNotFound: e(status.NOT_FOUND, 'etcdserver: member not found'),
  memberNotLearner: e(status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: e(status.FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader'),
  tooManyLearners: e(status.FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),
  requestTooLarge: e(status.INVALID_ARGUMENT, 'etcdserver: request is too large'),
  tooManyRequests: e(status.RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  noLeader: e(status.UNAVAILABLE, 'etcdserver: no leader'),
  notLeader: e(status.FAILED_PRECONDITION, 'etcdserver: not leader'),
  leaderChanged: e(status.UNAVAILABLE, 'etcdserver: leader changed'),
  stopped: e(status.UNAVAILABLE, 'etcdserver: server stopped'),
  timeout: e(status.UNAVAILABLE, 'etcdserver: request timed out'),
  timeoutDueToLeaderFail: e(status.UNAVAILABLE, 'etcdserver: request timed out, possibly due to previous leader failure'),
  timeoutDueToConnectionLost: e(status.UNAVAILABLE, 'etcdserver: request timed out, possibly due to connection lost'),
  unhealthy: e(status.UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  notSupportedForLearner: e(status.UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  badLeaderTransferee: e(status.FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  notCapable: e(status.UNAVAILABLE, 'etcdserver: not capable'),
  corrupt: e(status.DATA_LOSS, 'etcdserver: corrupt cluster'),
};
