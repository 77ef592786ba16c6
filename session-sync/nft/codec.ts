// Pure encode/decode of the nftables netlink messages session sync needs: set and element dump
// requests, element lookups, NEWSETELEM/DELSETELEM transactions, and the parsing of set definitions
// and element attributes. No I/O. Netlink headers are host byte order; nftables attribute values
// (flags, lengths, timeouts) are big-endian.

import { errnoAt, messageLen, NetlinkWriter } from '../../common/netlink/attrs.js';
import { align4, get16, get32, get32be, get64be, put32 } from '../../common/netlink/bytes.js';
import { NFT_FAMILIES, type NftFamily } from '../model.js';
import * as abi from './abi.js';

export { get16, get32, get32be, get64be };

/** A message or attribute from the kernel that does not have the shape the ABI promises. */
export class NftCodecError extends Error {
  override readonly name = 'NftCodecError';
}

/**
 * Writes netlink messages (nlmsghdr + nfgenmsg + attributes) into one growing buffer (see
 * NetlinkWriter), so that a 100,000-element transaction is encoded without an allocation per
 * attribute. Nested attributes carry NLA_F_NESTED, as libnftnl sends them.
 */
export class NlWriter extends NetlinkWriter {
  /** Where each message written so far starts (sequence numbers are stamped in later). */
  readonly starts: number[] = [];

  constructor(size = 1024) {
    super(size, abi.NLA_F_NESTED);
  }

  /** Opens a message; `resId` is nfgenmsg.res_id (big-endian on the wire). The sequence number is stamped at send time. */
  beginMessage(type: number, flags: number, family: number, resId = 0): number {
    const o = this.openMessage(type, flags, 0, abi.NFGEN_HDRLEN);
    const b = this.buf;
    b[o + 16] = family;
    b[o + 17] = abi.NFNETLINK_V0;
    b[o + 18] = resId >>> 8;
    b[o + 19] = resId;
    this.starts.push(o);
    return o;
  }

  get messageCount(): number {
    return this.starts.length;
  }
}

/** Gives the messages of `w` the sequence numbers first, first + 1, ... */
export function stampSeqs(w: NlWriter, first: number): void {
  for (let i = 0; i < w.starts.length; i++) put32(w.buf, w.starts[i]! + 8, (first + i) >>> 0);
}

// ---------------------------------------------------------------------------------------------
// Requests

export const familyNumber = (f: NftFamily): number => abi.NFPROTO[f];

export function familyName(n: number): NftFamily | undefined {
  for (const f of NFT_FAMILIES) if (abi.NFPROTO[f] === n) return f;
  return undefined;
}

/** NFT_MSG_GETGEN: answered with the ruleset generation. Used as a fence after a datagram of requests. */
export function writeGetGen(w: NlWriter): void {
  const m = w.beginMessage(abi.nftType(abi.NFT_MSG_GETGEN), abi.NLM_F_REQUEST | abi.NLM_F_ACK, abi.NFPROTO.unspec);
  w.endMessage(m);
}

/** NFT_MSG_GETSET for one set, answered with one NEWSET message then an ACK (or ENOENT). */
export function writeGetSet(w: NlWriter, family: NftFamily, table: string, set: string): void {
  const m = w.beginMessage(abi.nftType(abi.NFT_MSG_GETSET), abi.NLM_F_REQUEST | abi.NLM_F_ACK, familyNumber(family));
  w.str(abi.NFTA_SET_TABLE, table).str(abi.NFTA_SET_NAME, set);
  w.endMessage(m);
}

/** A dump of every set, optionally of one family (and one table of it). */
export function writeSetDump(w: NlWriter, family?: NftFamily, table?: string): void {
  const m = w.beginMessage(
    abi.nftType(abi.NFT_MSG_GETSET),
    abi.NLM_F_REQUEST | abi.NLM_F_DUMP,
    family === undefined ? abi.NFPROTO.unspec : familyNumber(family),
  );
  if (table !== undefined) w.str(abi.NFTA_SET_TABLE, table);
  w.endMessage(m);
}

