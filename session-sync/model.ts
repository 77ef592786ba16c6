// The data session sync replicates, as plain values: tables (xt_recent lists, nftables sets and maps),
// their entries, and the changes a source reports. Times are epoch milliseconds on the node that holds
// the value; the wire carries ages instead, so two nodes never need to agree on a clock.

import { parseIp, type IpAddr } from '../common/addr.js';

export type Family = 4 | 6;

/** nftables address families a set can live in. */
export const NFT_FAMILIES = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] as const;
export type NftFamily = (typeof NFT_FAMILIES)[number];

/** Identity of one replicated table. */
export type TableRef =
  | { readonly kind: 'recent'; readonly name: string }
  | { readonly kind: 'nft'; readonly family: NftFamily; readonly table: string; readonly set: string }
  /** The sessions of one Pound farm. */
  | { readonly kind: 'http'; readonly farm: string }
  /** The operator overrides of one surealived (its name: `surealived` unless several run). */
  | { readonly kind: 'overrides'; readonly name: string };

/** One xt_recent entry: a source address with its TTL and every hit it has recorded. */
export interface RecentEntry {
  readonly kind: 'recent';
  /** Canonical address text (dotted quad, or RFC 5952 IPv6). The entry's key. */
  readonly addr: string;
  readonly family: Family;
  /** IP TTL the kernel recorded (0 for entries written through /proc). */
  readonly ttl: number;
  /** Hit times, epoch ms on this node's clock, oldest first. Never empty. */
  readonly hits: readonly number[];
}

/** What a map element points to: a packet mark, or a backend `addr . port`. */
export type NftData =
  | { readonly type: 'mark'; readonly mark: number }
  | { readonly type: 'addr_port'; readonly family: Family; readonly addr: string; readonly port: number };

/** One element of an nftables set (data null) or map, keyed by a client address. */
export interface NftEntry {
  readonly kind: 'nft';
  /** Canonical address text: the element's key. */
  readonly addr: string;
  readonly family: Family;
  readonly data: NftData | null;
  /** The element's own timeout in ms; 0 when it has none (the set's default timeout applies). */
  readonly timeoutMs: number;
  /** When the element expires, epoch ms on this node's clock; null when it never does. */
  readonly expiresAt: number | null;
}

/**
 * One Pound session: (listener, service, key) -> backend. Ordinals are Pound's, in config order; the
 * two nodes' Pound configurations must match (as with Zevenet's ssyncd).
 */
export interface HttpSession {
  readonly kind: 'http';
  readonly listener: number;
  readonly service: number;
  /** The session key (a cookie value, a client address, ...); 1 to MAX_HTTP_FIELD bytes. */
  readonly key: string;
  readonly backend: number;
  /** What Pound reports as the backend (its address as text); informative. */
  readonly content: string;
  /** Last access, epoch ms on this node's clock (Pound counts seconds). */
  readonly lastAccess: number;
}

export type RState = 'ONLINE' | 'OFFLINE' | 'DOWN';

/** An operator override of one real in surealived (`rset`): weight and rstate, as override.dump has it. */
export interface OperatorOverride {
  readonly kind: 'override';
  /** The virtual's VKEY (`<vaddr>:<vport>:<proto#>:<fwmark>`, IPv6 bracketed): its identity, never a position. */
  readonly virtual: string;
  /** The real's RKEY (`<raddr>:<rport>`). */
  readonly real: string;
  readonly weight: number;
  readonly percent: boolean;
  readonly rstate: RState;
}

export type Entry = RecentEntry | NftEntry | HttpSession | OperatorOverride;

/** Longest Pound key or content we carry (our wire allows more than Pound's own 255-byte fields). */
export const MAX_HTTP_FIELD = 4096;

/** An entry's key within its table: the address, `listener/service/key`, or `VKEY RKEY`. */
export function entryKey(e: Entry): string {
  switch (e.kind) {
    case 'recent':
    case 'nft':
      return e.addr;
    case 'http':
      return httpKey(e.listener, e.service, e.key);
    case 'override':
      return `${e.virtual} ${e.real}`;
  }
}

export function httpKey(listener: number, service: number, key: string): string {
  return `${listener}/${service}/${key}`;
}

/** The kind of entry a table holds. */
export function entryKindOf(t: TableRef): Entry['kind'] {
  return t.kind === 'overrides' ? 'override' : t.kind;
}

/** What a source saw change in its kernel tables since its previous poll. */
export type Change =
  | { readonly op: 'upsert'; readonly table: TableRef; readonly entry: Entry }
  | { readonly op: 'delete'; readonly table: TableRef; readonly key: string }
  /** The table itself is gone on the master (its last rule removed, the set deleted). */
  | { readonly op: 'drop'; readonly table: TableRef };

