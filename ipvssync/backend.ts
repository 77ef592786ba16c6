// The one contract between ipvssync and whatever holds the IPVS table: read it, apply ops to it.
// Implemented by the in-memory backend (dry-run, tests) and the netlink adapter (the kernel).

import type { IpvsInfo, Op, OpResult, Table } from './types.js';

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