/** A dump of every element of one set (NEWSETELEM parts, then NLMSG_DONE; ENOENT if the set is gone). */
export function writeElemDump(w: NlWriter, family: NftFamily, table: string, set: string): void {
  const m = w.beginMessage(abi.nftType(abi.NFT_MSG_GETSETELEM), abi.NLM_F_REQUEST | abi.NLM_F_DUMP, familyNumber(family));
  w.str(abi.NFTA_SET_ELEM_LIST_TABLE, table).str(abi.NFTA_SET_ELEM_LIST_SET, set);
  w.endMessage(m);
}

/**
 * Looks up one element by key: answered with a NEWSETELEM message holding it, or ENOENT. No ACK is
 * asked for, so a batch of lookups costs one reply each (the caller ends the batch with a fence).
 */
export function writeElemGet(w: NlWriter, family: NftFamily, table: string, set: string, key: Uint8Array): void {
  const m = w.beginMessage(abi.nftType(abi.NFT_MSG_GETSETELEM), abi.NLM_F_REQUEST, familyNumber(family));
  w.str(abi.NFTA_SET_ELEM_LIST_TABLE, table).str(abi.NFTA_SET_ELEM_LIST_SET, set);
  const list = w.begin(abi.NFTA_SET_ELEM_LIST_ELEMENTS);
  const el = w.begin(abi.NFTA_LIST_ELEM);
  const k = w.begin(abi.NFTA_SET_ELEM_KEY);
  w.bytes(abi.NFTA_DATA_VALUE, key);
  w.end(k).end(el).end(list);
  w.endMessage(m);
}

/** Opens a transaction: everything up to writeBatchEnd is applied together or not at all. */
export function writeBatchBegin(w: NlWriter): void {
  const m = w.beginMessage(abi.NFNL_MSG_BATCH_BEGIN, abi.NLM_F_REQUEST, abi.NFPROTO.unspec, abi.NFNL_SUBSYS_NFTABLES);
  w.endMessage(m);
}
export function writeBatchEnd(w: NlWriter): void {
  const m = w.beginMessage(abi.NFNL_MSG_BATCH_END, abi.NLM_F_REQUEST, abi.NFPROTO.unspec, abi.NFNL_SUBSYS_NFTABLES);
  w.endMessage(m);
}

export type ElemCmd = 'add' | 'delete' | 'destroy';

function elemCmdType(cmd: ElemCmd): number {
  if (cmd === 'add') return abi.nftType(abi.NFT_MSG_NEWSETELEM);
  return abi.nftType(cmd === 'delete' ? abi.NFT_MSG_DELSETELEM : abi.NFT_MSG_DESTROYSETELEM);
}

/** An element message being written: close it with endElemMessage. */
export interface OpenElemMessage {
  readonly msg: number;
  readonly list: number;
}

/**
 * Opens a NEWSETELEM (add: NLM_F_CREATE without NLM_F_EXCL, so re-adding an identical element is
 * not an error), DELSETELEM or DESTROYSETELEM message inside a transaction.
 */
export function beginElemMessage(w: NlWriter, cmd: ElemCmd, family: NftFamily, table: string, set: string): OpenElemMessage {
  const flags = abi.NLM_F_REQUEST | (cmd === 'add' ? abi.NLM_F_CREATE : 0);
  const msg = w.beginMessage(elemCmdType(cmd), flags, familyNumber(family));
  w.str(abi.NFTA_SET_ELEM_LIST_TABLE, table).str(abi.NFTA_SET_ELEM_LIST_SET, set);
  return { msg, list: w.begin(abi.NFTA_SET_ELEM_LIST_ELEMENTS) };
}

export function endElemMessage(w: NlWriter, open: OpenElemMessage): void {
  w.end(open.list);
  w.endMessage(open.msg);
}

/**
 * One element: key, optional map data, and (add only) the element's timeout and remaining life in
 * ms; 0 leaves the attribute out. Bytes: 4 (elem) + 8 + key (padded) + [8 + data] + [12] + [12].
 */
