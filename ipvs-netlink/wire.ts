// Netlink wire format, pure: message headers (nlmsghdr + genlmsghdr) and attribute TLVs.
// Netlink integers are in host byte order; only fields the kernel reads as __be16/__be32 are big-endian.
import { endianness } from 'node:os';
import { GENL_HDRLEN, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN } from './abi.js';

const LE = endianness() === 'LE';

export class WireError extends Error {
  override readonly name = 'WireError';
}

const align4 = (n: number): number => (n + 3) & ~3;

// Byte stores without Buffer's write* methods: those validate every argument, and encoding a bulk
// load calls them about ten times per op (under emulation that validation alone cost seconds).
function put16(b: Buffer, o: number, v: number): void {
  if (LE) {
    b[o] = v;
    b[o + 1] = v >>> 8;
  } else {
    b[o] = v >>> 8;
    b[o + 1] = v;
  }
}
function put32(b: Buffer, o: number, v: number): void {
  if (LE) {
    b[o] = v;
    b[o + 1] = v >>> 8;
    b[o + 2] = v >>> 16;
    b[o + 3] = v >>> 24;
  } else {
    b[o] = v >>> 24;
    b[o + 1] = v >>> 16;
    b[o + 2] = v >>> 8;
    b[o + 3] = v;
  }
}
function put16be(b: Buffer, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v;
}
function put32be(b: Buffer, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = v >>> 16;
  b[o + 2] = v >>> 8;
  b[o + 3] = v;
}

/**
 * Writes attributes (and whole messages) into one growing buffer: encoding 100k ops must not
 * allocate per attribute (under emulation the allocations, not the kernel, dominated a bulk load).
 * Attribute = {u16 len (header + payload, unpadded), u16 type} + payload + zero padding to 4 bytes.
 */
export class AttrWriter {
  buf: Buffer;
  off = 0;

  constructor(size = 512) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n));
    this.buf.copy(next, 0, 0, this.off);
    this.buf = next;
  }

  private header(type: number, payloadLen: number): number {
    const len = NLA_HDRLEN + payloadLen;
    const padded = align4(len);
    this.ensure(padded);
    const b = this.buf;
    const o = this.off;
    put16(b, o, len);
    put16(b, o + 2, type);
    // Zero the padding now: the buffer is reused (and allocated uninitialised).
    for (let i = o + len; i < o + padded; i++) b[i] = 0;
    this.off = o + padded;
    return o + NLA_HDRLEN;
  }

  u8(type: number, v: number): this {
    const at = this.header(type, 1);
    this.buf[at] = v & 0xff;
    return this;
  }
  // Each method takes `at` before touching this.buf: header() may grow (replace) the buffer.
  u16(type: number, v: number): this {
    const at = this.header(type, 2);
    put16(this.buf, at, v);
    return this;
  }
  u32(type: number, v: number): this {
    const at = this.header(type, 4);
    put32(this.buf, at, v);
    return this;
  }
  /** u16 in network byte order (ports: the kernel reads them with nla_get_be16). */
  be16(type: number, v: number): this {
    const at = this.header(type, 2);
    put16be(this.buf, at, v);
    return this;
  }
  /** u32 in network byte order (IPv4 netmask: nla_get_be32). */
  be32(type: number, v: number): this {
    const at = this.header(type, 4);
    put32be(this.buf, at, v);
    return this;
  }
  bytes(type: number, payload: Uint8Array): this {
    const at = this.header(type, payload.length);
    const b = this.buf;
    for (let i = 0; i < payload.length; i++) b[at + i] = payload[i]!;
    return this;
  }
  /** Four payload bytes a.b.c.d (an IPv4 address, already in network order). */
  ipv4(type: number, a: number, b: number, c: number, d: number): this {
    const at = this.header(type, 4);
    const buf = this.buf;
    buf[at] = a;
    buf[at + 1] = b;
    buf[at + 2] = c;
    buf[at + 3] = d;
    return this;
  }
  /** Two u32 words in host order (struct ip_vs_flags). */
  u32pair(type: number, x: number, y: number): this {
    const at = this.header(type, 8);
    put32(this.buf, at, x);
    put32(this.buf, at + 4, y);
    return this;
  }
  /** NUL-terminated string, as NLA_NUL_STRING / NLA_STRING policies expect. */
  str(type: number, s: string): this {
    let ascii = true;
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) ascii = false;
    const n = ascii ? s.length : Buffer.byteLength(s);
    const at = this.header(type, n + 1);
    const b = this.buf;
    if (ascii) for (let i = 0; i < n; i++) b[at + i] = s.charCodeAt(i);
    else b.write(s, at, 'utf8');
    b[at + n] = 0;
    return this;
  }
  /** Opens a nested attribute; NLA_F_NESTED is not set (IPVS parses with *_deprecated, as libipvs sends). */
  begin(type: number): number {
    const start = this.off;
    this.header(type, 0);
    return start;
  }
  end(start: number): this {
    put16(this.buf, start, this.off - start);
    return this;
  }

  /** Opens a message: nlmsghdr {u32 len, u16 type, u16 flags, u32 seq, u32 pid=0} + genlmsghdr. */
  beginMessage(type: number, flags: number, seq: number, cmd: number, version: number): number {
    const start = this.off;
    this.ensure(NLMSG_HDRLEN + GENL_HDRLEN);
    const b = this.buf;
    const o = this.off;
    put32(b, o, 0);
    put16(b, o + 4, type);
    put16(b, o + 6, flags);
    put32(b, o + 8, seq >>> 0);
    put32(b, o + 12, 0); // pid 0: the kernel knows the sender's port
    b[o + 16] = cmd;
    b[o + 17] = version;
    b[o + 18] = 0;
    b[o + 19] = 0;
    this.off += NLMSG_HDRLEN + GENL_HDRLEN;
    return start;
  }
  endMessage(start: number): this {
    put32(this.buf, start, this.off - start);
    return this;
  }
  raw(data: Uint8Array): this {
    this.ensure(data.length);
    this.buf.set(data, this.off);
    this.off += data.length;
    return this;
  }

  /** Makes room for `n` bytes at the end and claims them; returns where they start (contents unset). */
  reserve(n: number): number {
    this.ensure(n);
    const at = this.off;
    this.off += n;
    return at;
  }

  /** A copy of what was written (the writer can then be reset and reused). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.off));
    this.off = 0;
    return out;
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
