// Bounds-checked byte reading and a growable writer for the session-sync wire and journal formats.
// Every read names the field it was after, so a bad frame's error says what was wrong and where.

/** A frame or record that does not decode; `field` and `offset` say where. */
export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly field: string,
    readonly offset: number,
    why: string,
  ) {
    super(`${field} at byte ${offset}: ${why}`);
  }
}

export class ByteReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, field: string): number {
    if (this.end - this.pos < n) throw new WireError(field, this.pos, `needs ${n} bytes, ${this.end - this.pos} left`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(field: string): number {
    return this.buf[this.need(1, field)]!;
  }

  u16(field: string): number {
    return this.buf.readUInt16BE(this.need(2, field));
  }

  u32(field: string): number {
    return this.buf.readUInt32BE(this.need(4, field));
  }

  /** Unsigned 48-bit: milliseconds (8,900 years) and sequence numbers fit without BigInt. */
  u48(field: string): number {
    return this.buf.readUIntBE(this.need(6, field), 6);
  }

  bytes(n: number, field: string): Buffer {
    const at = this.need(n, field);
    return this.buf.subarray(at, at + n);
  }

  /** A u8-length-prefixed string; `max` bounds it, `check` may refuse it (returns why). */
  str8(field: string, max = 255, check?: (s: string) => string | undefined): string {
    const n = this.u8(`${field} length`);
    if (n > max) throw new WireError(field, this.pos - 1, `length ${n} over ${max}`);
    const at = this.pos;
    const s = this.bytes(n, field).toString('utf8');
    const why = check?.(s);
    if (why !== undefined) throw new WireError(field, at, why);
    return s;
  }

  /** A u16-length-prefixed UTF-8 string of at most `max` bytes. */
  str16(field: string, max: number, check?: (s: string) => string | undefined): string {
    const n = this.u16(`${field} length`);
    if (n > max) throw new WireError(field, this.pos - 2, `length ${n} over ${max}`);
    const at = this.pos;
    const s = this.bytes(n, field).toString('utf8');
    const why = check?.(s);
    if (why !== undefined) throw new WireError(field, at, why);
    return s;
  }

  /** The frame must be consumed exactly: trailing bytes mean a peer that disagrees on the layout. */
  done(what: string): void {
    if (this.pos !== this.end) throw new WireError(what, this.pos, `${this.end - this.pos} unexpected trailing bytes`);
  }
}

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(size = 256) {
    this.buf = Buffer.allocUnsafe(size);
  }

  get length(): number {
    return this.pos;
  }

  private room(n: number): number {
    if (this.pos + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
      this.buf.copy(next, 0, 0, this.pos);
      this.buf = next;
    }
    const at = this.pos;
    this.pos += n;
    return at;
  }

  u8(v: number): this {
    const at = this.room(1); // room() may swap this.buf: take the offset first
    this.buf[at] = v;
    return this;
  }

  u16(v: number): this {
    const at = this.room(2);
    this.buf.writeUInt16BE(v, at);
    return this;
  }

  u32(v: number): this {
    const at = this.room(4);
    this.buf.writeUInt32BE(v >>> 0, at);
    return this;
  }

  u48(v: number): this {
    const c = Math.max(0, Math.min(0xffffffffffff, Math.floor(v)));
    const at = this.room(6);
    this.buf.writeUIntBE(c, at, 6);
    return this;
  }

  bytes(b: Uint8Array): this {
    const at = this.room(b.length);
    this.buf.set(b, at);
    return this;
  }

  str8(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 255) throw new RangeError(`string of ${b.length} bytes does not fit a u8 length`);
    return this.u8(b.length).bytes(b);
  }

  str16(s: string): this {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0xffff) throw new RangeError(`string of ${b.length} bytes does not fit a u16 length`);
    return this.u16(b.length).bytes(b);
  }

  /** Overwrites a u32 written earlier (length fields). */
  patchU32(at: number, v: number): void {
    this.buf.writeUInt32BE(v >>> 0, at);
  }

  take(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}
