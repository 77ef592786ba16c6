// stats.dump (spec 7.4): per-virtual `vstats` and per-real `rstats` lines with averages, sums and
// problem counters in ms and µs, saved periodically and restored at start by VKEY / VKEY RKEY.

import type { RealState, VirtualState } from '../engine/state.js';
import type { Logger } from '../../common/log.js';
import {
  type Averages,
  type VirtualStats,
  rollingAverages,
  seedRollingWindow,
  toMs,
  toUs,
} from '../stats/statistics.js';
import { type DumpWarning, dumpLines, formatWarning, readDumpIfExists, saveDump, saveDumpSync } from './dump-file.js';
import { KeyError, canonicalAddr, formatParsedVKey, indexByVKey, parseRKey, parseVKey, rkey, vkey } from './keys.js';

/** Where a virtual's aggregates live (VirtualState has no stats field yet; the engine supplies them). */
export type VirtualStatsOf = (v: VirtualState) => VirtualStats;

const triple = (f: (x: number) => number, a: Averages): string => `${f(a.conn)}:${f(a.resp)}:${f(a.total)}`;

export function formatVStatsLine(v: VirtualState, vs: VirtualStats): string {
  const avg: Averages = { conn: vs.avgConn, resp: vs.avgResp, total: vs.avgTotal };
  return (
    `vstats ${vkey(v.config)} - ${v.config.tester.statsSamples} ${vs.total} - ${triple(toMs, avg)} - ${triple(toUs, avg)} - ` +
    `${vs.connProblems}:${vs.arpProblems}:${vs.rstProblems}\n`
  );
}

export function formatRStatsLine(r: RealState): string {
  const s = r.stats;
  const avg = rollingAverages(s);
  const sum: Averages = { conn: s.sumConn, resp: s.sumResp, total: s.sumTotal };
  return (
    `rstats ${rkey(r.config)} - ${s.total} - ${triple(toMs, avg)} - ${triple(toUs, avg)} - ` +
    `${triple(toMs, sum)} - ${triple(toUs, sum)} - ${s.connProblems}:${s.arpProblems}:${s.rstProblems}\n`
  );
}

/** Every virtual's vstats line; for virtuals with reals, their rstats lines and a blank line. */
export function formatStatsDump(virtuals: readonly VirtualState[], statsOf: VirtualStatsOf): string {
  let out = '';
  for (const v of virtuals) {
    out += formatVStatsLine(v, statsOf(v));
    if (v.reals.length === 0) continue;
    for (const r of v.reals) out += formatRStatsLine(r);
    out += '\n';
  }
  return out;
}

const N = '(-?[0-9]+)';
const T3 = `${N}:${N}:${N}`;
const VSTATS = new RegExp(`^vstats (\\S+) - ${N} ${N} - ${T3} - ${T3} - ${T3}\\s*$`);
const RSTATS = new RegExp(`^rstats (\\S+) - ${N} - ${T3} - ${T3} - ${T3} - ${T3} - ${T3}\\s*$`);

export interface VirtualStatsRecord {
  readonly virtual: VirtualState;
  readonly total: number;
  /** Averages in ms, from the µs columns (more precise than the ms ones). */
  readonly avg: Averages;
  readonly connProblems: number;
  readonly arpProblems: number;
  readonly rstProblems: number;
}

export interface RealStatsRecord {
  readonly real: RealState;
  readonly total: number;
  readonly avg: Averages;
  readonly sum: Averages;
  readonly connProblems: number;
  readonly arpProblems: number;
  readonly rstProblems: number;
}

export interface StatsDumpParse {
  readonly virtuals: VirtualStatsRecord[];
  readonly reals: RealStatsRecord[];
  readonly warnings: DumpWarning[];
}

const fromUs = (a: string, b: string, c: string): Averages => ({ conn: Number(a) / 1000, resp: Number(b) / 1000, total: Number(c) / 1000 });

/**
 * vstats lines are looked up by exact VKEY; an rstats line belongs to the virtual of the last vstats
 * line before it (as the original's `"<vkey> <rkey>"` lookup). Bad or unmatched lines become warnings.
 */
