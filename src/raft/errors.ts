// Sentinel errors of the core. Storage implementations throw the first four; the driver
// API (RawNode) throws the rest. They are classes so callers can test with instanceof.

export class RaftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The requested index is older than the storage's first index (it was compacted away). */
export class ErrCompacted extends RaftError {
  constructor() {
    super('requested index is unavailable due to compaction');
  }
}

/** The requested snapshot is older than the existing one. */
export class ErrSnapOutOfDate extends RaftError {
  constructor() {
    super('requested index is older than the existing snapshot');
  }
}

/** The requested index is newer than the last index in storage. */
export class ErrUnavailable extends RaftError {
  constructor() {
    super('requested entry at index is unavailable');
  }
}

/** The snapshot is being produced; the leader will retry later. */
export class ErrSnapshotTemporarilyUnavailable extends RaftError {
  constructor() {
    super('snapshot is temporarily unavailable');
  }
}

/**
 * The proposal was dropped: there is no leader, this node is transferring leadership, the
 * proposal would exceed the uncommitted-size limit, or a conf change is already pending.
 * The caller may retry; nothing of it was appended.
 */
export class ErrProposalDropped extends RaftError {
  constructor(reason = 'raft proposal dropped') {
    super(reason);
  }
}

/** Raised by RawNode.step for a local-only message type arriving from the network. */
export class ErrStepLocalMsg extends RaftError {
  constructor() {
    super('raft: cannot step raft local message');
  }
}

/** Raised by RawNode.step for a response from a peer that is not in the configuration. */
export class ErrStepPeerNotFound extends RaftError {
  constructor() {
    super('raft: cannot step as peer not found');
  }
}

/** The configuration passed to the core is invalid. */
export class ErrConfig extends RaftError {}
