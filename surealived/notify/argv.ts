// Notifier command lines exactly as SureAliveD builds them: the script, then key=value words.

import type { RealState, VirtualState } from '../engine/state.js';

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
