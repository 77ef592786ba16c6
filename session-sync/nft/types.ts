// What an nftables set holds, in session-sync terms: which set definitions can be replicated (keyed
// by one client address, optionally mapping it to a mark or a backend `addr . port`), and the
// conversion of key and data bytes to and from NftEntry values. Anything else is refused with a
// reason, never guessed.

import { endianness } from 'node:os';
import { addrBytes, addrFromBytes, type IpAddr } from '../../common/addr.js';
import type { Family, NftData } from '../model.js';
import * as abi from './abi.js';
import type { NftSetInfo } from './codec.js';

const LE = endianness() === 'LE';

export type DataLayout = { readonly type: 'mark' } | { readonly type: 'addr_port'; readonly family: Family };

/** The shape of a replicable set. */
export interface SetLayout {
  readonly keyFamily: Family;
  /** 4 (ipv4_addr) or 16 (ipv6_addr). */
  readonly keyLen: number;
  /** null for a plain set. */
  readonly data: DataLayout | null;
  /** Bytes of map data (fields padded to 4-byte registers); -1 for a plain set. */
  readonly dataLen: number;
  /** The set has flags timeout: elements may carry a timeout and an expiry. */
  readonly timeouts: boolean;
}

export type Classified = { readonly ok: true; readonly layout: SetLayout } | { readonly ok: false; readonly reason: string };

/** nftables' name of a datatype id, concatenations as `a . b`. */
export function typeName(t: number): string {
  const one = (x: number): string => abi.DATATYPE_NAMES[x] ?? `datatype ${x}`;
  if (t < 1 << abi.TYPE_BITS) return one(t);
  const fields: number[] = [];
  for (let x = t; x > 0; x = Math.floor(x / (1 << abi.TYPE_BITS))) fields.unshift(x & ((1 << abi.TYPE_BITS) - 1));
  return fields.map(one).join(' . ');
}

const concat = (a: number, b: number): number => (a << abi.TYPE_BITS) | b;
const ADDR_PORT_V4 = concat(abi.TYPE_IPV4_ADDR, abi.TYPE_INET_SERVICE);
const ADDR_PORT_V6 = concat(abi.TYPE_IPV6_ADDR, abi.TYPE_INET_SERVICE);

/** Whether session sync can replicate this set, and how its bytes are laid out. */
export function classifySet(info: NftSetInfo): Classified {
  const no = (reason: string): Classified => ({ ok: false, reason });
  const f = info.flags;
  if (f & abi.NFT_SET_ANONYMOUS) return no('anonymous set (it belongs to one rule)');
  if (f & abi.NFT_SET_INTERVAL) return no('interval set (flags interval): its elements are ranges, only single addresses are replicated');
  if (f & abi.NFT_SET_OBJECT) return no('object map (elements point to stateful objects)');
  const keyName = typeName(info.keyType);
  let keyFamily: Family;
  if (info.keyType === abi.TYPE_IPV4_ADDR && info.keyLen === 4) keyFamily = 4;
  else if (info.keyType === abi.TYPE_IPV6_ADDR && info.keyLen === 16) keyFamily = 6;
  else return no(`key type ${keyName} (${info.keyLen} bytes): only ipv4_addr or ipv6_addr keys are replicated`);
  const timeouts = (f & abi.NFT_SET_TIMEOUT) !== 0;
  const isMap = (f & abi.NFT_SET_MAP) !== 0 || info.dataType !== null;
  if (!isMap) return { ok: true, layout: { keyFamily, keyLen: info.keyLen, data: null, dataLen: -1, timeouts } };
  const dt = info.dataType ?? 0;
  if (dt === abi.NFT_DATA_VERDICT) return no('verdict map: verdicts are not replicated');
  let data: DataLayout;
  if (dt === abi.TYPE_MARK && info.dataLen === 4) data = { type: 'mark' };
  else if (dt === ADDR_PORT_V4 && info.dataLen === 8) data = { type: 'addr_port', family: 4 };
  else if (dt === ADDR_PORT_V6 && info.dataLen === 20) data = { type: 'addr_port', family: 6 };
  else {
    return no(
      `map data type ${typeName(dt)} (${info.dataLen} bytes): only mark, ipv4_addr . inet_service and ipv6_addr . inet_service are replicated`,
    );
  }
  return { ok: true, layout: { keyFamily, keyLen: info.keyLen, data, dataLen: info.dataLen, timeouts } };
}

/** `ipv4_addr : mark`-style description of a layout, for messages. */
export function layoutName(l: SetLayout): string {
  const key = l.keyFamily === 4 ? 'ipv4_addr' : 'ipv6_addr';
  if (l.data === null) return key;
  if (l.data.type === 'mark') return `${key} : mark`;
  return `${key} : ${l.data.family === 4 ? 'ipv4_addr' : 'ipv6_addr'} . inet_service`;
}

/** The key bytes of an address (network order). */
export function encodeKey(ip: IpAddr): Buffer {
  return addrBytes(ip);
}

export function decodeKey(buf: Uint8Array, off: number, len: number): IpAddr {
  return addrFromBytes(buf.subarray(off, off + len));
}

/**
 * Map data bytes. A mark is a u32 in host byte order (nftables' mark type is host-endian);
 * `addr . port` is the address, then the port big-endian, padded to a 4-byte register.
 */
export function encodeData(d: NftData): Buffer {
  if (d.type === 'mark') {
    const b = Buffer.alloc(4);
    if (LE) b.writeUInt32LE(d.mark >>> 0);
    else b.writeUInt32BE(d.mark >>> 0);
    return b;
  }
  const a = addrBytes({ addr: d.addr, family: d.family });
  const b = Buffer.alloc(a.length + 4);
  b.set(a, 0);
  b.writeUInt16BE(d.port, a.length);
  return b;
}

export function decodeData(layout: DataLayout, buf: Uint8Array, off: number, len: number): NftData {
  if (layout.type === 'mark') {
    if (len < 4) throw new RangeError(`mark data of ${len} bytes`);
    const v = LE
      ? (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0
      : ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
    return { type: 'mark', mark: v };
  }
  const al = layout.family === 4 ? 4 : 16;
  if (len < al + 2) throw new RangeError(`addr . port data of ${len} bytes`);
  const ip = addrFromBytes(buf.subarray(off, off + al));
  return { type: 'addr_port', family: ip.family, addr: ip.addr, port: (buf[off + al]! << 8) | buf[off + al + 1]! };
}

/** Why `data` cannot be the data of an element of `layout`, or undefined. */
export function dataProblem(layout: SetLayout, data: NftData | null): string | undefined {
  if (layout.data === null) return data === null ? undefined : `the set holds no data but the entry maps to ${data.type}`;
  if (data === null) return `the map needs ${layout.data.type === 'mark' ? 'a mark' : 'an addr . port'} but the entry has no data`;
  if (layout.data.type !== data.type) return `the map holds ${layout.data.type} data but the entry maps to ${data.type}`;
  if (data.type === 'mark') {
    if (!Number.isInteger(data.mark) || data.mark < 0 || data.mark > 0xffffffff) return `mark ${data.mark} is not a u32`;
    return undefined;
  }
  if (layout.data.type === 'addr_port' && layout.data.family !== data.family) {
    return `the map holds IPv${layout.data.family} backends but the entry maps to IPv${data.family}`;
  }
  if (!Number.isInteger(data.port) || data.port < 0 || data.port > 65535) return `port ${data.port} is out of range`;
  return undefined;
}
