// The status page's JSON model, built from the live state: an overview (totals, virtuals with counts,
// the reals needing attention) and one virtual's reals a page at a time, so that a director with
// 10,000 reals never sends (or renders) them all at once. Pure: time and the tracker come in as data.

import { LATENESS_BOUNDS_S, type LatenessHistogram } from '../engine/lateness.js';
import { ipvsWeight, presentInIpvs, type RealState, type RState, type VirtualState, type WeightOverride } from '../engine/state.js';
import type { RealTimes } from './tracker.js';

/**
 * What the page shows for a real: `pending` not probed yet, `down` its test fails (after the retries
 * hysteresis), `disabled` healthy but taken out by the operator (rstate OFFLINE/DOWN), `up` serving.
 */
export type RealCondition = 'pending' | 'down' | 'disabled' | 'up';
export const REAL_CONDITIONS: readonly RealCondition[] = ['down', 'disabled', 'pending', 'up'];

export type ConditionCounts = Record<RealCondition, number>;

export interface RealStatus {
  readonly index: number;
  readonly name: string;
  readonly addr: string;
  readonly port: number;
  readonly state: RealCondition;
  /** Test result after hysteresis, and consecutive failures out of retries2fail. */
  readonly online: boolean;
  readonly fails: number;
  readonly rstate: RState;
  /** The operator's weight override (rset rweight), null when none. */
  readonly override: WeightOverride | null;
  readonly weight: number;
  readonly configured_weight: number;
  readonly in_ipvs: boolean;
  /** Verdict of the last probe and its detail ("status 503, expected 200"); null before the first. */
  readonly last_probe: 'ok' | 'failed' | null;
  readonly detail: string;
  readonly latency_ms: number | null;
  /** Seconds since the state last changed; null when it has not changed since the status page started. */
  readonly changed_s_ago: number | null;
  /** Seconds since the last probe result; null when none since the status page started. */
  readonly probed_s_ago: number | null;
  /** How far the next result is overdue: time without a result beyond one period plus the timeout. */
  readonly probe_late_s: number;
}

export interface VirtualSummary {
  readonly index: number;
  readonly name: string;
  readonly proto: string;
  readonly addr: string;
  readonly port: number;
  readonly fwmark: number;
  readonly sched: string;
  readonly tester: string;
  readonly loopdelay_s: number;
  readonly timeout_s: number;
  /** Time for a dead real to be marked down: retries2fail periods plus one timeout. */
  readonly detect_s: number;
  readonly reals: number;
  readonly counts: ConditionCounts;
  /** Sum of the reals' IPVS weights now (panic applied; the sorry server not counted). */
  readonly weight: number;
  readonly configured_weight: number;
  /** Panic mode (`<virtual panic>`): test verdicts disregarded, every real kept in IPVS. */
  readonly panic: boolean;
  /** The `<sorry>` server and whether it is in service now; null when the virtual has none. */
  readonly sorry: { readonly name: string; readonly addr: string; readonly port: number; readonly weight: number; readonly active: boolean } | null;
}

/** A real needing attention, with the virtual it belongs to. */
export interface ProblemReal extends RealStatus {
  readonly virtual: number;
  readonly virtual_name: string;
}

export interface LatenessSummary {
  readonly probes: number;
  readonly mean_s: number;
  /** Share of probes that started more than 100 ms late. */
  readonly over_100ms: number;
}

export interface StatusOverview {
  readonly kind: 'overview';
  readonly uptime_s: number;
  readonly virtuals_total: number;
  readonly reals_total: number;
  readonly counts: ConditionCounts;
  readonly lateness: LatenessSummary | null;
  /** Reals not up, down first, at most `problems_limit`; `problems_total` counts them all. */
  readonly problems_total: number;
  readonly problems: readonly ProblemReal[];
  readonly offset: number;
  readonly limit: number;
  readonly virtuals: readonly VirtualSummary[];
}

