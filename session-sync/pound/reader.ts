// The byte stream from Pound's sync socket cut into frames: bytes arrive in any pieces, a frame is
// taken once the next frame's header confirms where it ends (or the stream has gone quiet: flush), and
// anything that is not a frame (junk, a layout no reading fits) is skipped up to the next frame header
// with a reason, so one bad frame never costs the frames after it. Pure: chunks in, frames and skips out.

import { decodeFrameAt, FRAME_MAGIC, magicAt, nextMagic, type PoundFrame } from './codec.js';

/** Bytes the reader dropped, where in the stream, and why. */
export interface Skip {
  /** Offset of the first skipped byte since the reader was created or reset. */
  readonly at: number;
  readonly bytes: number;
  readonly why: string;
}

export interface ReadResult {
  readonly frames: PoundFrame[];
  readonly skips: Skip[];
}

export class PoundStreamReader {
  private buf: Buffer = Buffer.alloc(0);
  /** Stream offset of buf[0]. */
  private base = 0;

  /** Bytes waiting for the rest of their frame. */
  get buffered(): number {
    return this.buf.length;
  }

  /** Takes the next piece of the stream; returns every frame it completes. */
  push(chunk: Buffer): ReadResult {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    return this.drain([], []);
  }

  /**
   * The stream has gone quiet: nothing more is coming for now, so the end of what arrived ends the
   * last frame (a frame's end is otherwise confirmed only by the next header), and a frame still
   * incomplete is skipped (a sender that died mid-frame, or junk that looked like a header).
   */
  flush(): ReadResult {
    if (this.buf.length === 0) return { frames: [], skips: [] };
    return this.drain([], [], true);
  }

  /** A new connection: what is buffered belongs to the old one. */
  reset(): void {
    this.base += this.buf.length;
    this.buf = Buffer.alloc(0);
  }

  private drain(frames: PoundFrame[], skips: Skip[], final = false): ReadResult {
    let p = 0;
    const b = this.buf;
    while (p < b.length) {
      if (!magicAt(b, p)) {
        p = this.resync(b, p, 'bytes outside any frame', skips);
        continue;
      }
      const r = decodeFrameAt(b, p, final);
      if (r.kind === 'more') break;
      if (r.kind === 'bad') {
        p = this.resync(b, p, r.why, skips);
        continue;
      }
      frames.push(r.frame);
      p = r.end;
    }
    this.consume(p);
    return { frames, skips };
  }

  /** Skips from `p` to the next full header after it (or to a possible header start at the end). */
  private resync(b: Buffer, p: number, why: string, skips: Skip[]): number {
    let next = nextMagic(b, p + 1);
    if (next < 0) {
      // Keep a tail that could be the first bytes of a header.
      next = b.length;
      for (let k = Math.max(p + 1, b.length - (FRAME_MAGIC.length - 1)); k < b.length; k++) {
        if (magicAt(b, k)) {
          next = k;
          break;
        }
      }
    }
    const last = skips.at(-1);
    if (last && last.at + last.bytes === this.base + p && last.why === why) skips[skips.length - 1] = { ...last, bytes: last.bytes + next - p };
    else skips.push({ at: this.base + p, bytes: next - p, why });
    return next;
  }

  private consume(n: number): void {
    if (n === 0) return;
    this.base += n;
    // Copy the remainder so a large chunk is not kept alive by a few waiting bytes.
    this.buf = n >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(n));
  }
}
