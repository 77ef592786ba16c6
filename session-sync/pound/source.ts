// The master's source of one Pound farm: a client of Pound's sync socket that sends SYNC_REQUEST,
// takes the dump and the live stream, and hands the changes to the master at each poll. When Pound
// goes away the copy is kept (the backups keep theirs) and the socket is retried with backoff; once
// back, the farm is requested again and the new dump replaces the old view by a generation sweep.

import { connect, type Socket } from 'node:net';
import type { Change, TableRef } from '../model.js';
import type { Source } from '../source.js';
import { encodeFrame } from './codec.js';
import { PoundStreamReader, type ReadResult } from './reader.js';
import { FarmSessions } from './view.js';

export type PoundLog = (level: 'info' | 'warn' | 'error', msg: string) => void;

export interface PoundTimings {
  /** First reconnect delay; doubled after each failure up to reconnectMaxMs. */
  readonly reconnectMinMs: number;
  readonly reconnectMaxMs: number;
  readonly connectTimeoutMs: number;
  /**
   * Pound marks no end of its dump: it is taken as complete once Pound, having started to answer,
   * has been silent this long...
   */
  readonly settleMs: number;
  /** ...or this long after the request (a stream that never pauses, or a Pound without sessions). */
  readonly maxSettleMs: number;
  /**
   * After this long without data the stream counts as quiet: the last frame received is taken (its
   * end is otherwise confirmed by the next frame's header) and an incomplete one is skipped.
   */
  readonly quietMs: number;
}

export const DEFAULT_POUND_TIMINGS: PoundTimings = {
  reconnectMinMs: 200,
  reconnectMaxMs: 5000,
  connectTimeoutMs: 2000,
  settleMs: 500,
  maxSettleMs: 10_000,
  quietMs: 50,
};

export interface PoundSourceOptions {
  readonly farm: string;
  readonly socketPath: string;
  readonly log: PoundLog;
  readonly timings?: Partial<PoundTimings>;
  /** Epoch ms (tests inject one). */
  readonly now?: () => number;
  /** Called once when the source is closed (stop http, the master shutting down). */
  readonly onClose?: () => void;
}

/** Counters for status lines and tests. */
export interface PoundSourceStats {
  readonly connected: boolean;
  readonly connections: number;
  readonly frames: number;
  readonly skippedBytes: number;
  readonly refused: number;
  readonly sessions: number;
  /** Bytes waiting for the rest of their frame. */
  readonly buffered: number;
}

