// Per-real and per-virtual timing statistics (spec 4.8): rolling window over `stats_samples` probes,
// lifetime sums and problem counters, used by `connstats` and stats.dump. Pure updates on plain data.

import type { ProbeProblem } from '../../testers/contract.js';

export const MAX_STATS_SAMPLES = 20;

/** Rolling and lifetime timing statistics of one real (ms values are fractional milliseconds). */
export interface RealStats {
  /** Probes evaluated since start (or restored from stats.dump). */
  total: number;
  connProblems: number;
  arpProblems: number;
  rstProblems: number;
  /** Last probe: connect, response, total times in ms; negative markers -1/-2/-3 as the original. */
  lastConn: number;
  lastResp: number;
  lastTotal: number;
  /**
   * Rolling window of the last `stats_samples` probes: [conn, resp, total] ms. Once the window is full
   * recordProbe rewrites the oldest row in place: copy a row to keep it.
   */
  readonly samples: Array<readonly [number, number, number]>;
  /** Lifetime sums in ms (for tavg*). */
  sumConn: number;
  sumResp: number;
  sumTotal: number;
  /** Probe latency of the last probe in ms (for metrics). */
  lastLatencyMs: number;
  checksOk: number;
  checksFailed: number;
}

export function newRealStats(): RealStats {
  return {
    total: 0,
    connProblems: 0,
    arpProblems: 0,
    rstProblems: 0,
    lastConn: 0,
    lastResp: 0,
    lastTotal: 0,
    samples: [],
    sumConn: 0,
    sumResp: 0,
    sumTotal: 0,
    lastLatencyMs: 0,
    checksOk: 0,
    checksFailed: 0,
  };
}


/** The conntime markers of the original: -1 never connected, -2 "ARP problem", -3 "RST problem". */
export const PROBLEM_MARKER: Readonly<Record<ProbeProblem, number>> = { conn: -1, arp: -2, rst: -3 };

/** One probe's timings in (fractional) milliseconds; connMs is the marker when there was a problem. */
export interface ProbeSample {
  readonly connMs: number;
  readonly respMs: number;
  readonly totalMs: number;
  readonly problem?: ProbeProblem;
}

/** Connect, response and total times in fractional milliseconds. */
export interface Averages {
  readonly conn: number;
  readonly resp: number;
  readonly total: number;
}

/** Aggregates of a virtual: updated once per cycle from its reals. */
export interface VirtualStats {
  /** Cycles recorded. */
  total: number;
  avgConn: number;
  avgResp: number;
  avgTotal: number;
  connProblems: number;
  arpProblems: number;
  rstProblems: number;
}

export function newVirtualStats(): VirtualStats {
  return { total: 0, avgConn: 0, avgResp: 0, avgTotal: 0, connProblems: 0, arpProblems: 0, rstProblems: 0 };
}

/** stats_samples as the original uses it: 0 or more than 20 means 20. */
export function samplesWindow(statsSamples: number): number {
  return statsSamples >= 1 && statsSamples <= MAX_STATS_SAMPLES ? Math.floor(statsSamples) : MAX_STATS_SAMPLES;
}

/**
 * Whole microseconds, truncated toward zero like the original's integer timeval arithmetic; rounding
 * to nanoseconds first absorbs float noise (1.001 * 1000 = 1000.9999999999999 must give 1001).
 */
export function toUs(ms: number): number {
  return Math.trunc(Math.round(ms * 1e6) / 1000);
}

/** Whole milliseconds, truncated toward zero like C integer division (so markers stay -1/-2/-3). */
export function toMs(ms: number): number {
  return Math.trunc(toUs(ms) / 1000);
}

/**
 * Records one probe (called at every cycle expiry for every real while gather_stats is on — unlike
 * the original, independent of stats logging, spec 11.5). The rolling conn sample is the total time
 * when the connection never completed (conn < 0), as the original. Unlike the original, the real's
 * own problem counters are incremented (they stayed 0 there).
 */
