// Guest-side helpers for the ipvssync kernel test and benchmark: hand-off files written in the exact
// spec 8.3/8.4 format, the table they describe as comparable rows, the kernel's rows, and processes.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Destination, IpvsClient, Service } from '../../../ipvs-netlink/index.js';
import { parseSave } from './ipvsadm-parse.js';

export type Rt = 'dr' | 'masq' | 'tun';

export interface HandoffReal {
  name: string;
  addr: string;
  port: number;
  weight: number;
  /** Only when it differs from the virtual's. */
  rt?: Rt;
  lthresh?: number;
  uthresh?: number;
}

export interface HandoffVirtual {
  name: string;
  proto: 'tcp' | 'udp' | 'fwmark';
  addr: string;
  port: number;
  fwmark: number;
  rt: Rt;
  sched: string;
  pers?: number;
  ops?: boolean;
  reals: HandoffReal[];
}

// ------------------------------------------------------------------------------------------------
// The hand-off, as surealived writes it.

export interface HandoffPaths {
  dir: string;
  config: string;
  lock: string;
  full: string;
  reload: string;
  diffDir: string;
}

export function handoffPaths(dir: string): HandoffPaths {
  return {
    dir,
    config: join(dir, 'surealived.cfg'),
    lock: join(dir, 'ipvsfull.lock'),
    full: join(dir, 'ipvsfull.cfg'),
    reload: join(dir, 'ipvsfull.reload'),
    diffDir: join(dir, 'diffs'),
  };
}

/** A main config with every path under `dir` (lines of `extra` are appended: listen_port etc.). */
export function writeMainConfig(p: HandoffPaths, extra: readonly string[] = []): void {
  mkdirSync(p.diffDir, { recursive: true });
  const lines = [
    'use_log true',
    'log stderr',
    'ipvssync_log stderr',
    'ipvssync_logging info',
    `lock_sync_file ${p.lock}`,
    `full_sync_file ${p.full}`,
    `full_reload_file ${p.reload}`,
    `diff_sync_dir ${p.diffDir}`,
    `offline_dump ${join(p.dir, 'offline.dump')}`,
    `override_dump ${join(p.dir, 'override.dump')}`,
    `stats_dump ${join(p.dir, 'stats.dump')}`,
    `notify_dump ${join(p.dir, 'notify.dump')}`,
    `stats_dir ${join(p.dir, 'stats')}`,
    `debug_comm_path ${join(p.dir, 'comm')}`,
    ...extra,
  ];
  writeFileSync(p.config, lines.join('\n') + '\n');
}

function virtualLine(v: HandoffVirtual): string {
  let s = `virtual vname=${v.name} vproto=${v.proto} vaddr=${v.addr} vport=${v.port} vrt=${v.rt} vsched=${v.sched}`;
  if (v.pers) s += ` vpers=${v.pers}`;
  if (v.fwmark > 0) s += ` vfwmark=${v.fwmark}`;
  if (v.ops && v.proto === 'udp') s += ' vops=1';
  return s;
}

function realTail(r: HandoffReal): string {
  let s = ` rweight=${r.weight}`;
  if (r.lthresh) s += ` rl_thresh=${r.lthresh}`;
  if (r.uthresh) s += ` ru_thresh=${r.uthresh}`;
  if (r.rt) s += ` rrt=${r.rt}`;
  return s;
}

/** ipvsfull.cfg (spec 8.3). */
export function formatFull(virtuals: readonly HandoffVirtual[], diffFile: string): string {
  const out = ['meta version=1.0 mdate=2024-05-01 mtime=12:00:00', '', `DIFF file=${diffFile}`, ''];
  for (const v of virtuals) {
    out.push(virtualLine(v));
    for (const r of v.reals) out.push(`real rname=${r.name} raddr=${r.addr} rport=${r.port}${realTail(r)}`);
    if (v.reals.length > 0) out.push('');
  }
  return out.join('\n') + '\n';
}

/** One diff line (spec 8.4). */
export function formatDiff(cmd: 'addreal' | 'chgreal' | 'delreal', v: HandoffVirtual, r: HandoffReal): string {
  return (
    `cmd=${cmd} vname=${v.name} vproto=${v.proto} vaddr=${v.addr} vport=${v.port} vfwmark=${v.fwmark} vrt=${v.rt} ` +
    `vsched=${v.sched} rname=${r.name} raddr=${r.addr} rport=${r.port}${realTail(r)}\n`
  );
}

