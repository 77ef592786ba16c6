// Readers for what a surealived run writes under its state directory (the in-process TestDaemon and
// the SurealivedCli process alike): state and hand-off files, the diff chain, and ipvssync's view of them.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyDiffLine, parseDiffLine, parseFullFile, type HandoffConfig } from '../../ipvssync/handoff.js';

/** The file `name` under `dir` ('' when absent). */
export function readStateFile(dir: string, name: string): string {
  const p = join(dir, name);
  return existsSync(p) ? readFileSync(p, 'utf8') : '';
}

/** Every diff file under `<dir>/diffs`, oldest first, concatenated, chain lines included ('' when none). */
export function readDiffs(dir: string): string {
  const d = join(dir, 'diffs');
  if (!existsSync(d)) return '';
  return readdirSync(d)
    .sort()
    .map((f) => readFileSync(join(d, f), 'utf8'))
    .join('');
}

/**
 * What ipvssync would have in memory from the hand-off under `dir`: ipvsfull.cfg, then every diff line
 * of the chain it names, read with ipvssync's own parser. Asserts ipvssync accepts every line.
 */
export function ipvssyncView(dir: string): HandoffConfig {
  const diffDir = join(dir, 'diffs');
  const p = parseFullFile(readStateFile(dir, 'ipvsfull.cfg'), join(dir, 'ipvsfull.cfg'), diffDir);
  assert.ok(p.ok, `ipvssync refuses the full file: ${p.ok ? '' : p.errors.join('; ')}`);
  let config = p.config;
  let file = config.diffFile;
  while (file !== null) {
    let next: string | null = null;
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const d = parseDiffLine(line, diffDir);
      assert.ok(d.ok, `ipvssync refuses a diff line: ${line}`);
      if (!d.ok) continue;
      if (d.line.kind === 'chain') next = d.line.file;
      else if (d.line.kind === 'real') config = applyDiffLine(config, d.line, file).config;
    }
    file = next;
  }
  return config;
}
