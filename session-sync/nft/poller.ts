// Watches one nftables set by polling: each poll dumps the set over netlink and reports what changed
// since the previous poll. Polling is the only way: elements the packet path adds or refreshes
// (`update @set`) produce no netlink events.

import { performance } from 'node:perf_hooks';
import type { Change } from '../model.js';
import * as abi from './abi.js';
import { ElemCursor, forEachElem, NlWriter, writeElemDump, writeElemGet, type NftSetInfo } from './codec.js';
import { errnoText, NftError, setLabel } from './errors.js';
import { readSetInfo, type NftRef } from './sets.js';
import { SocketHolder, type NftSocket, type NftSocketOptions } from './socket.js';
import { classifySet, layoutName, type SetLayout } from './types.js';
import { SetView } from './view.js';

export interface NftPollerOptions {
  /** How far (ms) an element's deadline may move before it is reported as changed (default 20). */
  toleranceMs?: number;
  /** A socket to share (the caller closes it); otherwise the poller opens its own. */
  socket?: NftSocket;
  socketOptions?: NftSocketOptions;
}

/** What the last poll cost, so a scheduler can space the polls of a large set. */
export interface PollStats {
  /** Elements the dump reported. */
  readonly elements: number;
  /** Dump parts (datagrams of up to 32 KiB): the kernel restarts its walk of the set for each. */
  readonly parts: number;
  /** Elements missing from the dump that were looked up one by one. */
  readonly lookups: number;
  readonly wallMs: number;
}

/** Receive-queue cost assumed per element lookup reply (one NLMSG_GOODSIZE skb, rounded up). */
const LOOKUP_REPLY_COST = 8192;

const sameLayout = (a: SetLayout, b: SetLayout): boolean => layoutName(a) === layoutName(b) && a.timeouts === b.timeouts;

export class NftPoller {
  private readonly toleranceMs: number;
  private readonly sockets: SocketHolder;
  private view: SetView | null = null;
  /** The set was absent at the last poll (its drop has been reported). */
  private absent = false;
  private readonly cursor = new ElemCursor();
  private readonly label: string;
  private polling = false;
  /** What the last completed poll cost. */
  lastStats: PollStats = { elements: 0, parts: 0, lookups: 0, wallMs: 0 };

  constructor(
    readonly ref: NftRef,
    opts: NftPollerOptions = {},
  ) {
    this.toleranceMs = opts.toleranceMs ?? 20;
    this.sockets = new SocketHolder(opts);
    this.label = setLabel(ref);
  }

  /** Elements in the poller's current view of the set. */
  get size(): number {
    return this.view?.size ?? 0;
  }

  /** Forgets the previous view: the next poll reports every element again. */
  reset(): void {
    this.view = null;
    this.absent = false;
  }

  close(): void {
    this.sockets.close();
  }

  /**
   * Changes since the previous poll: upserts for new or changed elements (all of them on the first
   * poll), deletes for removed or expired ones, one drop when the set disappears. `now` is epoch ms.
   * Rejects with NftError('unsupported') when the set exists but cannot be replicated.
   * With `early`, the upserts of each dump part are handed to it as soon as that part is read (a new
   * element in a 100,000-element set need not wait for the rest of the dump); the promise then holds
   * what is known only at the end: deletes, expiries, the confirmations of missing elements.
   */
  async poll(now: number, early?: (changes: Change[]) => void): Promise<Change[]> {
    if (this.polling) throw new NftError('busy', this.label, 'poll() called while the previous poll is still running');
    this.polling = true;
    try {
      return await this.pollOnce(now, early);
    } finally {
      this.polling = false;
    }
  }

  private async pollOnce(now: number, early?: (changes: Change[]) => void): Promise<Change[]> {
    // Epoch time of a monotonic instant t: now + (t - t0).
    const t0 = performance.now();
    const sock = this.sockets.get();
    const info = await readSetInfo(sock, this.ref);
    if (info === null) return this.dropped();
    let out: Change[] = [];
    const layout = this.layoutOf(info, out);
    const view = (this.view ??= new SetView(this.ref, layout, this.toleranceMs));
    this.absent = false;

    view.beginPoll();
    const w = new NlWriter(128);
    writeElemDump(w, this.ref.family, this.ref.table, this.ref.set);
    const c = this.cursor;
    let elements = 0;
    let parts = 0;
    try {
      await sock.dump(`${this.label}: dumping elements`, w, (_i, type, _f, buf, off, end, filledAt) => {
        if (type !== abi.nftType(abi.NFT_MSG_NEWSETELEM)) return;
        const nowAt = now + (filledAt - t0); // when the kernel computed these remaining lives
        view.beginPart();
        elements += forEachElem(buf, off, end, c, (e) => view.observe(e, nowAt, out));
        view.endPart(out);
        parts++;
        if (early && out.length) {
          early(out);
          out = [];
        }
      });
    } catch (e) {
      if (e instanceof NftError && e.code === 'kernel' && e.errno === abi.ENOENT) return this.dropped();
      throw e;
    }
    const unsure = view.sweep(now + (performance.now() - t0), out);
    if (unsure.length) await this.confirm(sock, view, unsure, now, t0, out);
    view.endPoll();
    this.lastStats = { elements, parts, lookups: unsure.length, wallMs: performance.now() - t0 };
    return out;
  }

  /** The set's layout; a set redefined with another layout is dropped first, then re-reported. */
  private layoutOf(info: NftSetInfo, out: Change[]): SetLayout {
    const c = classifySet(info);
    if (!c.ok) {
      this.view = null;
      throw new NftError('unsupported', this.label, c.reason);
    }
    if (this.view && !sameLayout(this.view.layout, c.layout)) {
      out.push({ op: 'drop', table: this.ref });
      this.view = null;
    }
    return c.layout;
  }

  private dropped(): Change[] {
    this.view = null;
    if (this.absent) return [];
    this.absent = true;
    return [{ op: 'drop', table: this.ref }];
  }

  /** Looks up elements the dump did not show: those the kernel still has are kept, the rest are gone. */
  private async confirm(sock: NftSocket, view: SetView, keys: Buffer[], now: number, t0: number, out: Change[]): Promise<void> {
    const perRound = Math.max(1, Math.min(1024, Math.floor(sock.replyBudget / LOOKUP_REPLY_COST)));
    const c = this.cursor;
    for (let i = 0; i < keys.length; i += perRound) {
      const chunk = keys.slice(i, i + perRound);
      const w = new NlWriter(chunk.length * 96);
      for (const k of chunk) writeElemGet(w, this.ref.family, this.ref.table, this.ref.set, k);
      const errnos = await sock.exchange(`${this.label}: looking up ${chunk.length} elements missing from the dump`, w, (_i, type, _f, buf, off, end, filledAt) => {
        if (type !== abi.nftType(abi.NFT_MSG_NEWSETELEM)) return;
        const nowAt = now + (filledAt - t0);
        forEachElem(buf, off, end, c, (e) => view.observe(e, nowAt, out));
      });
      for (let j = 0; j < chunk.length; j++) {
        const errno = errnos[j]!;
        if (errno === abi.ENOENT) view.gone(chunk[j]!, out);
        else if (errno) throw new NftError('kernel', `${this.label}: looking up an element`, errnoText(errno), errno);
      }
    }
  }
}
