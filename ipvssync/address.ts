// Strict parsing of the scalar fields of hand-off and rule files: IPv4/IPv6 addresses, ports,
// unsigned integers. Pure; every failure carries a reason meant to follow `file:line: `.

import { isIP } from 'node:net';
import type { Family } from './types.js';

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly reason: string };

export interface Addr {
  readonly addr: string;
  readonly family: Family;
}

const OCTET = '(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
/** A dotted quad as isDottedQuad() accepts it, unanchored, for the parsers' line patterns. */
export const DOTTED_QUAD_PATTERN = `${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}`;
const DOTTED_QUAD = new RegExp(`^${DOTTED_QUAD_PATTERN}$`);

/** True for exactly what isIP() calls IPv4 (its own pattern): four 0..255 without leading zeros. */
export function isDottedQuad(text: string): boolean {
  return DOTTED_QUAD.test(text);
}

/**
 * An address literal: the plain dotted quad, or any IPv6 form (canonicalised the way the kernel's
 * addresses are printed back, so desired and kernel tables compare equal). inet_aton shorthands
 * (`10.1`, hex, octal) and IPv6 zone ids are refused.
 */
export function parseAddr(text: string): Parsed<Addr> {
  if (isDottedQuad(text)) return { ok: true, value: { addr: text, family: 'inet' } };
  const kind = isIP(text);
  if (kind === 4) return { ok: true, value: { addr: text, family: 'inet' } };
  if (kind === 6) {
    if (text.includes('%')) return { ok: false, reason: `bad address '${text}' (IPv6 zone ids are not supported)` };
    // The WHATWG URL host parser is a complete RFC 5952 normaliser (lower case, longest zero run compressed).
    const host = new URL(`http://[${text}]/`).hostname;
    return { ok: true, value: { addr: host.slice(1, -1), family: 'inet6' } };
  }
  return { ok: false, reason: `bad address '${text}'` };
}

/** Decimal digits only (no sign, no spaces), at most `max`. */
export function parseUint(text: string, max: number, what: string): Parsed<number> {
  if (!/^\d{1,10}$/.test(text)) return { ok: false, reason: `bad ${what} '${text}'` };
  const n = Number(text);
  if (n > max) return { ok: false, reason: `bad ${what} '${text}' (maximum ${max})` };
  return { ok: true, value: n };
}

export const parsePort = (text: string): Parsed<number> => parseUint(text, 65535, 'port');

export const U32_MAX = 4294967295;
/** The kernel keeps weights as a signed 32-bit value and refuses negatives. */
export const WEIGHT_MAX = 2147483647;
/** ipvsadm's MAX_TIMEOUT: 31 days. */
export const PERSISTENCE_MAX = 86400 * 31;