export function parseStatsDump(text: string, virtuals: readonly VirtualState[], file: string): StatsDumpParse {
  const index = indexByVKey(virtuals);
  const out: StatsDumpParse = { virtuals: [], reals: [], warnings: [] };
  let current: readonly VirtualState[] | null = null;
  let currentKey = '';
  for (const { no, text: line } of dumpLines(text)) {
    const warn = (reason: string): void => {
      out.warnings.push({ file, line: no, text: line, reason });
    };
    try {
      const v = VSTATS.exec(line);
      if (v) {
        currentKey = formatParsedVKey(parseVKey(v[1]!));
        current = index.get(currentKey) ?? null;
        if (!current) {
          warn('no such virtual in the configuration');
          continue;
        }
        for (const virtual of current) {
          out.virtuals.push({
            virtual,
            total: Number(v[3]),
            avg: fromUs(v[7]!, v[8]!, v[9]!),
            connProblems: Number(v[10]),
            arpProblems: Number(v[11]),
            rstProblems: Number(v[12]),
          });
        }
        continue;
      }
      const r = RSTATS.exec(line);
      if (!r) {
        warn('expected a vstats or rstats line');
        continue;
      }
      const k = parseRKey(r[1]!);
      if (current === null) {
        warn(currentKey ? `real of unknown virtual ${currentKey}` : 'rstats line before any vstats line');
        continue;
      }
      const reals = current.flatMap((vs) => vs.reals.filter((x) => canonicalAddr(x.config.addr) === k.addr && x.config.port === k.port));
      if (reals.length === 0) warn(`no such real in virtual ${currentKey}`);
      for (const real of reals) {
        out.reals.push({
          real,
          total: Number(r[2]),
          avg: fromUs(r[6]!, r[7]!, r[8]!),
          sum: fromUs(r[12]!, r[13]!, r[14]!),
          connProblems: Number(r[15]),
          arpProblems: Number(r[16]),
          rstProblems: Number(r[17]),
        });
      }
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      warn(e.message);
    }
  }
  return out;
}

/** Puts parsed records into the state; rolling windows are refilled with the saved averages. */
export function applyStatsDump(parsed: StatsDumpParse, statsOf: VirtualStatsOf): void {
  for (const rec of parsed.virtuals) {
    const vs = statsOf(rec.virtual);
    vs.total = rec.total;
    vs.avgConn = rec.avg.conn;
    vs.avgResp = rec.avg.resp;
    vs.avgTotal = rec.avg.total;
    vs.connProblems = rec.connProblems;
    vs.arpProblems = rec.arpProblems;
    vs.rstProblems = rec.rstProblems;
  }
  for (const rec of parsed.reals) {
    const s = rec.real.stats;
    s.total = rec.total;
    s.sumConn = rec.sum.conn;
    s.sumResp = rec.sum.resp;
    s.sumTotal = rec.sum.total;
    s.connProblems = rec.connProblems;
    s.arpProblems = rec.arpProblems;
    s.rstProblems = rec.rstProblems;
    seedRollingWindow(s, rec.avg, rec.real.virtual.config.tester.statsSamples);
  }
}

/** Start-up restore (only when gather_stats). Never throws: problems are logged. */
export async function loadStatsDump(path: string, virtuals: readonly VirtualState[], statsOf: VirtualStatsOf, log: Logger): Promise<boolean> {
  let text: string | null;
  try {
    text = await readDumpIfExists(path);
  } catch (e) {
    log.warn(`Unable to open stats dump file - ${path} [${(e as Error).message}]`);
    return false;
  }
  if (text === null) {
    log.warn(`Unable to open stats dump file - ${path}`);
    return false;
  }
  log.info(`Processing stats file [${path}]`);
  const parsed = parseStatsDump(text, virtuals, path);
  for (const w of parsed.warnings) log.warn(formatWarning(w));
  applyStatsDump(parsed, statsOf);
  return true;
}

export function saveStatsDump(path: string, virtuals: readonly VirtualState[], statsOf: VirtualStatsOf, log: Logger): Promise<boolean> {
  return saveDump(path, formatStatsDump(virtuals, statsOf), log);
}

export function saveStatsDumpSync(path: string, virtuals: readonly VirtualState[], statsOf: VirtualStatsOf, log: Logger): boolean {
  return saveDumpSync(path, formatStatsDump(virtuals, statsOf), log);
}
