// One line of surealived's override.dump (spec 7.2), pure: `VKEY - RKEY - weight=<W><%| >rstate=<RSTATE>`,
// and when an override is neutral (no line at all). Shared by surealived and session sync's overrides.

import { KeyError, parseRKey, parseVKey, type ParsedRKey, type ParsedVKey } from './state-keys.js';

export type RState = 'ONLINE' | 'OFFLINE' | 'DOWN';

export const RSTATES: readonly RState[] = ['ONLINE', 'OFFLINE', 'DOWN'];

export function parseRState(text: string): RState | null {
  return (RSTATES as readonly string[]).includes(text) ? (text as RState) : null;
}

export interface OverrideLine {
  readonly virtual: ParsedVKey;
  readonly real: ParsedRKey;
  /** As written: unsigned 32-bit (surealived prints it with %u). */
  readonly weight: number;
  readonly percent: boolean;
  readonly rstate: RState;
}

export type OverrideLineParse = { readonly ok: true; readonly line: OverrideLine } | { readonly ok: false; readonly reason: string };

// The original's fscanf("... weight=%d%c rstate=%s") accepts any whitespace after the type char.
const LINE = /^(\S+) - (\S+) - weight=([0-9]+)(%| )\s*rstate=(\S+)\s*$/;

/** Parses one line; `reason` says what is wrong with a bad one. */
export function parseOverrideLine(text: string): OverrideLineParse {
  const m = LINE.exec(text);
  if (!m) return { ok: false, reason: "expected '<vkey> - <rkey> - weight=<W>[%] rstate=<ONLINE|OFFLINE|DOWN>'" };
  const weight = Number(m[3]);
  if (weight > 0xffffffff) return { ok: false, reason: `weight ${m[3]} is out of range` };
  const rstate = parseRState(m[5]!);
  if (!rstate) return { ok: false, reason: `unknown rstate '${m[5]}'` };
  try {
    return { ok: true, line: { virtual: parseVKey(m[1]!), real: parseRKey(m[2]!), weight, percent: m[4] === '%', rstate } };
  } catch (e) {
    if (!(e instanceof KeyError)) throw e;
    return { ok: false, reason: e.message };
  }
}

/**
 * The line text: W printed unsigned, then `%` (percent) or a space (absolute), then the separator
 * space, so absolute lines have two spaces before `rstate`.
 */
export function formatOverrideText(vkey: string, rkey: string, weight: number, percent: boolean, rstate: RState): string {
  return `${vkey} - ${rkey} - weight=${weight >>> 0}${percent ? '%' : ' '} rstate=${rstate}\n`;
}

/**
 * Whether an override changes nothing: rstate ONLINE and the weight equal to the configured one
 * (absolute) or exactly 100 %. Such reals have no override.dump entry (spec 7.2 deletion rule).
 */
export function isNeutralOverride(rstate: RState, o: { readonly weight: number; readonly percent: boolean } | null, configured: number): boolean {
  if (rstate !== 'ONLINE') return false;
  if (o === null) return true;
  return o.percent ? o.weight === 100 : o.weight === configured;
}
