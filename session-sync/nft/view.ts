// The poller's memory of one set and the diff of each new dump against it: which elements were
// added, changed (data, timeout, or a deadline moved by more than the tolerance, as a packet-path
// refresh does) or removed. Pure: elements come in as ElemCursor views, changes go out as Change
// values. An unchanged element costs a key comparison with the record expected at its position (a hash
// lookup when the dump order differs) and a few number comparisons, no allocation.

import type { Change, NftEntry, TableRef } from '../model.js';
import type { ElemCursor } from './codec.js';
import { NftCodecError } from './codec.js';
import { ElemTable } from './table.js';
import { decodeData, decodeKey, type SetLayout } from './types.js';
import * as abi from './abi.js';

/**
 * A dump part whose known elements ALL moved their deadline by the same amount (within two
 * jiffies at HZ=100, plus rounding), by no more than GLITCH_MAX_MS, was timed wrong, not
 * refreshed: the kernel computes every remaining life of a part at one instant, and if we were
 * preempted between that instant and our timestamp, the whole part shifts. Real refreshes move
 * elements by different amounts (each client's own traffic).
 */
const GLITCH_MAX_MS = 500;
const GLITCH_SPREAD_MS = 25;
/** Parts with fewer known elements than this are always reported (too few to tell). */
const GLITCH_MIN_ELEMS = 16;

/** An element whose only change in this part is its deadline: reported at the end of the part, or not. */
interface Pending {
  readonly keyOff: number;
  readonly dataOff: number;
  readonly deadline: number;
}

export class SetView {
  private readonly table: ElemTable;
  private gen = 0;
  /** Between beginPart and endPart: deadline-only changes wait for the part's verdict. */
  private inPart = false;
  private pending: Pending[] = [];
  /** Known elements of the current part whose only possible change is their deadline, and the range of its moves. */
  private partKnown = 0;
  private partLo = 0;
  private partHi = 0;
  private partBuf: Buffer | null = null;
  private partCursor: ElemCursor | null = null;
  /** The record expected next: the kernel dumps in the same order while the set changes little. */
  private next = 0;
  /** Records in the order this poll saw them, and how many were not where expected. */
  private order = new Int32Array(1024);
  private orderLen = 0;
  private misses = 0;

  constructor(
    readonly ref: TableRef & { kind: 'nft' },
    readonly layout: SetLayout,
    /** How far (ms) a deadline may move before it counts as a change. */
    readonly toleranceMs: number,
  ) {
    this.table = new ElemTable(layout.keyLen / 4, layout.dataLen > 0 ? Math.ceil(layout.dataLen / 4) : 0);
  }

  get size(): number {
    return this.table.size;
  }

  /** Starts a new dump: every element must be observed again or it counts as missing. */
  beginPoll(): void {
    this.gen = (this.gen + 1) >>> 0 || 1;
    this.next = 0;
    this.orderLen = 0;
    this.misses = 0;
  }

  /**
   * Ends a poll (after sweep and gone): when the dump order drifted from the records' order, or
   * many records were removed, lays the records out in this dump's order for the next poll.
   */
  endPoll(): void {
    const t = this.table;
    if (this.misses * 8 > this.orderLen || (t.records - t.size) * 8 > t.size) t.reorder(this.order, this.orderLen);
  }

  private seenInOrder(r: number): void {
    if (this.orderLen === this.order.length) {
      const bigger = new Int32Array(this.order.length * 2);
      bigger.set(this.order);
      this.order = bigger;
    }
    this.order[this.orderLen++] = r;
    this.next = r + 1;
  }

