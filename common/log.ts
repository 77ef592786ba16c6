// Logging in SureAliveD's exact line format: `[YYYY-MM-DD HH:MM:SS.uuuuuu] <level%-6s>: <message>`.
// Lines go to a sink (stderr, a file, or memory in tests); levels 0..4 error, warn, info, debug, dbdet.
// Under systemd, when stderr is the journal, lines carry a syslog priority instead of our timestamp.

import { appendFileSync, fstatSync } from 'node:fs';
import { LOG_LEVELS, type LogLevelName } from './main-config.js';

export interface Logger {
  readonly level: LogLevelName;
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  dbdet(msg: string): void;
  /** Log at `level` regardless of the configured level (start-up banner lines). */
  always(level: LogLevelName, msg: string): void;
  enabled(level: LogLevelName): boolean;
}

export type LogSink = (line: string) => void;

const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

/** Local-time `YYYY-MM-DD HH:MM:SS` of a Date. */
export function localDateTime(d: Date): string {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** `[YYYY-MM-DD HH:MM:SS.uuuuuu]` for a time in microseconds since the epoch. */
export function logTimestamp(epochMicros: number): string {
  const second = Math.floor(epochMicros / 1_000_000);
  const us = Math.floor(epochMicros % 1_000_000);
  // The date part changes once a second; busy logs (an op per line in ipvssync) reuse it.
  if (second !== stampSecond) {
    stampSecond = second;
    stampText = localDateTime(new Date(second * 1000));
  }
  return `[${stampText}.${pad(us, 6)}]`;
}

export const stderrSink: LogSink = (line) => {
  process.stderr.write(line);
};

let stampSecond = NaN;
let stampText = '';

export function formatLogLine(epochMicros: number, level: LogLevelName, msg: string): string {
  return `${logTimestamp(epochMicros)} ${level.padEnd(6)}: ${msg}\n`;
}

/** syslog priorities (sd-daemon(3) prefixes) of our levels, for the journal. */
const JOURNAL_PRIORITY: Record<LogLevelName, number> = { error: 3, warn: 4, info: 6, debug: 7, dbdet: 7 };

/** A line for the journal: it stamps lines itself, so `<priority>level : message` without a timestamp. */
export function formatJournalLine(level: LogLevelName, msg: string): string {
  return `<${JOURNAL_PRIORITY[level]}>${level.padEnd(6)}: ${msg}\n`;
}

/**
 * True when stderr is connected to the journal: systemd sets JOURNAL_STREAM to `<device>:<inode>` of
 * the stream it gave the service; a stderr redirected elsewhere (a child's pipe, a file) no longer matches.
 */
export function stderrGoesToJournal(
  env: NodeJS.ProcessEnv = process.env,
  statStderr: () => { dev: number | bigint; ino: number | bigint } = () => fstatSync(2, { bigint: true }),
): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m) return false;
  try {
    const st = statStderr();
    return BigInt(st.dev) === BigInt(m[1]!) && BigInt(st.ino) === BigInt(m[2]!);
  } catch {
    return false; // fd 2 closed: nothing to match
  }
}

/** Microseconds since the epoch, with sub-millisecond resolution. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** `journal` (default: the sink is stderr and stderr is the journal) drops our timestamp for the journal's. */
export function createLogger(
  level: LogLevelName,
  sink: LogSink,
  clock: () => number = nowMicros,
  journal: boolean = sink === stderrSink && stderrGoesToJournal(),
): Logger {
  const rank = LOG_LEVELS.indexOf(level);
  const line = (l: LogLevelName, msg: string): string => (journal ? formatJournalLine(l, msg) : formatLogLine(clock(), l, msg));
  const emit = (l: LogLevelName, msg: string): void => {
    if (LOG_LEVELS.indexOf(l) <= rank) sink(line(l, msg));
  };
  return {
    level,
    error: (m) => emit('error', m),
    warn: (m) => emit('warn', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    dbdet: (m) => emit('dbdet', m),
    always: (l, m) => sink(line(l, m)),
    enabled: (l) => LOG_LEVELS.indexOf(l) <= rank,
  };
}


/** Append to a file; opened per write so an external logrotate is followed (the original never reopens). */
export function fileSink(path: string): LogSink {
  return (line) => {
    try {
      appendFileSync(path, line, { mode: 0o644 });
    } catch (e) {
      process.stderr.write(`cannot write log file ${path}: ${(e as Error).message}\n${line}`);
    }
  };
}

export function memorySink(): { sink: LogSink; lines: string[] } {
  const lines: string[] = [];
  return { sink: (l) => lines.push(l), lines };
}

export const silentLogger: Logger = createLogger('error', () => undefined);
