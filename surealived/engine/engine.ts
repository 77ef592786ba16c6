// The tester engine: probes every real every `loopdelay` seconds, enforces a hard deadline per probe,
// runs an identical probe of one real shared by several virtuals once, and turns verdicts into state
// changes through the retries hysteresis. I/O of the results (hand-off, dumps, notifiers) is the
// caller's, through the hooks.

import { setMaxListeners } from 'node:events';
import type { LocalErrno, ProbeContext, ProbeResult, ProbeTarget, Tester } from '../../testers/contract.js';
import type { Logger } from '../../common/log.js';
import { applyVerdict } from './verdict.js';
import { LatenessHistogram } from './lateness.js';
import { LocalErrorLog } from './local-errors.js';
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
  /**
   * Descriptors all probes in flight may hold together (see descriptor-budget.ts); probes beyond it
   * wait, in order, for a running probe to end. Default: no limit.
   */
  readonly descriptorBudget?: number;
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
  /** When the next probe may start: its due time, or the end of a previous probe that overran it. */
  readyAt: number;
  startedAt: number;
  /** false once the group is removed by a reload. */
  live: boolean;
  /** Descriptors one probe of this group holds (the tester's descriptorsPerProbe). */
  readonly cost: number;
  /** Descriptors counted against the budget for the probe in flight (0 when none). */
  held: number;
  /** In the queue of probes waiting for descriptors. */
  waiting: boolean;
}