export function recordProbe(stats: RealStats, sample: ProbeSample, statsSamples: number): void {
  const conn = sample.problem ? PROBLEM_MARKER[sample.problem] : sample.connMs;
  stats.total += 1;
  stats.lastConn = conn;
  stats.lastResp = sample.respMs;
  stats.lastTotal = sample.totalMs;
  stats.lastLatencyMs = sample.totalMs;
  const c = conn < 0 ? sample.totalMs : conn;
  // Once the window is full the oldest row is rewritten and rotated to the end: recording a probe
  // then allocates nothing (10,000 reals make 10,000 rows a second, each kept for the whole window).
  const samples = stats.samples as Array<[number, number, number]>;
  const window = samplesWindow(statsSamples);
  if (samples.length > window) samples.splice(0, samples.length - window);
  if (samples.length === window) {
    const row = samples[0]!;
    for (let i = 1; i < window; i++) samples[i - 1] = samples[i]!;
    row[0] = c;
    row[1] = sample.respMs;
    row[2] = sample.totalMs;
    samples[window - 1] = row;
  } else samples.push([c, sample.respMs, sample.totalMs]);
  stats.sumConn += c;
  stats.sumResp += sample.respMs;
  stats.sumTotal += sample.totalMs;
  if (conn === PROBLEM_MARKER.conn) stats.connProblems += 1;
  else if (conn === PROBLEM_MARKER.arp) stats.arpProblems += 1;
  else if (conn === PROBLEM_MARKER.rst) stats.rstProblems += 1;
}

/** Mean of the rolling window (`savg*` in connstats, the averages in stats.dump); zeros when empty. */
export function rollingAverages(stats: RealStats): Averages {
  const n = stats.samples.length;
  if (n === 0) return { conn: 0, resp: 0, total: 0 };
  let conn = 0;
  let resp = 0;
  let total = 0;
  for (const [c, r, t] of stats.samples) {
    conn += c;
    resp += r;
    total += t;
  }
  return { conn: conn / n, resp: resp / n, total: total / n };
}

/** Lifetime means (`tavg*` in connstats). */
export function lifetimeAverages(stats: RealStats): Averages {
  if (stats.total === 0) return { conn: 0, resp: 0, total: 0 };
  return { conn: stats.sumConn / stats.total, resp: stats.sumResp / stats.total, total: stats.sumTotal / stats.total };
}

/**
 * Restoring averages from stats.dump: the sample window is not persisted, so it is refilled with the
 * restored average. The average then reads as saved and decays as new probes arrive (the original
 * showed the saved value until the first probe, then only the new samples).
 */
export function seedRollingWindow(stats: RealStats, avg: Averages, statsSamples: number): void {
  stats.samples.splice(0, stats.samples.length);
  for (let i = 0; i < samplesWindow(statsSamples); i++) stats.samples.push([avg.conn, avg.resp, avg.total]);
}

/**
 * Once per cycle, after the reals' probes were recorded: averages are the mean of the reals' rolling
 * averages; problem counters add one per real whose last conntime was a marker.
 */
export function updateVirtualStats(vs: VirtualStats, reals: readonly { readonly stats: RealStats }[]): void {
  vs.total += 1;
  let conn = 0;
  let resp = 0;
  let total = 0;
  for (const r of reals) {
    const a = rollingAverages(r.stats);
    conn += a.conn;
    resp += a.resp;
    total += a.total;
    const last = r.stats.lastConn;
    if (last === PROBLEM_MARKER.conn) vs.connProblems += 1;
    else if (last === PROBLEM_MARKER.arp) vs.arpProblems += 1;
    else if (last === PROBLEM_MARKER.rst) vs.rstProblems += 1;
  }
  const n = reals.length;
  vs.avgConn = n ? conn / n : 0;
  vs.avgResp = n ? resp / n : 0;
  vs.avgTotal = n ? total / n : 0;
}
