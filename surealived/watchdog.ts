// -d mode (spec 1.2): a detached watchdog process that runs the tester as a child and respawns it.
// SIGHUP is forwarded (the child reloads its XML in place), SIGTERM forces a restart, SIGINT shuts down.
// Beyond the original: a crash loop backs off (1 s doubling to 60 s, reset after 60 s of a healthy tester
// or by SIGTERM; the policy is watchdog-policy.ts) instead of respawning every second forever, and
// memlimit is checked against the child's resident size (VmRSS): Node's VmSize counts reserved address
// space and would trip any realistic limit.

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Logger } from '../common/log.js';
import { overMemoryLimit, RestartPolicy } from './watchdog-policy.js';

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
  const policy = new RestartPolicy();
  let child: ChildProcess | null = null;
  /** The pending start of the next tester (between an exit and its restart). */
  let restart: NodeJS.Timeout | null = null;
  /** The running tester was told to stop for its memory: once per tester. */
  let memKilled = false;
  let shuttingDown = false;

  const scheduleLaunch = (delayMs: number): void => {
    if (restart) clearTimeout(restart);
    restart = setTimeout(launch, delayMs);
  };

  function launch(): void {
    restart = null;
    memKilled = false;
    policy.started(performance.now());
    // The interpreter flags (those of the cli's #! line among them) carry over to the tester.
    const c = spawn(process.execPath, [...process.execArgv, ...opts.argv], { stdio: 'ignore', env: { ...process.env, [WATCHDOG_ROLE_ENV]: 'child', [WATCHDOG_PID_ENV]: String(process.pid) } });
    child = c;
    let ended = false;
    const end = (how: string): void => {
      if (ended) return;
      ended = true;
      child = null;
      if (shuttingDown) process.exit(1);
      const delayMs = policy.exited(performance.now());
      opts.log.warn(`watchdog: surealived ${how}, restarting in ${delayMs / 1000}s`);
      scheduleLaunch(delayMs);
    };
    c.on('exit', (code, signal) => end(`exited (${signal ?? `code ${code}`})`));
    // A tester that could not be started at all (EAGAIN, ENOMEM: no pid) may give no 'exit' event.
    // (A failed kill also gives 'error'; that tester's exit is still to come.)
    c.on('error', (e) => {
      if (c.pid === undefined) end(`could not be started (${e.message})`);
      else opts.log.error(`watchdog: ${e.message}`);
    });
  }

  process.on('SIGHUP', () => {
    opts.log.info('watchdog: Received SIGHUP - reloading surealived configuration');
    child?.kill('SIGHUP');
  });
  process.on('SIGTERM', () => {
    opts.log.info('watchdog: Received SIGTERM - forcing restart of surealived');
    const what = policy.forceRestart();
    if (what.action === 'stop-child') child?.kill('SIGTERM');
    else scheduleLaunch(what.delayMs);
  });
  process.on('SIGINT', () => {
    opts.log.info('watchdog: Received SIGINT - shutting down!');
    shuttingDown = true;
    if (restart) clearTimeout(restart);
    if (child) child.kill('SIGKILL');
    else process.exit(1);
  });

  setInterval(() => {
    if (!child?.pid || opts.memlimitKb <= 0 || memKilled) return;
    const rss = residentKb(child.pid);
    if (overMemoryLimit(rss, opts.memlimitKb)) {
      memKilled = true;
      opts.log.error(`watchdog: Child exceeded memory limit (${rss} kB > ${opts.memlimitKb} kB) - exterminating!`);
      child.kill('SIGTERM');
    }
  }, 1000);

  launch();
}
