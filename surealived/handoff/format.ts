// The hand-off to ipvssync as text: ipvsfull.cfg and diff lines, byte-exact with SureAliveD (spec 8.3,
// 8.4) so the original ipvssync can consume them. IPv6 extension: an entry with an IPv6 address on
// either side is written in a form the original skips whole (see V6).
// Fallbacks (engine/fallback.ts): a virtual in panic writes its reals as if online; its sorry server
// is written after its reals as one more `real` line / diff line, so ipvssync needs nothing new.

import type { Forwarding, VirtualConfig } from '../config/model.js';
import { localDateTime } from '../../common/log.js';
import { ipvsWeight, presentInIpvs, type RealState, type SorryState, type VirtualState } from '../engine/state.js';
import { sorryEntryNow } from '../engine/fallback.js';

export type DiffCmd = 'addreal' | 'chgreal' | 'delreal';

/**
 * The prefix of an IPv6 entry's keyword: `v6virtual`, `v6real`, `cmd=v6addreal|v6chgreal|v6delreal`.
 * The original ipvssync reads every address as IPv4 (an IPv6 one silently becomes 0.0.0.0, and a
 * bogus service or real with it reaches the kernel). Its full-file reader dispatches a line by its
 * first characters (`meta`, `virtual`, `real`, `DIFF`: `virtual6` would still be a virtual) and skips
 * any other line, like an empty one; its diff reader acts only on cmd= addreal, chgreal and delreal,
 * other values at most warn (`cmd=v6addreal` also fits the 16 bytes it reads that token into). A
 * keyword starting with `v6` begins with none of these, so even a prefix match skips it. The reals of an IPv6 virtual are `v6real` whatever their family: a `real`
 * line after a skipped virtual would be read into the IPv4 virtual before it.
 */
export const V6 = 'v6';

/** What a real line needs of a real's or a sorry server's configuration. */
interface DestConfig {
  readonly name: string;
  readonly addr: string;
  readonly family: 4 | 6;
  readonly port: number;
  readonly uthresh: number;
  readonly lthresh: number;
  readonly rt: Forwarding;
}

/** A destination of the hand-off: a real, or a virtual's sorry server. */
export type HandoffDest = RealState | SorryState;

const isSorry = (d: HandoffDest): d is SorryState => (d as SorryState).kind === 'sorry';

const v6Virtual = (vc: VirtualConfig): boolean => vc.family === 6;
const v6Real = (rc: DestConfig, vc: VirtualConfig): boolean => vc.family === 6 || rc.family === 6;

/** ` rl_thresh=N ru_thresh=N rrt=X` tail shared by full-file and diff real lines. */
function realTail(rc: DestConfig, vc: VirtualConfig): string {
  let s = '';
  if (rc.lthresh > 0) s += ` rl_thresh=${rc.lthresh}`;
  if (rc.uthresh > 0) s += ` ru_thresh=${rc.uthresh}`;
  if (rc.rt !== vc.rt) s += ` rrt=${rc.rt}`;
  return s;
}

/**
 * rweight written for a destination: a real's effective weight when ONLINE and online (in panic: as if
 * online), else 0; the sorry server's weight while in service, else 0.
 */
export function handoffWeight(d: HandoffDest): number {
  return isSorry(d) ? sorryEntryNow(d).weight : ipvsWeight(d);
}

/** Whether the destination is in the IPVS table (spec 9.4 table, panic applied; sorry: in service or inhibit). */
export function handoffPresent(d: HandoffDest): boolean {
  return isSorry(d) ? sorryEntryNow(d).present : presentInIpvs(d);
}

export function formatVirtualLine(vc: VirtualConfig): string {
  let s = `${v6Virtual(vc) ? V6 : ''}virtual vname=${vc.name} vproto=${vc.proto} vaddr=${vc.addr} vport=${vc.port} vrt=${vc.rt} vsched=${vc.sched}`;
  if (vc.pers > 0) s += ` vpers=${vc.pers}`;
  if (vc.fwmark > 0) s += ` vfwmark=${vc.fwmark}`;
  if (vc.ops && vc.proto === 'udp') s += ' vops=1';
  return s;
}

/** The `real` line of a real, or of the sorry server (same form). */
export function formatRealLine(r: HandoffDest): string {
  const rc = r.config;
  const vc = r.virtual.config;
  return `${v6Real(rc, vc) ? V6 : ''}real rname=${rc.name} raddr=${rc.addr} rport=${rc.port} rweight=${handoffWeight(r)}${realTail(rc, vc)}`;
}

/** The whole ipvsfull.cfg. `now` gives mdate/mtime (local time), `diffPath` the current diff file. */
export function formatFullFile(virtuals: readonly VirtualState[], now: Date, diffPath: string): string {
  const [mdate, mtime] = localDateTime(now).split(' ');
  const out: string[] = [`meta version=1.0 mdate=${mdate} mtime=${mtime}\n\nDIFF file=${diffPath}\n\n`];
  for (const v of virtuals) {
    out.push(formatVirtualLine(v.config), '\n');
    for (const r of v.reals) if (presentInIpvs(r)) out.push(formatRealLine(r), '\n');
    // The sorry server after the reals: ipvssync puts a real line in the virtual above it.
    if (v.sorry && handoffPresent(v.sorry)) out.push(formatRealLine(v.sorry), '\n');
    if (v.config.reals.length > 0 || v.sorry) out.push('\n');
  }
  return out.join('');
}

function diffLine(cmd: DiffCmd, r: HandoffDest, weight: number): string {
  const vc = r.virtual.config;
  const rc = r.config;
  return (
    `cmd=${v6Real(rc, vc) ? V6 : ''}${cmd} vname=${vc.name} vproto=${vc.proto} vaddr=${vc.addr} vport=${vc.port} vfwmark=${vc.fwmark} ` +
    `vrt=${vc.rt} vsched=${vc.sched} rname=${rc.name} raddr=${rc.addr} rport=${rc.port} rweight=${weight}` +
    `${realTail(rc, vc)}\n`
  );
}

/**
 * Diff lines for the current state of one real or sorry server (spec 8.4 decision table): absent ->
 * one delreal; present -> addreal followed by an identical chgreal (add if missing, then update).
 */
export function formatDiffLines(r: HandoffDest): string {
  if (!handoffPresent(r)) return diffLine('delreal', r, 0);
  const w = handoffWeight(r);
  return diffLine('addreal', r, w) + diffLine('chgreal', r, w);
}

/** `<diff_sync_dir>/diff_sync.<unix_seconds>` as the original builds it. */
export function diffFilePath(dir: string, unixSeconds: number): string {
  return `${dir}/diff_sync.${unixSeconds}`;
}

export function chainLine(nextDiffPath: string): string {
  return `DIFF file=${nextDiffPath}\n`;
}
