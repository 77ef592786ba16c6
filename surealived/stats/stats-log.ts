// Stats log lines (spec 4.8): one START/real.../END block per virtual cycle, appended to
// `<stats_dir>/sd_fullstats.log` and/or written to `<stats_dir>/sd_virtstats_<vname>:<vport>.<sec>`.

import { mkdir, appendFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RealConfig, VirtualConfig } from '../config/model.js';
import { localDateTime, type Logger } from '../../common/log.js';
import { addrPort } from '../state/keys.js';
import { toMs, toUs } from './statistics.js';

/** One real's test in a cycle. Times are ms since the epoch / fractional ms; connMs may be -1/-2/-3. */
export interface RealCycleRecord {
  readonly real: RealConfig;
  readonly startMs: number;
  readonly connMs: number;
  readonly respMs: number;
  readonly totalMs: number;
  /** This cycle's test result (`currtest`). */
  readonly currtest: boolean;
  /** Test state after the retries hysteresis (`online`). */
  readonly online: boolean;
}

export interface CycleRecord {
  readonly virtual: VirtualConfig;
  /** Cycle start and deadline, ms since the epoch. */
  readonly startMs: number;
  readonly deadlineMs: number;
  readonly reals: readonly RealCycleRecord[];
}

/** `YYYY-MM-DD HH:MM:SS.mmm`, local time. */
export function formatHTime(epochMs: number): string {
  const ms = Math.floor(epochMs);
  return `${localDateTime(new Date(ms))}.${String(((ms % 1000) + 1000) % 1000).padStart(3, '0')}`;
}

const bool = (b: boolean): string => (b ? 'TRUE' : 'FALSE');

export function formatRealStatsLine(v: VirtualConfig, r: RealCycleRecord, logmicro: boolean): string {
  const unit = logmicro ? 'us' : 'ms';
  const f = logmicro ? toUs : toMs;
  return (
    `${formatHTime(r.startMs)} virt=${v.name}:${v.port} vproto=${v.proto} vaddr=${addrPort(v.addr, v.port)} ` +
    `real=${r.real.name}:${r.real.port} raddr=${addrPort(r.real.addr, r.real.port)} ` +
    `conntime=${f(r.connMs)}${unit} resptime=${f(r.respMs)}${unit} totaltime=${f(r.totalMs)}${unit} ` +
    `currtest=${bool(r.currtest)} online=${bool(r.online)}\n`
  );
}

/** The whole block for one cycle; µs instead of ms when the virtual's tester has `logmicro`. */
export function formatStatsLog(c: CycleRecord): string {
  const v = c.virtual;
  let out = `START Virtual: ${v.name} start time=${formatHTime(c.startMs)}\n`;
  for (const r of c.reals) out += formatRealStatsLine(v, r, v.tester.logmicro);
  out += `END   Virtual: ${v.name} end time=${formatHTime(c.deadlineMs)}\n--------------\n`;
  return out;
}

export function fullStatsPath(statsDir: string): string {
  return join(statsDir, 'sd_fullstats.log');
}

/** Per-cycle file, named after the cycle deadline in whole Unix seconds. */
export function virtStatsPath(statsDir: string, v: VirtualConfig, deadlineMs: number): string {
  return join(statsDir, `sd_virtstats_${v.name}:${v.port}.${Math.floor(deadlineMs / 1000)}`);
}

export interface StatsLogOptions {
  readonly statsDir: string;
  /** `log_stats`: a new file per cycle. */
  readonly logStats: boolean;
  /** `log_stats_combined`: append to sd_fullstats.log. */
  readonly logStatsCombined: boolean;
}

export interface StatsLogWriter {
  /** Queues one cycle's block; resolves when written. Never rejects: failures are logged. */
  write(c: CycleRecord): Promise<void>;
}

/** mkdir(0700) of stats_dir at start when any stats logging is on (as the original). Never throws. */
export async function ensureStatsDir(opts: StatsLogOptions, log: Logger): Promise<void> {
  if (!opts.logStats && !opts.logStatsCombined) return;
  try {
    await mkdir(opts.statsDir, { recursive: true, mode: 0o700 });
  } catch (e) {
    log.error(`Unable to create stats directory '${opts.statsDir}' [${(e as Error).message}]`);
  }
}

/**
 * Writes are chained so blocks of different virtuals never interleave in the combined file.
 * Files are opened per write, so an external logrotate is followed.
 */
export function createStatsLogWriter(opts: StatsLogOptions, log: Logger): StatsLogWriter {
  let chain: Promise<void> = Promise.resolve();
  const one = async (c: CycleRecord): Promise<void> => {
    const text = formatStatsLog(c);
    if (opts.logStats) {
      const path = virtStatsPath(opts.statsDir, c.virtual, c.deadlineMs);
      await writeFile(path, text).catch((e: Error) => log.error(`Unable to open file '${path}' for writing! [${e.message}]`));
    }
    if (opts.logStatsCombined) {
      const path = fullStatsPath(opts.statsDir);
      await appendFile(path, text).catch((e: Error) => log.error(`Unable to open file '${path}' for append! [${e.message}]`));
    }
  };
  return {
    write(c) {
      if (!opts.logStats && !opts.logStatsCombined) return Promise.resolve();
      chain = chain.then(() => one(c));
      return chain;
    },
  };
}
