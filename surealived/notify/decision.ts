// The virtual notifier's decision (spec 4.9): are enough reals and enough weight online, and does the
// notify state change (UNKNOWN -> UP/DOWN always, then only DOWN <-> UP transitions)?

import type { Threshold } from '../config/model.js';
import { effectiveWeight, type NotifyState, type VirtualState } from '../engine/state.js';

export interface NotifyCheck {
  /** The value compared with the threshold (percent or absolute), for the log. */
  readonly current: number;
  readonly expected: number;
  readonly percent: boolean;
  readonly enough: boolean;
}

export interface NotifyDecision {
  readonly onlineReals: number;
  readonly reals: number;
  /** Σ effective weight of all reals as if online (rstate ignored). */
  readonly weightAll: number;
  /** Σ effective weight of reals that are online and rstate ONLINE. */
  readonly weightOnline: number;
  readonly realsCheck: NotifyCheck;
  readonly weightCheck: NotifyCheck;
  readonly previous: NotifyState;
  readonly next: NotifyState;
  /** The script to run: set on every state change, null when nothing changes. */
  readonly fire: 'UP' | 'DOWN' | null;
}

/** C integer division for the percent figures (the original's `x * 100 / y` on ints). */
const percentOf = (part: number, whole: number): number => Math.trunc((part * 100) / whole);

function check(t: Threshold, current: number, whole: number): NotifyCheck {
  if (t.value === 0) return { current, expected: 0, percent: t.percent, enough: true };
  if (!t.percent) return { current, expected: t.value, percent: false, enough: current >= t.value };
  // Fix (spec 11.6): the original divided by zero (SIGFPE) when all weights were 0; nothing to
  // compare against is "not enough" unless the threshold is 0 (handled above).
  if (whole <= 0) return { current: 0, expected: t.value, percent: true, enough: false };
  const pct = percentOf(current, whole);
  return { current: pct, expected: t.value, percent: true, enough: pct >= t.value };
}

/**
 * Evaluated at every cycle expiry of a virtual with a virtual notifier. Null for a virtual without
 * reals (never evaluated by the original). Fix (spec 11.6): the absolute `notify_min_weight` is
 * applied; the original compared against 0 and always found enough weight.
 */
export function decideVirtualNotify(v: VirtualState): NotifyDecision | null {
  const n = v.reals.length;
  if (n === 0) return null;
  let onlineReals = 0;
  let weightAll = 0;
  let weightOnline = 0;
  for (const r of v.reals) {
    if (r.online && r.rstate === 'ONLINE') onlineReals += 1;
    weightAll += effectiveWeight(r, true);
    weightOnline += effectiveWeight(r);
  }
  const t = v.config.tester;
  const realsCheck = check(t.notifyMinReals, onlineReals, n);
  const weightCheck = check(t.notifyMinWeight, weightOnline, weightAll);
  const up = realsCheck.enough && weightCheck.enough;
  const previous = v.notifyState;
  let fire: 'UP' | 'DOWN' | null = null;
  if (previous === 'UNKNOWN') fire = up ? 'UP' : 'DOWN';
  else if (previous === 'DOWN' && up) fire = 'UP';
  else if (previous === 'UP' && !up) fire = 'DOWN';
  return { onlineReals, reals: n, weightAll, weightOnline, realsCheck, weightCheck, previous, next: fire ?? previous, fire };
}
