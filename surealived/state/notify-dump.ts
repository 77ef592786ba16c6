// notify.dump (spec 7.3): the last virtual-notifier state per virtual, `vnotify <VKEY> - state=<S>`,
// honoured at start only when written after the last boot (after a reboot every notifier fires again).

import { stat, readFile, unlink } from 'node:fs/promises';
import type { NotifyState, VirtualState } from '../engine/state.js';
import type { Logger } from '../../common/log.js';
import { type DumpWarning, dumpLines, formatWarning, saveDump, saveDumpSync } from './dump-file.js';
import { KeyError, formatParsedVKey, indexByVKey, parseVKey, vkey } from './keys.js';

/** Virtuals that take part: a virtual notifier script defined and at least one real. */
export function hasVirtualNotifier(v: VirtualState): boolean {
  const t = v.config.tester;
  return (t.notifyUp !== undefined || t.notifyDown !== undefined) && v.reals.length > 0;
}

export function formatNotifyDump(virtuals: readonly VirtualState[]): string {
  let out = '';
  for (const v of virtuals) if (hasVirtualNotifier(v)) out += `vnotify ${vkey(v.config)} - state=${v.notifyState}\n`;
  return out;
}

export interface NotifyDumpParse {
  readonly states: Array<{ readonly virtual: VirtualState; readonly state: NotifyState }>;
  readonly warnings: DumpWarning[];
}

const LINE = /^vnotify (\S+) - state=(UNKNOWN|UP|DOWN)\s*$/;

/** Looks each line up by exact VKEY (as the original's hash). Bad or unmatched lines become warnings. */
export function parseNotifyDump(text: string, virtuals: readonly VirtualState[], file: string): NotifyDumpParse {
  const index = indexByVKey(virtuals);
  const states: Array<{ virtual: VirtualState; state: NotifyState }> = [];
  const warnings: DumpWarning[] = [];
  for (const { no, text: line } of dumpLines(text)) {
    const warn = (reason: string): void => {
      warnings.push({ file, line: no, text: line, reason });
    };
    const m = LINE.exec(line);
    if (!m) {
      warn("expected 'vnotify <vkey> - state=<UNKNOWN|UP|DOWN>'");
      continue;
    }
    try {
      const found = index.get(formatParsedVKey(parseVKey(m[1]!)));
      if (!found) warn('no such virtual in the configuration');
      else for (const virtual of found) states.push({ virtual, state: m[2] as NotifyState });
    } catch (e) {
      if (!(e instanceof KeyError)) throw e;
      warn(e.message);
    }
  }
  return { states, warnings };
}

/** Boot time in ms since the epoch: now minus the first field of /proc/uptime. */
export function bootTimeMs(nowMs: number, procUptime: string): number {
  const uptime = Number.parseFloat(procUptime);
  if (!Number.isFinite(uptime)) throw new Error(`cannot parse uptime '${procUptime.trim()}'`);
  return nowMs - uptime * 1000;
}

export interface NotifyDumpClock {
  readonly nowMs: number;
  /** Content of /proc/uptime. */
  readonly procUptime: string;
}

export async function readBootClock(procUptimePath = '/proc/uptime', nowMs = Date.now()): Promise<NotifyDumpClock> {
  return { nowMs, procUptime: await readFile(procUptimePath, 'utf8') };
}

/**
 * Start-up: restores each virtual's notify state if the file was written after the last boot,
 * otherwise deletes it so every notifier fires on its first evaluation. Never throws.
 * Returns true when states were restored.
 */
export async function loadNotifyDump(path: string, virtuals: readonly VirtualState[], clock: NotifyDumpClock, log: Logger): Promise<boolean> {
  let mtimeMs: number;
  try {
    mtimeMs = (await stat(path)).mtimeMs;
  } catch (e) {
    log.warn(`Can't stat ${path} [${(e as Error).message}]`);
    return false;
  }
  let boot: number;
  try {
    boot = bootTimeMs(clock.nowMs, clock.procUptime);
  } catch (e) {
    log.warn(`${(e as Error).message}: not restoring ${path}`);
    return false;
  }
  if (mtimeMs <= boot) {
    log.warn(`Probably system restart was performed (uptime = ${((clock.nowMs - boot) / 1000).toFixed(2)}). Executing all notifiers`);
    await unlink(path).catch((e: Error) => log.warn(`Unable to delete ${path} [${e.message}]`));
    return false;
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    log.warn(`Unable to open notify dump file - ${path} [${(e as Error).message}]`);
    return false;
  }
  log.info(`Processing notifiers file [${path}]`);
  const { states, warnings } = parseNotifyDump(text, virtuals, path);
  for (const w of warnings) log.warn(formatWarning(w));
  for (const s of states) s.virtual.notifyState = s.state;
  return true;
}

export function saveNotifyDump(path: string, virtuals: readonly VirtualState[], log: Logger): Promise<boolean> {
  return saveDump(path, formatNotifyDump(virtuals), log);
}

export function saveNotifyDumpSync(path: string, virtuals: readonly VirtualState[], log: Logger): boolean {
  return saveDumpSync(path, formatNotifyDump(virtuals), log);
}