export function writeElem(w: NlWriter, key: Uint8Array, data: Uint8Array | null, timeoutMs: number, expirationMs: number): void {
  const el = w.begin(abi.NFTA_LIST_ELEM);
  const k = w.begin(abi.NFTA_SET_ELEM_KEY);
  w.bytes(abi.NFTA_DATA_VALUE, key);
  w.end(k);
  if (data !== null) {
    const d = w.begin(abi.NFTA_SET_ELEM_DATA);
    w.bytes(abi.NFTA_DATA_VALUE, data);
    w.end(d);
  }
  if (timeoutMs > 0) w.be64(abi.NFTA_SET_ELEM_TIMEOUT, timeoutMs);
  if (expirationMs > 0) w.be64(abi.NFTA_SET_ELEM_EXPIRATION, expirationMs);
  w.end(el);
}

/** Exact bytes writeElem adds for an element of these sizes (so callers can split messages). */
export function elemSize(keyLen: number, dataLen: number, timeoutMs: number, expirationMs: number): number {
  return (
    4 +
    8 + align4(keyLen) +
    (dataLen >= 0 ? 8 + align4(dataLen) : 0) +
    (timeoutMs > 0 ? 12 : 0) +
    (expirationMs > 0 ? 12 : 0)
  );
}

/** Bytes of an element message before its first element (headers, names, list nest). */
export function elemMessageOverhead(table: string, set: string): number {
  return abi.NLMSG_HDRLEN + abi.NFGEN_HDRLEN + align4(4 + Buffer.byteLength(table) + 1) + align4(4 + Buffer.byteLength(set) + 1) + 4;
}

/** DELSETELEM without elements: removes every element of the set (`nft flush set`). */
export function writeFlush(w: NlWriter, family: NftFamily, table: string, set: string): void {
  const m = w.beginMessage(abi.nftType(abi.NFT_MSG_DELSETELEM), abi.NLM_F_REQUEST, familyNumber(family));
  w.str(abi.NFTA_SET_ELEM_LIST_TABLE, table).str(abi.NFTA_SET_ELEM_LIST_SET, set);
  w.endMessage(m);
}

// ---------------------------------------------------------------------------------------------
// Replies

/**
 * Calls `visit` for each netlink message in a datagram with the message's header fields and the
 * bounds of its payload (after the 16-byte nlmsghdr). Returns the number of messages.
 */
export function forEachMessage(
  buf: Buffer,
  visit: (type: number, flags: number, seq: number, off: number, end: number) => void,
): number {
  let off = 0;
  let n = 0;
  while (off + abi.NLMSG_HDRLEN <= buf.length) {
    const len = messageLen(buf, off, NftCodecError, 'netlink message');
    visit(get16(buf, off + 4), get16(buf, off + 6), get32(buf, off + 8), off + abi.NLMSG_HDRLEN, off + len);
    n++;
    off += align4(len);
  }
  return n;
}

/** The errno of an NLMSG_ERROR / NLMSG_DONE payload (struct nlmsgerr starts with -errno); 0 = ACK. */
export function readErrno(buf: Buffer, off: number, end: number): number {
  return end - off < 4 ? 0 : errnoAt(buf, off);
}

/** Attribute payload bounds; `type` has the NLA_F_* bits cleared. */
function attrLen(buf: Buffer, o: number, end: number): number {
  if (o + abi.NLA_HDRLEN > end) throw new NftCodecError(`truncated attribute header at offset ${o}`);
  const len = get16(buf, o);
  if (len < abi.NLA_HDRLEN || o + len > end) throw new NftCodecError(`bad attribute length ${len} at offset ${o}`);
  return len;
}

function readString(buf: Buffer, off: number, end: number): string {
  let e = off;
  while (e < end && buf[e] !== 0) e++;
  return buf.toString('utf8', off, e);
}

/** A set's definition as the kernel reports it (NEWSET). */
export interface NftSetInfo {
  readonly family: NftFamily;
  readonly table: string;
  readonly name: string;
  /** Kernel handle: changes when the set is deleted and created again. */
  readonly handle: number;
  /** NFT_SET_* bits. */
  readonly flags: number;
  /** nftables datatype of the key (concatenations packed 6 bits per field). */
  readonly keyType: number;
  readonly keyLen: number;
  /** Datatype of map data; null for a plain set. */
  readonly dataType: number | null;
  readonly dataLen: number;
  /** The set's default element timeout in ms; 0 when none. */
  readonly timeoutMs: number;
  /** Maximum number of elements; 0 when unlimited. */
  readonly size: number;
}

