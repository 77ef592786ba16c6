// The surealived daemon: loads the XML, restores state from the dumps, runs the engine, and keeps the
// hand-off, dumps, statistics, notifiers and control port in line with the verdicts. SIGHUP -> reload().

import { mkdir } from 'node:fs/promises';
import type { MainConfig } from '../common/main-config.js';
import type { ServiceConfig } from './config/model.js';
import { formatIssue, loadServiceConfig } from './config/xml.js';
import { TesterRegistry } from '../testers/registry.js';
import type { Logger } from '../common/log.js';
import type { ProbeResult } from '../testers/contract.js';
import { Engine, type ProbeLoad } from './engine/engine.js';
import { descriptorBudget } from './engine/descriptor-budget.js';
import { openDescriptorCount, readNofileLimit } from './descriptors.js';
import { settleDumpWrites } from './state/dump-file.js';
import { buildState, type RealState, type VirtualState } from './engine/state.js';
import { carryOverState } from './engine/carry-over.js';
import { HandoffWriter } from './handoff/writer.js';
import { loadOfflineDump, saveOfflineDump, saveOfflineDumpSync } from './state/offline-dump.js';
import { hasOverrideEntry, loadOverrideDump, saveOverrideDump } from './state/override-dump.js';
import { writeFileAtomicSync } from './state/atomic-write.js';
import { formatOverrideDump } from './state/override-dump.js';
import { loadNotifyDump, readBootClock, saveNotifyDump, saveNotifyDumpSync } from './state/notify-dump.js';
import { loadStatsDump, saveStatsDump, saveStatsDumpSync } from './state/stats-dump.js';
import { recordProbe, updateVirtualStats, type ProbeSample } from './stats/statistics.js';
import { createStatsLogWriter, ensureStatsDir, type RealCycleRecord, type StatsLogWriter } from './stats/stats-log.js';
import { runRealNotifier, runSorryNotifier, runVirtualNotifier } from './notify/run.js';
import { applyFallbacks, retiredSorries, sorryLogLine, type FallbackEffects } from './engine/fallback.js';
import { commDumpEnabled, commDumpPath, createCommDump, type CommDump } from './debugcomm.js';
import { ControlServer } from './control/server.js';
import type { ControlInfo, ControlTarget } from './control/target.js';

export interface DaemonOptions {
  readonly xmlPath: string;
  readonly main: MainConfig;
  readonly log: Logger;
  /** -n: write no hand-off files. */
  readonly noSync?: boolean;
  /** -k (or use_offline_dump false): neither read nor write offline.dump. */
  readonly noOfflineDump?: boolean;
  readonly registry?: TesterRegistry;
  /** Start the control port (default true). */
  readonly control?: boolean;
  /** The watchdog's pid when running under -d. */
  readonly watchdogPid?: number;
  /** Monotonic clock for the engine (tests). */
  readonly now?: () => number;
}

export class ConfigRejected extends Error {
  constructor(readonly file: string, readonly lines: readonly string[]) {
    super(`configuration ${file} rejected:\n${lines.join('\n')}`);
    this.name = 'ConfigRejected';
  }
}

/** Load and validate the XML; warnings are logged, errors throw ConfigRejected with every message. */
export async function loadXml(path: string, registry: TesterRegistry, main: MainConfig, log: Logger): Promise<ServiceConfig> {
  const res = await loadServiceConfig(path, { registry, modulesPath: main.modulesPath });
  const errors: string[] = [];
  for (const i of res.issues) {
    if (i.severity === 'error') errors.push(formatIssue(i));
    else log.warn(formatIssue(i));
  }
  if (!res.config || errors.length > 0) throw new ConfigRejected(path, errors);
  return res.config;
}

/** When a real's last probe started (wall clock ms), for the per-round stats log. */
interface LastProbe {
  startMs: number;
  sample: ProbeSample;
  ok: boolean;
}

export class Daemon implements ControlTarget {
  readonly engine: Engine;
  readonly handoff: HandoffWriter | null;
  private states: VirtualState[] = [];
  private periodic: NodeJS.Timeout | null = null;
  private control: ControlServer | null = null;
  private readonly statsLog: StatsLogWriter;
  private readonly lastProbe = new Map<RealState, LastProbe>();
  private readonly roundStart = new Map<VirtualState, number>();
  private readonly comms = new Map<RealState, CommDump>();
  private offlineDirty = false;
  /** The override.dump write scheduled for the end of this turn, shared by its rsets. */
  private overridePending: { promise: Promise<void>; resolve: () => void; reject: (e: unknown) => void } | null = null;
  private lastStatsSave = Date.now();
  private stopped = false;
  /** Descriptors open before the first probe (measured once, at start). */
  private openAtStart = 0;
  /** Panic mode and sorry servers (engine/fallback.ts): logs, the sorry notifiers, diff lines. */
  private readonly fallbackFx: FallbackEffects;

