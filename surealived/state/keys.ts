// VKEY/RKEY of the configured virtuals and reals, and the spec-7 rule matching dump lines to them
// (`<vaddr>:<vport>:<proto#>:<fwmark>`, `<raddr>:<rport>`; the key text itself: common/state-keys.ts).

import { PROTO_CODE, type RealConfig, type VirtualConfig } from '../config/model.js';
import type { RealState, VirtualState } from '../engine/state.js';
import { addrPort, canonicalAddr, type ParsedRKey, type ParsedVKey } from '../../common/state-keys.js';

// The key text itself (parsing, canonical forms) lives in common/ so session sync can read it too.
export { KeyError, addrPort, canonicalAddr, formatParsedVKey, parseRKey, parseVKey } from '../../common/state-keys.js';
export type { ParsedRKey, ParsedVKey } from '../../common/state-keys.js';

export function vkey(v: VirtualConfig): string {
  return `${addrPort(v.addr, v.port)}:${PROTO_CODE[v.proto]}:${v.fwmark >>> 0}`;
}

export function rkey(r: RealConfig): string {
  return addrPort(r.addr, r.port);
}

function isAnyAddr(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::';
}

/**
 * Spec 7: a dump line names a virtual if (its fwmark > 0 and equals the virtual's) or (its vaddr is
 * not the any-address and vaddr, vport and protocol all equal).
 */
export function virtualMatches(v: VirtualConfig, k: ParsedVKey): boolean {
  if (k.fwmark > 0 && v.fwmark === k.fwmark) return true;
  return !isAnyAddr(k.addr) && canonicalAddr(v.addr) === k.addr && v.port === k.port && PROTO_CODE[v.proto] === k.proto;
}

export function realMatches(r: RealConfig, k: ParsedRKey): boolean {
  return canonicalAddr(r.addr) === k.addr && r.port === k.port;
}

/**
 * Every real a dump line names. Like the original, all matching virtuals are searched (duplicates
 * in the XML are not rejected), so one line can name more than one real.
 */
export function findReals(virtuals: readonly VirtualState[], v: ParsedVKey, r: ParsedRKey): RealState[] {
  const found: RealState[] = [];
  for (const vs of virtuals) {
    if (!virtualMatches(vs.config, v)) continue;
    for (const rs of vs.reals) if (realMatches(rs.config, r)) found.push(rs);
  }
  return found;
}

/**
 * Exact-key lookup used by notify.dump and stats.dump (the original looks these up in a hash of
 * VKEY strings, not with the spec-7 rule). Keys are re-formatted canonically on both sides.
 */
export function indexByVKey(virtuals: readonly VirtualState[]): Map<string, VirtualState[]> {
  const index = new Map<string, VirtualState[]>();
  for (const v of virtuals) {
    const k = canonicalVKey(v.config);
    const list = index.get(k);
    if (list) list.push(v);
    else index.set(k, [v]);
  }
  return index;
}

function canonicalVKey(v: VirtualConfig): string {
  return `${addrPort(canonicalAddr(v.addr), v.port)}:${PROTO_CODE[v.proto]}:${v.fwmark >>> 0}`;
}
