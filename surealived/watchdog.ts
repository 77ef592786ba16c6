// -d mode (spec 1.2): a detached watchdog process that runs the tester as a child and respawns it.
// SIGHUP is forwarded (the child reloads its XML in place), SIGTERM forces a restart, SIGINT shuts down.
// Beyond the original: a crash loop backs off (1 s doubling to 60 s) instead of respawning every second
// forever, and memlimit is checked against the child's resident size (VmRSS): Node's VmSize counts
// reserved address space and would trip any realistic limit.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from '../common/log.js';

export const WATCHDOG_ROLE_ENV = 'SUREALIVED_ROLE';
/** Tells the tester child its watchdog's pid (control port `stats`: watchdog_pid). */
export const WATCHDOG_PID_ENV = 'SUREALIVED_WATCHDOG_PID';

/** Start the watchdog as a new session, detached from the terminal; the caller then exits. */
export function spawnDetachedWatchdog(argv: readonly string[]): void {
  const child = spawn(process.execPath, [...process.execArgv, ...argv], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, [WATCHDOG_ROLE_ENV]: 'watchdog' },
  });
  child.unref();
}

export interface WatchdogOptions {
  /** Script and arguments to run the child with (process.argv.slice(1)). */
  readonly argv: readonly string[];
  readonly memlimitKb: number;
  readonly log: Logger;
}

/** Resident set size of a process in kB, from /proc/<pid>/status; null if it is gone. */
export function residentKb(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export function runWatchdog(opts: WatchdogOptions): void {
  let child: ChildProcess | null = null;
  let backoffMs = 1000;
  let startedAt = 0;
  let shuttingDown = false;

  const launch = (): void => {
    startedAt = Date.now();
    // The interpreter flags (those of the cli's #! line among them) carry over to the tester.
    child = spawn(process.execPath, [...process.execArgv, ...opts.argv], { stdio: 'ignore', env: { ...process.env, [WATCHDOG_ROLE_ENV]: 'child', [WATCHDOG_PID_ENV]: String(process.pid) } });
    child.on('exit', (code, signal) => {
      child = null;
      if (shuttingDown) process.exit(1);
      // A child that ran for a minute is healthy again: restart quickly next time.
      if (Date.now() - startedAt > 60_000) backoffMs = 1000;
      opts.log.warn(`watchdog: surealived exited (${signal ?? `code ${code}`}), restarting in ${backoffMs / 1000}s`);
      setTimeout(launch, backoffMs);
      backoffMs = Math.min(backoffMs * 2, 60_000);
    });
  };

  process.on('SIGHUP', () => {
    opts.log.info('watchdog: Received SIGHUP - reloading surealived configuration');
    child?.kill('SIGHUP');
  });
  process.on('SIGTERM', () => {
    opts.log.info('watchdog: Received SIGTERM - forcing restart of surealived');
    backoffMs = 1000;
    child?.kill('SIGTERM');
  });
  process.on('SIGINT', () => {
    opts.log.info('watchdog: Received SIGINT - shutting down!');
    shuttingDown = true;
    if (child) child.kill('SIGKILL');
    else process.exit(1);
  });

  setInterval(() => {
    if (!child?.pid || opts.memlimitKb <= 0) return;
    const rss = residentKb(child.pid);
    if (rss !== null && rss > opts.memlimitKb) {
      opts.log.error(`watchdog: Child exceeded memory limit (${rss} kB > ${opts.memlimitKb} kB) - exterminating!`);
      child.kill('SIGTERM');
    }
  }, 1000);

  launch();
}
