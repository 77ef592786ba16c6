// The tester engine: probes every real every `loopdelay` seconds, enforces a hard deadline per probe,
// runs an identical probe of one real shared by several virtuals once, and turns verdicts into state
// changes through the retries hysteresis. I/O of the results (hand-off, dumps, notifiers) is the
// caller's, through the hooks.

import { setMaxListeners } from 'node:events';
import type { ProbeContext, ProbeResult, ProbeTarget, Tester } from '../../testers/contract.js';
import type { Logger } from '../../common/log.js';
import { applyVerdict } from './verdict.js';
import { LatenessHistogram } from './lateness.js';
import { Wheel } from './wheel.js';
import { PROBLEM_MARKER, type ProbeSample } from '../stats/statistics.js';
import { newTestCounters, type RealState, type TestCounters, type VirtualState } from './state.js';

export interface EngineHooks {
  /** A real's online state changed (after hysteresis). */
  onTransition?(r: RealState): void;
  /** A probe of a real was evaluated (every probe; keep it cheap). */
  onResult?(r: RealState, result: ProbeResult, sample: ProbeSample): void;
  /** Every real of this virtual has now been evaluated at least once. */
  onVirtualTested?(v: VirtualState): void;
}

export interface EngineOptions {
  readonly log: Logger;
  readonly hooks?: EngineHooks;
  /** Shortest probe period in ms (loopdelay 0 means "as often as this"); the original's loop_interval_ms. */
  readonly minPeriodMs?: number;
  /** Window over which the first probes are spread at start-up (ms); startup_delay_ms. */
  readonly startupSpreadMs?: number;
  /** Scheduling resolution (ms). */
  readonly tickMs?: number;
  /** Monotonic clock (ms). */
  readonly now?: () => number;
  /** Debug-comm recorder for a real, when enabled for its virtual. */
  readonly comm?: (r: RealState) => ((tag: 'write' | 'read' | 'read_av' | 'eof', data: Buffer) => void) | undefined;
}

/** One probe of one real (tester + target + parameters), shared by every virtual that has that real. */
interface ProbeGroup {
  readonly key: string;
  readonly tester: Tester;
  readonly params: unknown;
  readonly target: ProbeTarget;
  readonly timeoutMs: number;
  readonly periodMs: number;
  subscribers: RealState[];
  /** Incremented at each start; late results carry an older value. */
  seq: number;
  running: boolean;
  /** When the current (or next) probe is due: the fixed-rate schedule advances this by periodMs. */
  due: number;
  startedAt: number;
  /** false once the group is removed by a reload. */
  live: boolean;
}

/**
 * Probes whose deadlines fall in one wheel tick: they expire at the same moment, so they share one
 * AbortController (and, for one timeout, one ProbeContext) and one wheel entry.
 */
interface DeadlineBatch {
  readonly controller: AbortController;
  readonly tick: number;
  readonly groups: ProbeGroup[];
  readonly seqs: number[];
  ctx: ProbeContext | null;
}

/** Wheel entries: a group is its own start entry (one pending at a time); a batch is a deadline. */
type WheelItem = ProbeGroup | DeadlineBatch;

/** Starts allowed per wheel advance on top of twice the average rate (see takeStartBudget). */
const START_BURST = 64;
/** A late wheel advance gets start budget for at most this much elapsed time. */
const MAX_BUDGET_WINDOW_MS = 100;

/**
 * When the next probe of a group is due (fixed rate): one period after the previous due time, so
 * event-loop lag does not accumulate and each real is probed every period on average. A probe that
 * itself outlasted the period is followed at once (a slow real is probed back to back, as the
 * original); when the schedule is more than a period behind (the process was stalled), the missed
 * rounds are skipped and the real keeps its phase, so stalled probes do not bunch up.
 */
export function nextDue(due: number, startedAt: number, end: number, periodMs: number): number {
  if (end - startedAt >= periodMs) return end;
  const next = due + periodMs;
  if (next > end - periodMs) return next;
  return next + Math.ceil((end - next) / periodMs) * periodMs;
}

export class Engine {
  readonly counters: TestCounters = newTestCounters();
  /** How late probes start against their schedule (metrics, bench:control). */
  readonly lateness = new LatenessHistogram();
  private groups = new Map<string, ProbeGroup>();
  private virtualsState: VirtualState[] = [];
  private readonly wheel: Wheel<WheelItem>;
  private readonly now: () => number;
  private readonly minPeriodMs: number;
  private readonly spreadMs: number;
  private readonly tickMs: number;
  private readonly untested = new Map<VirtualState, number>();
  /** Deadline batches not yet fired, by wheel tick. */
  private readonly batches = new Map<number, DeadlineBatch>();
  /** Probe starts per ms, over all groups (for the start budget). */
  private startRate = 0;
  private budgetTick = -1;
  private budgetLeft = 0;
  private running = false;

