// What the dump parsers share: line splitting with line numbers, warnings that name file:line,
// and reading a dump that may not exist yet.

import { readFile } from 'node:fs/promises';
import type { Logger } from '../../common/log.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-write.js';

// The line layer (numbered lines, file:line warnings) is pure and shared: common/dump-lines.ts.
export { dumpLines, formatWarning, type DumpWarning } from '../../common/dump-lines.js';

/** File content, or null when the file does not exist (other errors propagate). */
export async function readDumpIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** A dump path's writes: one at a time, the newest content wins, a failed write is retried until it lands. */
interface PathWriter {
  readonly path: string;
  log: Logger;
  /** Content still to be written (newer calls replace it: each dump is a whole snapshot). */
  pending: string | null;
  /** Callers waiting for the next attempt, resolved with its outcome. */
  waiters: ((ok: boolean) => void)[];
  attempt: Promise<void> | null;
  retry: NodeJS.Timeout | null;
  failures: number;
  lastReason: string;
}

const writers = new Map<string, PathWriter>();

/** Delay before retry number `failures` (ms): 100 ms doubling up to 5 s. */
export function retryDelayMs(failures: number): number {
  return Math.min(5000, 100 * 2 ** Math.min(6, Math.max(0, failures - 1)));
}

function writerFor(path: string, log: Logger): PathWriter {
  let w = writers.get(path);
  if (w === undefined) {
    w = { path, log, pending: null, waiters: [], attempt: null, retry: null, failures: 0, lastReason: '' };
    writers.set(path, w);
  }
  w.log = log;
  return w;
}

function reasonOf(e: unknown): string {
  return (e as Error).message;
}

function runAttempt(w: PathWriter): void {
  const content = w.pending;
  if (content === null || w.attempt !== null || w.retry !== null) return;
  const waiters = w.waiters;
  w.pending = null;
  w.waiters = [];
  w.attempt = writeFileAtomic(w.path, content).then(
    () => {
      if (w.failures > 0) w.log.info(`dump file ${w.path} written after ${w.failures} failed attempt(s)`);
      w.failures = 0;
      w.lastReason = '';
      w.attempt = null;
      for (const r of waiters) r(true);
      runAttempt(w);
    },
    (e: unknown) => {
      w.failures++;
      const delay = retryDelayMs(w.failures);
      // Once per streak of failures (and when the errno changes), not at every retry.
      const key = (e as NodeJS.ErrnoException).code ?? reasonOf(e);
      if (key !== w.lastReason) w.log.error(`Unable to write dump file - ${w.path} [${reasonOf(e)}] - retrying (from ${delay} ms up to every 5 s) until it is written`);
      w.lastReason = key;
      w.pending ??= content;
      w.attempt = null;
      w.retry = setTimeout(() => {
        w.retry = null;
        runAttempt(w);
      }, delay);
      w.retry.unref();
      for (const r of waiters) r(false);
    },
  );
}

/**
 * Atomically replaces a dump file. Never throws: a state file that cannot be written must not stop
 * the tester (the original asserted). Resolves with the outcome of the first attempt that covers
 * `content`; a failed write (EMFILE under descriptor pressure, a full disk) is logged and retried in
 * the background, with the newest content, until it lands.
 */
export function saveDump(path: string, content: string, log: Logger): Promise<boolean> {
  const w = writerFor(path, log);
  w.pending = content;
  return new Promise<boolean>((resolve) => {
    w.waiters.push(resolve);
    runAttempt(w);
  });
}

/**
 * Waits for the dump writes in flight, then writes any content still waiting for a retry
 * synchronously (shutdown: nothing runs after this). Later synchronous saves supersede them.
 */
export async function settleDumpWrites(): Promise<void> {
  await Promise.all([...writers.values()].map((w) => w.attempt));
  for (const w of writers.values()) {
    if (w.retry !== null) clearTimeout(w.retry);
    w.retry = null;
    const content = w.pending;
    if (content !== null) saveDumpSync(w.path, content, w.log);
  }
}

// Errors a short wait can cure (descriptors or memory freed by probes ending).
const TRANSIENT = new Set(['EMFILE', 'ENFILE', 'ENOMEM', 'EAGAIN', 'EINTR']);

/** Synchronous variant of saveDump for the shutdown path: transient errors are retried for up to ~2 s. */
export function saveDumpSync(path: string, content: string, log: Logger): boolean {
  const w = writers.get(path);
  let superseded: ((ok: boolean) => void)[] = [];
  if (w !== undefined) {
    // This content is newer than whatever waits for a retry.
    if (w.retry !== null) clearTimeout(w.retry);
    w.retry = null;
    w.pending = null;
    superseded = w.waiters.splice(0);
  }
  let ok = false;
  for (let attempt = 1; ; attempt++) {
    try {
      writeFileAtomicSync(path, content);
      ok = true;
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      if (TRANSIENT.has(code) && attempt < 40) {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
        continue;
      }
      log.error(`Unable to write dump file - ${path} [${reasonOf(e)}]`);
      break;
    }
  }
  for (const r of superseded) r(ok);
  return ok;
}

/**
 * Start-up read of a state file, with the original's messages (`label` is "dump file" or "override
 * file"): null, after a warning, when it is missing or unreadable. Never throws.
 */
export async function readDumpAtStart(path: string, label: string, log: Logger): Promise<string | null> {
  let text: string | null;
  try {
    text = await readDumpIfExists(path);
  } catch (e) {
    log.warn(`Unable to read ${label} - ${path} [${(e as Error).message}]`);
    return null;
  }
  if (text === null) {
    log.warn(`No ${label}!`);
    return null;
  }
  log.info(`Processing ${label} [${path}]!`);
  return text;
}
