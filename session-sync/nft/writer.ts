// Writes replicated entries into an nftables set on this node (the backup side): reads the set's
// definition and current elements, plans the merge, and applies it as ONE transaction, so a write
// is either wholly applied or not at all. Also flushes a set and lists the sets of the ruleset.

import { performance } from 'node:perf_hooks';
import type { NftEntry } from '../model.js';
import * as abi from './abi.js';
import { ElemCursor, forEachElem, NlWriter, writeElemDump } from './codec.js';
import { errnoText, NftError, setLabel } from './errors.js';
import { checkEntries, planWrite, PlanMismatch } from './plan.js';
import { listSets, readSetInfo, type NftRef, type NftSetSummary, type SetFilter } from './sets.js';
import { SocketHolder, type NftSocket, type NftSocketOptions } from './socket.js';
import { ElemTable } from './table.js';
import { encodeFlush, encodeTransaction, type Transaction } from './transaction.js';
import { classifySet, type SetLayout } from './types.js';

export interface NftWriterOptions {
  /** A kernel deadline this much earlier than an entry's still counts as the same (default 20 ms). */
  toleranceMs?: number;
  /** A socket to share (the caller closes it); otherwise the writer opens its own. */
  socket?: NftSocket;
  socketOptions?: NftSocketOptions;
}

export interface WriteResult {
  /** Elements added or replaced. */
  readonly written: number;
  /** Entries the set already held as well (or repeated keys). */
  readonly skipped: number;
  /** Entries already expired: not written. */
  readonly expired: number;
}

/** Attempts per write: again after switching to DELSETELEM, after losing a race with expiry, or after a read that missed an element. */
const ATTEMPTS = 3;

export class NftWriter {
  private readonly toleranceMs: number;
  private readonly sockets: SocketHolder;
  /** DESTROYSETELEM (Linux >= 6.3) until the kernel says it does not know it. */
  private deleteCmd: 'destroy' | 'delete' = 'destroy';

  constructor(opts: NftWriterOptions = {}) {
    this.toleranceMs = opts.toleranceMs ?? 20;
    this.sockets = new SocketHolder(opts);
  }

  close(): void {
    this.sockets.close();
  }

  /** Every set of the ruleset (or one family/table), with whether it can be replicated. */
  listSets(filter?: SetFilter): Promise<NftSetSummary[]> {
    return listSets(this.sockets.get(), filter);
  }

  /**
   * Merges `entries` into the set: adds the missing, replaces those whose data differs or whose
   * kernel deadline is earlier than the entry's, leaves every other element alone. Entries expired
   * at `now` (epoch ms) are counted, not written. One transaction; rejects with NftError
   * ('no-such-set', 'unsupported', 'mismatch', 'too-large', 'kernel') and then nothing was applied.
   */
  async write(ref: NftRef, entries: readonly NftEntry[], now: number): Promise<WriteResult> {
    const t0 = performance.now(); // epoch time of a monotonic instant t: now + (t - t0)
    const sock = this.sockets.get();
    const label = setLabel(ref);
    for (let attempt = 1; ; attempt++) {
      const { layout, setTimeoutMs } = await this.definition(sock, ref);
      let keys;
      try {
        keys = checkEntries(layout, entries); // before reading a large set for nothing
      } catch (e) {
        if (e instanceof PlanMismatch) throw new NftError('mismatch', label, `${e.message}; nothing written`);
        throw e;
      }
      const current = await readElements(sock, ref, layout, now, t0);
      const at = now + (performance.now() - t0);
      const plan = planWrite({ layout, setTimeoutMs, current, entries, keys, now: at, toleranceMs: this.toleranceMs });
      const written = plan.add.length + plan.replace.length;
      const result = { written, skipped: plan.skipped, expired: plan.expired };
      if (written === 0) return result;
      const tx = encodeTransaction(ref, plan, this.deleteCmd);
      const what = `${label}: writing ${written} elements (${plan.add.length} new, ${plan.replace.length} replaced) in one transaction`;
      const errnos = await this.commit(sock, what, tx);
      const bad = errnos.findIndex((e) => e !== 0);
      if (bad < 0) return result;
      const errno = errnos[bad]!;
      const msg = tx.messages[bad];
      if (msg?.cmd === 'destroy' && (errno === abi.EINVAL || errno === abi.EOPNOTSUPP) && attempt < ATTEMPTS) {
        this.deleteCmd = 'delete'; // a kernel before 6.3
        continue;
      }
      if (msg?.cmd === 'delete' && errno === abi.ENOENT && attempt < ATTEMPTS) continue; // an element expired meanwhile
      if (msg?.cmd === 'add' && errno === abi.EEXIST && attempt < ATTEMPTS) continue; // an element the read missed
      throw new NftError('kernel', what, `${describe(tx, bad)} refused: ${errnoText(errno)}${hint(errno)}; nothing was applied`, errno);
    }
  }