/** Full file + empty diff file + lock file, as a freshly started surealived leaves them. */
export function writeHandoff(p: HandoffPaths, virtuals: readonly HandoffVirtual[], diffNo = 1000): string {
  mkdirSync(p.diffDir, { recursive: true });
  const diff = join(p.diffDir, `diff_sync.${diffNo}`);
  writeFileSync(diff, '');
  writeFileSync(p.lock, '');
  writeFileSync(p.full, formatFull(virtuals, diff));
  return diff;
}

/** `n` services of `reals` reals each, with a mix of protocols, methods, persistence, one-packet and thresholds. */
export function generateTable(n: number, reals: number, opts: { base?: number; sched?: string } = {}): HandoffVirtual[] {
  const base = opts.base ?? 1;
  const out: HandoffVirtual[] = [];
  for (let i = 0; i < n; i++) {
    const fw = i % 50 === 49;
    const udp = !fw && i % 10 === 3;
    const v: HandoffVirtual = {
      name: `v${i}`,
      proto: fw ? 'fwmark' : udp ? 'udp' : 'tcp',
      addr: fw ? '0.0.0.0' : `10.${base}.${i >> 8}.${i & 255}`,
      port: fw ? 0 : udp ? 53 : 80,
      fwmark: fw ? 1000 + i : 0,
      rt: i % 4 === 1 ? 'masq' : 'dr',
      sched: opts.sched ?? ['wrr', 'rr', 'wlc', 'lc'][i % 4]!,
      reals: [],
    };
    if (i % 7 === 5) v.pers = 300 + i;
    if (udp) v.ops = true;
    for (let j = 0; j < reals; j++) {
      const r: HandoffReal = {
        name: `r${i}_${j}`,
        // One /24 per service (j < 254): unique, and never a .0 or .255 address.
        addr: `10.${base + 100 + (i >> 8)}.${i & 255}.${j + 1}`,
        // The service's port: ipvsadm -R forces it for dr and tun reals, so both loaders build the same table.
        port: v.port,
        weight: 1 + ((i + j) % 20),
      };
      if (j % 9 === 8) r.rt = v.rt === 'masq' ? 'tun' : 'masq';
      if (j % 11 === 10) {
        r.uthresh = 1000 + j;
        r.lthresh = 500 + j;
      }
      v.reals.push(r);
    }
    out.push(v);
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Tables as sorted rows: what the hand-off asks for, what the kernel has (netlink), what ipvsadm shows.

const FWD: Record<Rt, string> = { dr: 'route', masq: 'masq', tun: 'tunnel' };

/** `10.0.0.1:80`, `[2001:db8::1]:80`: as ipvsadm prints them (addresses in canonical form). */
export function hostPort(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function svcKey(proto: string, addr: string, port: number, fwmark: number): string {
  return fwmark > 0 ? `fwm ${fwmark} v${addr.includes(':') ? 6 : 4}` : `${proto} ${hostPort(addr, port)}`;
}

/** Rows of a table: `S <key> <sched> p=<timeout|-> o=<0|1>` and `D <key> > <addr:port> <fwd> w=<w>[ x=<u> y=<l>]`. */
export function expectedRows(virtuals: readonly HandoffVirtual[], thresholds = true): string[] {
  const rows: string[] = [];
  for (const v of virtuals) {
    const key = svcKey(v.proto === 'fwmark' ? 'tcp' : v.proto, v.addr, v.port, v.fwmark);
    rows.push(`S ${key} ${v.sched} p=${v.pers ?? '-'} o=${v.ops && v.proto === 'udp' ? 1 : 0}`);
    for (const r of v.reals) {
      const t = thresholds ? ` x=${r.uthresh ?? 0} y=${r.lthresh ?? 0}` : '';
      rows.push(`D ${key} > ${hostPort(r.addr, r.port)} ${FWD[r.rt ?? v.rt]} w=${r.weight}${t}`);
    }
  }
  return rows.sort();
}

function nlKey(s: Service): string {
  return svcKey(s.protocol, s.address, s.port, s.fwmark);
}

function nlServiceRow(s: Service): string {
  return `S ${nlKey(s)} ${s.scheduler} p=${s.flags.persistent ? s.timeout : '-'} o=${s.flags.onePacket ? 1 : 0}`;
}

function nlDestRow(s: Service, d: Destination, thresholds: boolean): string {
  const t = thresholds ? ` x=${d.upperThreshold} y=${d.lowerThreshold}` : '';
  return `D ${nlKey(s)} > ${hostPort(d.address, d.port)} ${d.forward} w=${d.weight}${t}`;
}

/** The kernel's table through netlink, as rows. */
export async function kernelRows(c: IpvsClient, thresholds = true): Promise<string[]> {
  const rows: string[] = [];
  for (const s of await c.listServices()) {
    rows.push(nlServiceRow(s));
    for (const d of await c.listDestinations(s)) rows.push(nlDestRow(s, d, thresholds));
  }
  return rows.sort();
}

export function ipvsadm(...args: string[]): string {
  return execFileSync('ipvsadm', args, { encoding: 'utf8', maxBuffer: 256 << 20 });
}

/** The kernel's table through `ipvsadm -Sn`, as rows (ipvsadm does not save thresholds). */
export function ipvsadmRows(): string[] {
  const saved = parseSave(ipvsadm('-Sn'));
  const rows: string[] = [];
  for (const s of saved.services.values()) rows.push(`S ${s.key} ${s.scheduler} p=${s.persistent ?? '-'} o=${s.onePacket ? 1 : 0}`);
  for (const d of saved.dests) rows.push(`D ${d.service} > ${d.server} ${d.forward} w=${d.weight}`);
  return rows.sort();
}

/** What differs between two row lists (at most `max` lines of each side), for failure messages. */
export function rowDiff(want: readonly string[], have: readonly string[], max = 8): string {
  const w = new Set(want);
  const h = new Set(have);
  const missing = want.filter((r) => !h.has(r));
  const extra = have.filter((r) => !w.has(r));
  return (
    `${want.length} rows wanted, ${have.length} present; ${missing.length} missing, ${extra.length} unexpected\n` +
    `missing: ${missing.slice(0, max).join(' | ')}\nunexpected: ${extra.slice(0, max).join(' | ')}`
  );
}

export function sameRows(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

// ------------------------------------------------------------------------------------------------
// Processes and waiting.

export const REPO = process.cwd();

/** A child process whose stdout + stderr go to a log file. */
export interface Proc {
  readonly child: ChildProcess;
  readonly logFile: string;
  log(): string;
  exited(): boolean;
  /** Sends `sig` and waits for the exit (SIGKILL after `ms`). */
  stop(sig?: NodeJS.Signals, ms?: number): Promise<number | null>;
}

/**
 * Node options for the processes started here, from DIAG_NODE_ARGS (space-separated, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`): for diagnosing a run in the lab, never set by the tests.
 */
const DIAG_NODE_ARGS = (process.env.DIAG_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');

export function startProc(args: readonly string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...DIAG_NODE_ARGS, ...args], { cwd: REPO, stdio: ['ignore', fd, fd], env: { ...process.env, NO_COLOR: '1' } });
  closeSync(fd);
  let code: number | null | undefined;
  const done = new Promise<number | null>((res) => child.on('exit', (c, s) => res((code = c ?? (s ? -1 : null)))));
  return {
    child,
    logFile,
    log: () => readFileSync(logFile, 'utf8'),
    exited: () => code !== undefined,
    stop: async (sig: NodeJS.Signals = 'SIGTERM', ms = 10_000) => {
      if (code !== undefined) return code;
      child.kill(sig);
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      const c = await done;
      clearTimeout(t);
      return c;
    },
  };
}

export function startIpvssync(p: HandoffPaths, logFile: string, extra: readonly string[] = []): Proc {
  return startProc(['dist/ipvssync/cli.js', '-c', p.config, ...extra], logFile);
}

/**
 * Polls `f` until it returns true; false after `ms`. The pause starts at `everyMs` and, with `growTo`,
 * grows by half each time up to it: reading a 10,000-row table is itself costly on the single vCPU.
 */
export async function waitFor(f: () => boolean | Promise<boolean>, ms: number, everyMs = 100, growTo = everyMs): Promise<boolean> {
  const end = Date.now() + ms;
  let pause = everyMs;
  for (;;) {
    if (await f()) return true;
    if (Date.now() >= end) return false;
    await sleep(Math.min(pause, Math.max(0, end - Date.now())));
    pause = Math.min(growTo, pause * 1.5);
  }
}
