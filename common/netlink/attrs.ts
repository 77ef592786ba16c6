// What every netlink codec shares: a writer of messages and attribute TLVs into one growing buffer
// (each protocol subclasses it to write its own header after the nlmsghdr: genlmsghdr, nfgenmsg),
// and the checked reading of message lengths and of errnos from replies. Pure.
import { align4, get32, put16, put32, put16be, put32be } from './bytes.js';

/** struct nlmsghdr {u32 len; u16 type; u16 flags; u32 seq; u32 pid}. */
export const NLMSG_HDRLEN = 16;
/** struct nlattr {u16 len; u16 type}. */
export const NLA_HDRLEN = 4;

/**
 * Writes messages and attributes into one growing buffer: encoding 100k ops must not allocate per
 * attribute (under emulation the allocations, not the kernel, dominated a bulk load).
 * Attribute = {u16 len (header + payload, unpadded), u16 type} + payload + zero padding to 4 bytes.
 * Subclasses add only their beginMessage (nlmsghdr + their protocol header, via openMessage).
 */
export class NetlinkWriter {
  buf: Buffer;
  off = 0;
  /** OR-ed into the type of nested attributes opened by begin(): NLA_F_NESTED, or 0 for none. */
  private readonly nestedFlag: number;

  constructor(size: number, nestedFlag: number) {
    this.buf = Buffer.allocUnsafe(size);
    this.nestedFlag = nestedFlag;
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

  /**
   * For subclasses' beginMessage: writes nlmsghdr {len 0 (set by endMessage), type, flags, seq,
   * pid 0} and claims the `familyHdrLen` bytes after it, left for the caller to fill (read this.buf
   * after the call: it may have grown). Returns where the message starts.
   */
  protected openMessage(type: number, flags: number, seq: number, familyHdrLen: number): number {
    this.ensure(NLMSG_HDRLEN + familyHdrLen);
    const b = this.buf;
    const o = this.off;
    put32(b, o, 0);
    put16(b, o + 4, type);
    put16(b, o + 6, flags);
    put32(b, o + 8, seq >>> 0);
    put32(b, o + 12, 0); // pid 0: the kernel knows the sender's port
    this.off = o + NLMSG_HDRLEN + familyHdrLen;
    return o;
  }
  /** Closes the message opened at `start`: sets its nlmsg_len. */
  endMessage(start: number): this {
    put32(this.buf, start, this.off - start);
    return this;
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
  /** u16 in network byte order (e.g. ports the kernel reads with nla_get_be16). */
  be16(type: number, v: number): this {
    const at = this.header(type, 2);
    put16be(this.buf, at, v);
    return this;
  }
  /** u32 in network byte order (e.g. an IPv4 netmask: nla_get_be32). */
  be32(type: number, v: number): this {
    const at = this.header(type, 4);
    put32be(this.buf, at, v);
    return this;
  }
  /** A be64 from a non-negative integer below 2^53 (e.g. milliseconds). */
  be64(type: number, v: number): this {
    const at = this.header(type, 8);
    put32be(this.buf, at, Math.floor(v / 4294967296));
    put32be(this.buf, at + 4, v >>> 0);
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
  /** Two u32 words in host order (e.g. struct ip_vs_flags). */
  u32pair(type: number, x: number, y: number): this {
    const at = this.header(type, 8);
    put32(this.buf, at, x);
    put32(this.buf, at + 4, y);
    return this;
  }
  /** NUL-terminated string, as NLA_NUL_STRING / NLA_STRING policies expect (the kernel compares up to the NUL). */
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
  /** Opens a nested attribute (its type OR-ed with the writer's nested flag); close it with end(). */
  begin(type: number): number {
    const start = this.off;
    this.header(type | this.nestedFlag, 0);
    return start;
  }
  end(start: number): this {
    put16(this.buf, start, this.off - start);
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
  /** The bytes written so far (a view: valid until the next write). */
  view(): Buffer {
    return this.buf.subarray(0, this.off);
  }
  /** A copy of what was written (the writer can then be reset and reused). */
  take(): Buffer {
    const out = Buffer.from(this.buf.subarray(0, this.off));
    this.off = 0;
    return out;
  }
}

/** The codec's own error class, for messageLen to throw. */
export type CodecErrorClass = new (message: string) => Error;

/**
 * The length of the message whose nlmsghdr starts at `off` (the caller has checked that a whole
 * header is there); throws `Err` ("bad <what> length ...") when it is shorter than a header or runs
 * past the end of `buf`. The next message starts at off + align4(length).
 */
export function messageLen(buf: Uint8Array, off: number, Err: CodecErrorClass, what: string): number {
  const len = get32(buf, off);
  if (len < NLMSG_HDRLEN || off + len > buf.length) throw new Err(`bad ${what} length ${len} at offset ${off}`);
  return len;
}

/**
 * The errno of an NLMSG_ERROR / NLMSG_DONE payload at `off` (struct nlmsgerr starts with an int:
 * 0 = ACK, else -errno), as a number >= 0. The caller has checked that 4 bytes are there.
 */
export function errnoAt(buf: Uint8Array, off: number): number {
  const v = get32(buf, off) | 0;
  return v < 0 ? -v : 0;
}
