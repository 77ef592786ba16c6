// The contracts between ipvssync and whatever holds the IPVS state: the table (read it, apply ops to
// it) and the connection-sync daemons. Implemented by the in-memory backend (dry-run, tests) and the
// netlink adapter (the kernel).

import type { IpvsInfo, Op, OpResult, SyncDaemon, SyncDaemonState, Table, WantedSyncDaemon } from './types.js';

export interface IpvsBackend {
  /** IPVS version and connection table size (first line of `ipvsadm -Ln`). */
  info(): Promise<IpvsInfo>;
  /** The whole table: one service dump, then one destination dump per service. */
  readTable(): Promise<Table>;
  /**
   * Apply ops in order; one result per op, in the same order. A refused op does not stop the
   * ones after it (a netlink batch reports each op's errno separately).
   */
  apply(ops: readonly Op[]): Promise<OpResult[]>;
  close(): Promise<void>;
}

/**
 * The kernel's connection-sync daemons. They are kernel threads: they keep running after ipvssync
 * exits. Each method rejects with an Error whose message says why (`EEXIST: ...`).
 */
export interface SyncDaemonControl {
  /** The running daemons, every setting filled in. */
  readDaemons(): Promise<SyncDaemon[]>;
  startDaemon(daemon: WantedSyncDaemon): Promise<void>;
  stopDaemon(state: SyncDaemonState): Promise<void>;
}
