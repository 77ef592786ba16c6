// Byte-exact reply texts of the control port (spec 9.3) and their JSON forms, pure.
// Text replies end with `_SD_CMD_END_\n`; error replies are one line without it, as the original.

import { decideFallbacks, sorryEntryNow } from '../engine/fallback.js';
import {
  ipvsWeight,
  presentInIpvs,
  type RealState,
  type RState,
  type TestCounters,
  type VirtualState,
  type WeightOverride,
} from '../engine/state.js';
import { formatRsetReply } from '../state/override-dump.js';
import { lifetimeAverages, rollingAverages, toMs, toUs, type Averages } from '../stats/statistics.js';
import type { ControlInfo } from './target.js';
import { LATENESS_BOUNDS_S, type LatenessHistogram } from '../engine/lateness.js';

/** Cumulative counts by upper bound in seconds ("+Inf" = all), sum, count, and max since the last read. */
function latenessJson(h: LatenessHistogram): Record<string, unknown> {
  const cum = h.cumulative();
  const le: Record<string, number> = {};
  LATENESS_BOUNDS_S.forEach((b, i) => (le[String(b)] = cum[i]!));
  le['+Inf'] = h.count;
  return { le, sum_s: h.sumSeconds, count: h.count, max_s: h.takeMax() };
}

export const END_MARKER = '_SD_CMD_END_';
const END = `${END_MARKER}\n`;

/** One error reply line (no end marker). */
export function errorReply(message: string): string {
  return `${message}\n`;
}

export function invalidRequestReply(line: string): string {
  return `Invalid request! [${line}]\n`;
}

export const GATHER_STATS_OFF = 'Gathering statistics is OFF\n';

/** A JSON reply: one line of JSON, then the end marker line. */
function jsonReply(value: unknown): string {
  return `${JSON.stringify(value)}\n${END}`;
}

// ---------------------------------------------------------------------------------------------
// vlist / rlist

function virtualFields(v: VirtualState): string {
  const c = v.config;
  return `vname=${c.name} vproto=${c.proto} vaddr=${c.addr} vport=${c.port} vfwmark=${c.fwmark} vrt=${c.rt} vsched=${c.sched}`;
}

function virtualJson(v: VirtualState): Record<string, string | number> {
  const c = v.config;
  return { index: v.index, vname: c.name, vproto: c.proto, vaddr: c.addr, vport: c.port, vfwmark: c.fwmark, vrt: c.rt, vsched: c.sched };
}

export function vlistReply(virtuals: readonly VirtualState[]): string {
  let s = '';
  virtuals.forEach((v, i) => {
    s += `v:${i} ${virtualFields(v)}\n`;
  });
  return s + END;
}

export function vlistJson(virtuals: readonly VirtualState[]): string {
  return jsonReply({ virtuals: virtuals.map((v, i) => ({ ...virtualJson(v), index: i })) });
}

const bool = (b: boolean): string => (b ? 'TRUE' : 'FALSE');

export function rlistReply(v: VirtualState): string {
  let s = `${virtualFields(v)}\n`;
  if (v.reals.length === 0) s += 'EMPTY LIST - no reals defined in virtual\n';
  v.reals.forEach((r, i) => {
    const c = r.config;
    // currwgt: the IPVS weight (with the virtual in panic, a failing real keeps its weight).
    s += `r:${i} rname=${c.name} raddr=${c.addr} rport=${c.port} currwgt=${ipvsWeight(r)} confwgt=${c.weight} ronline=${bool(r.online)} rstate=${r.rstate}\n`;
  });
  return s + END;
}

export function rlistJson(v: VirtualState): string {
  return jsonReply({
    virtual: virtualJson(v),
    reals: v.reals.map((r, i) => ({
      index: i,
      rname: r.config.name,
      raddr: r.config.addr,
      rport: r.config.port,
      currwgt: ipvsWeight(r),
      confwgt: r.config.weight,
      ronline: r.online,
      rstate: r.rstate,
      override: r.override ? { weight: r.override.weight, percent: r.override.percent } : null,
      inipvs: presentInIpvs(r),
    })),
  });
}

// ---------------------------------------------------------------------------------------------
// fallbacks (extension): panic mode and sorry server per virtual

/**
 * One line per virtual, then the end marker:
 * `v:<idx> <vlist fields> panic=<TRUE|FALSE> panic_threshold=<N> passing=<n> eligible=<n> serving=<n> sorry=<IN|OUT|NONE>`
 * followed, for a virtual with a sorry server, by ` sname=<n> saddr=<a> sport=<n> sweight=<w> currwgt=<w> inipvs=<TRUE|FALSE>`.
 * panic and sorry are the states the hand-off carries; the counts are the current ones.
 */
