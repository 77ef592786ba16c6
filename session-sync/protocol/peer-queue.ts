// What the master owes one backup: changes not yet sent, coalesced per entry (a client refreshed a
// thousand times while the backup was slow is one pending upsert, not a thousand), and a window of
// sent-but-unacknowledged CHANGES frames. Memory stays bounded: past `maxPending` entries the queue
// gives up and asks for a fresh snapshot instead (the FTFW way: resync when the peer lost track).

import { entryKey, tableId, type Change } from '../model.js';

export interface PeerQueueLimits {
  /** Pending coalesced changes before the queue overflows into a resync. */
  readonly maxPending: number;
  /** CHANGES frames in flight (sent, not acknowledged) before sending pauses. */
  readonly window: number;
  /** Changes per CHANGES frame. */
  readonly batch: number;
}

export const DEFAULT_LIMITS: PeerQueueLimits = { maxPending: 1_000_000, window: 64, batch: 2000 };

export class PeerQueue {
  private pending = new Map<string, Change>();
  private nextSeq = 1;
  private ackedSeq = 0;
  /** Send time of each unacknowledged frame, for the lag figure. */
  private readonly inFlight = new Map<number, number>();
  private overflow = false;
  sentChanges = 0;

  constructor(private readonly limits: PeerQueueLimits = DEFAULT_LIMITS) {}

  /** Queues changes; returns false once the queue has overflowed (the caller resyncs). */
  offer(changes: readonly Change[]): boolean {
    if (this.overflow) return false;
    for (const c of changes) {
      const tid = tableId(c.table);
      if (c.op === 'drop') {
        // Nothing queued for a dropped table matters any more.
        for (const [k, p] of this.pending) if (tableId(p.table) === tid) this.pending.delete(k);
        this.pending.set(`${tid}\0`, c);
        continue;
      }
      const k = `${tid}\0${c.op === 'upsert' ? entryKey(c.entry) : c.key}`;
      this.pending.delete(k); // re-inserted at the end: changes keep their order
      this.pending.set(k, c);
    }
    if (this.pending.size > this.limits.maxPending) {
      this.overflow = true;
      this.pending.clear();
      return false;
    }
    return true;
  }

  get overflowed(): boolean {
    return this.overflow;
  }

  /**
   * Forget what is pending (a fresh snapshot is about to carry the whole state). Sequence numbers go
   * on: the snapshot tells the backup the last one sent, and late ACKs of earlier frames stay valid.
   */
  reset(): void {
    this.pending.clear();
    this.inFlight.clear();
    this.overflow = false;
  }

  /** The last CHANGES seq handed out. */
  get lastSent(): number {
    return this.nextSeq - 1;
  }

  get depth(): number {
    return this.pending.size;
  }

  get unacked(): number {
    return this.inFlight.size;
  }

  /** The next CHANGES frame to send, or undefined when nothing is due or the window is full. */
  take(now: number): { seq: number; changes: Change[] } | undefined {
    if (this.pending.size === 0 || this.inFlight.size >= this.limits.window) return undefined;
    const changes: Change[] = [];
    for (const [k, c] of this.pending) {
      changes.push(c);
      this.pending.delete(k);
      if (changes.length >= this.limits.batch) break;
    }
    const seq = this.nextSeq++;
    this.inFlight.set(seq, now);
    this.sentChanges += changes.length;
    return { seq, changes };
  }

  /** An ACK covers its frame and every earlier one. Returns false for an ACK of a frame never sent. */
  ack(seq: number): boolean {
    if (seq >= this.nextSeq) return false;
    if (seq <= this.ackedSeq) return true; // covered already
    for (const s of this.inFlight.keys()) if (s <= seq) this.inFlight.delete(s);
    this.ackedSeq = seq;
    return true;
  }

  /** Age of the oldest unacknowledged frame (0 when all are acknowledged). */
  lagMs(now: number): number {
    let oldest = Infinity;
    for (const t of this.inFlight.values()) oldest = Math.min(oldest, t);
    return oldest === Infinity ? 0 : now - oldest;
  }

  get lastAcked(): number {
    return this.ackedSeq;
  }
}