export interface VirtualPage {
  readonly kind: 'virtual';
  readonly virtual: VirtualSummary;
  /** Reals matching the state filter (all when none), and this page of them. */
  readonly state: RealCondition | null;
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly reals: readonly RealStatus[];
}

export type StatusQuery =
  | { readonly kind: 'overview'; readonly offset: number; readonly limit: number }
  | { readonly kind: 'virtual'; readonly virtual: number; readonly state: RealCondition | null; readonly offset: number; readonly limit: number };

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;
export const PROBLEMS_LIMIT = 50;

/** `?virtual=N&state=down&offset=0&limit=100` (all optional) -> a query, or why not. */
export function parseStatusQuery(q: URLSearchParams): StatusQuery | { readonly error: string } {
  const int = (key: string, dflt: number, max: number): number | string => {
    const raw = q.get(key);
    if (raw === null || raw === '') return dflt;
    if (!/^\d{1,9}$/.test(raw)) return `${key}: expected a non-negative integer, got "${raw}"`;
    return Math.min(Number(raw), max);
  };
  const offset = int('offset', 0, Number.MAX_SAFE_INTEGER);
  if (typeof offset === 'string') return { error: offset };
  const limit = int('limit', DEFAULT_PAGE, MAX_PAGE);
  if (typeof limit === 'string') return { error: limit };
  if (limit === 0) return { error: 'limit: must be at least 1' };
  if (!q.has('virtual')) return { kind: 'overview', offset, limit };
  const virtual = int('virtual', 0, Number.MAX_SAFE_INTEGER);
  if (typeof virtual === 'string') return { error: virtual };
  const st = q.get('state');
  if (st !== null && st !== '' && !(REAL_CONDITIONS as readonly string[]).includes(st)) return { error: `state: expected one of ${REAL_CONDITIONS.join(', ')}, got "${st}"` };
  return { kind: 'virtual', virtual, state: st === null || st === '' ? null : (st as RealCondition), offset, limit };
}

export function realCondition(r: RealState): RealCondition {
  if (!r.tested) return 'pending';
  if (!r.online) return 'down';
  if (r.rstate !== 'ONLINE') return 'disabled';
  return 'up';
}

/** Seconds, to the millisecond. */
const secs = (ms: number): number => Math.round(ms) / 1000;

function periodMs(v: VirtualState): number {
  // The engine's shortest period is loop_interval_ms (100 by default): loopdelay 0 means "that often".
  return Math.max(100, v.config.tester.loopdelay * 1000);
}

export function realStatus(r: RealState, t: RealTimes, now: number): RealStatus {
  const tc = r.virtual.config.tester;
  const lastResultAt = t.probedAt ?? t.firstSeen;
  const allowance = periodMs(r.virtual) + tc.timeout * 1000;
  return {
    index: r.index,
    name: r.config.name,
    addr: r.config.addr,
    port: r.config.port,
    state: realCondition(r),
    online: r.online,
    fails: r.failCount,
    rstate: r.rstate,
    override: r.override,
    weight: ipvsWeight(r),
    configured_weight: r.config.weight,
    in_ipvs: presentInIpvs(r),
    // A success resets the failure run, so a run in progress means the last probe failed.
    last_probe: r.tested ? (r.failCount > 0 ? 'failed' : 'ok') : null,
    detail: r.lastDetail,
    latency_ms: r.tested ? Math.round(r.stats.lastLatencyMs * 1000) / 1000 : null,
    changed_s_ago: t.changedAt === null ? null : secs(now - t.changedAt),
    probed_s_ago: t.probedAt === null ? null : secs(now - t.probedAt),
    probe_late_s: secs(Math.max(0, now - lastResultAt - allowance)),
  };
}

const zeroCounts = (): ConditionCounts => ({ pending: 0, down: 0, disabled: 0, up: 0 });

