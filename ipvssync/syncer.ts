// The ipvssync loop (spec 8.5/8.6, with the fixes of 11.12): start-up sync, then every 100 ms under
// the lock: reload on flag/SIGHUP, tail diffs into the desired table and the kernel, retry failed ops, clean old diffs.
// At start-up and at each full reload the kernel's sync daemons are brought to the wanted ones too.

import { constants, existsSync, watch, type FSWatcher } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Logger } from '../common/log.js';
import type { IpvsBackend, SyncDaemonControl } from './backend.js';
import { cleanupDiffs } from './cleanup.js';
import { DiffTailer, type TailBatch } from './diff-tail.js';
import { formatOp, formatSyncDaemonOp } from './format.js';
import { applyDiffLines, EMPTY_CONFIG, parseFullFile, tableOf, toTable, type HandoffConfig } from './handoff.js';
import type { SyncLock } from './lock.js';
import { reconcile } from './reconcile.js';
import type { SyncDaemonConfig } from './sync-daemon-config.js';
import { planSyncDaemons } from './sync-daemon-plan.js';
import type { Op, SyncDaemonState } from './types.js';

/** Pause between a change seen in diff_sync_dir and the pass that reads it. */
const WAKE_DELAY_MS = 5;

export interface SyncPaths {
  readonly fullSyncFile: string;
  readonly fullReloadFile: string;
  readonly diffSyncDir: string;
}

export interface SyncerOptions {
  readonly paths: SyncPaths;
  readonly backend: IpvsBackend;
  readonly lock: SyncLock;
  readonly log: Logger;
  /** `-u` */
  readonly deleteUnmanaged: boolean;
  /** `-k` */
  readonly keepDiffs: boolean;
  /** Milliseconds clock (default Date.now). */
  readonly now?: () => number;
  readonly cleanupIntervalMs?: number;
  /**
   * Longest wait between full-sync retries while ops keep failing (default 5 s). The first retry is
   * on the next pass; the wait then doubles from 200 ms: a permanently refused op (an unknown
   * scheduler) must not make every 100 ms pass re-read a 100k-destination table and log again.
   */
  readonly maxRetryDelayMs?: number;
  /** The sync daemons to keep running (main config ipvs_sync_*); absent or `none`: never touched. */
  readonly syncDaemons?: { readonly config: SyncDaemonConfig; readonly control: SyncDaemonControl };
}

export type LoadResult = { readonly ok: true; readonly config: HandoffConfig } | { readonly ok: false; readonly errors: readonly string[] };

/**
 * Read and validate the full file, including that its DIFF target can be opened (as the original:
 * an unopenable DIFF target makes the whole file invalid). Used by start-up, reload and `-t`.
 */
export async function loadFullFile(paths: SyncPaths): Promise<LoadResult> {
  let text: string;
  try {
    text = await readFile(paths.fullSyncFile, 'utf8');
  } catch (e) {
    return { ok: false, errors: [`${paths.fullSyncFile}: ${(e as Error).message}`] };
  }
  const p = parseFullFile(text, paths.fullSyncFile, paths.diffSyncDir);
  if (!p.ok) return p;
  if (p.config.diffFile !== null) {
    try {
      await (await open(p.config.diffFile, constants.O_RDONLY | constants.O_NOFOLLOW)).close();
    } catch (e) {
      return { ok: false, errors: [`${paths.fullSyncFile}: cannot open DIFF file: ${(e as Error).message}`] };
    }
  }
  return p;
}

