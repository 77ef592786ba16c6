// Netlink wire format, pure: message headers (nlmsghdr + genlmsghdr) and attribute TLVs.
// Netlink integers are in host byte order; only fields the kernel reads as __be16/__be32 are big-endian.
import { endianness } from 'node:os';
import { GENL_HDRLEN, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './abi.js';

const LE = endianness() === 'LE';

export class WireError extends Error {
  override readonly name = 'WireError';
}

const align4 = (n: number): number => (n + 3) & ~3;

/**
 * Writes attributes (and whole messages) into one growing buffer: encoding 100k ops must not
 * allocate per attribute (under emulation the allocations, not the kernel, dominated a bulk load).
 * Attribute = {u16 len (header + payload, unpadded), u16 type} + payload + zero padding to 4 bytes.
 */
export class AttrWriter {
  buf: Buffer;
  off = 0;

  constructor(size = 512) {
    this.buf = Buffer.alloc(size);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.alloc(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  private header(type: number, payloadLen: number): number {
    const len = NLA_HDRLEN + payloadLen;
    this.ensure(align4(len));
    const b = this.buf;
    if (LE) {
      b.writeUInt16LE(len, this.off);
      b.writeUInt16LE(type, this.off + 2);
    } else {
      b.writeUInt16BE(len, this.off);
      b.writeUInt16BE(type, this.off + 2);
    }
    const at = this.off + NLA_HDRLEN;
    // Zero the padding now: the buffer is reused between messages.
    this.buf.fill(0, at, this.off + align4(len));
    this.off += align4(len);
    return at;
  }

  u8(type: number, v: number): this {
    const at = this.header(type, 1);
    this.buf[at] = v & 0xff;
    return this;
  }
  u16(type: number, v: number): this {
    const at = this.header(type, 2);
    if (LE) this.buf.writeUInt16LE(v, at);
    else this.buf.writeUInt16BE(v, at);
    return this;
  }
  u32(type: number, v: number): this {
    const at = this.header(type, 4);
    if (LE) this.buf.writeUInt32LE(v >>> 0, at);
    else this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }
  /** u16 in network byte order (ports: the kernel reads them with nla_get_be16). */
  be16(type: number, v: number): this {
    this.buf.writeUInt16BE(v, this.header(type, 2));
    return this;
  }
  /** u32 in network byte order (IPv4 netmask: nla_get_be32). */
  be32(type: number, v: number): this {
    this.buf.writeUInt32BE(v >>> 0, this.header(type, 4));
    return this;
  }
  bytes(type: number, payload: Uint8Array): this {
    this.buf.set(payload, this.header(type, payload.length));
    return this;
  }
  /** NUL-terminated string, as NLA_NUL_STRING / NLA_STRING policies expect. */
  str(type: number, s: string): this {
    const n = Buffer.byteLength(s);
    const at = this.header(type, n + 1);
    this.buf.write(s, at, 'utf8');
    this.buf[at + n] = 0;
    return this;
  }
  /** Opens a nested attribute; NLA_F_NESTED is not set (IPVS parses with *_deprecated, as libipvs sends). */
  begin(type: number): number {
    const start = this.off;
    this.header(type, 0);
    return start;
  }
  end(start: number): this {
    const len = this.off - start;
    if (LE) this.buf.writeUInt16LE(len, start);
    else this.buf.writeUInt16BE(len, start);
    return this;
  }

  /** Opens a message: nlmsghdr {u32 len, u16 type, u16 flags, u32 seq, u32 pid=0} + genlmsghdr. */
  beginMessage(type: number, flags: number, seq: number, cmd: number, version: number): number {
    const start = this.off;
    this.ensure(NLMSG_HDRLEN + GENL_HDRLEN);
    const b = this.buf;
    const o = this.off;
    if (LE) {
      b.writeUInt16LE(type, o + 4);
      b.writeUInt16LE(flags, o + 6);
      b.writeUInt32LE(seq >>> 0, o + 8);
      b.writeUInt32LE(0, o + 12); // pid 0: the kernel knows the sender's port
    } else {
      b.writeUInt16BE(type, o + 4);
      b.writeUInt16BE(flags, o + 6);
      b.writeUInt32BE(seq >>> 0, o + 8);
      b.writeUInt32BE(0, o + 12);
    }
    b[o + 16] = cmd;
    b[o + 17] = version;
    b[o + 18] = 0;
    b[o + 19] = 0;
    this.off += NLMSG_HDRLEN + GENL_HDRLEN;
    return start;
  }
  endMessage(start: number): this {
    const len = this.off - start;
    if (LE) this.buf.writeUInt32LE(len, start);
    else this.buf.writeUInt32BE(len, start);
    return this;
  }
  raw(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.off);
    this.off += data.length;
    return this;
  }

  /** A copy of what was written (the writer can then be reset and reused). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.off));
    this.off = 0;
    return out;
  }
}

/** Splits a stream of attributes; a repeated type keeps the last one (as nla_parse does). */
export function parseAttrs(buf: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let off = 0;
  while (off + NLA_HDRLEN <= buf.length) {
    const len = LE ? buf.readUInt16LE(off) : buf.readUInt16BE(off);
    const type = (LE ? buf.readUInt16LE(off + 2) : buf.readUInt16BE(off + 2)) & NLA_TYPE_MASK;
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
  return LE ? b.readUInt16LE(0) : b.readUInt16BE(0);
}
export function readU32Host(b: Buffer): number {
  need(b, 4, 'u32');
  return LE ? b.readUInt32LE(0) : b.readUInt32BE(0);
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
    const len = LE ? buf.readUInt32LE(off) : buf.readUInt32BE(off);
    if (len < NLMSG_HDRLEN || off + len > buf.length) throw new WireError(`bad message length ${len} at offset ${off}`);
    out.push({
      type: LE ? buf.readUInt16LE(off + 4) : buf.readUInt16BE(off + 4),
      flags: LE ? buf.readUInt16LE(off + 6) : buf.readUInt16BE(off + 6),
      seq: LE ? buf.readUInt32LE(off + 8) : buf.readUInt32BE(off + 8),
      pid: LE ? buf.readUInt32LE(off + 12) : buf.readUInt32BE(off + 12),
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
  const v = LE ? payload.readInt32LE(0) : payload.readInt32BE(0);
  return v < 0 ? -v : 0;
}
