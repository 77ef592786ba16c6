// Shared fixtures for the ipvssync tests: a temp hand-off directory laid out as surealived leaves it,
// and hand-written lines in the exact spec 8.3/8.4 format.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createLogger, memorySink, type Logger } from '../../common/log.js';

export interface HandoffDir {
  readonly root: string;
  readonly diffDir: string;
  readonly fullFile: string;
  readonly reloadFile: string;
  readonly lockFile: string;
  readonly configFile: string;
  diff(n: number): string;
  cleanup(): void;
}

/** A temp dir with diffs/, an empty lock file and a main config pointing at them. */
export function handoffDir(extraConfig = ''): HandoffDir {
  const root = mkdtempSync(join(tmpdir(), 'ipvssync-'));
  const diffDir = join(root, 'diffs');
  mkdirSync(diffDir);
  const d: HandoffDir = {
    root,
    diffDir,
    fullFile: join(root, 'ipvsfull.cfg'),
    reloadFile: join(root, 'ipvsfull.reload'),
    lockFile: join(root, 'ipvsfull.lock'),
    configFile: join(root, 'surealived.cfg'),
    diff: (n) => join(diffDir, `diff_sync.${n}`),
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  };
  writeFileSync(d.lockFile, '');
  writeFileSync(
    d.configFile,
    `# test config\nipvssync_log\t\tstderr\nipvssync_logging\tdebug\nlock_sync_file ${d.lockFile}\nfull_sync_file ${d.fullFile}\n` +
      `full_reload_file ${d.reloadFile}\ndiff_sync_dir ${diffDir}\n${extraConfig}`,
  );
  return d;
}

/** The ipvsfull.cfg head: meta line, empty line, DIFF line, empty line. */
export function fullHead(diffPath: string): string {
  return `meta version=1.0 mdate=2024-05-01 mtime=12:00:00\n\nDIFF file=${diffPath}\n\n`;
}

export const WEB_VIRTUAL = 'virtual vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vrt=dr vsched=wrr';

export function real(name: string, addr: string, weight: number, extra = ''): string {
  return `real rname=${name} raddr=${addr} rport=80 rweight=${weight}${extra}`;
}

/** A diff line for a real of the `web` virtual. */
export function webDiff(cmd: 'addreal' | 'chgreal' | 'delreal', name: string, addr: string, weight: number, extra = ''): string {
  return (
    `cmd=${cmd} vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vfwmark=0 vrt=dr vsched=wrr ` +
    `rname=${name} raddr=${addr} rport=80 rweight=${weight}${extra}\n`
  );
}

export function write(path: string, text: string): void {
  writeFileSync(path, text);
}

export function memoryLogger(): { log: Logger; lines: string[] } {
  const m = memorySink();
  return { log: createLogger('dbdet', m.sink), lines: m.lines };
}

/** The repository root (where node_modules is), from dist/test/ipvssync/. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Another process holding the exclusive flock on `path` (as surealived does while writing),
 * until `release()`; `close()` (for a finally) ends it wherever the test stopped.
 */
export async function holdLockInChild(path: string): Promise<{ release(): Promise<void>; close(): void }> {
  const script =
    "const fsExt = require('fs-ext'); const fs = require('fs');" +
    `const fd = fs.openSync(${JSON.stringify(path)}, 'r'); fsExt.flockSync(fd, 'ex'); process.stdout.write('locked\\n');` +
    "process.stdin.once('data', () => { fsExt.flockSync(fd, 'un'); process.stdout.write('released\\n'); });" +
    "process.stdin.once('end', () => process.exit(0));";
  const child = spawn(process.execPath, ['-e', script], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const said = (word: string): Promise<void> =>
    new Promise((resolve, reject) => {
      let buf = '';
      const onData = (c: Buffer): void => {
        buf += c.toString();
        if (buf.includes(word)) {
          child.stdout.off('data', onData);
          resolve();
        }
      };
      child.stdout.on('data', onData);
      child.once('exit', (code) => reject(new Error(`lock holder exited (${code}) before '${word}'`)));
    });
  await said('locked');
  return {
    release: async () => {
      const released = said('released');
      child.stdin.write('go\n');
      await released;
      child.stdin.end();
    },
    close: () => {
      child.stdin.destroy();
      child.stdout.destroy();
      child.kill('SIGKILL');
    },
  };
}

/**
 * Resolves once the kernel lists process `pid` as blocked on the flock of `path` (a "->" waiter line
 * of /proc/locks for that inode): the positive sign that it waits for the lock, not that it is slow.
 * Throws if `gone()` says the process ended first, or after `ms`.
 */
export async function untilWaitingForLock(path: string, pid: number, gone: () => string | undefined = () => undefined, ms = 10_000): Promise<void> {
  const ino = statSync(path, { bigint: true }).ino;
  const waiter = new RegExp(`^\\d+: -> FLOCK\\s+ADVISORY\\s+WRITE\\s+${pid}\\s+[0-9a-f]+:[0-9a-f]+:${ino}\\s`, 'm');
  const until = Date.now() + ms;
  for (;;) {
    const locks = readFileSync('/proc/locks', 'utf8');
    if (waiter.test(locks)) return;
    const why = gone();
    if (why !== undefined) throw new Error(`pid ${pid} never waited for the flock on ${path}: ${why}`);
    if (Date.now() > until) throw new Error(`pid ${pid} not waiting for the flock on ${path} after ${ms} ms; /proc/locks:\n${locks}`);
    await sleep(10);
  }
}