  /** Removes every element of the set in one transaction. */
  async clear(ref: NftRef): Promise<void> {
    const sock = this.sockets.get();
    await this.definition(sock, ref);
    const what = `${setLabel(ref)}: flushing the set`;
    const tx = encodeFlush(ref);
    const errnos = await this.commit(sock, what, tx);
    const bad = errnos.findIndex((e) => e !== 0);
    if (bad >= 0) throw new NftError('kernel', what, errnoText(errnos[bad]!), errnos[bad]!);
  }

  private async definition(sock: NftSocket, ref: NftRef): Promise<{ layout: SetLayout; setTimeoutMs: number }> {
    const label = setLabel(ref);
    const info = await readSetInfo(sock, ref);
    if (info === null) {
      throw new NftError('no-such-set', label, 'the set does not exist on this node (create it with the same definition as on the master)');
    }
    const c = classifySet(info);
    if (!c.ok) throw new NftError('unsupported', label, c.reason);
    return { layout: c.layout, setTimeoutMs: info.timeoutMs };
  }

  private async commit(sock: NftSocket, what: string, tx: Transaction): Promise<Int32Array> {
    const size = tx.writer.view().length;
    if (size > sock.maxDatagram) {
      throw new NftError(
        'too-large',
        what,
        `the transaction takes ${size} bytes but one netlink datagram may hold ${sock.maxDatagram} here; ` +
          `raise net.core.wmem_max to at least ${Math.ceil((size + 32) / 2)}`,
      );
    }
    if (tx.worstReplyBytes > sock.replyBudget) {
      throw new NftError(
        'too-large',
        what,
        `if refused, its error replies could take ${tx.worstReplyBytes} bytes of receive queue but only ${sock.replyBudget} are available; ` +
          `raise net.core.rmem_max to at least ${Math.ceil((tx.worstReplyBytes + 65536) / 2)}`,
      );
    }
    return sock.exchange(what, tx.writer);
  }
}

/** Dumps of the set read at most; see readElements. */
const READS = 3;

/**
 * The kernel's elements of the set: data, timeout and deadline (epoch ms on the caller's clock).
 * The kernel restarts its walk of the set for every dump part, so a walk disturbed by the set
 * changing or resizing meanwhile shows some elements twice and skips others. When an element came
 * twice the set is dumped again and the dumps are merged: an element the plan believes missing is
 * re-added, which fails the transaction (EEXIST) if its data differs.
 */
async function readElements(sock: NftSocket, ref: NftRef, layout: SetLayout, now: number, t0: number): Promise<ElemTable> {
  const t = new ElemTable(layout.keyLen / 4, layout.dataLen > 0 ? Math.ceil(layout.dataLen / 4) : 0);
  const c = new ElemCursor();
  for (let read = 1; read <= READS; read++) {
    const w = new NlWriter(128);
    writeElemDump(w, ref.family, ref.table, ref.set);
    let twice = 0;
    try {
      await sock.dump(`${setLabel(ref)}: reading elements`, w, (_i, type, _f, buf, off, end, filledAt) => {
        if (type !== abi.nftType(abi.NFT_MSG_NEWSETELEM)) return;
        const nowAt = now + (filledAt - t0);
        forEachElem(buf, off, end, c, (e) => {
          if (e.keyLen !== layout.keyLen || e.flags & (abi.NFT_SET_ELEM_CATCHALL | abi.NFT_SET_ELEM_INTERVAL_END)) return;
          let s = t.find(e.buf, e.keyOff);
          if (s < 0) s = t.insert(e.buf, e.keyOff);
          else if (t.seen(s) === read) twice++;
          t.setSeen(s, read);
          if (layout.data !== null && e.dataLen === layout.dataLen) t.setData(s, e.buf, e.dataOff);
          t.setTimeout(s, e.timeoutMs > 0 ? e.timeoutMs : 0);
          t.setDeadline(s, e.expirationMs >= 0 ? nowAt + e.expirationMs : NaN);
        });
      });
    } catch (e) {
      if (e instanceof NftError && e.code === 'kernel' && e.errno === abi.ENOENT) {
        throw new NftError('no-such-set', setLabel(ref), 'the set vanished while being read');
      }
      throw e;
    }
    if (twice === 0) break;
  }
  return t;
}

function describe(tx: Transaction, index: number): string {
  const m = tx.messages[index];
  if (!m || m.cmd === 'begin') return 'the commit';
  if (m.cmd === 'end' || m.cmd === 'flush') return `the ${m.cmd} message`;
  const verb = m.cmd === 'add' ? 'adding' : 'deleting';
  const first = m.elems[0]?.addr ?? '?';
  const lastAddr = m.elems[m.elems.length - 1]?.addr ?? '?';
  return m.elems.length === 1 ? `${verb} ${first}` : `${verb} ${m.elems.length} elements ${first} .. ${lastAddr} (message ${index})`;
}

function hint(errno: number): string {
  switch (errno) {
    case abi.ENFILE:
      return ' (the set is full: raise its size)';
    case abi.ENOENT:
      return ' (the set or an element vanished meanwhile)';
    case abi.EEXIST:
      return ' (an element exists with other data)';
    case 34: // ERANGE
      return ' (a timeout or expiry is out of range)';
    default:
      return '';
  }
}
