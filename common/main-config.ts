// The main configuration file (surealived.cfg), shared by surealived, ipvssync and ssyncd.
// Syntax as SureAliveD: `key value` per line, first two whitespace-separated tokens, `#` in column 0
// starts a comment, later duplicates win, unknown keys kept and ignored, booleans true iff the value
// starts with T/t, integers parsed like C atoi (garbage -> 0).

import { readFileSync } from 'node:fs';

export type LogLevelName = 'error' | 'warn' | 'info' | 'debug' | 'dbdet';

export interface MainConfig {
  readonly maxfd: number;
  readonly log: string;
  readonly useLog: boolean;
  readonly logging: LogLevelName;
  readonly useSyslog: boolean;
  readonly useTmInSyslog: boolean;
  readonly modulesPath: string;
  readonly modules: string;
  readonly listenAddr: string;
  readonly listenPort: number;
  /** Extension: unix socket for the control protocol ('' = none). */
  readonly controlSocket: string;
  /** Extension: HTTP listener for GET /metrics (port 0 = none). */
  readonly metricsListenAddr: string;
  readonly metricsListenPort: number;
  /** Extension: control port limits. */
  readonly controlMaxClients: number;
  readonly controlIdleTimeout: number;
  readonly memlimit: number;
  readonly loopIntervalMs: number;
  readonly epollIntervalMs: number;
  readonly startupDelayMs: number;
  readonly epollSize: number;
  readonly debugComm: boolean;
  readonly debugCommPath: string;
  readonly statsDir: string;
  readonly logStats: boolean;
  readonly logStatsCombined: boolean;
  readonly noSync: boolean;
  readonly lockSyncFile: string;
  readonly fullSyncFile: string;
  readonly fullReloadFile: string;
  readonly diffSyncDir: string;
  readonly useOfflineDump: boolean;
  readonly offlineDump: string;
  readonly overrideDump: string;
  readonly gatherStats: boolean;
  readonly statsDump: string;
  readonly statsDumpSavesec: number;
  readonly notifyDump: string;
  readonly ipvssyncLog: string;
  readonly ipvssyncLogging: LogLevelName;
  /** Every key as read, including unknown ones. */
  readonly raw: ReadonlyMap<string, string>;
  /** The 1-based line each key of `raw` was read from (its last occurrence), for errors that say where. */
  readonly lines: ReadonlyMap<string, number>;
}

export const LOG_LEVELS: readonly LogLevelName[] = ['error', 'warn', 'info', 'debug', 'dbdet'];

const DEFAULTS: Readonly<Record<string, string>> = {
  maxfd: '1024',
  log: '/var/log/surealived/surealived.log',
  use_log: 'false',
  logging: 'info',
  use_syslog: 'false',
  use_tm_in_syslog: 'false',
  modules_path: '/usr/lib/surealived/modules/',
  modules: 'all',
  listen_addr: '127.0.0.1',
  listen_port: '1337',
  control_socket: '',
  metrics_listen_addr: '127.0.0.1',
  metrics_listen_port: '0',
  control_max_clients: '1024',
  control_idle_timeout: '60',
  memlimit: '0',
  loop_interval_ms: '100',
  epoll_interval_ms: '10',
  startup_delay_ms: '1000',
  epoll_size: '256',
  debug_comm: '0',
  debug_comm_path: '/var/log/surealived/comm',
  stats_dir: '/var/log/surealived/stats',
  log_stats: 'false',
  log_stats_combined: 'false',
  no_sync: 'false',
  lock_sync_file: '/var/lib/surealived/ipvsfull.lock',
  full_sync_file: '/var/lib/surealived/ipvsfull.cfg',
  full_reload_file: '/var/lib/surealived/ipvsfull.reload',
  diff_sync_dir: '/var/lib/surealived/diffs',
  use_offline_dump: 'true',
  offline_dump: '/var/lib/surealived/offline.dump',
  override_dump: '/var/lib/surealived/override.dump',
  gather_stats: 'true',
  stats_dump: '/var/lib/surealived/stats.dump',
  stats_dump_savesec: '60',
  notify_dump: '/var/lib/surealived/notify.dump',
  ipvssync_log: '/var/log/surealived/ipvssync.log',
  ipvssync_logging: 'debug',
};

export const DEFAULT_MAIN_CONFIG_PATH = '/etc/surealived/surealived.cfg';

/** C atoi: optional whitespace, optional sign, digits; anything else stops; no digits -> 0. */
export function atoi(s: string): number {
  const m = /^\s*([+-]?\d+)/.exec(s);
  if (!m) return 0;
  const n = Number.parseInt(m[1]!, 10);
  return Math.max(-2147483648, Math.min(2147483647, n));
}

