// An IPVS table kept in memory: the `--dry-run` backend (the kernel is never touched) and the one
// tests drive. Ops change the table with the kernel's semantics and are reported one line each.

import type { IpvsBackend } from './backend.js';
import { formatOp } from './format.js';
import { applyOp } from './table-ops.js';
import type { IpvsInfo, Op, OpResult, Table } from './types.js';

export interface MemoryBackendOptions {
  /** Starting table (default: empty). */
  readonly initial?: Table;
  /** Called with each applied op's line (`add service tcp 10.0.0.1:80 wrr`); dry-run prints it. */
  readonly onOp?: (line: string, op: Op) => void;
  readonly info?: IpvsInfo;
}

export class MemoryBackend implements IpvsBackend {
  private table: Table;
  /** Every op applied successfully, in order. */
  readonly applied: Op[] = [];
  private readonly infoValue: IpvsInfo;

  constructor(private readonly opts: MemoryBackendOptions = {}) {
    this.table = opts.initial ?? [];
    this.infoValue = opts.info ?? { version: '1.2.1', connTabSize: 4096 };
  }

  async info(): Promise<IpvsInfo> {
    return this.infoValue;
  }

  async readTable(): Promise<Table> {
    // Tables are immutable data: handing out the current value is a consistent snapshot.
    return this.table;
  }

  async apply(ops: readonly Op[]): Promise<OpResult[]> {
    const results: OpResult[] = [];
    for (const op of ops) {
      const r = applyOp(this.table, op);
      this.table = r.table;
      if (r.ok) {
        this.applied.push(op);
        this.opts.onOp?.(formatOp(op), op);
        results.push({ op, ok: true });
      } else {
        results.push({ op, ok: false, error: r.error });
      }
    }
    return results;
  }

  async close(): Promise<void> {}
}