/** What the descriptor budget looks like now (metrics). */
export interface ProbeLoad {
  readonly descriptorBudget: number;
  readonly descriptorsInUse: number;
  readonly waiting: number;
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
 * A timed-out probe ends a little after one of its real's slots when the timeout is a whole number of
 * periods (the deadline's tick, the event loop's lag): within this share of the period the next probe
 * starts at once, on that slot. Probes whose deadlines were handled late, together, wait for their own
 * next slots instead of restarting as one bunch.
 */
const OVERRUN_TOLERANCE = 0.1;

/**
 * When the next probe of a group is due (fixed rate): one period after the previous due time, so
 * event-loop lag does not accumulate and each real is probed every period on average. Due times stay
 * on the real's own grid (first due + k periods), the phase the start-up spread gave it:
 * - started late by less than a period (event-loop lag): the next slot, at once if it has passed;
 * - the probe failed after outlasting the period (a timeout) and ended just after one of its slots:
 *   that slot, so the next probe starts at once and a silent real is still found in retries2fail x
 *   timeout (timeout a whole number of periods, as usual);
 * - otherwise (a slow success, a stall, a wait for descriptors) the slots already passed are skipped.
 * Never re-timed from the probe's end: after an outage every probe that ended in one late wheel
 * advance would share one phase, and probes that succeeded late (a SYN retransmitted when the
 * network came back) would start again at once; both made thousands of connects arrive at the reals
 * together on recovery, overflowing their accept queues (bench:checks, silent scenario).
 */
export function nextDue(due: number, startedAt: number, end: number, periodMs: number, failed = false): number {
  const next = due + periodMs;
  if (next >= end) return next;
  if (end - startedAt < periodMs && next > end - periodMs) return next;
  if (failed && end - startedAt >= periodMs) {
    const overran = next + Math.floor((end - next) / periodMs) * periodMs;
    if (end - overran <= periodMs * OVERRUN_TOLERANCE) return overran;
  }
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
  /** Batches whose deadline came in this wheel advance, expired in the check phase (see queueExpiry). */
  private expiring: DeadlineBatch[] = [];
  /** Probe starts per ms, over all groups (for the start budget). */
  private startRate = 0;
  private budgetTick = -1;
  private budgetLeft = 0;
  private running = false;
  private descriptorBudget: number;
  private descriptorsInUse = 0;
  /** Probes due but waiting for descriptors, oldest first; entries before waitHead are consumed. */
  private waitQueue: ProbeGroup[] = [];
  private waitHead = 0;
  private readonly localLog = new LocalErrorLog();
  private housekeeping: NodeJS.Timeout | null = null;

  constructor(private readonly opts: EngineOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.minPeriodMs = opts.minPeriodMs ?? 100;
    this.spreadMs = opts.startupSpreadMs ?? 1000;
    this.tickMs = opts.tickMs ?? 10;
    this.descriptorBudget = opts.descriptorBudget ?? Infinity;
    this.wheel = new Wheel({ tickMs: this.tickMs, now: this.now }, (item) => this.fire(item));
  }

  get virtuals(): readonly VirtualState[] {
    return this.virtualsState;
  }

  /** The descriptor budget, probes waiting for it and descriptors held by probes in flight. */
  get probeLoad(): ProbeLoad {
    return { descriptorBudget: this.descriptorBudget, descriptorsInUse: this.descriptorsInUse, waiting: this.waitQueue.length - this.waitHead };
  }

  /** A new budget (SIGHUP re-reads the descriptor limit); waiting probes start if it grew. */
  setDescriptorBudget(n: number): void {
    this.descriptorBudget = n;
    this.drainWaiting();
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
              readyAt: 0,
              startedAt: 0,
              live: true,
              cost: Math.max(1, tc.tester.descriptorsPerProbe ?? 1),
              held: 0,
              waiting: false,
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
      g.readyAt = g.due;
      this.wheel.add(g.due, g);
    });
    for (const v of virtuals) if (v.reals.length === 0) this.opts.hooks?.onVirtualTested?.(v);
  }

  start(): void {
    this.running = true;
    this.wheel.start();
    this.housekeeping ??= setInterval(() => this.pollLocalLog(this.now()), 1000);
    this.housekeeping.unref();
  }

  /** Stop scheduling and abort probes in flight. */
  stop(): void {
    this.running = false;
    this.wheel.stop();
    for (const b of this.batches.values()) b.controller.abort();
    this.batches.clear();
    this.expiring = [];
    for (let i = this.waitHead; i < this.waitQueue.length; i++) this.waitQueue[i]!.waiting = false;
    this.waitQueue = [];
    this.waitHead = 0;
    if (this.housekeeping) clearInterval(this.housekeeping);
    this.housekeeping = null;
    this.pollLocalLog(Infinity);
  }

  /** For tests and the CLI's one-shot mode: advance the wheel now. */
  tick(): void {
    this.wheel.advance();
  }

  /**
   * Deadlines are due in the timers phase of the event loop, before the poll phase reads the sockets.
   * After a stall (GC, a busy host) answers that arrived in time may still be unread: judging then
   * would fail probes that succeeded. So the batch expires in the check phase (setImmediate), after
   * the poll phase has delivered what is already there.
   */
  private queueExpiry(b: DeadlineBatch): void {
    this.expiring.push(b);
    if (this.expiring.length === 1) setImmediate(this.expirePending);
  }

  private readonly expirePending = (): void => {
    const due = this.expiring;
    this.expiring = [];
    for (const b of due) this.expireBatch(b);
  };

  private fire(item: WheelItem): void {
    if ('controller' in item) return this.queueExpiry(item);
    const g = item;
    if (!g.live || g.running || g.waiting || !this.running) return;
    // Behind probes already waiting, or beyond the descriptor budget: wait in order, unjudged.
    if (this.waitHead < this.waitQueue.length || !this.fits(g)) {
      g.waiting = true;
      this.waitQueue.push(g);
      return;
    }
    const now = this.now();
    if (this.takeStartBudget(now)) this.startProbe(g, now);
    else this.wheel.defer(g);
  }

  /** A probe of `g` may start without going over the budget (a lone probe always may). */
  private fits(g: ProbeGroup): boolean {
    return this.descriptorsInUse + g.cost <= this.descriptorBudget || this.descriptorsInUse === 0;
  }

  /** The probe of `g` has ended (or was abandoned at its deadline): its descriptors go to waiting probes. */
  private release(g: ProbeGroup): void {
    this.descriptorsInUse -= g.held;
    g.held = 0;
    this.drainWaiting();
  }

  private drainWaiting(): void {
    const q = this.waitQueue;
    while (this.waitHead < q.length) {
      const g = q[this.waitHead]!;
      if (g.live && this.running && !g.running) {
        if (!this.fits(g)) break;
        this.waitHead++;
        g.waiting = false;
        this.startProbe(g, this.now());
      } else {
        this.waitHead++;
        g.waiting = false;
      }
    }
    if (this.waitHead === q.length) {
      // Called at every probe's end: no new array when nothing waited.
      if (q.length > 0) this.waitQueue = [];
      this.waitHead = 0;
    } else if (this.waitHead > 1024 && this.waitHead * 2 > q.length) {
      this.waitQueue = q.slice(this.waitHead);
      this.waitHead = 0;
    }
  }

  private pollLocalLog(now: number): void {
    const line = this.localLog.poll(now);
    if (line !== undefined) this.opts.log.error(line);
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
    // Lateness is the scheduler's: a probe following one that overran its slot is not late.
    this.lateness.record(startedAt - g.readyAt);
    g.seq++;
    const seq = g.seq;
    g.running = true;
    g.startedAt = startedAt;
    g.held = g.cost;
    this.descriptorsInUse += g.cost;
    const batch = this.batchFor(startedAt, g.timeoutMs);
    batch.groups.push(g);
    batch.seqs.push(seq);
    const first = g.subscribers[0];
    const comm = first && this.opts.comm ? this.opts.comm(first) : undefined;
    let ctx: ProbeContext;
    if (comm) ctx = { signal: batch.controller.signal, timeoutMs: g.timeoutMs, comm };
    else if (batch.ctx !== null && batch.ctx.timeoutMs === g.timeoutMs) ctx = batch.ctx;
    else ctx = batch.ctx = { signal: batch.controller.signal, timeoutMs: g.timeoutMs };
    const tester = g.tester;
    if (tester.start !== undefined) {
      // The callback form: one closure per probe instead of a Promise and its reactions. A result
      // given before start() returns (the probe could not start) is judged in a microtask, as a
      // promise's would be, so that finish() never runs inside startProbe().
      let starting = true;
      const done = (res: ProbeResult): void => {
        if (starting) queueMicrotask(() => this.finish(g, seq, res));
        else this.finish(g, seq, res);
      };
      try {
        tester.start(g.target, g.params, ctx, done);
      } catch (e) {
        done({ ok: false, detail: `tester ${tester.name} failed: ${(e as Error).message}` });
      }
      starting = false;
      return;
    }
    let p: Promise<ProbeResult>;
    try {
      p = tester.probe(g.target, g.params, ctx);
    } catch (e) {
      p = Promise.resolve({ ok: false, detail: `tester ${tester.name} failed: ${(e as Error).message}` });
    }
    p.then(
      (res) => this.finish(g, seq, res),
      (e: unknown) => this.finish(g, seq, { ok: false, detail: `tester ${tester.name} failed: ${e instanceof Error ? e.message : String(e)}` }),
    );
  }

  /**
   * The hard deadline of every probe in the batch: those still running are judged failed now,
   * whatever the tester still does, and the shared signal is aborted so the testers let go.
   */
  private expireBatch(b: DeadlineBatch): void {
    this.batches.delete(b.tick);
    let late: ProbeGroup[] | null = null;
    for (let i = 0; i < b.groups.length; i++) {
      const g = b.groups[i]!;
      if (g.running && g.seq === b.seqs[i]) (late ??= []).push(g);
    }
    if (late === null) return;
    // The engine's verdict stands: what testers report as they let go (synchronously, from the abort
    // below, on the callback path) carries the probe's old seq and is ignored.
    for (const g of late) g.seq++;
    b.controller.abort();
    for (const g of late) {
      if (g.live) this.finish(g, g.seq, { ok: false, detail: `no verdict within ${g.timeoutMs / 1000}s`, problem: 'conn' });
      else {
        g.running = false;
        this.release(g);
      }
    }
  }

  private finish(g: ProbeGroup, seq: number, res: ProbeResult): void {
    if (!g.running || seq !== g.seq) return;
    g.running = false;
    this.release(g);
    if (!g.live) return;
    const end = this.now();
    if (res.local !== undefined) {
      // The director's shortage, not the real's answer: no verdict, no statistics, same schedule.
      this.recordLocal(res.local, g, end);
      this.reschedule(g, end, false);
      return;
    }
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
    this.reschedule(g, end, !res.ok);
  }

  private reschedule(g: ProbeGroup, end: number, failed: boolean): void {
    if (!this.running) return;
    g.due = nextDue(g.due, g.startedAt, end, g.periodMs, failed);
    g.readyAt = Math.max(g.due, end);
    this.wheel.add(g.readyAt, g);
  }

  private recordLocal(errno: LocalErrno, g: ProbeGroup, now: number): void {
    const m = this.counters.localErrors;
    m.set(errno, (m.get(errno) ?? 0) + 1);
    const t = g.target;
    const line = this.localLog.record(errno, now, `${t.vname}:${t.rname} ${t.addr}:${t.port}`);
    if (line !== undefined) this.opts.log.error(line);
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