  constructor(private readonly opts: EngineOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.minPeriodMs = opts.minPeriodMs ?? 100;
    this.spreadMs = opts.startupSpreadMs ?? 1000;
    this.tickMs = opts.tickMs ?? 10;
    this.wheel = new Wheel({ tickMs: this.tickMs, now: this.now }, (item) => this.fire(item));
  }

  get virtuals(): readonly VirtualState[] {
    return this.virtualsState;
  }

  /** Number of distinct probes (shared probes counted once). */
  get probeCount(): number {
    return this.groups.size;
  }

  /**
   * Install a (new) set of virtuals. Probes whose key is unchanged keep their schedule and any probe in
   * flight; new probes are spread over the start-up window; probes no longer configured are dropped
   * (one in flight runs to its verdict or deadline, and its result is ignored).
   */
  load(virtuals: VirtualState[]): void {
    const old = this.groups;
    const next = new Map<string, ProbeGroup>();
    const fresh: ProbeGroup[] = [];
    this.untested.clear();
    for (const v of virtuals) {
      const pending = v.reals.filter((r) => !r.tested).length;
      if (pending > 0) this.untested.set(v, pending);
      const tc = v.config.tester;
      for (const r of v.reals) {
        const rc = r.config;
        let g = next.get(rc.probeKey);
        if (!g) {
          const prev = old.get(rc.probeKey);
          if (prev) {
            prev.subscribers = [];
            g = prev;
          } else {
            g = {
              key: rc.probeKey,
              tester: tc.tester,
              params: rc.params,
              target: { addr: rc.addr, family: rc.family, port: rc.testport, vname: v.config.name, rname: rc.name },
              timeoutMs: Math.max(1, Math.round(tc.timeout * 1000)),
              periodMs: Math.max(this.minPeriodMs, Math.round(tc.loopdelay * 1000)),
              subscribers: [],
              seq: 0,
              running: false,
              due: 0,
              startedAt: 0,
              live: true,
            };
            fresh.push(g);
          }
          next.set(rc.probeKey, g);
        }
        g.subscribers.push(r);
      }
    }
    for (const [key, g] of old) if (!next.has(key)) g.live = false;
    this.groups = next;
    this.virtualsState = virtuals;
    this.startRate = 0;
    for (const g of next.values()) this.startRate += 1 / g.periodMs;
    // Spread the first probes evenly, so N reals with loopdelay L make a steady N/L probes a second.
    const t0 = this.now();
    fresh.forEach((g, i) => {
      const window = Math.min(this.spreadMs, g.periodMs);
      g.due = t0 + (fresh.length > 1 ? (i * window) / fresh.length : 0);
      this.wheel.add(g.due, g);
    });
    for (const v of virtuals) if (v.reals.length === 0) this.opts.hooks?.onVirtualTested?.(v);
  }

  start(): void {
    this.running = true;
    this.wheel.start();
  }

  /** Stop scheduling and abort probes in flight. */
  stop(): void {
    this.running = false;
    this.wheel.stop();
    for (const b of this.batches.values()) b.controller.abort();
    this.batches.clear();
  }

  /** For tests and the CLI's one-shot mode: advance the wheel now. */
  tick(): void {
    this.wheel.advance();
  }

  private fire(item: WheelItem): void {
    if ('controller' in item) return this.expireBatch(item);
    const g = item;
    if (!g.live || g.running || !this.running) return;
    const now = this.now();
    if (this.takeStartBudget(now)) this.startProbe(g, now);
    else this.wheel.defer(g);
  }

  /**
   * Bounds the probes started in one wheel advance to twice the average rate (plus a burst), so a
   * stall does not release thousands of probes at once: their connects would run back to back and
   * every probe in the burst would measure the whole burst as its latency.
   */
  private takeStartBudget(now: number): boolean {
    const tick = Math.floor(now / this.tickMs);
    if (tick !== this.budgetTick) {
      const elapsed = this.budgetTick < 0 ? this.tickMs : Math.min((tick - this.budgetTick) * this.tickMs, MAX_BUDGET_WINDOW_MS);
      this.budgetTick = tick;
      this.budgetLeft = START_BURST + Math.ceil(2 * this.startRate * elapsed);
    }
    if (this.budgetLeft <= 0) return false;
    this.budgetLeft--;
    return true;
  }

  /** The deadline batch (shared AbortController) for a probe starting now. */
  private batchFor(startedAt: number, timeoutMs: number): DeadlineBatch {
    const tick = this.wheel.tickOf(startedAt + timeoutMs);
    let b = this.batches.get(tick);
    if (!b) {
      const controller = new AbortController();
      // Every probe of the batch listens on this one signal.
      setMaxListeners(0, controller.signal);
      b = { controller, tick, groups: [], seqs: [], ctx: null };
      this.batches.set(tick, b);
      this.wheel.add(startedAt + timeoutMs, b);
    }
    return b;
  }