export function fallbacksReply(virtuals: readonly VirtualState[]): string {
  let s = '';
  for (const v of virtuals) {
    const d = decideFallbacks(v);
    s += `v:${v.index} ${virtualFields(v)} panic=${bool(v.panic)} panic_threshold=${d.threshold} passing=${d.passing} eligible=${d.eligible} serving=${d.serving}`;
    const so = v.sorry;
    if (so === null) s += ' sorry=NONE\n';
    else {
      const e = sorryEntryNow(so);
      const c = so.config;
      s += ` sorry=${so.active ? 'IN' : 'OUT'} sname=${c.name} saddr=${c.addr} sport=${c.port} sweight=${c.weight} currwgt=${e.weight} inipvs=${bool(e.present)}\n`;
    }
  }
  return s + END;
}

export function fallbacksJson(virtuals: readonly VirtualState[]): string {
  return jsonReply({
    virtuals: virtuals.map((v) => {
      const d = decideFallbacks(v);
      const so = v.sorry;
      const e = so === null ? null : sorryEntryNow(so);
      return {
        ...virtualJson(v),
        panic: { active: v.panic, threshold: d.threshold, passing: d.passing, eligible: d.eligible },
        serving: d.serving,
        sorry:
          so === null || e === null
            ? null
            : { name: so.config.name, addr: so.config.addr, port: so.config.port, weight: so.config.weight, inhibit: so.config.inhibit, active: so.active, currwgt: e.weight, inipvs: e.present },
      };
    }),
  });
}

// ---------------------------------------------------------------------------------------------
// rset

export interface RsetOutcome {
  readonly rstate: RState;
  readonly override: WeightOverride;
  readonly deleteEntry: boolean;
}

export function rsetReply(o: RsetOutcome): string {
  return `${formatRsetReply(o)}${END}`;
}

export function rsetJson(o: RsetOutcome): string {
  return jsonReply({ rstate: o.rstate, weight: o.override.weight, inpercent: o.override.percent, deleted: o.deleteEntry });
}

// ---------------------------------------------------------------------------------------------
// stats

/** Resource usage of the tester process (getrusage + /proc), gathered by the caller. */
export interface ProcessStats {
  readonly userTimeUs: number;
  readonly systemTimeUs: number;
  readonly blockInOps: number;
  readonly blockOutOps: number;
  readonly messagesSent: number;
  readonly messagesRcvd: number;
  readonly signalsRcvd: number;
  readonly voluntaryCtx: number;
  readonly involuntaryCtx: number;
  readonly fdUsed: number;
  /** `Vm*` lines of /proc/<pid>/status: name without `Vm` and `:`, value, unit. */
  readonly vm: ReadonlyArray<{ readonly name: string; readonly value: number; readonly unit: string }>;
}

interface RealCounts {
  virtuals: number;
  reals: number;
  ronline: number;
  roffline: number;
  rdown: number;
  success: number;
  failed: number;
}

function countReals(virtuals: readonly VirtualState[]): RealCounts {
  const c: RealCounts = { virtuals: virtuals.length, reals: 0, ronline: 0, roffline: 0, rdown: 0, success: 0, failed: 0 };
  for (const v of virtuals) {
    for (const r of v.reals) {
      c.reals++;
      if (r.rstate === 'ONLINE') c.ronline++;
      else if (r.rstate === 'OFFLINE') c.roffline++;
      else c.rdown++;
      if (r.online) c.success++;
      else c.failed++;
    }
  }
  return c;
}

/** `%u` of a 32-bit counter. */
const u32 = (n: number): number => Math.trunc(n) >>> 0;
/** `%d.%06d` of a duration in microseconds. */
const secUs = (us: number): string => `${Math.floor(us / 1e6)}.${String(Math.floor(us % 1e6)).padStart(6, '0')}`;

export interface StatsInput {
  readonly virtuals: readonly VirtualState[];
  readonly counters: TestCounters;
  readonly info: ControlInfo;
  readonly proc: ProcessStats;
  /** Probe start lateness (JSON form only: the text form stays byte-compatible). */
  readonly lateness?: LatenessHistogram;
}

