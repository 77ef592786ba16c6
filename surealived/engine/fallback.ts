// The two fallbacks of a virtual, as pure functions of its configuration and its reals' states:
// - panic (`<virtual panic="N">`, Envoy's healthy_panic_threshold): while fewer than N % of the reals
//   the operator left ONLINE pass their tests, the checker assumes the fault is its own (a cut link, a
//   broken resolver) and disregards the test verdicts: every real stays in IPVS as if online.
//   Operator overrides (rstate, weight) still apply;
// - sorry server (`<sorry>`, keepalived's sorry_server, ldirectord's fallback): in IPVS with its weight
//   while no real of the virtual serves (has a non-zero IPVS weight, panic applied), out otherwise.
// So panic comes first: it keeps reals in, and the sorry server stays out while it does.
// The daemon applies a plan (virtual.panic, sorry.active) and writes what changed to the hand-off.

import type { SorryConfig, VirtualConfig } from '../config/model.js';
import type { Logger } from '../../common/log.js';
import { realPresent, realWeight, type RealState, type SorryState, type VirtualState } from './state.js';
import { sameSorry, virtualIdentity } from './carry-over.js';

/** What the fallbacks of one virtual come to, without the per-real entries. */
export interface FallbackDecision {
  /** Reals whose rstate is ONLINE: the ones the panic share is taken over (operator-disabled reals do not count). */
  readonly eligible: number;
  /** Of those, reals passing their tests (online after the retries hysteresis). */
  readonly passing: number;
  /** The panic threshold in percent; 0 = off. */
  readonly threshold: number;
  readonly panic: boolean;
  /** Reals with a non-zero IPVS weight, panic applied. */
  readonly serving: number;
  /** The sorry server is wanted in service (false when the virtual has none). */
  readonly sorry: boolean;
}

/** One IPVS destination as the hand-off writes it: present or not, and its weight. */
export interface IpvsEntry {
  readonly present: boolean;
  readonly weight: number;
}

/** A decision with the entry of every real (XML order) and of the sorry server (null: none configured). */
export interface FallbackPlan extends FallbackDecision {
  readonly reals: readonly IpvsEntry[];
  readonly sorryEntry: IpvsEntry | null;
}

/**
 * Panic when fewer than `threshold` % of the eligible reals pass: passing / eligible < threshold / 100,
 * in integers. Off with threshold 0, and with no eligible real (every real disabled by the operator:
 * there is nothing whose verdict could be disregarded).
 */
export function panicActive(threshold: number, eligible: number, passing: number): boolean {
  return threshold > 0 && eligible > 0 && passing * 100 < threshold * eligible;
}

/** The sorry server's entry: in service with its weight; out of service deleted, or at weight 0 with `inhibit`. */
export function sorryEntry(s: SorryConfig, active: boolean): IpvsEntry {
  if (active) return { present: true, weight: s.weight };
  return { present: s.inhibit, weight: 0 };
}

/** The sorry server's entry as last applied. */
export function sorryEntryNow(s: SorryState): IpvsEntry {
  return sorryEntry(s.config, s.active);
}

/** Panic threshold of a virtual's configuration (0 = off). */
export const panicThreshold = (vc: VirtualConfig): number => vc.panic ?? 0;

/** Panic and sorry decision for the current states of the virtual's reals (cheap: no allocation per real). */
export function decideFallbacks(v: VirtualState): FallbackDecision {
  const threshold = panicThreshold(v.config);
  let eligible = 0;
  let passing = 0;
  for (const r of v.reals) {
    if (r.rstate !== 'ONLINE') continue;
    eligible++;
    if (r.online) passing++;
  }
  const panic = panicActive(threshold, eligible, passing);
  let serving = 0;
  for (const r of v.reals) if (realWeight(r, panic) > 0) serving++;
  return { eligible, passing, threshold, panic, serving, sorry: v.config.sorry !== undefined && serving === 0 };
}

/** The whole plan: the decision and what the hand-off should say about every real and the sorry server. */
export function planVirtual(v: VirtualState): FallbackPlan {
  const d = decideFallbacks(v);
  const entry = (r: RealState): IpvsEntry => {
    const present = realPresent(r, d.panic);
    return { present, weight: present ? realWeight(r, d.panic) : 0 };
  };
  return { ...d, reals: v.reals.map(entry), sorryEntry: v.config.sorry === undefined ? null : sorryEntry(v.config.sorry, d.sorry) };
}

// ---- log lines (the daemon logs them; pure so they are tested as text) ------------------------

const virtualTag = (vc: VirtualConfig): string => `${vc.name} - ${vc.addr}:${vc.port}:${vc.proto}`;
const percent = (part: number, whole: number): string => `${Math.floor((part * 100) / whole)}%`;

/**
 * Entering (error level) or leaving (warn level) panic mode, with the counts:
 * `PANIC: virtual [web - 192.0.2.10:80:tcp]: entering panic mode: 1 of 4 reals pass their tests (25% < panic 50%); test verdicts disregarded, every real kept in IPVS at its weight`
 */