export function virtualSummary(v: VirtualState): VirtualSummary {
  const c = v.config;
  const tc = c.tester;
  const counts = zeroCounts();
  let weight = 0;
  let configured = 0;
  for (const r of v.reals) {
    counts[realCondition(r)]++;
    weight += ipvsWeight(r);
    configured += r.config.weight;
  }
  return {
    index: v.index,
    name: c.name,
    proto: c.proto,
    addr: c.addr,
    port: c.port,
    fwmark: c.fwmark,
    sched: c.sched,
    tester: tc.proto,
    loopdelay_s: tc.loopdelay,
    timeout_s: tc.timeout,
    detect_s: secs(tc.retries2fail * periodMs(v) + tc.timeout * 1000),
    reals: v.reals.length,
    counts,
    weight,
    configured_weight: configured,
    panic: v.panic,
    sorry: v.sorry === null ? null : { name: v.sorry.config.name, addr: v.sorry.config.addr, port: v.sorry.config.port, weight: v.sorry.config.weight, active: v.sorry.active },
  };
}

export function latenessSummary(h: LatenessHistogram): LatenessSummary {
  const cum = h.cumulative();
  const within100ms = cum[LATENESS_BOUNDS_S.indexOf(0.1)] ?? h.count;
  return {
    probes: h.count,
    mean_s: h.count === 0 ? 0 : Math.round((h.sumSeconds / h.count) * 1e6) / 1e6,
    over_100ms: h.count === 0 ? 0 : Math.round(((h.count - within100ms) / h.count) * 1e4) / 1e4,
  };
}

const PROBLEM_ORDER: Readonly<Record<RealCondition, number>> = { down: 0, disabled: 1, pending: 2, up: 3 };

export function statusOverview(
  virtuals: readonly VirtualState[],
  times: (r: RealState) => RealTimes,
  now: number,
  startedAt: number,
  q: { readonly offset: number; readonly limit: number },
  lateness?: LatenessHistogram,
): StatusOverview {
  const counts = zeroCounts();
  let reals = 0;
  const problems: RealState[] = [];
  for (const v of virtuals)
    for (const r of v.reals) {
      reals++;
      const c = realCondition(r);
      counts[c]++;
      if (c !== 'up') problems.push(r);
    }
  // Stable sort: down first, then operator-disabled, then not probed yet; config order within each.
  problems.sort((a, b) => PROBLEM_ORDER[realCondition(a)] - PROBLEM_ORDER[realCondition(b)]);
  return {
    kind: 'overview',
    uptime_s: secs(now - startedAt),
    virtuals_total: virtuals.length,
    reals_total: reals,
    counts,
    lateness: lateness ? latenessSummary(lateness) : null,
    problems_total: problems.length,
    problems: problems.slice(0, PROBLEMS_LIMIT).map((r) => ({ virtual: r.virtual.index, virtual_name: r.virtual.config.name, ...realStatus(r, times(r), now) })),
    offset: q.offset,
    limit: q.limit,
    virtuals: virtuals.slice(q.offset, q.offset + q.limit).map(virtualSummary),
  };
}

/** One virtual's reals, filtered by state and paged; undefined when there is no such virtual. */
export function virtualPage(
  virtuals: readonly VirtualState[],
  times: (r: RealState) => RealTimes,
  now: number,
  q: { readonly virtual: number; readonly state: RealCondition | null; readonly offset: number; readonly limit: number },
): VirtualPage | undefined {
  const v = virtuals[q.virtual];
  if (v === undefined) return undefined;
  const matching = q.state === null ? v.reals : v.reals.filter((r) => realCondition(r) === q.state);
  return {
    kind: 'virtual',
    virtual: virtualSummary(v),
    state: q.state,
    total: matching.length,
    offset: q.offset,
    limit: q.limit,
    reals: matching.slice(q.offset, q.offset + q.limit).map((r) => realStatus(r, times(r), now)),
  };
}

/**
 * JSON text safe inside an HTML `<script type="application/json">` element: a name such as
 * `</script><script>...` must not end the element, so `<`, `>`, `&` and the JS line separators are
 * written as \u escapes (JSON.parse reads them back unchanged).
 */
export function jsonForHtml(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
