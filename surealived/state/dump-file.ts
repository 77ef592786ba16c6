// What the dump parsers share: line splitting with line numbers, warnings that name file:line,
// and reading a dump that may not exist yet.

import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { writeFileAtomic, writeFileAtomicSync } from './atomic-write.js';

/** A dump line that was skipped: garbage, or naming nothing in the current config. Never fatal. */
export interface DumpWarning {
  readonly file: string;
  readonly line: number; // 1-based
  readonly text: string;
  readonly reason: string;
}

export function formatWarning(w: DumpWarning): string {
  return `${w.file}:${w.line}: ${w.reason} [${w.text}]`;
}

/** Non-empty lines with their 1-based numbers; a trailing `\r` is tolerated (hand-edited files). */
export function dumpLines(text: string): Array<{ readonly no: number; readonly text: string }> {
  const out: Array<{ no: number; text: string }> = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (t.trim() !== '') out.push({ no: i + 1, text: t });
  });
  return out;
}

/** File content, or null when the file does not exist (other errors propagate). */
export async function readDumpIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/**
 * Atomically replaces a dump file; failures are logged and reported as `false`, never thrown,
 * because a state file that cannot be written must not stop the tester (the original asserted).
 */
export async function saveDump(path: string, content: string, log: Logger): Promise<boolean> {
  try {
    await writeFileAtomic(path, content);
    return true;
  } catch (e) {
    log.warn(`Unable to write dump file - ${path} [${(e as Error).message}]`);
    return false;
  }
}

/** Synchronous variant of saveDump for the shutdown path. */
export function saveDumpSync(path: string, content: string, log: Logger): boolean {
  try {
    writeFileAtomicSync(path, content);
    return true;
  } catch (e) {
    log.warn(`Unable to write dump file - ${path} [${(e as Error).message}]`);
    return false;
  }
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