/** Stable text identity of a table: `recent/<name>` or `nft/<family>/<table>/<set>`. */
export function tableId(t: TableRef): string {
  switch (t.kind) {
    case 'recent':
      return `recent/${t.name}`;
    case 'nft':
      return `nft/${t.family}/${t.table}/${t.set}`;
    case 'http':
      return `http/${t.farm}`;
    case 'overrides':
      return `overrides/${t.name}`;
  }
}

/** The inverse of tableId, for ids read back from a journal; undefined when malformed. */
export function parseTableId(id: string): TableRef | undefined {
  const parts = id.split('/');
  if (parts[0] === 'recent' && parts.length === 2 && recentNameProblem(parts[1]!) === undefined) {
    return { kind: 'recent', name: parts[1]! };
  }
  if (parts[0] === 'http' && parts.length === 2 && farmNameProblem(parts[1]!) === undefined) return { kind: 'http', farm: parts[1]! };
  if (parts[0] === 'overrides' && parts.length === 2 && farmNameProblem(parts[1]!) === undefined) return { kind: 'overrides', name: parts[1]! };
  if (parts[0] === 'nft' && parts.length === 4) {
    const ref = { family: parts[1]!, table: parts[2]!, set: parts[3]! };
    if (nftRefProblem(ref) === undefined) return { kind: 'nft', ...ref } as TableRef;
  }
  return undefined;
}

/** Human form used in replies and logs: `<name>` or `<family> <table> <set>`. */
export function tableLabel(t: TableRef): string {
  switch (t.kind) {
    case 'recent':
      return t.name;
    case 'nft':
      return `${t.family} ${t.table} ${t.set}`;
    case 'http':
      return `http ${t.farm}`;
    case 'overrides':
      return `overrides ${t.name}`;
  }
}

/**
 * Why `name` cannot be a Pound farm name (or a surealived name for overrides), or undefined. Farm
 * names end up in a socket path (`/tmp/ssync_<farm>.socket`), so nothing that could leave it.
 */
export function farmNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty farm name';
  if (Buffer.byteLength(name) > 255) return 'farm name longer than 255 bytes';
  if (!/^[A-Za-z0-9_.-]+$/.test(name)) return 'farm name may only hold letters, digits and _ . -';
  if (name === '.' || name === '..') return 'farm name may not be . or ..';
  return undefined;
}

/** The kernel's limit on xt_recent table names (XT_RECENT_NAME_LEN 200, NUL included). */
export const RECENT_NAME_MAX = 199;
/** nftables names: NFT_NAME_MAXLEN 256, NUL included. */
export const NFT_NAME_MAX = 255;

/**
 * Why `name` cannot be an xt_recent table name, or undefined. Names end up in a /proc path, so only
 * the characters iptables users write are allowed and `.`/`..` are refused outright.
 */
export function recentNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'empty table name';
  if (name.length > RECENT_NAME_MAX) return `table name longer than ${RECENT_NAME_MAX} characters`;
  if (!/^[A-Za-z0-9_.:+-]+$/.test(name)) return 'table name may only hold letters, digits and _ . : + -';
  if (name === '.' || name === '..') return 'table name may not be . or ..';
  return undefined;
}

/** Why an nftables family/table/set triple is unusable, or undefined. Names reach netlink only. */
export function nftRefProblem(ref: { family: string; table: string; set: string }): string | undefined {
  if (!(NFT_FAMILIES as readonly string[]).includes(ref.family)) {
    return `unknown nftables family ${JSON.stringify(ref.family)} (one of ${NFT_FAMILIES.join(', ')})`;
  }
  for (const [what, n] of [['table', ref.table], ['set', ref.set]] as const) {
    if (n.length === 0) return `empty ${what} name`;
    if (n.length > NFT_NAME_MAX) return `${what} name longer than ${NFT_NAME_MAX} characters`;
    if (!/^[A-Za-z_][A-Za-z0-9_.\/-]*$/.test(n) || n.includes('/')) {
      return `${what} name must start with a letter or _ and hold only letters, digits and _ . -`;
    }
  }
  return undefined;
}

/** Canonical address, or undefined when `text` is not an IPv4/IPv6 literal (zone ids refused). */
export function canonicalAddr(text: string): IpAddr | undefined {
  const r = parseIp(text);
  return r.ok ? r.ip : undefined;
}

export function sameTable(a: TableRef, b: TableRef): boolean {
  return tableId(a) === tableId(b);
}