  private constructor(private readonly opts: DaemonOptions, private readonly registry: TesterRegistry) {
    const m = opts.main;
    this.fallbackFx = { log: opts.log, queue: (d) => this.handoff?.queueReal(d), notifySorry: (s, dir) => void runSorryNotifier(s, dir, opts.log) };
    this.handoff =
      opts.noSync || m.noSync
        ? null
        : new HandoffWriter({ lockFile: m.lockSyncFile, fullFile: m.fullSyncFile, reloadFile: m.fullReloadFile, diffDir: m.diffSyncDir, log: opts.log });
    this.statsLog = createStatsLogWriter({ statsDir: m.statsDir, logStats: m.logStats, logStatsCombined: m.logStatsCombined }, opts.log);
    this.engine = new Engine({
      log: opts.log,
      minPeriodMs: m.loopIntervalMs > 0 ? m.loopIntervalMs : 100,
      startupSpreadMs: m.startupDelayMs,
      ...(opts.now ? { now: opts.now } : {}),
      comm: (r) => this.commFor(r),
      hooks: {
        onTransition: (r) => this.onTransition(r),
        onResult: (r, res, sample) => this.onResult(r, res, sample),
        onVirtualTested: (v) => this.evaluateVirtualNotifier(v),
      },
    });
  }

  get virtuals(): readonly VirtualState[] {
    return this.states;
  }

  get counters(): Engine['counters'] {
    return this.engine.counters;
  }

  get lateness(): Engine['lateness'] {
    return this.engine.lateness;
  }

  get probeLoad(): ProbeLoad {
    return this.engine.probeLoad;
  }

  /**
   * Probes may hold the descriptor limit (RLIMIT_NOFILE soft, or `maxfd` when set and lower) minus
   * a reserve for state files, hand-off, logs, control clients and notifiers; read at start and at
   * every reload, so `prlimit` on a running daemon takes effect at the next SIGHUP.
   */
  private applyDescriptorBudget(): void {
    const log = this.opts.log;
    const nofile = readNofileLimit();
    if (nofile === undefined) {
      log.warn('cannot read the descriptor limit (/proc/self/limits): probes are not limited');
      return;
    }
    const m = this.opts.main;
    const b = descriptorBudget({ soft: nofile.soft, ...(m.raw.has('maxfd') ? { maxfd: m.maxfd } : {}), openAtStart: this.openAtStart });
    for (const w of b.warnings) log.warn(w);
    this.engine.setDescriptorBudget(b.probes);
    log.info(`descriptor limit ${b.limit}: up to ${b.probes} for probes, ${b.reserve} reserved (${this.openAtStart} open at start)`);
  }

  /** Where the control port listens (null when disabled). */
  get controlAddress(): { address: string; port: number } | null {
    return this.control ? this.control.tcpAddress : null;
  }

  private get useOfflineDump(): boolean {
    return !this.opts.noOfflineDump && this.opts.main.useOfflineDump;
  }

  static async start(opts: DaemonOptions): Promise<Daemon> {
    const registry = opts.registry ?? TesterRegistry.withBuiltins();
    const config = await loadXml(opts.xmlPath, registry, opts.main, opts.log);
    const d = new Daemon(opts, registry);
    const m = opts.main;
    const states = buildState(config.virtuals);
    // Merge order as the original: override.dump, offline.dump, stats.dump, notify.dump.
    await loadOverrideDump(m.overrideDump, states, opts.log);
    if (d.useOfflineDump) await loadOfflineDump(m.offlineDump, states, opts.log);
    if (m.gatherStats) await loadStatsDump(m.statsDump, states, (v) => v.stats, opts.log);
    await loadNotifyDump(m.notifyDump, states, await readBootClock(), opts.log);
    if (m.debugComm) await mkdir(m.debugCommPath, { recursive: true }).catch((e: Error) => opts.log.warn(`cannot create debug_comm_path ${m.debugCommPath}: ${e.message}`));
    await ensureStatsDir({ statsDir: m.statsDir, logStats: m.logStats, logStatsCombined: m.logStatsCombined }, opts.log);
    d.states = states;
    for (const v of states) applyFallbacks(v, d.fallbackFx, false); // the forced full write carries them
    await d.handoff?.writeFull(states, true);
    try {
      if (opts.control ?? true) d.control = await d.startControl();
    } catch (e) {
      // The hand-off holds descriptors (lock, current diff file) from the first write.
      await d.handoff?.close();
      throw e;
    }
    d.openAtStart = openDescriptorCount() ?? 0;
    d.applyDescriptorBudget();
    d.engine.load(states);
    d.engine.start();
    d.periodic = setInterval(() => d.onSecond(), 1000);
    opts.log.info(`surealived: ${config.virtuals.length} virtuals, ${states.reduce((n, v) => n + v.reals.length, 0)} reals, ${d.engine.probeCount} probes`);
    return d;
  }

