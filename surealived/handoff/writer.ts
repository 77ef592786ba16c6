// Writes the hand-off for ipvssync: ipvsfull.cfg (forced at start with the reload flag, then at most
// once a minute), diff_sync.<sec> files chained by `DIFF file=`, all under the flock on ipvsfull.lock.
// Beyond the original: the full file is written to a temporary name and renamed (never torn), and a
// diff file name is never reused within one second (the original truncated the file being tailed).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { VirtualState } from '../engine/state.js';
import { FileLock } from '../../common/lock.js';
import { chainLine, diffFilePath, formatDiffLines, formatFullFile, type HandoffDest } from './format.js';

export interface HandoffPaths {
  readonly lockFile: string;
  readonly fullFile: string;
  readonly reloadFile: string;
  readonly diffDir: string;
}

export interface HandoffOptions extends HandoffPaths {
  readonly log: Logger;
  /** Wall clock in ms since the epoch. */
  readonly now?: () => number;
  /** Minimum interval between periodic full writes (ms); the original's 60 s. */
  readonly fullIntervalMs?: number;
}

export class HandoffWriter {
  private readonly lock: FileLock;
  private readonly now: () => number;
  private readonly fullIntervalMs: number;
  private diffFd: number | null = null;
  private diffPath = '';
  private lastDiffSecond = 0;
  private lastFullAt = 0;
  private readonly pending = new Set<HandoffDest>();
  /** Serialises every write: one lock holder at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private closed = false;
  /** A full write that failed (EMFILE, disk full) and is retried until it lands; forced wins. */
  private fullRetry: { virtuals: readonly VirtualState[]; forced: boolean } | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private failures = 0;

  constructor(private readonly opts: HandoffOptions) {
    for (const p of [opts.lockFile, opts.fullFile, opts.reloadFile]) mkdirSync(dirname(p), { recursive: true });
    mkdirSync(opts.diffDir, { recursive: true });
    this.lock = new FileLock(opts.lockFile, true);
    this.now = opts.now ?? Date.now;
    this.fullIntervalMs = opts.fullIntervalMs ?? 60_000;
  }

  get currentDiffPath(): string {
    return this.diffPath;
  }

  /** Full write; `forced` (start, reload) also touches the reload flag so ipvssync re-reads everything. */
  writeFull(virtuals: readonly VirtualState[], forced: boolean): Promise<void> {
    return this.enqueue(() => this.fullLocked(virtuals, forced), { virtuals, forced });
  }

  /** Periodic full write: due when the interval has passed and every virtual has been tested. */
  maybeWritePeriodic(virtuals: readonly VirtualState[]): Promise<void> | null {
    if (this.now() - this.lastFullAt <= this.fullIntervalMs) return null;
    if (!virtuals.every((v) => v.reals.every((r) => r.tested))) return null;
    this.lastFullAt = this.now(); // claim the slot now so concurrent callers do not queue twice
    return this.writeFull(virtuals, false);
  }