export function statsReply(x: StatsInput): string {
  const c = countReals(x.virtuals);
  const t = x.counters;
  const p = x.proc;
  const offline = x.info.offlineSize === null ? 4294967295 : u32(x.info.offlineSize);
  let s =
    '=== global stats ===\n' +
    `watchdog_pid   : ${x.info.watchdogPid}\n` +
    `tester_pid     : ${x.info.pid}\n` +
    `virtuals       : ${c.virtuals}\n` +
    `reals          : ${c.reals}\n\n` +
    '=== real settings ===\n' +
    `ronline        : ${c.ronline}\n` +
    `roffline       : ${c.roffline}\n` +
    `rdown          : ${c.rdown}\n` +
    `offline_size   : ${offline}\n` +
    `override_size  : ${u32(x.info.overrideSize)}\n\n` +
    '=== real stats ===\n' +
    `success        : ${c.success}\n` +
    `failed         : ${c.failed}\n\n` +
    '=== tests stats ===\n' +
    `t_success      : ${u32(t.success)}\n` +
    `t_failed       : ${u32(t.failed)}\n` +
    `t_online_set   : ${u32(t.onlineSet)}\n` +
    `t_offline_set  : ${u32(t.offlineSet)}\n` +
    `t_conn_problem : ${u32(t.connProblem)}\n` +
    `t_arp_problem  : ${u32(t.arpProblem)}\n` +
    `t_rst_problem  : ${u32(t.rstProblem)}\n` +
    `t_bytes_rcvd   : ${u32(t.bytesRcvd)}\n` +
    `t_bytes_sent   : ${u32(t.bytesSent)}\n\n` +
    '=== resource usage ===\n' +
    `user_time      : ${secUs(p.userTimeUs)} sec\n` +
    `system_time    : ${secUs(p.systemTimeUs)} sec\n` +
    `block_in_ops   : ${p.blockInOps}\n` +
    `block_out_ops  : ${p.blockOutOps}\n` +
    `messages_sent  : ${p.messagesSent}\n` +
    `messages_rcvd  : ${p.messagesRcvd}\n` +
    `signals_rcvd   : ${p.signalsRcvd}\n` +
    `voluntary_ctx  : ${p.voluntaryCtx}\n` +
    `involunt_ctx   : ${p.involuntaryCtx}\n` +
    `fd_used        : ${p.fdUsed}\n\n` +
    '=== memory usage ===\n';
  for (const vm of p.vm) s += `Vm${vm.name.padEnd(12)} : ${String(vm.value).padEnd(6)} ${vm.unit}\n`;
  return s + END;
}

/** JSON keys are the text labels; times in microseconds; offline_size null when the offline dump is off. */
export function statsJson(x: StatsInput): string {
  const c = countReals(x.virtuals);
  const t = x.counters;
  const p = x.proc;
  const memory: Record<string, { value: number; unit: string }> = {};
  for (const vm of p.vm) memory[`Vm${vm.name}`] = { value: vm.value, unit: vm.unit };
  return jsonReply({
    ...(x.lateness ? { probe_start_lateness: latenessJson(x.lateness) } : {}),
    watchdog_pid: x.info.watchdogPid,
    tester_pid: x.info.pid,
    virtuals: c.virtuals,
    reals: c.reals,
    ronline: c.ronline,
    roffline: c.roffline,
    rdown: c.rdown,
    offline_size: x.info.offlineSize,
    override_size: x.info.overrideSize,
    success: c.success,
    failed: c.failed,
    t_success: t.success,
    t_failed: t.failed,
    t_online_set: t.onlineSet,
    t_offline_set: t.offlineSet,
    t_conn_problem: t.connProblem,
    t_arp_problem: t.arpProblem,
    t_rst_problem: t.rstProblem,
    t_bytes_rcvd: t.bytesRcvd,
    t_bytes_sent: t.bytesSent,
    user_time_us: p.userTimeUs,
    system_time_us: p.systemTimeUs,
    block_in_ops: p.blockInOps,
    block_out_ops: p.blockOutOps,
    messages_sent: p.messagesSent,
    messages_rcvd: p.messagesRcvd,
    signals_rcvd: p.signalsRcvd,
    voluntary_ctx: p.voluntaryCtx,
    involunt_ctx: p.involuntaryCtx,
    fd_used: p.fdUsed,
    memory,
  });
}

// ---------------------------------------------------------------------------------------------
// connstats

type Triple = readonly [number, number, number];

/** A real's timing figures in fractional ms: last probe, rolling window mean, lifetime mean. */
export interface RealFigures {
  readonly lastMs: Triple;
  readonly savgMs: Triple;
  readonly tavgMs: Triple;
}

