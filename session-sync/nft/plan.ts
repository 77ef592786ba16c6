// What a write must change in a set, decided without I/O: given the entries to reproduce and the
// elements the kernel holds, which elements to add, which to replace (delete + add in the same
// transaction: before Linux 6.12 re-adding an element does not update it), and which to leave.
// Kernel elements absent from the entries are never touched (merge, never flush).

import { parseIp, type IpAddr } from '../../common/addr.js';
import type { NftEntry } from '../model.js';
import type { ElemTable } from './table.js';
import { dataProblem, encodeData, encodeKey, layoutName, type SetLayout } from './types.js';

/** One element to send, its times relative to the moment of writing. */
export interface PlannedElem {
  readonly addr: string;
  readonly key: Buffer;
  readonly data: Buffer | null;
  /** NFTA_SET_ELEM_TIMEOUT in ms; 0 leaves it out (the set's default applies). */
  readonly timeoutMs: number;
  /** NFTA_SET_ELEM_EXPIRATION in ms (remaining life); 0 leaves it out (a full timeout). */
  readonly expirationMs: number;
}

export interface WritePlan {
  /** Elements the kernel lacks. */
  readonly add: readonly PlannedElem[];
  /** Elements whose kernel copy has other data or an earlier deadline: deleted, then added. */
  readonly replace: readonly PlannedElem[];
  /** Entries the kernel already holds as well (and repeated keys beyond their last occurrence). */
  readonly skipped: number;
  /** Entries already expired at `now`: not written. */
  readonly expired: number;
}

/** An entry that cannot go into the set; `index` is its position in the entries given. */
export class PlanMismatch extends Error {
  override readonly name = 'PlanMismatch';
  constructor(
    readonly index: number,
    readonly reason: string,
  ) {
    super(`entry ${index}: ${reason}`);
  }
}

export interface PlanInput {
  readonly layout: SetLayout;
  /** The set's default element timeout in ms (0 = none). */
  readonly setTimeoutMs: number;
  /** The kernel's elements, deadlines in epoch ms on the same clock as `now`. */
  readonly current: ElemTable;
  readonly entries: readonly NftEntry[];
  readonly now: number;
  /** A kernel deadline this much earlier than the entry's still counts as the same. */
  readonly toleranceMs: number;
  /** The entries' keys from checkEntries, when the caller checked them already. */
  readonly keys?: readonly IpAddr[];
}

/** The element's timeout and remaining life to send, within what the kernel accepts. */
export function elementTimes(entry: NftEntry, setTimeoutMs: number, now: number): { timeoutMs: number; expirationMs: number } {
  let timeoutMs = entry.timeoutMs > 0 ? Math.round(entry.timeoutMs) : 0;
  if (entry.expiresAt === null) return { timeoutMs, expirationMs: 0 };
  const expirationMs = Math.max(1, Math.ceil(entry.expiresAt - now));
  const effective = timeoutMs || setTimeoutMs;
  // The kernel refuses an expiration without a timeout (EOPNOTSUPP) or above it (ERANGE). With no
  // own timeout, or a set default shorter than the remaining life (the master's set may have a longer
  // default), the remaining life becomes the element's timeout so that it lives exactly as long.
  if (effective === 0 || (timeoutMs === 0 && expirationMs > effective)) timeoutMs = expirationMs;
  else if (expirationMs > effective) return { timeoutMs, expirationMs: effective }; // rounding of an own timeout
  return { timeoutMs, expirationMs };
}

/** Each entry's key, checked against the set: throws PlanMismatch at the first entry that does not fit. */
export function checkEntries(layout: SetLayout, entries: readonly NftEntry[]): IpAddr[] {
  const ips: IpAddr[] = new Array<IpAddr>(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const ip = parseIp(e.addr);
    if (!ip.ok) throw new PlanMismatch(i, `${JSON.stringify(e.addr)} is not an address: ${ip.reason}`);
    if (ip.ip.family !== layout.keyFamily || e.family !== layout.keyFamily) {
      throw new PlanMismatch(i, `${e.addr} is IPv${ip.ip.family} but the set (${layoutName(layout)}) holds IPv${layout.keyFamily} keys`);
    }
    const dp = dataProblem(layout, e.data);
    if (dp) throw new PlanMismatch(i, `${e.addr}: ${dp} (set type ${layoutName(layout)})`);
    if (!(Number.isFinite(e.timeoutMs) && e.timeoutMs >= 0)) throw new PlanMismatch(i, `${e.addr}: timeout ${e.timeoutMs} is not a duration`);
    if (e.expiresAt !== null && !Number.isFinite(e.expiresAt)) throw new PlanMismatch(i, `${e.addr}: expiry ${e.expiresAt} is not a time`);
    if (!layout.timeouts && (e.expiresAt !== null || e.timeoutMs > 0)) {
      throw new PlanMismatch(i, `${e.addr} expires but the set has no timeout flag`);
    }
    ips[i] = ip.ip;
  }
  return ips;
}

/** Throws PlanMismatch at the first entry that does not fit the set (unless `keys` were checked already). */
export function planWrite(p: PlanInput): WritePlan {
  const { current } = p;
  const add: PlannedElem[] = [];
  const replace: PlannedElem[] = [];
  let skipped = 0;
  let expired = 0;
  const ips = p.keys ?? checkEntries(p.layout, p.entries);
  // The last occurrence of a key wins; earlier ones are skipped (two adds of one key in a
  // transaction with different data would make the kernel refuse it).
  const last = new Map<string, number>();
  for (let i = 0; i < ips.length; i++) last.set(ips[i]!.addr, i);
  for (let i = 0; i < p.entries.length; i++) {
    const e = p.entries[i]!;
    if (e.expiresAt !== null && e.expiresAt <= p.now) {
      expired++;
      continue;
    }
    const ip = ips[i]!;
    if (last.get(ip.addr) !== i) {
      skipped++;
      continue;
    }
    const key = encodeKey(ip);
    const data = e.data === null ? null : encodeData(e.data);
    const slot = current.find(key, 0);
    if (slot >= 0) {
      const sameData = data === null || current.dataEquals(slot, data, 0);
      const kd = current.deadline(slot);
      const earlier = e.expiresAt !== null && !Number.isNaN(kd) && kd < e.expiresAt - p.toleranceMs;
      if (sameData && !earlier) {
        skipped++;
        continue;
      }
    }
    const times = elementTimes(e, p.setTimeoutMs, p.now);
    (slot >= 0 ? replace : add).push({ addr: ip.addr, key, data, ...times });
  }
  return { add, replace, skipped, expired };
}
