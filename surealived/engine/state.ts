// Runtime state of virtuals and reals: test results (online), operator overrides (rstate, weight)
// and statistics. Plain data shared by the engine, the hand-off writer, the dumps and the control port.

import type { RealConfig, SorryConfig, VirtualConfig } from '../config/model.js';
import type { LocalErrno } from '../../testers/contract.js';
import { newRealStats, newVirtualStats, type RealStats, type VirtualStats } from '../stats/statistics.js';

/** Operator state of a real (control port `rset rstate=`), persisted in override.dump. */
export type RState = 'ONLINE' | 'OFFLINE' | 'DOWN';

export interface WeightOverride {
  readonly weight: number;
  readonly percent: boolean;
}

export interface RealState {
  readonly virtual: VirtualState;
  readonly config: RealConfig;
  /** Index within the virtual (XML order). */
  readonly index: number;
  /** Test result after retries hysteresis. */
  online: boolean;
  okCount: number;
  failCount: number;
  rstate: RState;
  override: WeightOverride | null;
  /** Set once the real has had at least one probe evaluated. */
  tested: boolean;
  lastDetail: string;
  readonly stats: RealStats;
}

export type NotifyState = 'UNKNOWN' | 'UP' | 'DOWN';

/** The runtime side of a virtual's `<sorry>` server (never probed; not one of `reals`). */
export interface SorryState {
  readonly kind: 'sorry';
  readonly virtual: VirtualState;
  readonly config: SorryConfig;
  /** In service (in IPVS with its weight), as last applied to the hand-off (engine/fallback.ts decides). */
  active: boolean;
}

export interface VirtualState {
  readonly config: VirtualConfig;
  /** Index in the XML (vlist `v:<idx>`). */
  readonly index: number;
  readonly reals: RealState[];
  /**
   * In panic mode, as last applied to the hand-off: test verdicts disregarded, every real in IPVS as
   * if online (engine/fallback.ts decides; the daemon applies).
   */
  panic: boolean;
  /** The `<sorry>` server; null when the virtual has none. */
  readonly sorry: SorryState | null;
  notifyState: NotifyState;
  /** Aggregates of the reals' statistics (connstats, stats.dump). */
  readonly stats: VirtualStats;
}

/** Fresh runtime state for a config: every real online, rstate ONLINE, no override (spec 3.5). */
export function buildState(virtuals: readonly VirtualConfig[]): VirtualState[] {
  return virtuals.map((vc, vi) => {
    const v: VirtualState = { config: vc, index: vi, reals: [], panic: false, sorry: null, notifyState: 'UNKNOWN', stats: newVirtualStats() };
    if (vc.sorry !== undefined) (v as { sorry: SorryState | null }).sorry = { kind: 'sorry', virtual: v, config: vc.sorry, active: false };
    vc.reals.forEach((rc, ri) => {
      v.reals.push({
        virtual: v,
        config: rc,
        index: ri,
        online: true,
        okCount: 0,
        failCount: 0,
        rstate: 'ONLINE',
        override: null,
        tested: false,
        lastDetail: '',
        stats: newRealStats(),
      });
    });
    return v;
  });
}

/**
 * Effective IPVS weight (spec 9.4). `asIfOnline` skips step 1, for the notifier's weight_all.
 * A zero or negative override is ignored, as the original.
 */
export function effectiveWeight(r: RealState, asIfOnline = false): number {
  if (!asIfOnline && (r.rstate !== 'ONLINE' || !r.online)) return 0;
  const conf = r.config.weight;
  const o = r.override;
  if (o && o.weight > 0) return o.percent ? Math.max(1, Math.floor((conf * o.weight) / 100)) : o.weight;
  return conf;
}

/**
 * Whether the real is in the IPVS table when its virtual's panic mode is `panic` (spec 9.4 presence
 * table; in panic the test verdict is disregarded, so remove_on_fail removes nothing).
 */
export function realPresent(r: RealState, panic: boolean): boolean {
  if (r.rstate === 'DOWN') return false;
  if (!r.online && !panic && r.virtual.config.tester.removeOnFail) return false;
  return true;
}

/**
 * The real's IPVS weight (rweight of the hand-off, rlist currwgt) when its virtual's panic mode is
 * `panic`: the effective weight if rstate ONLINE and online (in panic: as if online), else 0.
 */
export function realWeight(r: RealState, panic: boolean): number {
  return r.rstate === 'ONLINE' && (r.online || panic) ? effectiveWeight(r, true) : 0;
}

/** Whether the real is present in the IPVS table now (spec 9.4 table, and the virtual's panic mode). */
export function presentInIpvs(r: RealState): boolean {
  return realPresent(r, r.virtual.panic === true);
}

/** The real's IPVS weight now (0 when absent or not serving; the virtual's panic mode applied). */
export function ipvsWeight(r: RealState): number {
  return realWeight(r, r.virtual.panic === true);
}

/** Process-lifetime test counters (control port `stats`, spec 9.3). */
export interface TestCounters {
  success: number;
  failed: number;
  onlineSet: number;
  offlineSet: number;
  connProblem: number;
  arpProblem: number;
  rstProblem: number;
  bytesRcvd: number;
  bytesSent: number;
  /** Probes that could not run for a local reason (not judged), by errno. */
  readonly localErrors: Map<LocalErrno, number>;
}

export function newTestCounters(): TestCounters {
  return { success: 0, failed: 0, onlineSet: 0, offlineSet: 0, connProblem: 0, arpProblem: 0, rstProblem: 0, bytesRcvd: 0, bytesSent: 0, localErrors: new Map() };
}
