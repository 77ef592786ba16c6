// Netlink wire format, pure: message headers (nlmsghdr + genlmsghdr) and attribute TLVs.
// Netlink integers are in host byte order; only fields the kernel reads as __be16/__be32 are big-endian.
import { errnoAt, messageLen, NetlinkWriter } from '../common/netlink/attrs.js';
import { align4, get16, get32, LE, put16, put32 } from '../common/netlink/bytes.js';
import { GENL_HDRLEN, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './abi.js';

export class WireError extends Error {
  override readonly name = 'WireError';
}

/**
 * Writes generic-netlink messages and attributes into one growing buffer (see NetlinkWriter).
 * Nested attributes are opened without NLA_F_NESTED: IPVS parses with *_deprecated, as libipvs sends.
 */
export class AttrWriter extends NetlinkWriter {
  constructor(size = 512) {
    super(size, 0);
  }

  /** Opens a message: nlmsghdr {u32 len, u16 type, u16 flags, u32 seq, u32 pid=0} + genlmsghdr. */
  beginMessage(type: number, flags: number, seq: number, cmd: number, version: number): number {
    const o = this.openMessage(type, flags, seq, GENL_HDRLEN);
    const b = this.buf;
    b[o + 16] = cmd;
    b[o + 17] = version;
    b[o + 18] = 0;
    b[o + 19] = 0;
    return o;
  }
}

/**
 * Sets the flags and sequence numbers of `count` whole messages laid end to end in `frames`
 * (as AttrWriter wrote them): message i gets `firstSeq + i`, the last one `lastFlags`.
 */
export function stampMessages(frames: Buffer, count: number, flags: number, lastFlags: number, firstSeq: number): void {
  let off = 0;
  for (let i = 0; i < count; i++) {
    put16(frames, off + 6, i === count - 1 ? lastFlags : flags);
    put32(frames, off + 8, (firstSeq + i) >>> 0);
    off += LE ? frames.readUInt32LE(off) : frames.readUInt32BE(off);
  }
}

/** Splits a stream of attributes; a repeated type keeps the last one (as nla_parse does). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = get16(buf, off);
    const type = get16(buf, off + 2) & NLA_TYPE_MASK;
    if (len < NLA_HDRLEN || off + len > buf.length) throw new WireError(`bad attribute length ${len} at offset ${off}`);
    out.set(type, buf.subarray(off + NLA_HDRLEN, off + len));
    off += align4(len);
  }
  return out;
}

function need(b: Buffer, n: number, what: string): void {
  if (b.length < n) throw new WireError(`${what}: ${b.length} bytes, expected ${n}`);
}

export function readU8(b: Buffer): number {
  need(b, 1, 'u8');
  return b[0] ?? 0;
}
export function readU16Host(b: Buffer): number {
  need(b, 2, 'u16');
  return get16(b, 0);
}
export function readU32Host(b: Buffer): number {
  need(b, 4, 'u32');
  return get32(b, 0);
}
export function readU64Host(b: Buffer): number {
  need(b, 8, 'u64');
  return Number(LE ? b.readBigUInt64LE(0) : b.readBigUInt64BE(0));
}
/** Counters come as u32 (legacy STATS) or u64 (STATS64, bytes): the length tells which. */
export function readUint(b: Buffer): number {
  return b.length >= 8 ? readU64Host(b) : readU32Host(b);
}
export function readU16Net(b: Buffer): number {
  need(b, 2, 'be16');
  return b.readUInt16BE(0);
}
export function readU32Net(b: Buffer): number {
  need(b, 4, 'be32');
  return b.readUInt32BE(0);
}
export function readString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

export interface NetlinkMessage {
  type: number;
  flags: number;
  seq: number;
  pid: number;
  /** Everything after the 16-byte nlmsghdr. */
  payload: Buffer;
}

/** Splits one received datagram into its messages. */
export function parseMessages(buf: Buffer): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  let off = 0;
  while (off + NLMSG_HDRLEN <= buf.length) {
    const len = messageLen(buf, off, WireError, 'message');
    out.push({
      type: get16(buf, off + 4),
      flags: get16(buf, off + 6),
      seq: get32(buf, off + 8),
      pid: get32(buf, off + 12),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += align4(len);
  }
  return out;
}

/** The generic-netlink command and attributes of a reply payload. */
export function parseGenl(payload: Buffer): { cmd: number; attrs: Map<number, Buffer> } {
  if (payload.length < GENL_HDRLEN) throw new WireError(`genl payload of ${payload.length} bytes`);
  return { cmd: payload[0] ?? 0, attrs: parseAttrs(payload.subarray(GENL_HDRLEN)) };
}

/** NLMSG_ERROR / NLMSG_DONE payloads start with an int: 0 = ACK, else -errno. Returns errno >= 0. */
export function readErrno(payload: Buffer): number {
  need(payload, 4, 'nlmsgerr');
  return errnoAt(payload, 0);
}
