// Set definitions read from the kernel: one set by name (null when it does not exist), or every set
// of the ruleset with whether session sync can replicate it and, if not, why.

import type { NftFamily, TableRef } from '../model.js';
import * as abi from './abi.js';
import { decodeSetInfo, NlWriter, writeGetSet, writeSetDump, type NftSetInfo } from './codec.js';
import { NftError, setLabel } from './errors.js';
import type { NftSocket } from './socket.js';
import { classifySet, typeName, type SetLayout } from './types.js';

export type NftRef = TableRef & { kind: 'nft' };

/** The set's definition, or null when its table or the set itself does not exist. */
export async function readSetInfo(sock: NftSocket, ref: NftRef): Promise<NftSetInfo | null> {
  const w = new NlWriter(128);
  writeGetSet(w, ref.family, ref.table, ref.set);
  let info: NftSetInfo | null = null;
  try {
    await sock.request(`${setLabel(ref)}: reading the set definition`, w, (_i, type, _f, buf, off, end) => {
      if (type === abi.nftType(abi.NFT_MSG_NEWSET)) info = decodeSetInfo(buf, off, end);
    });
  } catch (e) {
    if (e instanceof NftError && e.code === 'kernel' && e.errno === abi.ENOENT) return null;
    throw e;
  }
  return info;
}

/** One set as listSets reports it. */
export interface NftSetSummary {
  readonly ref: NftRef;
  /** nftables' name of the key type (`ipv4_addr`). */
  readonly keyType: string;
  /** nftables' name of the map data type; null for a plain set. */
  readonly dataType: string | null;
  /** Set flags by nftables name (`timeout`, `dynamic`, `interval`, ...). */
  readonly flags: readonly string[];
  /** Default element timeout in ms; 0 when none. */
  readonly timeoutMs: number;
  /** Maximum number of elements; 0 when unlimited. */
  readonly size: number;
  readonly supported: boolean;
  /** Why it cannot be replicated (when supported is false). */
  readonly problem?: string;
  readonly layout?: SetLayout;
}

const FLAG_NAMES: readonly [number, string][] = [
  [abi.NFT_SET_ANONYMOUS, 'anonymous'],
  [abi.NFT_SET_CONSTANT, 'constant'],
  [abi.NFT_SET_INTERVAL, 'interval'],
  [abi.NFT_SET_MAP, 'map'],
  [abi.NFT_SET_TIMEOUT, 'timeout'],
  [abi.NFT_SET_EVAL, 'dynamic'],
  [abi.NFT_SET_OBJECT, 'object'],
  [abi.NFT_SET_CONCAT, 'concat'],
  [abi.NFT_SET_EXPR, 'expr'],
];

export function summarise(info: NftSetInfo): NftSetSummary {
  const c = classifySet(info);
  const base = {
    ref: { kind: 'nft' as const, family: info.family, table: info.table, set: info.name },
    keyType: typeName(info.keyType),
    dataType: info.dataType === null ? null : info.dataType === abi.NFT_DATA_VERDICT ? 'verdict' : typeName(info.dataType),
    flags: FLAG_NAMES.filter(([bit]) => info.flags & bit).map(([, n]) => n),
    timeoutMs: info.timeoutMs,
    size: info.size,
  };
  return c.ok ? { ...base, supported: true, layout: c.layout } : { ...base, supported: false, problem: c.reason };
}

export interface SetFilter {
  family?: NftFamily;
  /** Only with family: the kernel filters by table within one family. */
  table?: string;
}

/** Every set of the ruleset (or of one family/table), anonymous ones left out. */
export async function listSets(sock: NftSocket, filter: SetFilter = {}): Promise<NftSetSummary[]> {
  if (filter.table !== undefined && filter.family === undefined) {
    throw new NftError('mismatch', 'nft list sets', 'a table filter needs a family');
  }
  const w = new NlWriter(128);
  writeSetDump(w, filter.family, filter.table);
  const out: NftSetSummary[] = [];
  const what = `nft list sets${filter.family ? ` ${filter.family}` : ''}${filter.table ? ` ${filter.table}` : ''}`;
  try {
    await sock.dump(what, w, (_i, type, _f, buf, off, end) => {
      if (type !== abi.nftType(abi.NFT_MSG_NEWSET)) return;
      const info = decodeSetInfo(buf, off, end);
      if (!(info.flags & abi.NFT_SET_ANONYMOUS)) out.push(summarise(info));
    });
  } catch (e) {
    // A table filter naming a table that does not exist: no sets, not an error.
    if (e instanceof NftError && e.code === 'kernel' && e.errno === abi.ENOENT && filter.table !== undefined) return [];
    throw e;
  }
  out.sort((a, b) =>
    a.ref.family < b.ref.family ? -1 : a.ref.family > b.ref.family ? 1 : a.ref.table < b.ref.table ? -1 : a.ref.table > b.ref.table ? 1 : a.ref.set < b.ref.set ? -1 : a.ref.set > b.ref.set ? 1 : 0,
  );
  return out;
}