/** Parses a NEWSET payload (starting at the nfgenmsg). */
export function decodeSetInfo(buf: Buffer, off: number, end: number): NftSetInfo {
  if (end - off < abi.NFGEN_HDRLEN) throw new NftCodecError('NEWSET message without nfgenmsg');
  const family = familyName(buf[off]!);
  if (family === undefined) throw new NftCodecError(`NEWSET for unknown family ${buf[off]}`);
  let table = '';
  let name = '';
  let handle = 0;
  let flags = 0;
  let keyType = 0;
  let keyLen = 0;
  let dataType: number | null = null;
  let dataLen = 0;
  let timeoutMs = 0;
  let size = 0;
  for (let o = off + abi.NFGEN_HDRLEN; o < end; ) {
    const len = attrLen(buf, o, end);
    const type = get16(buf, o + 2) & abi.NLA_TYPE_MASK;
    const p = o + abi.NLA_HDRLEN;
    const pl = len - abi.NLA_HDRLEN;
    const need = (n: number, what: string): void => {
      if (pl < n) throw new NftCodecError(`NEWSET ${what}: ${pl} bytes, expected ${n}`);
    };
    switch (type) {
      case abi.NFTA_SET_TABLE: table = readString(buf, p, p + pl); break;
      case abi.NFTA_SET_NAME: name = readString(buf, p, p + pl); break;
      case abi.NFTA_SET_HANDLE: need(8, 'handle'); handle = get64be(buf, p); break;
      case abi.NFTA_SET_FLAGS: need(4, 'flags'); flags = get32be(buf, p); break;
      case abi.NFTA_SET_KEY_TYPE: need(4, 'key type'); keyType = get32be(buf, p); break;
      case abi.NFTA_SET_KEY_LEN: need(4, 'key length'); keyLen = get32be(buf, p); break;
      case abi.NFTA_SET_DATA_TYPE: need(4, 'data type'); dataType = get32be(buf, p); break;
      case abi.NFTA_SET_DATA_LEN: need(4, 'data length'); dataLen = get32be(buf, p); break;
      case abi.NFTA_SET_TIMEOUT: need(8, 'timeout'); timeoutMs = get64be(buf, p); break;
      case abi.NFTA_SET_DESC:
        for (let q = p; q < p + pl; ) {
          const l = attrLen(buf, q, p + pl);
          if ((get16(buf, q + 2) & abi.NLA_TYPE_MASK) === abi.NFTA_SET_DESC_SIZE && l >= 8) size = get32be(buf, q + 4);
          q += align4(l);
        }
        break;
      default: break;
    }
    o += align4(len);
  }
  if (!table || !name) throw new NftCodecError('NEWSET message without table or set name');
  return { family, table, name, handle, flags, keyType, keyLen, dataType, dataLen, timeoutMs, size };
}

/**
 * One element of a dump, reused for every element (the idle poll must not allocate per element):
 * offsets into `buf`, which is only valid during the visit.
 */
export class ElemCursor {
  buf: Buffer = Buffer.alloc(0);
  keyOff = 0;
  /** -1 when the element has no key (a catch-all element). */
  keyLen = -1;
  dataOff = 0;
  /** -1 when the element has no data (plain set, or a verdict). */
  dataLen = -1;
  /** The data is a verdict (verdict maps), not a value. */
  verdict = false;
  /** NFT_SET_ELEM_* bits. */
  flags = 0;
  /** The element's own timeout in ms; -1 when absent (none, or equal to the set's default). */
  timeoutMs = -1;
  /** Remaining life in ms at dump time; -1 when the element does not expire. */
  expirationMs = -1;
}

/**
 * Where the NFTA_DATA_VALUE inside an nft_data nest starts; -1 for a verdict. Its length is left in
 * `valueLen` (a module variable, not a returned pair: this runs for every element of every poll).
 */
let valueLen = 0;
function dataValue(buf: Buffer, off: number, end: number): number {
  for (let o = off; o < end; ) {
    const len = attrLen(buf, o, end);
    const type = get16(buf, o + 2) & abi.NLA_TYPE_MASK;
    if (type === abi.NFTA_DATA_VALUE) {
      valueLen = len - abi.NLA_HDRLEN;
      return o + abi.NLA_HDRLEN;
    }
    if (type === abi.NFTA_DATA_VERDICT) return -1;
    o += align4(len);
  }
  throw new NftCodecError(`nft_data at offset ${off} without a value`);
}

