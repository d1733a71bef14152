// etcd's client-visible errors: the exact message text and a status code. The etcd3 npm
// client picks its error classes by these messages, so they must match etcd's byte for byte.
//
// Nothing here knows a transport: the code is our own ErrorCode (the canonical status codes
// etcd's rpctypes use, google.rpc.Code numbering), mapped to a gRPC status where errors leave
// the process (src/api/grpc-status.ts) and back where a forwarded call's error comes in.

/**
 * The kind of failure, as a canonical status code (google.rpc.Code: the numbering gRPC and
 * etcd's gateway share). Transport-neutral: src/api/ maps it to the wire.
 */
export enum ErrorCode {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

export class EtcdError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

const e = (code: ErrorCode, msg: string) => () => new EtcdError(code, msg);

const {
  INVALID_ARGUMENT,
  OUT_OF_RANGE,
  RESOURCE_EXHAUSTED,
  NOT_FOUND,
  FAILED_PRECONDITION,
  UNAVAILABLE,
  DATA_LOSS,
  PERMISSION_DENIED,
  UNAUTHENTICATED,
} = ErrorCode;

export const Errors = {
  emptyKey: e(INVALID_ARGUMENT, 'etcdserver: key is not provided'),
  keyNotFound: e(INVALID_ARGUMENT, 'etcdserver: key not found'),
  valueProvided: e(INVALID_ARGUMENT, 'etcdserver: value is provided'),
  leaseProvided: e(INVALID_ARGUMENT, 'etcdserver: lease is provided'),
  tooManyOps: e(INVALID_ARGUMENT, 'etcdserver: too many operations in txn request'),
  duplicateKey: e(INVALID_ARGUMENT, 'etcdserver: duplicate key given in txn request'),
  compacted: e(OUT_OF_RANGE, 'etcdserver: mvcc: required revision has been compacted'),
  futureRev: e(OUT_OF_RANGE, 'etcdserver: mvcc: required revision is a future revision'),
  noSpace: e(RESOURCE_EXHAUSTED, 'etcdserver: mvcc: database space exceeded'),
  leaseNotFound: e(NOT_FOUND, 'etcdserver: requested lease not found'),
  leaseExist: e(FAILED_PRECONDITION, 'etcdserver: lease already exists'),
  leaseTTLTooLarge: e(OUT_OF_RANGE, 'etcdserver: too large lease TTL'),
  memberExist: e(FAILED_PRECONDITION, 'etcdserver: member ID already exist'),
  peerURLExist: e(FAILED_PRECONDITION, 'etcdserver: Peer URLs already exists'),
  memberNotEnoughStarted: e(FAILED_PRECONDITION, 'etcdserver: re-configuration failed due to not enough started members'),
  memberBadURLs: e(INVALID_ARGUMENT, 'etcdserver: given member URLs are invalid'),
  memberNotFound: e(NOT_FOUND, 'etcdserver: member not found'),
  memberNotLearner: e(FAILED_PRECONDITION, 'etcdserver: can only promote a learner member'),
  learnerNotReady: e(FAILED_PRECONDITION, 'etcdserver: can only promote a learner member which is in sync with leader'),
  tooManyLearners: e(FAILED_PRECONDITION, 'etcdserver: too many learner members in cluster'),
  requestTooLarge: e(INVALID_ARGUMENT, 'etcdserver: request is too large'),
  tooManyRequests: e(RESOURCE_EXHAUSTED, 'etcdserver: too many requests'),
  noLeader: e(UNAVAILABLE, 'etcdserver: no leader'),
  notLeader: e(FAILED_PRECONDITION, 'etcdserver: not leader'),
  leaderChanged: e(UNAVAILABLE, 'etcdserver: leader changed'),
  stopped: e(UNAVAILABLE, 'etcdserver: server stopped'),
  timeout: e(UNAVAILABLE, 'etcdserver: request timed out'),
  /** The caller went away (grpc-go's status of a canceled context). */
  canceled: e(ErrorCode.CANCELLED, 'context canceled'),
  timeoutDueToLeaderFail: e(UNAVAILABLE, 'etcdserver: request timed out, possibly due to previous leader failure'),
  timeoutDueToConnectionLost: e(UNAVAILABLE, 'etcdserver: request timed out, possibly due to connection lost'),
  unhealthy: e(UNAVAILABLE, 'etcdserver: unhealthy cluster'),
  notSupportedForLearner: e(UNAVAILABLE, 'etcdserver: rpc not supported for learner'),
  badLeaderTransferee: e(FAILED_PRECONDITION, 'etcdserver: bad leader transferee'),
  notCapable: e(UNAVAILABLE, 'etcdserver: not capable'),
  corrupt: e(DATA_LOSS, 'etcdserver: corrupt cluster'),
  // Auth (etcd's rpctypes/error.go, texts and codes as etcd 3.4 sends them).
  rootUserNotExist: e(FAILED_PRECONDITION, 'etcdserver: root user does not exist'),
  rootRoleNotExist: e(FAILED_PRECONDITION, 'etcdserver: root user does not have root role'),
  userAlreadyExist: e(FAILED_PRECONDITION, 'etcdserver: user name already exists'),
  userEmpty: e(INVALID_ARGUMENT, 'etcdserver: user name is empty'),
  userNotFound: e(FAILED_PRECONDITION, 'etcdserver: user name not found'),
  roleAlreadyExist: e(FAILED_PRECONDITION, 'etcdserver: role name already exists'),
  roleNotFound: e(FAILED_PRECONDITION, 'etcdserver: role name not found'),
  roleEmpty: e(INVALID_ARGUMENT, 'etcdserver: role name is empty'),
  authFailed: e(INVALID_ARGUMENT, 'etcdserver: authentication failed, invalid user ID or password'),
  /**
   * A proposal that never reached Raft because its member had no leader for the whole request
   * timeout: etcd's Raft blocks such a proposal, and its context's own error goes to the client
   * unconverted (code Unknown), which clients do not retry as they retry Unavailable.
   */
  noLeaderDeadline: e(ErrorCode.UNKNOWN, 'context deadline exceeded'),
  /** The auth store's own error, which etcd 3.4's gRPC layer does not convert (code Unknown). */
  noPasswordUser: e(ErrorCode.UNKNOWN, 'auth: authentication failed, password was given for no password user'),
  permissionDenied: e(PERMISSION_DENIED, 'etcdserver: permission denied'),
  roleNotGranted: e(FAILED_PRECONDITION, 'etcdserver: role is not granted to the user'),
  permissionNotGranted: e(FAILED_PRECONDITION, 'etcdserver: permission is not granted to the role'),
  /** etcd 3.5's answer to a grant without a permission (etcd 3.4 panics on it: every member). */
  permissionNotGiven: e(INVALID_ARGUMENT, 'etcdserver: permission not given'),
  authNotEnabled: e(FAILED_PRECONDITION, 'etcdserver: authentication is not enabled'),
  invalidAuthToken: e(UNAUTHENTICATED, 'etcdserver: invalid auth token'),
  invalidAuthMgmt: e(INVALID_ARGUMENT, 'etcdserver: invalid auth management'),
  authOldRevision: e(INVALID_ARGUMENT, 'etcdserver: revision of auth store is old'),
};

/** A request that waited out the request timeout, in either of etcd's texts for it. */
export function isRequestTimeout(e: unknown): boolean {
  return e instanceof EtcdError && (e.message === Errors.timeout().message || e.message === Errors.timeoutDueToLeaderFail().message);
}
