// The backup's `write recent` through the project's patched xt_recent (kmodule/): every entry is written
// with the module's relative restore command, `=addr;ttl;age;...;` with the hit ages in milliseconds,
// oldest first, so a restored entry keeps its ttl and the age of every hit (the stock writer can only
// add the address with one hit stamped "now"). The module turns ages into jiffies itself: no HZ or
// jiffies arithmetic here. A line replaces an entry of the same address (kmodule/README.md), so
// re-sending an entry adds no hit and nothing needs to be read first.

import { closeSync, constants, openSync, readFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { canonicalAddr, recentNameProblem, type RecentEntry } from '../model.js';
import { RECENT_MAX_STAMPS } from './parse.js';
import { RECENT_PROC_DIR } from './poller.js';
import { RecentTableError, RecentWriter, type RecentRestorer, type RecentWriteResult } from './writer.js';

interface FsExt {
  seekSync(fd: number, offset: number, whence: number): number;
}
const fsExt = createRequire(import.meta.url)('fs-ext') as FsExt;
const SEEK_SET = 0;

/** Where the loaded xt_recent shows its MODULE_VERSION. */
export const XT_RECENT_SYS_DIR = '/sys/module/xt_recent';

/** The restore-protocol revision this writer speaks (`*` and `=`, kmodule/README.md). */
export const RESTORE_PROTOCOL = 1;

/**
 * Ages are capped at 30 days. The module refuses an age reaching back before jiffies 0, which on a
 * freshly booted HZ=1000 kernel is about 49 days; a hit 30 days old is expired for every realistic
 * `--seconds` anyway.
 */
export const MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/**
 * The restore-protocol revision of the module described by the text of
 * /sys/module/xt_recent/version (`surealived-<n>`), or undefined for any other module (the stock one
 * has no version file at all).
 */
export function patchedRevision(versionText: string): number | undefined {
  const m = /^surealived-([0-9]{1,6})\n?$/.exec(versionText);
  return m ? Number(m[1]) : undefined;
}

/** Whether the loaded xt_recent understands restore protocol RESTORE_PROTOCOL. */
export function patchedModuleLoaded(sysDir: string = XT_RECENT_SYS_DIR): boolean {
  let text: string;
  try {
    text = readFileSync(join(sysDir, 'version'), 'latin1');
  } catch {
    return false; // no xt_recent, a built-in one, or the stock module: none has a version file
  }
  const rev = patchedRevision(text);
  return rev !== undefined && rev >= RESTORE_PROTOCOL;
}

/**
 * The relative restore line of `e` with hit ages measured at `refMs` (epoch ms): `=addr;ttl;age;...;`,
 * ages whole milliseconds, oldest hit first (so ages never grow), a hit after refMs aged 0, ages
 * capped at MAX_AGE_MS, and only the newest RECENT_MAX_STAMPS hits (the most a line may carry; the
 * module keeps as many as the table's ring holds). Throws on an entry no kernel would take.
 */
export function relativeRestoreLine(e: RecentEntry, refMs: number): string {
  const ip = canonicalAddr(e.addr);
  if (ip === undefined) throw new Error('not an IPv4 or IPv6 address');
  if (!Number.isInteger(e.ttl) || e.ttl < 0 || e.ttl > 255) throw new Error(`ttl ${e.ttl} is out of range 0-255`);
  if (e.hits.length === 0) throw new Error('no hit to restore');
  const hits = [...e.hits].sort((a, b) => a - b).slice(-RECENT_MAX_STAMPS);
  const ages = hits.map((h) => {
    if (!Number.isFinite(h)) throw new Error(`hit time ${h} is not a number`);
    return Math.min(MAX_AGE_MS, Math.max(0, Math.round(refMs - h)));
  });
  return `=${ip.addr};${e.ttl};${ages.join(';')};`;
}

/**
 * Write order: oldest last hit first, so the kernel's LRU order follows the entries' activity (the
 * least recently active are evicted first if the backup's ip_list_tot is smaller). An address given
 * twice is written once (its first entry in that order) and the rest counted as skipped.
 */
export function patchedRestoreOrder(entries: readonly RecentEntry[]): { todo: RecentEntry[]; skipped: number } {
  const sorted = [...entries].sort((a, b) => lastHit(a) - lastHit(b));
  const seen = new Set<string>();
  const todo: RecentEntry[] = [];
  let skipped = 0;
  for (const e of sorted) {
    const key = canonicalAddr(e.addr)?.addr ?? e.addr;
    if (seen.has(key)) skipped += 1;
    else {
      seen.add(key);
      todo.push(e);
    }
  }
  return { todo, skipped };
}

export class PatchedRestorer implements RecentRestorer {
  readonly kind = 'patched' as const;
  private readonly procDir: string;
  private readonly epochNow: () => number;
  /** `/` is the same command on both modules. */
  private readonly stock: RecentWriter;

  constructor(opts: { procDir?: string; epochNow?: () => number } = {}) {
    this.procDir = opts.procDir ?? RECENT_PROC_DIR;
    this.epochNow = opts.epochNow ?? Date.now;
    this.stock = new RecentWriter({ procDir: this.procDir });
  }

  /**
   * Writes every entry of table `name` with its ttl and hit ages. The kernel turns an age into a stamp
   * at the moment of the write(2), so each age is measured right before its write, on this node's
   * clock (`epochNow`). The command's `now` is taken before the first table is written: ages measured
   * against it would make every hit younger by however long the earlier writes took.
   * Throws RecentTableError when the table is missing; refused lines come back in `failed`.
   */
  async write(name: string, entries: readonly RecentEntry[], _now: number): Promise<RecentWriteResult> {
    const path = this.path(name);
    const { todo, skipped } = patchedRestoreOrder(entries);
    const failed: { addr: string; why: string }[] = [];
    let written = 0;
    let fd: number;
    try {
      // O_WRONLY alone: no O_CREAT, so a missing table is ENOENT wherever procDir points.
      fd = openSync(path, constants.O_WRONLY);
    } catch (e) {
      throw tableError(name, path, e);
    }
    try {
      for (const e of todo) {
        let line: string;
        try {
          line = relativeRestoreLine(e, this.epochNow());
        } catch (err) {
          failed.push({ addr: e.addr, why: (err as Error).message });
          continue;
        }
        try {
          // One command per write(2), at offset 0 (the strict protocol of every xt_recent command).
          fsExt.seekSync(fd, 0, SEEK_SET);
          writeSync(fd, line);
          written += 1;
        } catch (err) {
          failed.push({ addr: e.addr, why: `${(err as Error).message} (line ${line.length > 80 ? line.slice(0, 80) + '...' : line})` });
        }
      }
    } finally {
      closeSync(fd);
    }
    return { written, skipped, failed };
  }

  clear(name: string): Promise<void> {
    return this.stock.clear(name);
  }

  private path(name: string): string {
    const problem = recentNameProblem(name);
    if (problem !== undefined) throw new RecentTableError(name, this.procDir, `bad table name: ${problem}`);
    return join(this.procDir, name);
  }
}

function tableError(name: string, path: string, e: unknown): RecentTableError {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    return new RecentTableError(name, path, `no such table on this node (it exists only while an iptables rule uses -m recent --name ${name})`);
  }
  return new RecentTableError(name, path, (e as Error).message);
}

function lastHit(e: RecentEntry): number {
  return e.hits.length > 0 ? Math.max(...e.hits) : 0;
}