/**
 * Calls `visit` for each element of a NEWSETELEM payload (starting at the nfgenmsg), with `c`
 * describing it. Returns the number of elements.
 */
export function forEachElem(buf: Buffer, off: number, end: number, c: ElemCursor, visit: (c: ElemCursor) => void): number {
  let n = 0;
  c.buf = buf;
  for (let o = off + abi.NFGEN_HDRLEN; o < end; ) {
    const len = attrLen(buf, o, end);
    const type = get16(buf, o + 2) & abi.NLA_TYPE_MASK;
    if (type === abi.NFTA_SET_ELEM_LIST_ELEMENTS) {
      const lend = o + len;
      for (let e = o + abi.NLA_HDRLEN; e < lend; ) {
        const elen = attrLen(buf, e, lend);
        if ((get16(buf, e + 2) & abi.NLA_TYPE_MASK) === abi.NFTA_LIST_ELEM) {
          decodeElem(buf, e + abi.NLA_HDRLEN, e + elen, c);
          visit(c);
          n++;
        }
        e += align4(elen);
      }
    }
    o += align4(len);
  }
  return n;
}

function decodeElem(buf: Buffer, off: number, end: number, c: ElemCursor): void {
  c.keyLen = -1;
  c.dataLen = -1;
  c.verdict = false;
  c.flags = 0;
  c.timeoutMs = -1;
  c.expirationMs = -1;
  for (let o = off; o < end; ) {
    const len = attrLen(buf, o, end);
    const p = o + abi.NLA_HDRLEN;
    const pl = len - abi.NLA_HDRLEN;
    switch (get16(buf, o + 2) & abi.NLA_TYPE_MASK) {
      case abi.NFTA_SET_ELEM_KEY: {
        const vo = dataValue(buf, p, p + pl);
        c.keyOff = vo;
        c.keyLen = vo < 0 ? -1 : valueLen;
        break;
      }
      case abi.NFTA_SET_ELEM_DATA: {
        const vo = dataValue(buf, p, p + pl);
        if (vo < 0) c.verdict = true;
        else {
          c.dataOff = vo;
          c.dataLen = valueLen;
        }
        break;
      }
      case abi.NFTA_SET_ELEM_FLAGS:
        if (pl < 4) throw new NftCodecError(`element flags of ${pl} bytes`);
        c.flags = get32be(buf, p);
        break;
      case abi.NFTA_SET_ELEM_TIMEOUT:
        if (pl < 8) throw new NftCodecError(`element timeout of ${pl} bytes`);
        c.timeoutMs = get64be(buf, p);
        break;
      case abi.NFTA_SET_ELEM_EXPIRATION:
        if (pl < 8) throw new NftCodecError(`element expiration of ${pl} bytes`);
        c.expirationMs = get64be(buf, p);
        break;
      default:
        break; // userdata, expressions (counters), padding: not replicated
    }
    o += align4(len);
  }
}

/** A decoded element, for callers off the hot path (tests, the writer's lookups). */
export interface RawElem {
  readonly key: Buffer | null;
  readonly data: Buffer | null;
  readonly verdict: boolean;
  readonly flags: number;
  readonly timeoutMs: number;
  readonly expirationMs: number;
}

/** Every element of a NEWSETELEM payload, copied out. */
export function decodeElems(buf: Buffer, off: number, end: number): RawElem[] {
  const out: RawElem[] = [];
  forEachElem(buf, off, end, new ElemCursor(), (c) => {
    out.push({
      key: c.keyLen < 0 ? null : Buffer.from(buf.subarray(c.keyOff, c.keyOff + c.keyLen)),
      data: c.dataLen < 0 ? null : Buffer.from(buf.subarray(c.dataOff, c.dataOff + c.dataLen)),
      verdict: c.verdict,
      flags: c.flags,
      timeoutMs: c.timeoutMs,
      expirationMs: c.expirationMs,
    });
  });
  return out;
}
