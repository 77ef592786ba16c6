// Notifier command lines exactly as SureAliveD builds them: the script, then key=value words.

import type { RealState, SorryState, VirtualState } from '../engine/state.js';

export type NotifyDirection = 'UP' | 'DOWN';

/** `[script, notify=, vname=, vaddr=, vport=, vproto=, vfwmark=]` (vaddr without IPv6 brackets). */
export function virtualNotifierArgv(script: string, v: VirtualState, dir: NotifyDirection): string[] {
  const c = v.config;
  return [script, `notify=${dir}`, `vname=${c.name}`, `vaddr=${c.addr}`, `vport=${c.port}`, `vproto=${c.proto}`, `vfwmark=${c.fwmark}`];
}

/** The virtual's words followed by `rname=`, `raddr=`, `rport=`. */
export function realNotifierArgv(script: string, r: RealState, dir: NotifyDirection): string[] {
  const c = r.config;
  return [...virtualNotifierArgv(script, r.virtual, dir), `rname=${c.name}`, `raddr=${c.addr}`, `rport=${c.port}`];
}

/**
 * The sorry server's notifier (extension): the real notifier's words with the sorry server as the
 * real, so a real_notify_* script can serve as the sorry's notify_up / notify_down.
 * UP = put into IPVS (no real serves), DOWN = taken out.
 */
export function sorryNotifierArgv(script: string, s: SorryState, dir: NotifyDirection): string[] {
  const c = s.config;
  return [...virtualNotifierArgv(script, s.virtual, dir), `rname=${c.name}`, `raddr=${c.addr}`, `rport=${c.port}`];
}
