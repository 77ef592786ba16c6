// What ssyncdctl can ask of ssyncd: one discriminated union of commands, validated once (names checked
// where they are parsed), plus the request options every command carries. The CLI grammar, the frame
// codec, the server and the daemon's handler all speak this type.

import { canonicalAddr, farmNameProblem, nftRefProblem, recentNameProblem, type TableRef } from '../model.js';

export type NftRef = Extract<TableRef, { kind: 'nft' }>;

export type Command =
  | { readonly cmd: 'start-recent' }
  | { readonly cmd: 'stop-recent' }
  | { readonly cmd: 'start-http'; readonly farm: string }
  | { readonly cmd: 'stop-http'; readonly farm: string }
  | { readonly cmd: 'show-http' }
  | { readonly cmd: 'count-http' }
  | { readonly cmd: 'clear-http' }
  | { readonly cmd: 'write-http' }
  | { readonly cmd: 'show-recent' }
  | { readonly cmd: 'count-recent' }
  | { readonly cmd: 'clear-recent' }
  | { readonly cmd: 'clear-recent-table'; readonly table: string }
  | { readonly cmd: 'write-recent' }
  | { readonly cmd: 'write-recent-table'; readonly table: string }
  | { readonly cmd: 'switch-master'; readonly port: number }
  /** `address` is canonical IPv4 or IPv6 text. */
  | { readonly cmd: 'switch-backup'; readonly address: string; readonly port: number }
  | { readonly cmd: 'show-mode' }
  | { readonly cmd: 'quit' }
  | { readonly cmd: 'start-nft'; readonly ref: NftRef }
  | { readonly cmd: 'stop-nft'; readonly ref: NftRef }
  | { readonly cmd: 'show-nft' }
  | { readonly cmd: 'count-nft' }
  | { readonly cmd: 'write-nft' }
  | { readonly cmd: 'clear-nft' }
  | { readonly cmd: 'status' }
  /** surealived's operator overrides (rset): replicate, stop, show, apply to the local surealived. */
  | { readonly cmd: 'start-overrides' }
  | { readonly cmd: 'stop-overrides' }
  | { readonly cmd: 'show-overrides' }
  | { readonly cmd: 'write-overrides' };

export type CommandName = Command['cmd'];

/** How the reply is wanted. Both false for a frame in the original format (original ssyncdctl). */
export interface RequestOptions {
  /** Reply with a JSON document instead of text (show, count and status only). */
  readonly json: boolean;
  /** Append a status trailer to the reply (frame.ts) so the client can exit 0 or 1. */
  readonly wantStatus: boolean;
}

export const ORIGINAL_OPTIONS: RequestOptions = { json: false, wantStatus: false };

/** Commands whose reply has a JSON form: every show, count and status. */
export function acceptsJson(c: Command): boolean {
  return c.cmd.startsWith('show-') || c.cmd.startsWith('count-') || c.cmd === 'status';
}

/** Farm names are Pound farm names; the daemon builds `/tmp/ssync_<farm>.socket` from them. */
export const FARM_NAME_MAX = 255;
export { farmNameProblem };

/** Why `port` cannot be a TCP port for the switch commands, or undefined. */
export function portProblem(port: number): string | undefined {
  return Number.isInteger(port) && port >= 1 && port <= 65535 ? undefined : `port ${port} is not 1-65535`;
}

/**
 * Why a command's arguments are unusable, or undefined. The grammar and the frame decoder build
 * commands from untrusted text and bytes and call this once, so a handler can trust what it gets.
 */
export function commandProblem(c: Command): string | undefined {
  switch (c.cmd) {
    case 'start-http':
    case 'stop-http':
      return farmNameProblem(c.farm);
    case 'clear-recent-table':
    case 'write-recent-table':
      return recentNameProblem(c.table);
    case 'switch-master':
      return portProblem(c.port);
    case 'switch-backup': {
      const ip = canonicalAddr(c.address);
      if (ip === undefined) return `address ${JSON.stringify(c.address)} is not an IPv4 or IPv6 address`;
      if (ip.addr !== c.address) return `address ${c.address} is not in canonical form (${ip.addr})`;
      return portProblem(c.port);
    }
    case 'start-nft':
    case 'stop-nft':
      return nftRefProblem(c.ref);
    default:
      return undefined;
  }
}

/** The command as ssyncdctl words (`start http farm1`), for logs. */
export function describeCommand(c: Command): string {
  switch (c.cmd) {
    case 'start-http':
    case 'stop-http':
      return `${c.cmd.replace('-', ' ')} ${c.farm}`;
    case 'clear-recent-table':
    case 'write-recent-table':
      return `${c.cmd.split('-')[0]} recent table ${c.table}`;
    case 'switch-master':
      return `switch master port ${c.port}`;
    case 'switch-backup':
      return `switch backup address ${c.address} port ${c.port}`;
    case 'start-nft':
    case 'stop-nft':
      return `${c.cmd.replace('-', ' ')} ${c.ref.family} ${c.ref.table} ${c.ref.set}`;
    default:
      return c.cmd.replace('-', ' ');
  }
}
