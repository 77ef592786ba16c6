// What the control port needs from the daemon: the live state it lists and the two side effects of
// `rset` (persist override.dump, write the diff). The daemon implements it; tests build one from plain state.

import type { RealState, RState, TestCounters, VirtualState, WeightOverride } from '../engine/state.js';
import type { LatenessHistogram } from '../engine/lateness.js';
import type { ProbeLoad } from '../engine/engine.js';

/** Outcome of one `rset`, handed to the daemon right after the real was updated in memory. */
export interface RsetCommit {
  /** true: remove the real's line from override.dump (back to ONLINE + configured weight / 100 %). */
  readonly deleteEntry: boolean;
  /** State before the command, so the diff writer can tell addreal/chgreal/delreal apart. */
  readonly previous: { readonly rstate: RState; readonly override: WeightOverride | null };
}

/** Figures for `stats` that only the daemon knows. */
export interface ControlInfo {
  /** The tester's pid (`tester_pid`). */
  readonly pid: number;
  /** The watchdog's pid when daemonized, else -1 (`watchdog_pid`). */
  readonly watchdogPid: number;
  /** Entries in the offline set; null when use_offline_dump is off (printed as 4294967295, as the original). */
  readonly offlineSize: number | null;
  /** Entries in the override set (lines of override.dump). */
  readonly overrideSize: number;
  /** gather_stats: when false `connstats` answers `Gathering statistics is OFF`. */
  readonly gatherStats: boolean;
}

export interface ControlTarget {
  /** Virtuals in XML order, read at every command (a getter is fine: a reload may replace them). */
  readonly virtuals: readonly VirtualState[];
  /** Process-lifetime test counters (`stats`). */
  readonly counters: TestCounters;
  /** Probe start lateness, exposed by `metrics` when present. */
  readonly lateness?: LatenessHistogram;
  /** The probe descriptor budget and its use, exposed by `metrics` when present. */
  readonly probeLoad?: ProbeLoad;
  /**
   * `rset` has just set `real.rstate` and `real.override`: persist override.dump (add/replace the
   * entry, or delete it when `commit.deleteEntry`) and write the diff lines at once. The reply is sent
   * when this returns, or when the returned promise resolves (so writes can be shared by several
   * commands); a throw or a rejection becomes an error line to the client and the change is undone.
   */
  commitRset(real: RealState, commit: RsetCommit): void | Promise<void>;
  info(): ControlInfo;
}
