// The tester engine: probes every real every `loopdelay` seconds, enforces a hard deadline per probe,
// runs an identical probe of one real shared by several virtuals once, and turns verdicts into state
// changes through the retries hysteresis. I/O of the results (hand-off, dumps, notifiers) is the
// caller's, through the hooks.

import type { ProbeResult, ProbeTarget, Tester } from '../../testers/contract.js';
import type { Logger } from '../log.js';
import { applyVerdict } from './verdict.js';
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
  /** Incremented at each start; stale wheel entries and late results carry an older value. */
  seq: number;
  running: boolean;
  controller: AbortController | null;
  startedAt: number;
  /** false once the group is removed by a reload. */
  live: boolean;
}

type WheelItem = { readonly kind: 'start'; readonly g: ProbeGroup; readonly seq: number } | { readonly kind: 'deadline'; readonly g: ProbeGroup; readonly seq: number };

export class Engine {
  readonly counters: TestCounters = newTestCounters();
  private groups = new Map<string, ProbeGroup>();
  private virtualsState: VirtualState[] = [];
  private readonly wheel: Wheel<WheelItem>;
  private readonly now: () => number;
  private readonly minPeriodMs: number;
  private readonly spreadMs: number;
  private readonly untested = new Map<VirtualState, number>();
  private running = false;

  constructor(private readonly opts: EngineOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.minPeriodMs = opts.minPeriodMs ?? 100;
    this.spreadMs = opts.startupSpreadMs ?? 1000;
    this.wheel = new Wheel({ tickMs: opts.tickMs ?? 10, now: this.now }, (item) => this.fire(item));
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
   * flight; new probes are spread over the start-up window; probes no longer configured are cancelled.
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
              controller: null,
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
    for (const [key, g] of old) {
      if (next.has(key)) continue;
      g.live = false;
      g.controller?.abort();
    }
    this.groups = next;
    this.virtualsState = virtuals;
    // Spread the first probes evenly, so N reals with loopdelay L make a steady N/L probes a second.
    const t0 = this.now();
    fresh.forEach((g, i) => {
      const window = Math.min(this.spreadMs, g.periodMs);
      this.wheel.add(t0 + (fresh.length > 1 ? (i * window) / fresh.length : 0), { kind: 'start', g, seq: g.seq });
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
    for (const g of this.groups.values()) g.controller?.abort();
  }

  /** For tests and the CLI's one-shot mode: advance the wheel now. */
  tick(): void {
    this.wheel.advance();
  }

  private fire(item: WheelItem): void {
    const g = item.g;
    if (!g.live || item.seq !== g.seq) return;
    if (item.kind === 'start') {
      if (!g.running && this.running) this.startProbe(g);
    } else if (g.running) {
      this.expire(g);
    }
  }

  private startProbe(g: ProbeGroup): void {
    g.seq++;
    const seq = g.seq;
    g.running = true;
    g.startedAt = this.now();
    const controller = new AbortController();
    g.controller = controller;
    this.wheel.add(g.startedAt + g.timeoutMs, { kind: 'deadline', g, seq });
    const first = g.subscribers[0];
    const comm = first && this.opts.comm ? this.opts.comm(first) : undefined;
    let p: Promise<ProbeResult>;
    try {
      p = g.tester.probe(g.target, g.params, comm ? { signal: controller.signal, timeoutMs: g.timeoutMs, comm } : { signal: controller.signal, timeoutMs: g.timeoutMs });
    } catch (e) {
      p = Promise.resolve({ ok: false, detail: `tester ${g.tester.name} failed: ${(e as Error).message}` });
    }
    p.then(
      (res) => this.finish(g, seq, res),
      (e: unknown) => this.finish(g, seq, { ok: false, detail: `tester ${g.tester.name} failed: ${e instanceof Error ? e.message : String(e)}` }),
    );
  }

  /** The hard deadline: the probe is judged failed now, whatever the tester still does. */
  private expire(g: ProbeGroup): void {
    g.controller?.abort();
    this.finish(g, g.seq, { ok: false, detail: `no verdict within ${g.timeoutMs / 1000}s`, problem: 'conn' });
  }

  private finish(g: ProbeGroup, seq: number, res: ProbeResult): void {
    if (!g.running || seq !== g.seq || !g.live) return;
    g.running = false;
    g.controller = null;
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
      const due = Math.max(g.startedAt + g.periodMs, end);
      this.wheel.add(due, { kind: 'start', g, seq: g.seq });
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