  private async startControl(): Promise<ControlServer> {
    const m = this.opts.main;
    const control = await ControlServer.start({
      target: this,
      host: m.listenAddr || '127.0.0.1',
      port: m.listenPort,
      ...(m.controlSocket ? { unixPath: m.controlSocket } : {}),
      ...(m.metricsListenPort > 0 ? { metricsHttp: { host: m.metricsListenAddr, port: m.metricsListenPort } } : {}),
      maxConnections: m.controlMaxClients > 0 ? m.controlMaxClients : 1024,
      idleTimeoutMs: (m.controlIdleTimeout > 0 ? m.controlIdleTimeout : 60) * 1000,
      log: this.opts.log,
    });
    this.opts.log.info(`control port listening on ${m.listenAddr}:${control.tcpAddress.port}`);
    return control;
  }

  /**
   * Re-read the XML and apply only what changed: unchanged reals keep their state and their probe
   * schedule. A broken XML is refused and the running configuration stays. Returns false if refused.
   */
  async reload(): Promise<boolean> {
    let config: ServiceConfig;
    try {
      config = await loadXml(this.opts.xmlPath, this.registry, this.opts.main, this.opts.log);
    } catch (e) {
      this.opts.log.error(`reload refused, keeping the running configuration: ${(e as Error).message}`);
      return false;
    }
    const next = buildState(config.virtuals);
    carryOverState(this.states, next);
    for (const s of retiredSorries(this.states, next)) {
      this.opts.log.info(sorryLogLine(s.virtual.config, s.config, false, null, 'no longer in the configuration'));
      this.fallbackFx.notifySorry(s, 'DOWN');
    }
    this.states = next;
    for (const v of next) applyFallbacks(v, this.fallbackFx, false); // the forced full write below carries them
    this.lastProbe.clear();
    this.roundStart.clear();
    this.comms.clear();
    this.applyDescriptorBudget();
    this.engine.load(next);
    await this.handoff?.writeFull(next, true);
    void saveOverrideDump(this.opts.main.overrideDump, next, this.opts.log);
    if (this.useOfflineDump) void saveOfflineDump(this.opts.main.offlineDump, next, this.opts.log);
    this.opts.log.info(`surealived: configuration reloaded (${config.virtuals.length} virtuals)`);
    return true;
  }

  /** Graceful stop: pending hand-off lines and every dump are written before this resolves. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.periodic) clearInterval(this.periodic);
    this.periodic = null;
    this.engine.stop();
    await this.control?.close();
    await this.handoff?.close();
    await settleDumpWrites();
    const m = this.opts.main;
    if (this.useOfflineDump) saveOfflineDumpSync(m.offlineDump, this.states, this.opts.log);
    if (m.gatherStats) {
      for (const v of this.states) updateVirtualStats(v.stats, v.reals);
      saveStatsDumpSync(m.statsDump, this.states, (v) => v.stats, this.opts.log);
    }
    saveNotifyDumpSync(m.notifyDump, this.states, this.opts.log);
  }

  // ---- ControlTarget -------------------------------------------------------------------------

  commitRset(real: RealState): Promise<void> {
    this.handoff?.queueReal(real);
    applyFallbacks(real.virtual, this.fallbackFx, true);
    return this.persistOverrides();
  }

  /**
   * Group commit of override.dump: every rset of one turn of the event loop shares one atomic write
   * (temp + fsync + rename), done synchronously at the end of the turn: a burst of commands costs a
   * few writes, and no write waits behind busy probe I/O for the thread pool. Rejects if the file
   * cannot be written: the control port then reports it and undoes the change.
   */
  private persistOverrides(): Promise<void> {
    if (this.overridePending) return this.overridePending.promise;
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.overridePending = { promise, resolve, reject };
    setImmediate(() => {
      const pending = this.overridePending!;
      this.overridePending = null;
      try {
        writeFileAtomicSync(this.opts.main.overrideDump, formatOverrideDump(this.states));
        pending.resolve();
      } catch (e) {
        pending.reject(e);
      }
    });
    return promise;
  }

