// Parse one control-port request line into a typed command (spec 9.1-9.3), pure.
// Command word by prefix as the original; arguments are `key=value` tokens split on space/tab.

import { parseIp, type IpAddr } from '../../common/addr.js';
import { atoi } from '../../common/main-config.js';

/**
 * How to find a virtual. `name` is our extension (`vname=<name>`); `service` is the original's
 * rule: fwmark > 0 matches a fwmark virtual with that mark, else a non-fwmark virtual with equal
 * proto, addr and port (both tested in one pass over the virtuals, in XML order, as the original).
 */
export type VirtualSelector =
  | { readonly kind: 'name'; readonly name: string }
  | { readonly kind: 'service'; readonly proto: string; readonly addr: IpAddr; readonly port: number; readonly fwmark: number }
  | { readonly kind: 'invalid'; readonly error: string };

export type RealSelector =
  | { readonly kind: 'endpoint'; readonly addr: IpAddr; readonly port: number }
  | { readonly kind: 'invalid'; readonly error: string };

/**
 * The `rstate=` / `rweight=` values of `rset`, as typed: validated by state/override-dump.ts
 * applyRset (shared with override.dump) after the virtual and real were found, which is also the
 * original's error order.
 */
export interface RsetArgs {
  readonly rstate?: string;
  readonly rweight?: string;
}

export type Command =
  | { readonly kind: 'vlist'; readonly json: boolean }
  | { readonly kind: 'rlist'; readonly json: boolean; readonly virtual: VirtualSelector }
  | { readonly kind: 'stats'; readonly json: boolean }
  | {
      readonly kind: 'rset';
      readonly json: boolean;
      readonly virtual: VirtualSelector;
      readonly real: RealSelector;
      readonly change: RsetArgs;
    }
  | { readonly kind: 'connstats'; readonly json: boolean }
  | { readonly kind: 'metrics' }
  /** Panic mode and sorry server of every virtual, or of the one selected (extension). */
  | { readonly kind: 'fallbacks'; readonly json: boolean; readonly virtual: VirtualSelector | null }
  | { readonly kind: 'invalid'; readonly line: string };

/** Split into `key=value` pairs like g_strsplit_set: `a=b=c` is a=b, `a=` is a="", tokens without `=` are skipped. */
export function parseArgs(line: string): Map<string, string> {
  const args = new Map<string, string>();
  for (const token of line.split(/[ \t]/)) {
    if (token === '') continue;
    const parts = token.split('=');
    if (parts.length >= 2) args.set(parts[0]!, parts[1]!); // last duplicate wins
  }
  return args;
}

/** `json` as a bare token after the command word switches a listing to its JSON form (extension). */
function wantsJson(line: string): boolean {
  const tokens = line.split(/[ \t]/);
  for (let i = 1; i < tokens.length; i++) if (tokens[i] === 'json') return true;
  return false;
}

export function parseVirtualSelector(args: ReadonlyMap<string, string>): VirtualSelector {
  const name = args.get('vname');
  if (name !== undefined) return { kind: 'name', name };
  const proto = args.get('vproto');
  if (proto === undefined) return { kind: 'invalid', error: 'cmd_find_virt: No vproto specified' };
  const addrText = args.get('vaddr') ?? '0.0.0.0';
  const addr = parseIp(addrText);
  // The original answered an unparsable vaddr with an uninitialised buffer (spec 9.2 [BUG]).
  if (!addr.ok) return { kind: 'invalid', error: 'cmd_find_virt: invalid IP' };
  return {
    kind: 'service',
    proto,
    addr: addr.ip,
    // htons(atoi()) and a u_int32_t fwmark: out-of-range numbers wrap exactly as in C.
    port: atoi(args.get('vport') ?? '0') & 0xffff,
    fwmark: atoi(args.get('vfwmark') ?? '0') >>> 0,
  };
}

export function parseRealSelector(args: ReadonlyMap<string, string>): RealSelector {
  const raddr = args.get('raddr');
  if (raddr === undefined) return { kind: 'invalid', error: 'cmd_find_real: raddr not found' };
  const rport = args.get('rport');
  if (rport === undefined) return { kind: 'invalid', error: 'cmd_find_real: rport not found' };
  const addr = parseIp(raddr);
  if (!addr.ok) return { kind: 'invalid', error: 'cmd_find_real: invalid IP' };
  return { kind: 'endpoint', addr: addr.ip, port: atoi(rport) & 0xffff };
}

export function parseRsetArgs(args: ReadonlyMap<string, string>): RsetArgs {
  const rstate = args.get('rstate');
  const rweight = args.get('rweight');
  return { ...(rstate !== undefined ? { rstate } : {}), ...(rweight !== undefined ? { rweight } : {}) };
}

/**
 * Parse one request line (without `\n`; a trailing `\r` is stripped here). The line is cut at a NUL
 * byte because the original handled it as a C string. Command words by prefix, in the original's
 * order: vlist, rlist, stats, rset, connstats; `metrics` and `fallbacks` are ours.
 */
export function parseCommand(raw: string): Command {
  let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const nul = line.indexOf('\0');
  if (nul >= 0) line = line.slice(0, nul);
  const json = wantsJson(line);
  if (line.startsWith('vlist')) return { kind: 'vlist', json };
  if (line.startsWith('rlist')) return { kind: 'rlist', json, virtual: parseVirtualSelector(parseArgs(line)) };
  if (line.startsWith('stats')) return { kind: 'stats', json };
  if (line.startsWith('rset')) {
    const args = parseArgs(line);
    return { kind: 'rset', json, virtual: parseVirtualSelector(args), real: parseRealSelector(args), change: parseRsetArgs(args) };
  }
  if (line.startsWith('connstats')) return { kind: 'connstats', json };
  if (line.startsWith('metrics')) return { kind: 'metrics' };
  if (line.startsWith('fallbacks')) {
    // Without a selector every virtual is listed; with one (vname=, or vproto= and the rest) just that one.
    const args = parseArgs(line);
    const selects = args.has('vname') || args.has('vproto');
    return { kind: 'fallbacks', json, virtual: selects ? parseVirtualSelector(args) : null };
  }
  return { kind: 'invalid', line };
}
