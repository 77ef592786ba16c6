// Removal of consumed diff files (every 60 s unless -k): only entries named diff_sync.<digits>
// whose number is lower than the current diff file's, compared as numbers; nothing else is touched.

import { readdir, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { diffNumber } from './handoff.js';

/** Names of the files to delete, given the directory's regular files and the current diff file. Pure. */
export function diffsToDelete(names: readonly string[], current: string): string[] {
  const cur = diffNumber(basename(current));
  if (cur === undefined) return [];
  return names.filter((n) => {
    const k = diffNumber(n);
    return k !== undefined && k < cur;
  });
}

export interface CleanupResult {
  readonly deleted: readonly string[];
  readonly failed: readonly string[];
}

/** Delete the old diff files of `dir` (regular files only). */
export async function cleanupDiffs(dir: string, current: string): Promise<CleanupResult> {
  const files = (await readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  const deleted: string[] = [];
  const failed: string[] = [];
  for (const name of diffsToDelete(files, current)) {
    const path = join(dir, name);
    try {
      await unlink(path);
      deleted.push(path);
    } catch (e) {
      failed.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { deleted, failed };
}