const triple3 = (a: Averages): Triple => [a.conn, a.resp, a.total];

export function realFigures(r: RealState): RealFigures {
  const s = r.stats;
  return { lastMs: [s.lastConn, s.lastResp, s.lastTotal], savgMs: triple3(rollingAverages(s)), tavgMs: triple3(lifetimeAverages(s)) };
}

export function connstatsReply(virtuals: readonly VirtualState[]): string {
  let s = '';
  virtuals.forEach((v, i) => {
    const c = v.config;
    const vs = v.stats;
    const unit = c.tester.logmicro ? 'us' : 'ms';
    const conv = c.tester.logmicro ? toUs : toMs;
    s += 'Virtual:\n';
    s += `v:${i} ${virtualFields(v)} samples=${c.tester.statsSamples} total=${vs.total} `;
    s += `savgconn=${conv(vs.avgConn)}${unit} savgresp=${conv(vs.avgResp)}${unit} savgtotal=${conv(vs.avgTotal)}${unit} `;
    s += `connprob=${vs.connProblems} arpprob=${vs.arpProblems} rstprob=${vs.rstProblems}\n\n`;
    s += 'Reals:\n';
    const V = `vname=${c.name} vproto=${c.proto} vaddr=${c.addr} vport=${c.port} vfwmark=${c.fwmark} `;
    v.reals.forEach((r, j) => {
      const rc = r.config;
      const R = `rname=${rc.name} raddr=${rc.addr} rport=${rc.port} total=${r.stats.total} `;
      const f = realFigures(r);
      const p = `r:${i}.${j}`;
      const t3 = (names: readonly string[], x: Triple): string =>
        `${names[0]}=${toMs(x[0])}ms ${names[1]}=${toMs(x[1])}ms ${names[2]}=${toMs(x[2])}ms`;
      const t3us = (names: readonly string[], x: Triple): string =>
        `${names[0]}=${toUs(x[0])}us ${names[1]}=${toUs(x[1])}us ${names[2]}=${toUs(x[2])}us`;
      const last = ['lastconn', 'lastresp', 'lasttotal'];
      const savg = ['savgconn', 'savgresp', 'savgtotal'];
      const tavg = ['tavgconn', 'tavgresp', 'tavgtotal'];
      s += `${p} real-stats ${V}${R}connprob=${r.stats.connProblems} arpprob=${r.stats.arpProblems} rstprob=${r.stats.rstProblems}\n`;
      s += `${p} lstats_ms  ${V}${R}${t3(last, f.lastMs)}\n`;
      s += `${p} lstats_us  ${V}${R}${t3us(last, f.lastMs)}\n`;
      s += `${p} sstats_ms  ${V}${R}${t3(savg, f.savgMs)}\n`;
      s += `${p} sstats_us  ${V}${R}${t3us(savg, f.savgMs)}\n`;
      s += `${p} tstats_ms  ${V}${R}${t3(tavg, f.tavgMs)}\n`;
      s += `${p} tstats_us  ${V}${R}${t3us(tavg, f.tavgMs)}\n`;
      s += '\n';
    });
    if (v.reals.length > 0) s += '-----\n';
    s += '\n';
  });
  return s + END;
}

const triple = (x: Triple): { conn: number; resp: number; total: number } => ({ conn: x[0], resp: x[1], total: x[2] });

/** Times are fractional milliseconds (not the text form's truncated integers). */
export function connstatsJson(virtuals: readonly VirtualState[]): string {
  return jsonReply({
    virtuals: virtuals.map((v, i) => {
      const vs = v.stats;
      return {
        ...virtualJson(v),
        index: i,
        samples: v.config.tester.statsSamples,
        total: vs.total,
        savg_ms: { conn: vs.avgConn, resp: vs.avgResp, total: vs.avgTotal },
        connprob: vs.connProblems,
        arpprob: vs.arpProblems,
        rstprob: vs.rstProblems,
        reals: v.reals.map((r, j) => {
          const f = realFigures(r);
          return {
            index: j,
            rname: r.config.name,
            raddr: r.config.addr,
            rport: r.config.port,
            total: r.stats.total,
            connprob: r.stats.connProblems,
            arpprob: r.stats.arpProblems,
            rstprob: r.stats.rstProblems,
            last_ms: triple(f.lastMs),
            savg_ms: triple(f.savgMs),
            tavg_ms: triple(f.tavgMs),
          };
        }),
      };
    }),
  });
}