/** SureAliveD boolean: true iff the first character is T or t. */
export function cfgBool(s: string): boolean {
  return s.startsWith('T') || s.startsWith('t');
}

/** Level names are exact and case-sensitive; an unknown name means `error`, as the original. */
export function levelOf(s: string): LogLevelName {
  return (LOG_LEVELS as readonly string[]).includes(s) ? (s as LogLevelName) : 'error';
}

/** One `key value` line of a config file in SureAliveD's syntax. */
export interface KeyValueLine {
  readonly key: string;
  /** The second whitespace-separated token, as the original reads it. */
  readonly value: string;
  /** Everything after the key (for values that hold spaces, such as lists). */
  readonly rest: string;
  /** 1-based line number, for errors that say where. */
  readonly line: number;
}

/** The `key value` lines of a config file: `#` in column 0 comments, lines without a value skipped. Pure. */
export function readKeyValueLines(text: string): KeyValueLine[] {
  const out: KeyValueLine[] = [];
  text.split('\n').forEach((rawLine, i) => {
    const line = rawLine.slice(0, 8191).trimEnd();
    if (line.startsWith('#')) return;
    const tokens = line.trim().split(/\s+/);
    if (tokens.length < 2 || tokens[0] === '') return;
    out.push({ key: tokens[0]!, value: tokens[1]!, rest: line.trim().slice(tokens[0]!.length).trim(), line: i + 1 });
  });
  return out;
}

/** Parse the text of a main config file. Pure. */
export function parseMainConfig(text: string): MainConfig {
  const raw = new Map<string, string>();
  const lines = new Map<string, number>();
  for (const kv of readKeyValueLines(text)) {
    raw.set(kv.key, kv.value);
    lines.set(kv.key, kv.line);
  }
  return fromRaw(raw, lines);
}

/** Read a main config file; a missing file gives the defaults (`missing` tells the caller). */
export function loadMainConfig(path: string): { config: MainConfig; missing: boolean } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { config: fromRaw(new Map()), missing: true };
    throw e;
  }
  return { config: parseMainConfig(text), missing: false };
}

/** Defaults overridden by `overrides` (keys as in the file); used by tests and the demo. */
export function mainConfigWith(overrides: Readonly<Record<string, string>>): MainConfig {
  return fromRaw(new Map(Object.entries(overrides)));
}

function fromRaw(raw: Map<string, string>, lines: Map<string, number> = new Map()): MainConfig {
  const s = (k: string): string => raw.get(k) ?? DEFAULTS[k]!;
  const n = (k: string): number => atoi(s(k));
  const b = (k: string): boolean => cfgBool(s(k));
  return {
    maxfd: n('maxfd'),
    log: s('log'),
    useLog: b('use_log'),
    logging: levelOf(s('logging')),
    useSyslog: b('use_syslog'),
    useTmInSyslog: b('use_tm_in_syslog'),
    modulesPath: s('modules_path'),
    modules: s('modules'),
    listenAddr: s('listen_addr'),
    listenPort: n('listen_port'),
    controlSocket: raw.get('control_socket') ?? '',
    metricsListenAddr: s('metrics_listen_addr'),
    metricsListenPort: n('metrics_listen_port'),
    controlMaxClients: n('control_max_clients'),
    controlIdleTimeout: n('control_idle_timeout'),
    memlimit: n('memlimit'),
    loopIntervalMs: n('loop_interval_ms'),
    epollIntervalMs: n('epoll_interval_ms'),
    startupDelayMs: n('startup_delay_ms'),
    epollSize: Math.max(256, n('epoll_size')),
    debugComm: s('debug_comm') === '1',
    debugCommPath: s('debug_comm_path'),
    statsDir: s('stats_dir'),
    logStats: b('log_stats'),
    logStatsCombined: b('log_stats_combined'),
    noSync: b('no_sync'),
    lockSyncFile: s('lock_sync_file'),
    fullSyncFile: s('full_sync_file'),
    fullReloadFile: s('full_reload_file'),
    diffSyncDir: s('diff_sync_dir'),
    useOfflineDump: b('use_offline_dump'),
    offlineDump: s('offline_dump'),
    overrideDump: s('override_dump'),
    gatherStats: b('gather_stats'),
    statsDump: s('stats_dump'),
    statsDumpSavesec: n('stats_dump_savesec'),
    notifyDump: s('notify_dump'),
    ipvssyncLog: s('ipvssync_log'),
    ipvssyncLogging: levelOf(s('ipvssync_logging')),
    raw,
    lines,
  };
}
