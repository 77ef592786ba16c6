// One master <-> backup connection at the socket edge: frames in and out, heartbeats when idle, a dead
// timer when the peer falls silent, and back-pressure from the socket's buffer. Whatever arrives that
// does not decode closes this connection with a logged reason; nothing thrown escapes to the daemon.

import type { Duplex } from 'node:stream';
import { WireError } from '../wire/bytes.js';
import { FrameDecoder, FrameEncoder, MAX_PAYLOAD } from '../wire/frame.js';
import { decodePayload, encodePayload, isKnownType, typeCode, type Message } from '../wire/messages.js';

export interface LinkTimers {
  /** Send a heartbeat when nothing was sent for this long. */
  readonly heartbeatMs: number;
  /** Close when nothing was received for this long. */
  readonly deadMs: number;
}

export const DEFAULT_TIMERS: LinkTimers = { heartbeatMs: 1000, deadMs: 4000 };

export interface LinkHandlers {
  onMessage(m: Message): void;
  /** Called once, with why the link ended. */
  onClose(reason: string): void;
  /** The socket's buffer has room again after send() returned false. */
  onDrain?(): void;
}

/** Above this many buffered bytes the sender holds back (snapshots pause, changes coalesce). */
const HIGH_WATER = 1 << 20;

export class Link {
  private readonly enc = new FrameEncoder();
  private readonly dec: FrameDecoder;
  private readonly timer: NodeJS.Timeout;
  private lastSent: number;
  private lastReceived: number;
  private closed = false;
  private heartbeats = 0;
  bytesIn = 0;
  bytesOut = 0;
  /** Frames of types this version does not know, skipped. */
  skippedFrames = 0;

  constructor(
    private readonly socket: Duplex,
    readonly peer: string,
    private readonly handlers: LinkHandlers,
    private readonly now: () => number,
    timers: LinkTimers = DEFAULT_TIMERS,
    maxPayload = MAX_PAYLOAD,
  ) {
    this.dec = new FrameDecoder(maxPayload);
    this.lastSent = this.lastReceived = now();
    socket.on('data', (b: Buffer) => this.onData(b));
    socket.on('drain', () => this.handlers.onDrain?.());
    socket.on('error', (e: Error) => this.close(`socket error: ${e.message}`));
    socket.on('end', () => this.close('peer closed the connection'));
    socket.on('close', () => this.close('connection closed'));
    const tick = Math.max(20, Math.min(timers.heartbeatMs, timers.deadMs) / 4);
    this.timer = setInterval(() => {
      const t = this.now();
      if (t - this.lastReceived >= timers.deadMs) this.close(`peer silent for ${t - this.lastReceived} ms (dead timer ${timers.deadMs} ms)`);
      else if (t - this.lastSent >= timers.heartbeatMs) this.send({ type: 'heartbeat', seq: ++this.heartbeats });
    }, tick);
    this.timer.unref();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Room in the socket's buffer for more. */
  get writable(): boolean {
    return !this.closed && this.socket.writableLength < HIGH_WATER;
  }

  /** From now on frames carry MACs under these per-direction keys. */
  keyWith(keys: { send: Buffer; recv: Buffer }): void {
    this.enc.keyWith(keys.send);
    this.dec.keyWith(keys.recv);
  }

  /** Sends one message; false when the socket's buffer is over the high-water mark. */
  send(m: Message): boolean {
    if (this.closed) return false;
    const frame = this.enc.encode(typeCode(m), encodePayload(m, this.now()));
    this.lastSent = this.now();
    this.bytesOut += frame.length;
    this.socket.write(frame);
    return this.socket.writableLength < HIGH_WATER;
  }

  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    // Flush what was queued (a REFUSE says why), then make sure the socket goes away.
    this.socket.end();
    setTimeout(() => this.socket.destroy(), 1000).unref();
    this.handlers.onClose(reason);
  }

  private onData(b: Buffer): void {
    if (this.closed) return;
    this.lastReceived = this.now();
    this.bytesIn += b.length;
    this.dec.push(b);
    try {
      for (;;) {
        if (this.closed) return;
        const f = this.dec.next();
        if (!f) break;
        // A newer peer may send types we do not know: framing (and the MAC) checked, content skipped.
        if (!isKnownType(f.type)) {
          this.skippedFrames += 1;
          continue;
        }
        const m = decodePayload(f.type, f.payload, this.now());
        this.handlers.onMessage(m);
      }
    } catch (e) {
      if (e instanceof WireError) this.close(`bad frame from ${this.peer}: ${e.message}`);
      else this.close(`error handling a frame from ${this.peer}: ${(e as Error).stack ?? String(e)}`);
    }
  }
}
