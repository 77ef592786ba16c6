// The control-port lines that put an override into a surealived, pure: a VKEY/RKEY pair becomes the
// `rset` selectors of that very virtual and real (never a position), and a reply becomes an outcome.

import { KeyError, VKEY_PROTOS, formatParsedRKey, formatParsedVKey, parseRKey, parseVKey, type ParsedRKey, type ParsedVKey } from '../../common/state-keys.js';
import type { OperatorOverride } from '../model.js';

/** A real named by its keys, parsed and in canonical text. */
export interface RealTarget {
  readonly virtual: ParsedVKey;
  readonly real: ParsedRKey;
  /** Canonical entry key, `VKEY RKEY`. */
  readonly key: string;
  /** How replies and logs name it: `VKEY - RKEY`, as override.dump does. */
  readonly what: string;
}

export type TargetParse = { readonly ok: true; readonly target: RealTarget } | { readonly ok: false; readonly why: string };

export function parseTarget(virtual: string, real: string): TargetParse {
  try {
    const v = parseVKey(virtual);
    const r = parseRKey(real);
    const vk = formatParsedVKey(v);
    const rk = formatParsedRKey(r);
    return { ok: true, target: { virtual: v, real: r, key: `${vk} ${rk}`, what: `${vk} - ${rk}` } };
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    return { ok: false, why: e.message };
  }
}

/**
 * The selector of the virtual a VKEY names, with the spec-7 rule: a fwmark > 0 names the virtual with
 * that mark (surealived then ignores proto, address and port), otherwise proto, address and port do.
 */
export function virtualSelector(v: ParsedVKey): string {
  const proto = VKEY_PROTOS[v.proto] ?? 'tcp';
  if (v.fwmark > 0) return `vproto=${proto} vfwmark=${v.fwmark}`;
  return `vproto=${proto} vaddr=${v.addr} vport=${v.port}`;
}

function realSelector(t: RealTarget): string {
  return `${virtualSelector(t.virtual)} raddr=${t.real.addr} rport=${t.real.port}`;
}

/** `rset` giving the real exactly this override: rstate and weight as override.dump has them. */
export function rsetLine(t: RealTarget, o: Pick<OperatorOverride, 'weight' | 'percent' | 'rstate'>): string {
  return `rset ${realSelector(t)} rstate=${o.rstate} rweight=${o.weight >>> 0}${o.percent ? '%' : ''}`;
}

/** `rset` taking the override away: ONLINE at 100 % is neutral, so surealived drops the entry. */
export function resetLine(t: RealTarget): string {
  return `rset ${realSelector(t)} rstate=ONLINE rweight=100%`;
}

/** `rlist ... json` of the virtual a VKEY names. */
export function rlistLine(v: ParsedVKey): string {
  return `rlist ${virtualSelector(v)} json`;
}

export type RsetOutcome = { readonly ok: true } | { readonly ok: false; readonly why: string };

/**
 * `Set: ...` and the end marker is success; anything else is why not, surealived's own words kept
 * (`cmd_find_real: Real not found`: the real is not in this director's configuration).
 */
export function rsetOutcome(reply: string): RsetOutcome {
  if (/^Set: [^\n]*\n_SD_CMD_END_\n$/.test(reply)) return { ok: true };
  const said = reply.trim() || 'empty reply';
  if (/^cmd_find_virt: Virt not found$/.test(said)) return { ok: false, why: `no such virtual in the local surealived's configuration (${said})` };
  if (/^cmd_find_real: (Real not found|empty realArr)$/.test(said)) return { ok: false, why: `no such real in the local surealived's configuration (${said})` };
  return { ok: false, why: said };
}