  /**
   * Queue the current state of a real (or of a virtual's sorry server) for the diff file; written on
   * the next turn of the event loop (lines are made from the state at that time).
   */
  queueReal(r: HandoffDest): void {
    this.pending.add(r);
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      void this.flush();
    });
  }

  /** Write the queued diff lines now (under the lock). */
  flush(): Promise<void> {
    return this.enqueue(() => this.flushLocked());
  }

  /** Wait for every queued write. */
  idle(): Promise<void> {
    return this.chain;
  }

  async close(): Promise<void> {
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    // Last chance for a full write that has been failing: its lines are not in any diff.
    const retry = this.fullRetry;
    if (retry !== null) await this.writeFull(retry.virtuals, retry.forced);
    await this.flush();
    this.closed = true;
    if (this.diffFd !== null) closeSync(this.diffFd);
    this.diffFd = null;
    this.lock.close();
  }

  /**
   * Runs `fn` under the lock. A failure is logged and retried until a write lands: a failed full
   * write (`full`) is redone, failed diff lines stay pending (a full write also covers them).
   */
  private enqueue(fn: () => void, full?: { virtuals: readonly VirtualState[]; forced: boolean }): Promise<void> {
    const run = async (): Promise<void> => {
      await this.lock.acquire();
      try {
        fn();
        if (full !== undefined) this.fullRetry = null;
        if (this.failures > 0) this.opts.log.info(`hand-off written after ${this.failures} failed attempt(s)`);
        this.failures = 0;
      } catch (e) {
        this.failures++;
        if (full !== undefined) this.fullRetry = { virtuals: full.virtuals, forced: full.forced || (this.fullRetry?.forced ?? false) };
        this.scheduleRetry((e as Error).message);
      } finally {
        this.lock.release();
      }
    };
    this.chain = this.chain.then(run, run);
    return this.chain;
  }

  private scheduleRetry(reason: string): void {
    const delay = Math.min(5000, 100 * 2 ** Math.min(6, this.failures - 1));
    if (this.failures === 1 || this.failures % 20 === 0) this.opts.log.error(`hand-off write failed: ${reason} - retrying in ${delay} ms (attempt ${this.failures})`);
    if (this.closed || this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      const full = this.fullRetry;
      if (full !== null) void this.writeFull(full.virtuals, full.forced);
      else void this.flush();
    }, delay);
    this.retryTimer.unref();
  }

  private flushLocked(): void {
    if (this.pending.size === 0) return;
    if (this.diffFd === null) return; // before the first full write there is no diff file: the full write covers it
    let text = '';
    for (const r of this.pending) text += formatDiffLines(r);
    writeSync(this.diffFd, text);
    // Only once written: a failed write keeps its reals pending for the retry.
    this.pending.clear();
  }

  private fullLocked(virtuals: readonly VirtualState[], forced: boolean): void {
    const nowMs = this.now();
    const newDiff = this.nextDiffPath(Math.floor(nowMs / 1000));
    // Every descriptor the write needs is opened first: when one cannot be (EMFILE), nothing has
    // changed on disk and the whole write is retried.
    const tmp = `${this.opts.fullFile}.tmp`;
    const opened: number[] = [];
    let fd: number, nextDiffFd: number, reloadFd: number | null;
    try {
      fd = openSync(tmp, 'w', 0o644);
      opened.push(fd);
      nextDiffFd = openSync(newDiff, 'w', 0o644);
      opened.push(nextDiffFd);
      reloadFd = forced ? openSync(this.opts.reloadFile, 'a', 0o644) : null;
    } catch (e) {
      for (const o of opened) closeSync(o);
      throw e;
    }
    // The full file reflects every pending change, so those diff lines are no longer needed.
    this.pending.clear();
    try {
      writeSync(fd, formatFullFile(virtuals, new Date(nowMs), newDiff));
      fsyncSync(fd);
    } catch (e) {
      closeSync(nextDiffFd);
      if (reloadFd !== null) closeSync(reloadFd);
      throw e;
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.opts.fullFile);
    if (this.diffFd !== null) {
      writeSync(this.diffFd, chainLine(newDiff));
      closeSync(this.diffFd);
    }
    this.diffFd = nextDiffFd;
    this.diffPath = newDiff;
    if (reloadFd !== null) closeSync(reloadFd);
    this.lastFullAt = nowMs;
    this.opts.log.debug(`full sync written: ${this.opts.fullFile}, diff ${newDiff}${forced ? ', reload flag set' : ''}`);
  }

  /** diff_sync.<sec>, moved to the next free second if that name is taken (restart within one second). */
  private nextDiffPath(sec: number): string {
    let s = Math.max(sec, this.lastDiffSecond + 1);
    while (existsSync(diffFilePath(this.opts.diffDir, s))) s++;
    this.lastDiffSecond = s;
    return diffFilePath(this.opts.diffDir, s);
  }
}
