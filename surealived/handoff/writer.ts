// Writes the hand-off for ipvssync: ipvsfull.cfg (forced at start with the reload flag, then at most
// once a minute), diff_sync.<sec> files chained by `DIFF file=`, all under the flock on ipvsfull.lock.
// Beyond the original: the full file is written to a temporary name and renamed (never torn), and a
// diff file name is never reused within one second (the original truncated the file being tailed).

import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../common/log.js';
import type { RealState, VirtualState } from '../engine/state.js';
import { FileLock } from '../../common/lock.js';
import { chainLine, diffFilePath, formatDiffLines, formatFullFile } from './format.js';

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
  private readonly pending = new Set<RealState>();
  /** Serialises every write: one lock holder at a time, in order. */
  private chain: Promise<void> = Promise.resolve();
  private flushScheduled = false;
  private closed = false;

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
    return this.enqueue(() => this.fullLocked(virtuals, forced));
  }

  /** Periodic full write: due when the interval has passed and every virtual has been tested. */
  maybeWritePeriodic(virtuals: readonly VirtualState[]): Promise<void> | null {
    if (this.now() - this.lastFullAt <= this.fullIntervalMs) return null;
    if (!virtuals.every((v) => v.reals.every((r) => r.tested))) return null;
    this.lastFullAt = this.now(); // claim the slot now so concurrent callers do not queue twice
    return this.writeFull(virtuals, false);
  }

  /** Queue the current state of a real for the diff file; written on the next turn of the event loop. */
  queueReal(r: RealState): void {
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
    await this.flush();
    this.closed = true;
    if (this.diffFd !== null) closeSync(this.diffFd);
    this.diffFd = null;
    this.lock.close();
  }

  private enqueue(fn: () => void): Promise<void> {
    const run = async (): Promise<void> => {
      await this.lock.acquire();
      try {
        fn();
      } catch (e) {
        this.opts.log.error(`hand-off write failed: ${(e as Error).message}`);
      } finally {
        this.lock.release();
      }
    };
    this.chain = this.chain.then(run, run);
    return this.chain;
  }

  private flushLocked(): void {
    if (this.pending.size === 0) return;
    if (this.diffFd === null) return; // before the first full write there is no diff file: the full write covers it
    let text = '';
    for (const r of this.pending) text += formatDiffLines(r);
    this.pending.clear();
    writeSync(this.diffFd, text);
  }

  private fullLocked(virtuals: readonly VirtualState[], forced: boolean): void {
    const nowMs = this.now();
    const newDiff = this.nextDiffPath(Math.floor(nowMs / 1000));
    // The full file reflects every pending change, so those diff lines are no longer needed.
    this.pending.clear();
    const tmp = `${this.opts.fullFile}.tmp`;
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, formatFullFile(virtuals, new Date(nowMs), newDiff));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.opts.fullFile);
    if (this.diffFd !== null) {
      writeSync(this.diffFd, chainLine(newDiff));
      closeSync(this.diffFd);
    }
    this.diffFd = openSync(newDiff, 'w', 0o644);
    this.diffPath = newDiff;
    if (forced) closeSync(openSync(this.opts.reloadFile, 'a', 0o644));
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
