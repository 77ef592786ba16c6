// How many descriptors probes may hold at once: the process's RLIMIT_NOFILE soft limit (or the
// `maxfd` key when lower), minus what the daemon itself needs besides probes. Pure arithmetic; the
// daemon reads /proc/self/limits and /proc/self/fd and hands the figures in.

/**
 * Descriptors kept back for the daemon's own files beyond those open at start: state-file writes
 * (temp file + directory fsync, several dumps at once), the hand-off (full temp file, next diff,
 * reload flag), control-port clients, notifier processes (pipes while spawning) and log files.
 */
export const RESERVE = { stateFiles: 12, handoff: 4, control: 32, notifiers: 12, logs: 4 } as const;
export const RESERVE_TOTAL = Object.values(RESERVE).reduce((a, b) => a + b, 0);

/** Probes may always hold at least this many, however low the limit, or nothing would be probed. */
export const MIN_PROBE_DESCRIPTORS = 8;

export interface NofileLimit {
  /** Soft limit (what the kernel enforces); Infinity when "unlimited". */
  readonly soft: number;
  readonly hard: number;
}

/** The "Max open files" line of /proc/<pid>/limits, or undefined when it is absent or unreadable. */
export function parseNofileLimit(procLimits: string): NofileLimit | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(procLimits);
  if (m === null) return undefined;
  const num = (s: string): number => (s === 'unlimited' ? Infinity : Number(s));
  const soft = num(m[1]!);
  const hard = num(m[2]!);
  if (Number.isNaN(soft) || Number.isNaN(hard)) return undefined;
  return { soft, hard };
}

export interface BudgetInput {
  /** RLIMIT_NOFILE soft limit of the process. */
  readonly soft: number;
  /** The main config's `maxfd` when set explicitly (it can only lower the limit here). */
  readonly maxfd?: number;
  /** Descriptors open before any probe ran (stdio, event loop, lock file, control listener, ...). */
  readonly openAtStart: number;
}

export interface DescriptorBudget {
  /** The limit the daemon keeps under: min(soft, maxfd). */
  readonly limit: number;
  /** Descriptors not available to probes. */
  readonly reserve: number;
  /** Descriptors probes may hold at once (Infinity when the limit is). */
  readonly probes: number;
  /** Why the figures are not what the configuration asked, for the log. */
  readonly warnings: readonly string[];
}

export function descriptorBudget(x: BudgetInput): DescriptorBudget {
  const warnings: string[] = [];
  let limit = x.soft;
  if (x.maxfd !== undefined && x.maxfd > 0) {
    if (x.maxfd <= x.soft) limit = x.maxfd;
    // The original raised the limit with setrlimit; Node already runs with the soft limit at the hard one.
    else warnings.push(`maxfd ${x.maxfd} is above the descriptor limit ${x.soft} (ulimit -n): using ${x.soft}`);
  }
  const reserve = x.openAtStart + RESERVE_TOTAL;
  const room = limit - reserve;
  if (room < MIN_PROBE_DESCRIPTORS) {
    warnings.push(`descriptor limit ${limit} leaves ${Math.max(0, room)} descriptors for probes after a reserve of ${reserve}: probes limited to ${MIN_PROBE_DESCRIPTORS} at once`);
  }
  return { limit, reserve, probes: Math.max(MIN_PROBE_DESCRIPTORS, room), warnings };
}