export function panicLogLine(vc: VirtualConfig, d: FallbackDecision, entering: boolean): string {
  const counts =
    d.eligible === 0
      ? `no real is left ONLINE by the operator (${vc.reals.length} reals, panic ${d.threshold}%)`
      : `${d.passing} of ${d.eligible} reals pass their tests (${percent(d.passing, d.eligible)} ${entering ? '<' : '>='} panic ${d.threshold}%)`;
  return entering
    ? `PANIC: virtual [${virtualTag(vc)}]: entering panic mode: ${counts}; test verdicts disregarded, every real kept in IPVS at its weight`
    : `PANIC: virtual [${virtualTag(vc)}]: leaving panic mode: ${counts}; test verdicts apply again`;
}

/** Leaving panic mode because the configuration changed (reload): no counts to compare with a threshold. */
export function panicOffByConfigLine(vc: VirtualConfig): string {
  return `PANIC: virtual [${virtualTag(vc)}]: leaving panic mode: panic threshold removed from the configuration; test verdicts apply again`;
}

const sorryTag = (vc: VirtualConfig, s: SorryConfig): string => `${vc.name}:${s.name} - ${vc.addr}:${vc.port}:${vc.proto} ${s.addr}:${s.port}`;

/**
 * The sorry server put in (warn level) or taken out (info level):
 * `Sorry: [web:sorry - 192.0.2.10:80:tcp 127.0.0.69:80] put in IPVS with weight 1: no real of the virtual serves (0 of 4 reals with a non-zero weight)`
 * `Sorry: [web:sorry - 192.0.2.10:80:tcp 127.0.0.69:80] taken out of IPVS (deleted): 1 of 4 reals serve again`
 * `reason` replaces the counts when the change comes from the configuration (reload).
 */
export function sorryLogLine(vc: VirtualConfig, s: SorryConfig, entering: boolean, d: FallbackDecision | null, reason?: string): string {
  const n = vc.reals.length;
  if (entering) {
    const why = reason ?? `no real of the virtual serves (${d?.serving ?? 0} of ${n} reals with a non-zero weight)`;
    return `Sorry: [${sorryTag(vc, s)}] put in IPVS with weight ${s.weight}: ${why}`;
  }
  // A sorry server gone from the configuration is deleted whatever its inhibit said.
  const how = s.inhibit && reason === undefined ? 'kept at weight 0, inhibit' : 'deleted';
  const why = reason ?? `${d?.serving ?? 0} of ${n} reals serve again`;
  return `Sorry: [${sorryTag(vc, s)}] taken out of IPVS (${how}): ${why}`;
}

// ---- applying a plan (the daemon's side effects are injected) ------------------------------------

export interface FallbackEffects {
  readonly log: Logger;
  /** Queue the diff lines of a real or a sorry server (the hand-off writer's queueReal). */
  readonly queue: (d: RealState | SorryState) => void;
  /** Run the sorry server's notifier (UP: put in, DOWN: taken out). */
  readonly notifySorry: (s: SorryState, dir: 'UP' | 'DOWN') => void;
}

/**
 * Decide the virtual's fallbacks and apply what changed since the last call: set `v.panic` and
 * `v.sorry.active`, log each change, notify the sorry server's, and (with `queue`) queue the diff
 * lines that changed: every real when panic starts or ends, the sorry server when it goes in or out.
 * Without `queue` a forced full write follows (start, reload) and carries the change.
 */
export function applyFallbacks(v: VirtualState, fx: FallbackEffects, queue: boolean): FallbackDecision {
  const d = decideFallbacks(v);
  if (d.panic !== v.panic) {
    v.panic = d.panic;
    if (d.panic) fx.log.error(panicLogLine(v.config, d, true));
    else fx.log.warn(d.threshold === 0 ? panicOffByConfigLine(v.config) : panicLogLine(v.config, d, false));
    if (queue) for (const r of v.reals) fx.queue(r);
  }
  const s = v.sorry;
  if (s !== null && d.sorry !== s.active) {
    s.active = d.sorry;
    if (d.sorry) fx.log.warn(sorryLogLine(v.config, s.config, true, d));
    else fx.log.info(sorryLogLine(v.config, s.config, false, d));
    if (queue) fx.queue(s);
    fx.notifySorry(s, d.sorry ? 'UP' : 'DOWN');
  }
  return d;
}

/**
 * At a reload: the sorry servers in service in `prev` that `next` no longer has (virtual gone, sorry
 * removed, or another address/port). The forced full write drops them; they are logged and notified.
 */
export function retiredSorries(prev: readonly VirtualState[], next: readonly VirtualState[]): SorryState[] {
  const kept = new Map<string, VirtualState>();
  for (const v of next) kept.set(virtualIdentity(v.config), v);
  const out: SorryState[] = [];
  for (const v of prev) {
    const s = v.sorry;
    if (s === null || !s.active) continue;
    const now = kept.get(virtualIdentity(v.config))?.sorry;
    if (now == null || !sameSorry(now.config, s.config)) out.push(s);
  }
  return out;
}