  /**
   * One element as the kernel reported it; `nowAt` is the epoch ms at which the kernel computed its
   * remaining life. Appends an upsert to `out` if it is new or changed.
   */
  observe(c: ElemCursor, nowAt: number, out: Change[]): void {
    if (c.keyLen < 0 || c.flags & (abi.NFT_SET_ELEM_CATCHALL | abi.NFT_SET_ELEM_INTERVAL_END)) return; // no address key
    const l = this.layout;
    if (c.keyLen !== l.keyLen) throw new NftCodecError(`element key of ${c.keyLen} bytes in a set of ${l.keyLen}-byte keys`);
    if (l.data !== null && c.dataLen !== l.dataLen) {
      throw new NftCodecError(`element data of ${c.dataLen} bytes in a map of ${l.dataLen}-byte data`);
    }
    const t = this.table;
    const deadline = c.expirationMs >= 0 ? Math.round(nowAt + c.expirationMs) : NaN;
    const timeout = c.timeoutMs > 0 ? c.timeoutMs : 0;
    let s = t.findNear(c.buf, c.keyOff, this.next);
    if (s >= 0) {
      if (t.seen(s) === this.gen) return; // reported twice by one dump (the kernel's walk restarted)
      if (s !== this.next) this.misses++;
      this.seenInOrder(s);
      t.setSeen(s, this.gen);
      const old = t.deadline(s);
      const sameRest = t.timeout(s) === timeout && (l.data === null || t.dataEquals(s, c.buf, c.dataOff));
      if (Number.isNaN(deadline) || Number.isNaN(old)) {
        if (sameRest && Number.isNaN(deadline) === Number.isNaN(old)) return;
      } else {
        const delta = deadline - old;
        if (sameRest && this.inPart) {
          if (this.partKnown++ === 0) this.partLo = this.partHi = delta;
          else if (delta < this.partLo) this.partLo = delta;
          else if (delta > this.partHi) this.partHi = delta;
        }
        if (sameRest && Math.abs(delta) <= this.toleranceMs) return;
        if (sameRest && this.inPart) {
          this.partBuf = c.buf;
          this.partCursor = c;
          this.pending.push({ keyOff: c.keyOff, dataOff: c.dataOff, deadline });
          return;
        }
      }
    } else {
      s = t.insert(c.buf, c.keyOff);
      this.misses++;
      this.seenInOrder(s);
      t.setSeen(s, this.gen);
    }
    if (l.data !== null) t.setData(s, c.buf, c.dataOff);
    t.setTimeout(s, timeout);
    t.setDeadline(s, deadline);
    out.push({ op: 'upsert', table: this.ref, entry: this.entry(c, timeout, deadline) });
  }

  /** Starts the elements of one dump part (one datagram: remaining lives computed at one instant). */
  beginPart(): void {
    this.inPart = true;
    this.pending = [];
    this.partKnown = 0;
  }

  /** Ends a part: its deadline-only changes are reported, unless the whole part merely shifted. */
  endPart(out: Change[]): void {
    this.inPart = false;
    const p = this.pending;
    if (p.length === 0) return;
    this.pending = [];
    const lo = this.partLo;
    const hi = this.partHi;
    const shifted = this.partKnown >= GLITCH_MIN_ELEMS && hi - lo <= GLITCH_SPREAD_MS && Math.max(-lo, hi) <= GLITCH_MAX_MS;
    if (shifted) return; // keep the deadlines reported before: they were measured better
    const c = this.partCursor!;
    const buf = this.partBuf!;
    const t = this.table;
    for (const x of p) {
      const s = t.find(buf, x.keyOff);
      t.setDeadline(s, x.deadline);
      c.buf = buf;
      c.keyOff = x.keyOff;
      c.keyLen = this.layout.keyLen;
      c.dataOff = x.dataOff;
      c.dataLen = this.layout.dataLen;
      out.push({ op: 'upsert', table: this.ref, entry: this.entry(c, t.timeout(s), x.deadline) });
    }
  }

  private entry(c: ElemCursor, timeoutMs: number, deadline: number): NftEntry {
    const ip = decodeKey(c.buf, c.keyOff, c.keyLen);
    return {
      kind: 'nft',
      addr: ip.addr,
      family: ip.family,
      data: this.layout.data === null ? null : decodeData(this.layout.data, c.buf, c.dataOff, c.dataLen),
      timeoutMs,
      expiresAt: Number.isNaN(deadline) ? null : deadline,
    };
  }

  /**
   * Ends the dump. Elements not seen whose deadline has passed (within the tolerance) expired: they
   * are removed and reported deleted. The others are returned: a dump restarts the kernel's set walk
   * for every part and may skip an element when the set changes meanwhile, so the caller looks each
   * one up before calling gone().
   */
  sweep(now: number, out: Change[]): Buffer[] {
    const t = this.table;
    const expired: Buffer[] = [];
    const unsure: Buffer[] = [];
    for (let s = 0; s < t.records; s++) {
      if (!t.isLive(s) || t.seen(s) === this.gen) continue;
      const d = t.deadline(s);
      (!Number.isNaN(d) && d <= now + this.toleranceMs ? expired : unsure).push(t.keyBytes(s));
    }
    for (const k of expired) this.gone(k, out);
    return unsure;
  }

  /** The element with these key bytes is no longer in the set. */
  gone(key: Buffer, out: Change[]): void {
    if (!this.table.remove(key, 0)) return;
    out.push({ op: 'delete', table: this.ref, key: decodeKey(key, 0, key.length).addr });
  }
}
