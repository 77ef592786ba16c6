// When each real last changed and was last probed, for the status page. The engine keeps no
// timestamps, so the status page samples the live state (a few field compares per real, twice a
// second) and notes when what it sees differs; ages are therefore exact to one sampling interval.

import type { RealState, RState, VirtualState } from '../engine/state.js';

/** What the tracker knows of one real (monotonic ms from the injected clock). */
export interface RealTimes {
  /** When its state (tested, online, rstate, override) last changed; null: not since tracking began. */
  readonly changedAt: number | null;
  /** When a new probe result was first seen; null: none since tracking began. */
  readonly probedAt: number | null;
  /** When the tracker first saw the real (its start, or the reload that added it). */
  readonly firstSeen: number;
}

interface Seen {
  tested: boolean;
  online: boolean;
  rstate: RState;
  overrideWeight: number;
  overridePercent: boolean;
  checks: number;
  changedAt: number | null;
  probedAt: number | null;
  firstSeen: number;
  /** Generation of the last observe() that saw it (pruning after reloads). */
  gen: number;
}

/**
 * The identity of a real across reloads: a reload builds new state objects (carrying the old state
 * over), and its history must follow. Cached per state object, built once.
 */
const identity = new WeakMap<RealState, string>();
function realId(r: RealState): string {
  let id = identity.get(r);
  if (id === undefined) {
    const v = r.virtual.config;
    id = `${v.name}\0${v.proto}\0${v.addr}\0${v.port}\0${v.fwmark}\0${r.config.name}\0${r.config.addr}\0${r.config.port}`;
    identity.set(r, id);
  }
  return id;
}

export class ChangeTracker {
  private readonly seen = new Map<string, Seen>();
  private gen = 0;
  readonly startedAt: number;

  constructor(private readonly now: () => number) {
    this.startedAt = now();
  }

  /** Compare every real with what was seen last time; note the time of what changed. */
  observe(virtuals: readonly VirtualState[]): void {
    const t = this.now();
    const gen = ++this.gen;
    let count = 0;
    for (const v of virtuals)
      for (const r of v.reals) {
        count++;
        const id = realId(r);
        const checks = r.stats.checksOk + r.stats.checksFailed;
        const ow = r.override?.weight ?? 0;
        const op = r.override?.percent ?? false;
        const s = this.seen.get(id);
        if (s === undefined) {
          this.seen.set(id, { tested: r.tested, online: r.online, rstate: r.rstate, overrideWeight: ow, overridePercent: op, checks, changedAt: null, probedAt: null, firstSeen: t, gen });
          continue;
        }
        s.gen = gen;
        if (s.tested !== r.tested || s.online !== r.online || s.rstate !== r.rstate || s.overrideWeight !== ow || s.overridePercent !== op) {
          s.tested = r.tested;
          s.online = r.online;
          s.rstate = r.rstate;
          s.overrideWeight = ow;
          s.overridePercent = op;
          s.changedAt = t;
        }
        // A reload may carry counters over or restart them: any difference is a new result.
        if (s.checks !== checks) {
          s.checks = checks;
          s.probedAt = t;
        }
      }
    if (this.seen.size > count) for (const [id, s] of this.seen) if (s.gen !== gen) this.seen.delete(id);
  }

  /** The times of a real; a real not observed yet counts as first seen now. */
  times(r: RealState): RealTimes {
    return this.seen.get(realId(r)) ?? { changedAt: null, probedAt: null, firstSeen: this.now() };
  }
}