  info(): ControlInfo {
    let offline = 0;
    let overrides = 0;
    for (const v of this.states)
      for (const r of v.reals) {
        if (!r.online) offline++;
        if (hasOverrideEntry(r)) overrides++;
      }
    return {
      pid: process.pid,
      watchdogPid: this.opts.watchdogPid ?? -1,
      offlineSize: this.useOfflineDump ? offline : null,
      overrideSize: overrides,
      gatherStats: this.opts.main.gatherStats,
    };
  }

  // ---- engine hooks --------------------------------------------------------------------------

  private onTransition(r: RealState): void {
    this.handoff?.queueReal(r);
    applyFallbacks(r.virtual, this.fallbackFx, true);
    this.offlineDirty = true;
    const tc = r.virtual.config.tester;
    if (tc.realNotifyUp || tc.realNotifyDown) void runRealNotifier(r, r.online ? 'UP' : 'DOWN', this.opts.log);
    if (r.virtual.reals.every((x) => x.tested)) this.evaluateVirtualNotifier(r.virtual);
    if (this.offlineDirty) setImmediate(() => this.flushOffline());
  }

  private onResult(r: RealState, res: ProbeResult, sample: ProbeSample): void {
    if (this.opts.main.gatherStats) recordProbe(r.stats, sample, r.virtual.config.tester.statsSamples);
    if (this.opts.main.logStats || this.opts.main.logStatsCombined) {
      this.lastProbe.set(r, { startMs: Date.now() - sample.totalMs, sample, ok: res.ok });
    }
  }

  private evaluateVirtualNotifier(v: VirtualState): void {
    const tc = v.config.tester;
    if (!tc.notifyUp && !tc.notifyDown) return;
    const run = runVirtualNotifier(v, this.opts.log);
    if (run.decision?.fire) void saveNotifyDump(this.opts.main.notifyDump, this.states, this.opts.log);
  }

  private flushOffline(): void {
    if (!this.offlineDirty) return;
    this.offlineDirty = false;
    if (this.useOfflineDump) void saveOfflineDump(this.opts.main.offlineDump, this.states, this.opts.log);
  }

  private commFor(r: RealState): ((tag: 'write' | 'read' | 'read_av' | 'eof', data: Buffer) => void) | undefined {
    const m = this.opts.main;
    if (!commDumpEnabled(m.debugComm, r.virtual.config.tester.debugcomm)) return undefined;
    let c = this.comms.get(r);
    if (!c) {
      c = createCommDump(commDumpPath(m.debugCommPath, r.virtual.config.name, r.config.name), this.opts.log);
      this.comms.set(r, c);
    }
    c.reset();
    const dump = c;
    return (tag, data) => dump.record(tag, data);
  }

  /** Once a second: periodic full hand-off, per-round stats logs, stats.dump. */
  private onSecond(): void {
    // Fallbacks follow every change at once (verdicts, rset); this sweep catches any other (an rset undone).
    for (const v of this.states) applyFallbacks(v, this.fallbackFx, true);
    void this.handoff?.maybeWritePeriodic(this.states);
    const m = this.opts.main;
    const now = Date.now();
    if (m.gatherStats || m.logStats || m.logStatsCombined) this.endStatsRounds(now);
    if (m.gatherStats && now - this.lastStatsSave > m.statsDumpSavesec * 1000) {
      this.lastStatsSave = now;
      void saveStatsDump(m.statsDump, this.states, (v) => v.stats, this.opts.log);
    }
  }

  /**
   * The original updated a virtual's statistics and wrote its stats block at each cycle end; reals are
   * now probed on their own schedule, so a round ends every loopdelay seconds (at least 1 s) and uses
   * each real's latest probe.
   */
  private endStatsRounds(now: number): void {
    const m = this.opts.main;
    for (const v of this.states) {
      if (v.reals.length === 0) continue;
      const start = this.roundStart.get(v);
      if (start === undefined) {
        this.roundStart.set(v, now);
        continue;
      }
      if (now - start < Math.max(1000, v.config.tester.loopdelay * 1000)) continue;
      this.roundStart.set(v, now);
      if (m.gatherStats) updateVirtualStats(v.stats, v.reals);
      if (!m.logStats && !m.logStatsCombined) continue;
      const reals: RealCycleRecord[] = [];
      for (const r of v.reals) {
        const lp = this.lastProbe.get(r);
        if (!lp) continue;
        reals.push({ real: r.config, startMs: lp.startMs, connMs: lp.sample.connMs, respMs: lp.sample.respMs, totalMs: lp.sample.totalMs, currtest: lp.ok, online: r.online });
      }
      if (reals.length > 0) void this.statsLog.write({ virtual: v.config, startMs: start, deadlineMs: now, reals });
    }
  }
}
