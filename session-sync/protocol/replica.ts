// The backup's side of a link once the handshake is done: applies the master's snapshot and changes
// to the store in the order the protocol allows, and says what to acknowledge. Pure.
//
//   ready ──SNAPSHOT_BEGIN──► snapshot ──ENTRIES*──► snapshot ──SNAPSHOT_END──► live
//   live  ──CHANGES(seq)──► live (ACK seq)         live ──SNAPSHOT_BEGIN──► snapshot (master resync)
//
// A snapshot confirms every entry it carries; at its end whatever it did not confirm is removed
// (gone on the master while the link was down), so a reconnect never leaves stale entries.

import { entryKindOf, type Change } from '../model.js';
import type { Store } from '../store.js';
import type { Message } from '../wire/messages.js';

export interface ReplicaStep {
  /** The message changed the store and belongs in the journal. */
  readonly journal: boolean;
  readonly ack?: number;
  /** Stale entries a finished snapshot removed. */
  readonly swept?: readonly Change[];
  readonly fail?: string;
}

export class Replica {
  private state: 'ready' | 'snapshot' | 'live' = 'ready';
  private gen = 0;
  private lastSeq = 0;
  snapshots = 0;
  lastSnapshotAt = 0;
  changesApplied = 0;

  constructor(private readonly store: Store) {}

  get phase(): 'ready' | 'snapshot' | 'live' {
    return this.state;
  }

  get seq(): number {
    return this.lastSeq;
  }

  receive(m: Message, now: number): ReplicaStep {
    switch (m.type) {
      case 'snapshot-begin':
        this.state = 'snapshot';
        this.gen = this.store.beginGeneration();
        this.lastSeq = m.seq;
        return { journal: true };
      case 'entries':
        if (this.state !== 'snapshot') return { journal: false, fail: 'entries outside a snapshot' };
        this.store.touch(m.table);
        for (const e of m.entries) {
          if (e.kind !== entryKindOf(m.table)) return { journal: false, fail: `a ${e.kind} entry in ${m.table.kind} table` };
          this.store.upsert(m.table, e);
        }
        return { journal: true };
      case 'snapshot-end': {
        if (this.state !== 'snapshot') return { journal: false, fail: 'snapshot end without a beginning' };
        const swept = this.store.sweep(this.gen);
        this.state = 'live';
        this.snapshots += 1;
        this.lastSnapshotAt = now;
        return { journal: true, swept };
      }
      case 'changes':
        if (this.state !== 'live') return { journal: false, fail: `changes before the snapshot ended (${this.state})` };
        if (m.seq !== this.lastSeq + 1) return { journal: false, fail: `changes seq ${m.seq} after ${this.lastSeq}: a frame was lost` };
        this.lastSeq = m.seq;
        for (const c of m.changes) {
          if (c.op === 'upsert' && c.entry.kind !== entryKindOf(c.table)) return { journal: false, fail: `a ${c.entry.kind} entry in ${c.table.kind} table` };
          this.store.apply(c);
        }
        this.changesApplied += m.changes.length;
        return { journal: true, ack: m.seq };
      case 'heartbeat':
        return { journal: false };
      default:
        return { journal: false, fail: `unexpected ${m.type} from the master` };
    }
  }
}
