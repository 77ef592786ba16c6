// VKEY/RKEY as text: how surealived's state dump files name a virtual (`<vaddr>:<vport>:<proto#>:<fwmark>`)
// and a real (`<raddr>:<rport>`), byte-compatible with SureAliveD for IPv4; IPv6 addresses are
// bracketed. Pure parsing and formatting, shared by surealived and the session-sync overrides.

import { isIPv4, isIPv6 } from 'node:net';

/** A key in a dump file that does not follow the format; `message` says what is wrong. */
export class KeyError extends Error {
  constructor(readonly text: string, message: string) {
    super(`${message} in '${text}'`);
    this.name = 'KeyError';
  }
}

export interface ParsedRKey {
  readonly addr: string; // canonical literal, no brackets
  readonly family: 4 | 6;
  readonly port: number;
}

export interface ParsedVKey extends ParsedRKey {
  /** Numeric protocol as in the files: 0=tcp, 1=udp, 2=fwmark. */
  readonly proto: number;
  readonly fwmark: number;
}

/** The protocol names of the numeric VKEY codes, by code. */
export const VKEY_PROTOS = ['tcp', 'udp', 'fwmark'] as const;

/**
 * Canonical text of an IP literal, so `2001:0DB8::0001` and `2001:db8::1` compare equal.
 * The WHATWG URL serialiser gives the RFC 5952 form; IPv4 is already canonical once `isIPv4` accepts it.
 */
export function canonicalAddr(addr: string): string {
  if (isIPv6(addr)) return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  return addr;
}

/** `a.b.c.d:port` or `[v6]:port`: the RKEY and the `addr:port` fragments of the stats lines. */
export function addrPort(addr: string, port: number): string {
  return isIPv6(addr) ? `[${addr}]:${port}` : `${addr}:${port}`;
}

const UINT = /^(0|[1-9][0-9]*)$/;

function parseUint(text: string, what: string, max: number, whole: string): number {
  if (!UINT.test(text)) throw new KeyError(whole, `${what} '${text}' is not an unsigned integer`);
  const n = Number(text);
  if (n > max) throw new KeyError(whole, `${what} ${n} is out of range 0..${max}`);
  return n;
}

/** Splits `addr:rest` / `[v6]:rest` and validates the address. */
function splitAddr(text: string): { addr: string; family: 4 | 6; rest: string } {
  if (text.startsWith('[')) {
    const end = text.indexOf(']');
    if (end < 0) throw new KeyError(text, "missing ']' after IPv6 address");
    const addr = text.slice(1, end);
    if (!isIPv6(addr)) throw new KeyError(text, `invalid IPv6 address '${addr}'`);
    if (text[end + 1] !== ':') throw new KeyError(text, "expected ':' after ']'");
    return { addr: canonicalAddr(addr), family: 6, rest: text.slice(end + 2) };
  }
  const colon = text.indexOf(':');
  if (colon < 0) throw new KeyError(text, "expected '<addr>:<port>'");
  const addr = text.slice(0, colon);
  if (!isIPv4(addr)) {
    const hint = isIPv6(text.slice(0, text.lastIndexOf(':'))) ? ' (IPv6 addresses must be in brackets)' : '';
    throw new KeyError(text, `invalid IPv4 address '${addr}'${hint}`);
  }
  return { addr, family: 4, rest: text.slice(colon + 1) };
}

/** Parses `<raddr>:<rport>`; throws KeyError. */
export function parseRKey(text: string): ParsedRKey {
  const { addr, family, rest } = splitAddr(text);
  return { addr, family, port: parseUint(rest, 'port', 65535, text) };
}

/** Parses `<vaddr>:<vport>:<proto#>:<fwmark>`; throws KeyError. */
export function parseVKey(text: string): ParsedVKey {
  const { addr, family, rest } = splitAddr(text);
  const parts = rest.split(':');
  if (parts.length !== 3) throw new KeyError(text, "expected '<addr>:<port>:<proto#>:<fwmark>'");
  const port = parseUint(parts[0]!, 'port', 65535, text);
  const proto = parseUint(parts[1]!, 'protocol number', 2, text);
  const fwmark = parseUint(parts[2]!, 'fwmark', 0xffffffff, text);
  return { addr, family, port, proto, fwmark };
}

/** Canonical text of a parsed key (what surealived's `vkey` gives for the matching config). */
export function formatParsedVKey(k: Omit<ParsedVKey, 'family'>): string {
  return `${addrPort(k.addr, k.port)}:${k.proto}:${k.fwmark}`;
}

/** Canonical text of a parsed real key. */
export function formatParsedRKey(k: Omit<ParsedRKey, 'family'>): string {
  return addrPort(k.addr, k.port);
}
