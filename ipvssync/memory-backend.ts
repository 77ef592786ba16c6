// An IPVS table and sync daemons kept in memory: the `--dry-run` backend (the kernel is never touched)
// and the one tests drive. Changes follow the kernel's semantics and are reported one line each.

import type { IpvsBackend, SyncDaemonControl } from './backend.js';
import { formatOp, formatSyncDaemon } from './format.js';
import { kernelMaxlen } from './sync-daemon-plan.js';
import { applyOp } from './table-ops.js';
import type { IpvsInfo, Op, OpResult, SyncDaemon, SyncDaemonState, Table, WantedSyncDaemon } from './types.js';

export interface MemoryBackendOptions {
  /** Starting table (default: empty). */
  readonly initial?: Table;
  /** Called with each applied op's line (`add service tcp 10.0.0.1:80 wrr`); dry-run prints it. */
  readonly onOp?: (line: string, op: Op) => void;
  readonly info?: IpvsInfo;
  /** Called with each daemon start/stop (`start master sync daemon (...)`). */
  readonly onDaemon?: (line: string) => void;
}

export class MemoryBackend implements IpvsBackend, SyncDaemonControl {
  private table: Table;
  private daemons: SyncDaemon[] = [];
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

  async readDaemons(): Promise<SyncDaemon[]> {
    return [...this.daemons];
  }

  async startDaemon(d: WantedSyncDaemon): Promise<void> {
    if (this.daemons.some((x) => x.state === d.state)) throw new Error(`EEXIST: a ${d.state} sync daemon is already running`);
    // The kernel's default size is the MTU's (1500 here) less the IP and UDP headers.
    const maxlen = kernelMaxlen(d.state, d.group, d.maxlen ?? 1500 - (d.group.includes(':') ? 48 : 28));
    const running: SyncDaemon = { ...d, maxlen };
    this.daemons.push(running);
    this.opts.onDaemon?.(`start ${formatSyncDaemon(running)}`);
  }

  async stopDaemon(state: SyncDaemonState): Promise<void> {
    const d = this.daemons.find((x) => x.state === state);
    if (!d) throw new Error(`ESRCH: no ${state} sync daemon is running`);
    this.daemons = this.daemons.filter((x) => x !== d);
    this.opts.onDaemon?.(`stop ${formatSyncDaemon(d)}`);
  }

  async close(): Promise<void> {}
}
