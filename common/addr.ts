// IP address literals (XML config, session-sync tables and wire): parse IPv4/IPv6 text into one canonical form and say which
// addresses cannot be a virtual or a real (multicast, broadcast, unspecified).

import { isIP } from 'node:net';

export interface IpAddr {
  /** Canonical text: dotted quad, or lower-case compressed IPv6 (RFC 5952, as WHATWG URL prints it). */
  readonly addr: string;
  readonly family: 4 | 6;
}

export type AddrParse = { readonly ok: true; readonly ip: IpAddr } | { readonly ok: false; readonly reason: string };

/**
 * Parse one address literal. Surrounding whitespace is ignored (inet_aton ignored trailing
 * whitespace too). Compatibility choice: only the plain dotted quad is IPv4 — inet_aton's
 * shorthand forms (`127.1`, hex `0x7f.0.0.1`, octal `010.0.0.1`) are refused, because they are
 * almost always typos and `010` would silently mean 8. IPv6 zone ids (`fe80::1%eth0`) are refused:
 * IPVS has no place for them.
 */
export function parseIp(text: string): AddrParse {
  const t = text.trim();
  const family = isIP(t);
  if (family === 4) return { ok: true, ip: { addr: t, family: 4 } };
  if (family === 6) {
    if (t.includes('%')) return { ok: false, reason: 'IPv6 zone ids (%...) are not supported' };
    // The WHATWG URL host parser is a complete IPv6 normaliser: lower-case, longest zero run compressed.
    const host = new URL(`http://[${t}]/`).hostname;
    return { ok: true, ip: { addr: host.slice(1, -1), family: 6 } };
  }
  if (/^[0-9a-fA-Fx.]+$/.test(t) && t.includes('.')) {
    return { ok: false, reason: 'not an IPv4 address (only the dotted quad a.b.c.d without leading zeros is accepted)' };
  }
  return { ok: false, reason: 'not an IPv4 or IPv6 address' };
}

export function isMulticast(ip: IpAddr): boolean {
  if (ip.family === 4) {
    const first = Number(ip.addr.split('.')[0]);
    return first >= 224 && first <= 239;
  }
  return /^ff[0-9a-f]{2}:/.test(ip.addr); // ff00::/8; `ff::` (00ff::) is not multicast
}

export function isUnspecified(ip: IpAddr): boolean {
  return ip.addr === '0.0.0.0' || ip.addr === '::';
}

export function isBroadcast(ip: IpAddr): boolean {
  return ip.addr === '255.255.255.255';
}

/** Why `ip` cannot be the address of a virtual or a real, or undefined when it can. */
export function unusableReason(ip: IpAddr): string | undefined {
  if (isMulticast(ip)) return 'multicast address not supported';
  if (isBroadcast(ip)) return 'broadcast address not supported';
  if (isUnspecified(ip)) return 'unspecified address not supported';
  return undefined;
}

/** The "any" address of a family: the address of a fwmark virtual. */
export function anyAddr(family: 4 | 6): string {
  return family === 4 ? '0.0.0.0' : '::';
}

/** The 4 or 16 bytes of a canonical address (network order). */
export function addrBytes(ip: IpAddr): Buffer {
  if (ip.family === 4) return Buffer.from(ip.addr.split('.').map(Number));
  const [head, tail] = ip.addr.includes('::') ? ip.addr.split('::') : [ip.addr, undefined];
  const hs = head ? head.split(':') : [];
  const ts = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? hs : [...hs, ...Array<string>(8 - hs.length - ts.length).fill('0'), ...ts];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(Number.parseInt(g, 16), i * 2));
  return out;
}

/** The canonical address of 4 or 16 network-order bytes. */
export function addrFromBytes(b: Uint8Array): IpAddr {
  if (b.length === 4) return { addr: `${b[0]}.${b[1]}.${b[2]}.${b[3]}`, family: 4 };
  if (b.length !== 16) throw new RangeError(`an address is 4 or 16 bytes, not ${b.length}`);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  const r = parseIp(groups.join(':'));
  if (!r.ok) throw new RangeError(r.reason);
  return r.ip;
}