async function fileStamp(path: string): Promise<string> {
  try {
    const s = await stat(path);
    return `${s.ino}:${s.size}:${s.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

export class Syncer {
  private desired: HandoffConfig = EMPTY_CONFIG;
  private tailer: DiffTailer | undefined;
  private dirtyFlag = false;
  private reloadRequested = false;
  /** Stamp of the full file that failed to load; a changed file is tried again without a new flag. */
  private failedReloadStamp: string | undefined;
  private lastCleanup = Number.NEGATIVE_INFINITY;
  private lastBlocked: string | undefined;
  /** Full syncs in a row that ended dirty, and when the next retry is due. */
  private failedSyncs = 0;
  private retryAt = 0;
  /** A sync-daemon pass is due (start-up, full reload, or retry after a failure), not before daemonRetryAt. */
  private daemonsDue = true;
  private failedDaemonPasses = 0;
  private daemonRetryAt = 0;
  private readonly now: () => number;
  private readonly cleanupIntervalMs: number;
  private readonly maxRetryDelayMs: number;

  constructor(private readonly o: SyncerOptions) {
    this.now = o.now ?? Date.now;
    this.cleanupIntervalMs = o.cleanupIntervalMs ?? 60_000;
    this.maxRetryDelayMs = o.maxRetryDelayMs ?? 5_000;
  }

  /** The desired config in memory (full file + diffs applied). */
  get config(): HandoffConfig {
    return this.desired;
  }

  /** True when the kernel may differ from the desired table (an op failed): the next pass re-reconciles. */
  get dirty(): boolean {
    return this.dirtyFlag;
  }

  get currentDiffFile(): string | null {
    return this.tailer?.current ?? null;
  }

  /** SIGHUP: full reload at the next iteration. */
  requestReload(): void {
    this.reloadRequested = true;
  }

  /**
   * Start-up (spec 8.5): under the lock, load the full file, replay its diff chain into memory
   * only, full-synchronise, consume the reload flag. Returns the errors when the full file is invalid.
   */
  async start(): Promise<LoadResult> {
    await this.o.lock.acquire();
    let r: LoadResult;
    try {
      r = await this.loadAndReplay();
      if (!r.ok) return r;
      await this.fullSync();
      await this.consumeReloadFlag();
    } finally {
      this.o.lock.release();
    }
    // Outside the lock: the daemons have nothing to do with the hand-off files.
    await this.syncDaemonsPass();
    return r;
  }

  /** One loop iteration under the lock. Never throws: a failure is logged and the next pass re-reconciles. */
  async iterate(): Promise<void> {
    try {
      await this.o.lock.acquire();
    } catch (e) {
      this.o.log.error(`ipvssync cannot take the lock: ${(e as Error).message}`);
      return;
    }
    try {
      // Ops refused in an earlier pass are retried, by a full reconcile against the kernel's table.
      let fullSync = this.dirtyFlag && this.now() >= this.retryAt;
      const flagged = (await this.consumeReloadFlag()) || this.reloadRequested;
      this.reloadRequested = false;
      if (flagged) fullSync = (await this.reload()) || fullSync;
      else if (this.failedReloadStamp !== undefined && (await fileStamp(this.o.paths.fullSyncFile)) !== this.failedReloadStamp) {
        fullSync = (await this.reload()) || fullSync;
      }
      await this.tail(fullSync);
      if (fullSync) await this.fullSync();
      await this.cleanup();
    } catch (e) {
      this.o.log.error(`ipvssync iteration failed: ${(e as Error).stack ?? String(e)}`);
      this.dirtyFlag = true;
    } finally {
      this.o.lock.release();
    }
    if (this.daemonsDue && this.now() >= this.daemonRetryAt) await this.syncDaemonsPass();
  }

  /**
   * Iterate every `intervalMs` until `signal` aborts; the lock is never held while sleeping. A change
   * in diff_sync_dir (inotify through fs.watch) ends the sleep early, so a diff line reaches the kernel
   * in milliseconds instead of up to one interval later; without a working watch this is plain polling.
   */
  async run(signal: AbortSignal, intervalMs = 100): Promise<void> {
    let changed = false;
    let wake: (() => void) | undefined;
    const watchers: FSWatcher[] = [];
    const onChange = (): void => {
      changed = true;
      wake?.();
    };
    const watchDir = (dir: string, only?: string): void => {
      try {
        const w = watch(dir, { persistent: false }, (_event, name) => {
          if (only === undefined || name === null || String(name) === only) onChange();
        });
        w.on('error', (e) => {
          this.o.log.warn(`watching ${dir} failed, polling only: ${e.message}`);
          w.close();
        });
        watchers.push(w);
      } catch (e) {
        this.o.log.debug(`cannot watch ${dir}, polling only: ${(e as Error).message}`);
      }
    };
    watchDir(this.o.paths.diffSyncDir);
    // The reload flag too, so a new full file is taken at once rather than at the next poll.
    watchDir(dirname(this.o.paths.fullReloadFile), basename(this.o.paths.fullReloadFile));
    // One abort listener for the whole run, not one per sleep (a sleep per pass, 100 passes a second).
    let stop: (() => void) | undefined;
    const onAbort = (): void => stop?.();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal.aborted) {
        changed = false;
        await this.iterate();
        if (signal.aborted) return;
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            wake = stop = undefined;
            resolve();
          };
          // A short pause first lets a writer finish its burst (surealived writes addreal + chgreal
          // together); a change seen during the pass gets only that pause, with a single timer.
          let timer = setTimeout(done, changed ? WAKE_DELAY_MS : intervalMs);
          stop = done;
          wake = changed
            ? undefined
            : (): void => {
                wake = undefined;
                clearTimeout(timer);
                timer = setTimeout(done, WAKE_DELAY_MS);
              };
        });
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const w of watchers) w.close();
    }
  }

  async close(): Promise<void> {
    await this.tailer?.close();
    this.tailer = undefined;
  }

  private async consumeReloadFlag(): Promise<boolean> {
    // Checked first without an error: a failed unlink builds an exception, on every 100 ms pass.
    if (!existsSync(this.o.paths.fullReloadFile)) return false;
    try {
      await unlink(this.o.paths.fullReloadFile);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      this.o.log.error(`cannot remove reload flag ${this.o.paths.fullReloadFile}: ${(e as Error).message}`);
      return true;
    }
  }

  /** Parse the full file and replay its diff chain into memory; on success it becomes the desired config. */
  private async loadAndReplay(): Promise<LoadResult> {
    const stamp = await fileStamp(this.o.paths.fullSyncFile);
    const r = await loadFullFile(this.o.paths);
    if (!r.ok) {
      for (const e of r.errors) this.o.log.error(e);
      this.failedReloadStamp = stamp;
      return r;
    }
    this.failedReloadStamp = undefined;
    const tailer = new DiffTailer(this.o.paths.diffSyncDir, r.config.diffFile);
    const batch = await tailer.read();
    this.report(batch);
    const replay = applyDiffLines(r.config, batch.entries);
    for (const w of replay.warnings) this.o.log.warn(w);
    const config = replay.config;
    await this.tailer?.close();
    this.tailer = tailer;
    this.desired = config;
    this.o.log.info(
      `loaded ${this.o.paths.fullSyncFile}: ${config.virtuals.length} virtuals, ${config.virtuals.reduce((n, v) => n + v.reals.length, 0)} reals` +
        `, ${batch.entries.length} diff lines replayed, tailing ${tailer.current ?? '(no diff file)'}`,
    );
    return { ok: true, config };
  }

  /** Re-read the full file; true when it replaced the desired config (a full sync must follow). */
  private async reload(): Promise<boolean> {
    this.o.log.info(`full reload of ${this.o.paths.fullSyncFile}`);
    const r = await this.loadAndReplay();
    if (!r.ok) {
      // Unlike the original, the previous desired table stays in force.
      this.o.log.error(`ipvssync config error [${this.o.paths.fullSyncFile}], config couln't be reloaded (keeping the previous one)`);
      return false;
    }
    this.daemonsDue = true;
    this.failedDaemonPasses = 0;
    this.daemonRetryAt = 0;
    return true;
  }

  /**
   * Reads the kernel's sync daemons and starts, restarts or stops them as planned. Never throws:
   * a failure is logged and the pass is retried (after 0, 0.2, 0.4 ... s, at most maxRetryDelayMs).
   * Daemons are never stopped at exit: they keep syncing while ipvssync restarts.
   */
  private async syncDaemonsPass(): Promise<void> {
    const sd = this.o.syncDaemons;
    this.daemonsDue = false;
    if (!sd || sd.config.mode === 'none') return;
    let failed = false;
    try {
      const ops = planSyncDaemons(sd.config, await sd.control.readDaemons());
      if (ops.length === 0) this.o.log.info(`IPVS sync daemons as wanted (ipvs_sync_daemon ${sd.config.mode})`);
      const stopFailed = new Set<SyncDaemonState>();
      for (const op of ops) {
        // A daemon that could not be stopped still runs: starting its replacement would only fail with EEXIST.
        if (op.kind === 'start-daemon' && stopFailed.has(op.daemon.state)) continue;
        try {
          if (op.kind === 'stop-daemon') await sd.control.stopDaemon(op.daemon.state);
          else await sd.control.startDaemon(op.daemon);
          this.o.log.info(`IPVS ${formatSyncDaemonOp(op)}: ${op.why}`);
        } catch (e) {
          this.o.log.error(`IPVS ${formatSyncDaemonOp(op)} failed: ${(e as Error).message} (will retry)`);
          if (op.kind === 'stop-daemon') stopFailed.add(op.daemon.state);
          failed = true;
        }
      }
    } catch (e) {
      this.o.log.error(`cannot read the IPVS sync daemons: ${(e as Error).message} (will retry)`);
      failed = true;
    }
    if (!failed) {
      this.failedDaemonPasses = 0;
      return;
    }
    this.failedDaemonPasses++;
    this.daemonsDue = true;
    const delay = this.failedDaemonPasses <= 1 ? 0 : Math.min(this.maxRetryDelayMs, 100 * 2 ** (this.failedDaemonPasses - 1));
    this.daemonRetryAt = this.now() + delay;
  }

  private report(batch: TailBatch): void {
    for (const e of batch.errors) this.o.log.error(e);
    for (const w of batch.warnings) this.o.log.warn(w);
    if (batch.blocked !== undefined) {
      if (batch.blocked !== this.lastBlocked) this.o.log.error(batch.blocked);
      else this.o.log.dbdet(batch.blocked);
    }
    this.lastBlocked = batch.blocked;
  }

  /** Apply new diff lines to the desired config; the kernel gets the difference (or a full sync when dirty). */
  private async tail(fullSyncFollows: boolean): Promise<void> {
    if (!this.tailer) return;
    const t0 = this.now();
    const batch = await this.tailer.read();
    this.report(batch);
    if (batch.entries.length === 0) return;
    const before = this.desired;
    if (this.o.log.enabled('debug')) {
      for (const e of batch.entries) this.o.log.debug(`diff ${e.where}: ${e.line.cmd} ${e.line.vname} ${e.line.rname}`);
    }
    const r = applyDiffLines(before, batch.entries);
    for (const w of r.warnings) this.o.log.warn(w);
    this.desired = r.config;
    if (fullSyncFollows) return; // the full sync that follows covers these lines
    // The previous desired table stands in for the kernel: when it was applied cleanly they are equal.
    // Only the virtuals the lines touched can differ (diff lines never add or remove virtuals).
    const ids = [...r.touched];
    const ops = reconcile(tableOf(r.config, ids), tableOf(before, ids), { deleteUnmanaged: false });
    await this.applyOps(ops, 'info');
    // Where a change's latency goes (a pass's lines wait for the pass before them).
    if (this.o.log.enabled('debug')) this.o.log.debug(`diff pass: ${batch.entries.length} lines, ${ops.length} ops in ${this.now() - t0} ms`);
  }

  /** Read the kernel table, reconcile the whole desired table against it and apply the ops (spec 8.6). */
  private async fullSync(): Promise<void> {
    this.dirtyFlag = false;
    await this.fullSyncOnce();
    if (!this.dirtyFlag) {
      this.failedSyncs = 0;
      this.retryAt = 0;
      return;
    }
    this.failedSyncs++;
    const delay = this.failedSyncs <= 1 ? 0 : Math.min(this.maxRetryDelayMs, 100 * 2 ** (this.failedSyncs - 1));
    this.retryAt = this.now() + delay;
  }

  private async fullSyncOnce(): Promise<void> {
    let kernel;
    try {
      kernel = await this.o.backend.readTable();
    } catch (e) {
      this.o.log.error(`cannot read the IPVS table: ${(e as Error).message}`);
      this.dirtyFlag = true;
      return;
    }
    const ops = reconcile(toTable(this.desired), kernel, { deleteUnmanaged: this.o.deleteUnmanaged });
    const t0 = this.now();
    // A full sync may be 100k ops: each one at debug, a summary at info.
    const failed = await this.applyOps(ops, 'debug');
    if (ops.length > 0) {
      // Counted by runs: ops of a kind come in runs (a service, then its destinations).
      const kinds = new Map<string, number>();
      let run = ops[0]!.kind;
      let n = 0;
      for (let i = 0; i < ops.length; i++) {
        const k = ops[i]!.kind;
        if (k !== run) {
          kinds.set(run, (kinds.get(run) ?? 0) + n);
          run = k;
          n = 0;
        }
        n++;
      }
      kinds.set(run, (kinds.get(run) ?? 0) + n);
      const what = [...kinds].map(([k, n]) => `${n} ${k}`).join(', ');
      this.o.log.info(`full sync: ${ops.length - failed} of ${ops.length} ops applied (${what}) in ${this.now() - t0} ms`);
    }
  }

  /** Applies ops; each success is logged at `okLevel`, each failure at error level. Returns the failures. */
  private async applyOps(ops: readonly Op[], okLevel: 'info' | 'debug'): Promise<number> {
    if (ops.length === 0) return 0;
    let results;
    try {
      results = await this.o.backend.apply(ops);
    } catch (e) {
      this.o.log.error(`IPVS batch of ${ops.length} ops failed: ${(e as Error).message}`);
      this.dirtyFlag = true;
      return ops.length;
    }
    let failed = ops.length - results.length;
    const logOk = this.o.log.enabled(okLevel);
    for (let i = 0; i < results.length; i++) {
      const r = results[i]!;
      if (r.ok) {
        if (logOk) this.o.log[okLevel](`IPVS ${formatOp(r.op)}`);
      } else {
        this.o.log.error(`IPVS ${formatOp(r.op)} failed: ${r.error} (will retry)`);
        failed++;
      }
    }
    if (failed > 0) this.dirtyFlag = true;
    return failed;
  }

  private async cleanup(): Promise<void> {
    const current = this.tailer?.current;
    if (this.o.keepDiffs || !current) return;
    const now = this.now();
    if (now - this.lastCleanup < this.cleanupIntervalMs) return;
    this.lastCleanup = now;
    try {
      const r = await cleanupDiffs(this.o.paths.diffSyncDir, current);
      for (const d of r.deleted) this.o.log.debug(`removed old diff file ${d}`);
      for (const f of r.failed) this.o.log.warn(`cannot remove old diff file ${f}`);
    } catch (e) {
      this.o.log.warn(`cannot clean ${this.o.paths.diffSyncDir}: ${(e as Error).message}`);
    }
  }
}
