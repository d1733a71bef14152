// The core logs through this interface only; drivers plug in pino (server) or a buffer (tests).

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** A node id as etcd-io/raft logs it (%x), and as etcd shows member ids. */
export const hexId = (id: bigint): string => id.toString(16);