  private startProbe(g: ProbeGroup, startedAt: number): void {
    this.lateness.record(startedAt - g.due);
    g.seq++;
    const seq = g.seq;
    g.running = true;
    g.startedAt = startedAt;
    const batch = this.batchFor(startedAt, g.timeoutMs);
    batch.groups.push(g);
    batch.seqs.push(seq);
    const first = g.subscribers[0];
    const comm = first && this.opts.comm ? this.opts.comm(first) : undefined;
    let ctx: ProbeContext;
    if (comm) ctx = { signal: batch.controller.signal, timeoutMs: g.timeoutMs, comm };
    else if (batch.ctx !== null && batch.ctx.timeoutMs === g.timeoutMs) ctx = batch.ctx;
    else ctx = batch.ctx = { signal: batch.controller.signal, timeoutMs: g.timeoutMs };
    let p: Promise<ProbeResult>;
    try {
      p = g.tester.probe(g.target, g.params, ctx);
    } catch (e) {
      p = Promise.resolve({ ok: false, detail: `tester ${g.tester.name} failed: ${(e as Error).message}` });
    }
    p.then(
      (res) => this.finish(g, seq, res),
      (e: unknown) => this.finish(g, seq, { ok: false, detail: `tester ${g.tester.name} failed: ${e instanceof Error ? e.message : String(e)}` }),
    );
  }

  /**
   * The hard deadline of every probe in the batch: those still running are judged failed now,
   * whatever the tester still does, and the shared signal is aborted so the testers let go.
   */
  private expireBatch(b: DeadlineBatch): void {
    this.batches.delete(b.tick);
    let late = false;
    for (let i = 0; i < b.groups.length; i++) {
      const g = b.groups[i]!;
      if (g.running && g.seq === b.seqs[i]) late = true;
    }
    if (!late) return;
    b.controller.abort();
    for (let i = 0; i < b.groups.length; i++) {
      const g = b.groups[i]!;
      if (g.running && g.seq === b.seqs[i]) {
        if (g.live) this.finish(g, g.seq, { ok: false, detail: `no verdict within ${g.timeoutMs / 1000}s`, problem: 'conn' });
        else g.running = false;
      }
    }
  }

  private finish(g: ProbeGroup, seq: number, res: ProbeResult): void {
    if (!g.running || seq !== g.seq) return;
    g.running = false;
    if (!g.live) return;
    const end = this.now();
    const totalMs = end - g.startedAt;
    const sample = sampleOf(res, totalMs);
    const c = this.counters;
    if (res.ok) c.success++;
    else c.failed++;
    if (res.problem === 'conn') c.connProblem++;
    else if (res.problem === 'arp') c.arpProblem++;
    else if (res.problem === 'rst') c.rstProblem++;
    c.bytesSent += res.bytesSent ?? 0;
    c.bytesRcvd += res.bytesReceived ?? 0;
    for (const r of g.subscribers) this.evaluate(r, res, sample);
    if (this.running) {
      g.due = nextDue(g.due, g.startedAt, end, g.periodMs);
      this.wheel.add(g.due, g);
    }
  }

  private evaluate(r: RealState, res: ProbeResult, sample: ProbeSample): void {
    const tc = r.virtual.config.tester;
    const was = r.online;
    const h = applyVerdict(r, res.ok, tc.retries2ok, tc.retries2fail);
    r.okCount = h.okCount;
    r.failCount = h.failCount;
    r.online = h.online;
    r.lastDetail = res.detail;
    r.stats.lastLatencyMs = sample.totalMs;
    if (res.ok) r.stats.checksOk++;
    else r.stats.checksFailed++;
    this.opts.hooks?.onResult?.(r, res, sample);
    if (!r.tested) {
      r.tested = true;
      const left = (this.untested.get(r.virtual) ?? 1) - 1;
      if (left <= 0) {
        this.untested.delete(r.virtual);
        this.opts.hooks?.onVirtualTested?.(r.virtual);
      } else this.untested.set(r.virtual, left);
    }
    if (h.online !== was) {
      if (h.online) this.counters.onlineSet++;
      else this.counters.offlineSet++;
      const v = r.virtual.config;
      const rc = r.config;
      this.opts.log.info(
        `Real: [${v.name}:${rc.name} - ${v.addr}:${v.port}:${v.proto} ${rc.addr}:${rc.port}] changed its test state to ${h.online ? 'ONLINE' : 'OFFLINE'} (rstate = ${r.rstate})` +
          (h.online ? '' : ` [${res.detail}]`),
      );
      this.opts.hooks?.onTransition?.(r);
    }
  }
}

/** Stats timing of a probe: conn/resp split at connectMs; failed connections get the original's markers. */
function sampleOf(res: ProbeResult, totalMs: number): ProbeSample {
  if (res.connectMs !== undefined) return { connMs: res.connectMs, respMs: Math.max(0, totalMs - res.connectMs), totalMs };
  if (res.problem) return { connMs: PROBLEM_MARKER[res.problem], respMs: 0, totalMs, problem: res.problem };
  return { connMs: 0, respMs: totalMs, totalMs };
}
