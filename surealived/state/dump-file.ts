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
