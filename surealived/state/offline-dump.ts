// offline.dump (spec 7.1): one `VKEY - RKEY` line per real currently failing its tests, so that a
// restarted tester does not put known-dead reals back into IPVS before their first test.

import type { VirtualState, RealState } from '../engine/state.js';
import type { Logger } from '../../common/log.js';
import { type DumpWarning, dumpLines, formatWarning, readDumpAtStart, saveDump, saveDumpSync } from './dump-file.js';
import { KeyError, findReals, parseRKey, parseVKey, rkey, vkey } from './keys.js';

/** `VKEY - RKEY`, e.g. `192.168.0.2:80:0:0 - 212.77.100.101:80`. */
export function formatOfflineLine(r: RealState): string {
  return `${vkey(r.virtual.config)} - ${rkey(r.config)}\n`;
}

/**
 * The whole file: every real whose test state is offline. The original kept a separate hash updated
 * at each transition; it always equals "online is false", so it is derived here. XML order instead
 * of hash order (the original's order was unspecified).
 */
export function formatOfflineDump(virtuals: readonly VirtualState[]): string {
  let out = '';
  for (const v of virtuals) for (const r of v.reals) if (!r.online) out += formatOfflineLine(r);
  return out;
}

export interface OfflineDumpParse {
  /** Reals named by the file, in file order, without duplicates. */
  readonly reals: RealState[];
  readonly warnings: DumpWarning[];
}

const LINE = /^(\S+) - (\S+)\s*$/;

/** Matches each line to the config (spec 7 rule). Bad or unmatched lines become warnings, never errors. */
export function parseOfflineDump(text: string, virtuals: readonly VirtualState[], file: string): OfflineDumpParse {
  const reals: RealState[] = [];
  const warnings: DumpWarning[] = [];
  for (const { no, text: line } of dumpLines(text)) {
    const warn = (reason: string): void => {
      warnings.push({ file, line: no, text: line, reason });
    };
    const m = LINE.exec(line);
    if (!m) {
      warn("expected '<vaddr>:<vport>:<proto#>:<fwmark> - <raddr>:<rport>'");
      continue;
    }
    try {
      const found = findReals(virtuals, parseVKey(m[1]!), parseRKey(m[2]!));
      if (found.length === 0) warn('no such real in the configuration (removing from offline.dump)');
      for (const r of found) if (!reals.includes(r)) reals.push(r);
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      warn(e.message);
    }
  }
  return { reals, warnings };
}

/** Start-up seeding (spec 7.1): the real starts offline with its fail counter at retries2fail. */
export function applyOffline(reals: readonly RealState[]): void {
  for (const r of reals) {
    r.online = false;
    r.okCount = 0;
    r.failCount = r.virtual.config.tester.retries2fail;
  }
}

/**
 * Reads, matches and applies offline.dump at start-up, then rewrites it from memory so unmatched
 * lines are dropped (as the original). Never throws: problems are logged. Returns the reals set offline.
 */
export async function loadOfflineDump(path: string, virtuals: readonly VirtualState[], log: Logger): Promise<RealState[]> {
  const text = await readDumpAtStart(path, 'dump file', log);
  if (text === null) return [];
  const { reals, warnings } = parseOfflineDump(text, virtuals, path);
  for (const w of warnings) log.warn(formatWarning(w));
  applyOffline(reals);
  for (const r of reals) {
    log.info(`\tSet real: ${r.virtual.config.name}:${r.config.name} (${vkey(r.virtual.config)} - ${rkey(r.config)}) to OFFLINE`);
  }
  await saveOfflineDump(path, virtuals, log);
  return reals;
}

export function saveOfflineDump(path: string, virtuals: readonly VirtualState[], log: Logger): Promise<boolean> {
  return saveDump(path, formatOfflineDump(virtuals), log);
}

export function saveOfflineDumpSync(path: string, virtuals: readonly VirtualState[], log: Logger): boolean {
  return saveDumpSync(path, formatOfflineDump(virtuals), log);
}