/** Connects to a unix socket; rejects with the system's reason (ENOENT, ECONNREFUSED, EACCES...). */
export function connectUnix(path: string, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Resolves after the event loop's next I/O phase (setImmediate runs after it; a timer runs before). */
const yieldToIo = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Whether the n-th occurrence of a recurring problem is logged: the 1st, 10th, 100th, 1000th... */
const milestone = (n: number): boolean => n === 1 || /^10+$/.test(String(n));

/** Logs each kind of recurring problem at its milestones, so a stream of bad frames cannot flood the log. */
class Throttle {
  private readonly counts = new Map<string, number>();
  constructor(private readonly log: PoundLog) {}

  report(kind: string, msg: string): void {
    const n = (this.counts.get(kind) ?? 0) + 1;
    this.counts.set(kind, n);
    if (milestone(n)) this.log('warn', n === 1 ? msg : `${msg} (${n} times so far)`);
  }
}

export class PoundSource implements Source {
  readonly id: string;
  private readonly table: Extract<TableRef, { kind: 'http' }>;
  private readonly view: FarmSessions;
  private readonly reader = new PoundStreamReader();
  private readonly t: PoundTimings;
  private readonly now: () => number;
  private readonly throttle: Throttle;
  private sock: Socket | undefined;
  private closed = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  private attempts = 0;
  /** performance.now() when the current connection was made. */
  private connectedAtMono = 0;
  /** Connections in a row that Pound closed within reconnectMaxMs (another client taking its one slot?). */
  private shortLived = 0;
  private lastDataAt = 0;
  /** performance.now() of the last data, for the quiet timer (the injected clock may stand still). */
  private lastDataMono = 0;
  private quietTimer: NodeJS.Timeout | undefined;
  private requestedAt = 0;
  /** Whether Pound has sent anything since the request (its dump has begun). */
  private answered = false;
  private counters = { connections: 0, frames: 0, skippedBytes: 0, refused: 0 };

  private constructor(private readonly opts: PoundSourceOptions) {
    this.id = `http/${opts.farm}`;
    this.table = { kind: 'http', farm: opts.farm };
    this.view = new FarmSessions(this.table);
    this.t = { ...DEFAULT_POUND_TIMINGS, ...opts.timings };
    this.now = opts.now ?? Date.now;
    this.throttle = new Throttle(opts.log);
    this.retryDelay = this.t.reconnectMinMs;
  }

  /** Connects and requests the farm's sessions; throws with why when Pound's socket cannot be reached. */
  static async open(opts: PoundSourceOptions): Promise<PoundSource> {
    const src = new PoundSource(opts);
    let sock: Socket;
    try {
      sock = await connectUnix(opts.socketPath, src.t.connectTimeoutMs);
    } catch (e) {
      throw new Error(`cannot connect to Pound's sync socket ${opts.socketPath}: ${(e as Error).message}`);
    }
    src.attach(sock);
    opts.log('info', `pound farm ${opts.farm}: connected to ${opts.socketPath}, sessions requested`);
    return src;
  }

  get stats(): PoundSourceStats {
    return { connected: this.sock !== undefined, ...this.counters, sessions: this.view.size, buffered: this.reader.buffered };
  }

  async poll(now: number): Promise<Change[]> {
    // Let bytes already waiting in the socket be read first: after a busy stretch, timers run before
    // I/O, and a stream that only looks quiet must not be cut mid-frame or have its dump declared over.
    await yieldToIo();
    // The quiet timer may not have run yet: what it would flush belongs to this poll (and the dump).
    if (this.reader.buffered > 0 && performance.now() - this.lastDataMono >= this.t.quietMs) this.take(this.reader.flush());
    if (this.view.inDump && this.sock && ((this.answered && now - this.lastDataAt >= this.t.settleMs) || now - this.requestedAt >= this.t.maxSettleMs)) {
      const stale = this.view.endDump();
      this.opts.log('info', `pound farm ${this.opts.farm}: dump complete, ${this.view.size} sessions${this.counters.connections > 1 ? `, ${stale} stale removed` : ''}`);
    }
    return this.view.take();
  }

  owns(t: TableRef): boolean {
    return t.kind === 'http' && t.farm === this.opts.farm;
  }

  reset(): void {
    this.view.reset();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.opts.onClose?.();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.retryTimer = this.quietTimer = undefined;
    const s = this.sock;
    this.sock = undefined;
    s?.destroy();
  }

  private attach(sock: Socket): void {
    this.sock = sock;
    this.counters.connections += 1;
    this.attempts = 0;
    this.connectedAtMono = performance.now();
    this.reader.reset();
    this.view.beginDump();
    this.requestedAt = this.lastDataAt = this.now();
    this.answered = false;
    sock.on('data', (chunk: Buffer) => {
      if (this.sock !== sock) return;
      this.lastDataAt = this.now();
      this.answered = true;
      this.lastDataMono = performance.now();
      this.take(this.reader.push(chunk));
      if (this.reader.buffered > 0) this.armQuiet(sock);
    });
    let why = 'closed by Pound';
    sock.on('error', (e) => (why = e.message));
    sock.once('close', () => this.lost(sock, why));
    sock.write(encodeFrame({ action: 'sync-request', farm: this.opts.farm }));
  }

  /** Flushes the reader once the connection has been silent for quietMs (bytes already waiting read first). */
  private armQuiet(sock: Socket): void {
    if (this.quietTimer) return;
    const check = (): void => {
      this.quietTimer = undefined;
      if (this.sock !== sock || this.reader.buffered === 0) return;
      const left = this.lastDataMono + this.t.quietMs - performance.now();
      if (left > 0) this.quietTimer = setTimeout(() => void yieldToIo().then(check), left);
      else this.take(this.reader.flush());
    };
    this.quietTimer = setTimeout(() => void yieldToIo().then(check), this.t.quietMs);
  }

  private take(r: ReadResult): void {
    const farm = this.opts.farm;
    for (const s of r.skips) {
      this.counters.skippedBytes += s.bytes;
      this.throttle.report(`skip ${s.why.replace(/\d+/g, 'N')}`, `pound farm ${farm}: ${s.why}: skipped ${s.bytes} bytes at stream offset ${s.at} and resynchronised on the next frame`);
    }
    for (const f of r.frames) {
      this.counters.frames += 1;
      const refused = this.view.apply(f);
      if (refused) {
        this.counters.refused += 1;
        this.throttle.report(refused.kind, `pound farm ${farm}: ${refused.why}`);
      }
    }
  }

  private lost(sock: Socket, why: string): void {
    if (this.sock !== sock || this.closed) return;
    this.sock = undefined;
    // Only a connection that lasted resets the backoff: Pound serves one client at a time, and two
    // clients taking the slot from each other must not reconnect (and log) in a tight loop.
    const lived = performance.now() - this.connectedAtMono;
    if (lived >= this.t.reconnectMaxMs) {
      this.shortLived = 0;
      this.retryDelay = this.t.reconnectMinMs;
    } else this.shortLived += 1;
    if (this.logConnectionEvents()) {
      const short = this.shortLived > 1 ? `, ${this.shortLived} in a row closed within ${this.t.reconnectMaxMs} ms: is another client taking Pound's only sync connection?` : '';
      this.opts.log('warn', `pound farm ${this.opts.farm}: connection to ${this.opts.socketPath} lost (${why}${short}); keeping its ${this.view.size} sessions and reconnecting`);
    }
    this.scheduleRetry();
  }

  /** Whether connection events are logged now: always, except deep in a run of short-lived ones. */
  private logConnectionEvents(): boolean {
    return this.shortLived < 2 || milestone(this.shortLived);
  }

  private scheduleRetry(): void {
    if (this.closed) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.t.reconnectMaxMs, this.retryDelay * 2);
    this.retryTimer = setTimeout(() => void this.retry(), delay);
  }

  private async retry(): Promise<void> {
    this.retryTimer = undefined;
    if (this.closed) return;
    this.attempts += 1;
    let sock: Socket;
    try {
      sock = await connectUnix(this.opts.socketPath, this.t.connectTimeoutMs);
    } catch (e) {
      if (milestone(this.attempts)) {
        this.opts.log('warn', `pound farm ${this.opts.farm}: cannot reconnect to ${this.opts.socketPath}: ${(e as Error).message} (attempt ${this.attempts}); next in ${this.retryDelay} ms`);
      }
      this.scheduleRetry();
      return;
    }
    if (this.closed) {
      sock.destroy();
      return;
    }
    const n = this.attempts;
    this.attach(sock);
    if (this.logConnectionEvents()) this.opts.log('info', `pound farm ${this.opts.farm}: reconnected after ${n} attempt${n === 1 ? '' : 's'}; sessions requested again, the new dump replaces the old view`);
  }
}
