// Framing of the master <-> backup stream: u8 version, u8 type, u32 payload length, the payload, and
// once a shared key has been proven, a 32-byte MAC. The decoder reassembles frames from any split of
// the byte stream and refuses a frame at the first byte it can tell is wrong.

import { WireError } from './bytes.js';
import { frameMac } from './auth.js';
import { MAC_BYTES, PROTOCOL_VERSION } from './messages.js';

export const HEADER_BYTES = 6;
/** The largest payload we send or accept (snapshots are cut into ENTRIES frames well below it). */
export const MAX_PAYLOAD = 4 << 20;
/** First byte of every frame of Zevenet's ssyncd v1.0.0 (magic EF AB): told apart for a clear error. */
const ORIGINAL_MAGIC = 0xef;

export interface RawFrame {
  readonly type: number;
  readonly payload: Buffer;
}

/** Sending side of one connection: numbers frames and adds the MAC once keyed. */
export class FrameEncoder {
  private key: Buffer | undefined;
  private seq = 0;

  /** From the next frame on, every frame carries a MAC under `key`. */
  keyWith(key: Buffer): void {
    this.key = key;
    this.seq = 0;
  }

  encode(type: number, payload: Buffer): Buffer {
    if (payload.length > MAX_PAYLOAD) throw new RangeError(`payload of ${payload.length} bytes over ${MAX_PAYLOAD}`);
    const mac = this.key ? MAC_BYTES : 0;
    const out = Buffer.allocUnsafe(HEADER_BYTES + payload.length + mac);
    out[0] = PROTOCOL_VERSION;
    out[1] = type;
    out.writeUInt32BE(payload.length, 2);
    payload.copy(out, HEADER_BYTES);
    if (this.key) {
      frameMac(this.key, this.seq++, out.subarray(0, HEADER_BYTES), payload).copy(out, HEADER_BYTES + payload.length);
    }
    return out;
  }
}

/** Receiving side: feed it bytes, take whole frames; throws WireError on the first bad frame. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private key: Buffer | undefined;
  private seq = 0;
  /** Byte offset of the current frame in the stream (for error messages). */
  private streamOffset = 0;

  constructor(private readonly maxPayload = MAX_PAYLOAD) {}

  keyWith(key: Buffer): void {
    this.key = key;
    this.seq = 0;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next whole frame, or undefined until more bytes arrive. */
  next(): RawFrame | undefined {
    if (this.buffered < HEADER_BYTES) {
      this.checkFirstByte();
      return undefined;
    }
    const head = this.peek(HEADER_BYTES);
    const at = this.streamOffset;
    if (head[0] !== PROTOCOL_VERSION) {
      if (head[0] === ORIGINAL_MAGIC && head[1] === 0xab) {
        throw new WireError('frame', at, 'peer speaks the original ssyncd v1.0.0 protocol (magic EF AB), which this daemon does not serve');
      }
      throw new WireError('frame version', at, `version ${head[0]} is not ${PROTOCOL_VERSION}`);
    }
    const len = head.readUInt32BE(2);
    if (len > this.maxPayload) throw new WireError('frame length', at + 2, `payload of ${len} bytes over the ${this.maxPayload} limit`);
    const mac = this.key ? MAC_BYTES : 0;
    const total = HEADER_BYTES + len + mac;
    if (this.buffered < total) return undefined;
    const whole = this.take(total);
    const header = whole.subarray(0, HEADER_BYTES);
    const payload = whole.subarray(HEADER_BYTES, HEADER_BYTES + len);
    if (this.key) {
      const want = frameMac(this.key, this.seq, header, payload);
      const got = whole.subarray(HEADER_BYTES + len);
      if (!want.equals(got)) throw new WireError('frame MAC', at + HEADER_BYTES + len, `does not match frame ${this.seq} (forged, replayed or reordered)`);
      this.seq++;
    }
    this.streamOffset += total;
    return { type: header[1]!, payload };
  }

  /** Bytes buffered but not yet a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  private checkFirstByte(): void {
    if (this.buffered > 0) {
      const b = this.chunks[0]![0]!;
      if (b !== PROTOCOL_VERSION && b !== ORIGINAL_MAGIC) {
        throw new WireError('frame version', this.streamOffset, `version ${b} is not ${PROTOCOL_VERSION}`);
      }
    }
  }

  private peek(n: number): Buffer {
    if (this.chunks[0]!.length >= n) return this.chunks[0]!.subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    const out = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return out;
  }
}
