// The backup's `write recent`: puts replicated entries into a kernel xt_recent table by merging, never by
// flush-then-rewrite (the original flushed first and left the table empty while it rewrote: spec 5.4,
// 11.4).
//
// Stock kernel limits (anchors 5a): /proc accepts only `+addr`, `-addr` and `/`, so neither the ttl nor
// the hit times can be set. A restored entry gets ttl 0 and ONE hit stamped with the backup's jiffies
// at write time: its age restarts when it is written, so persistence on the backup can outlive the
// master's by the time between the master's last hit and the write. `+addr` on an address already in
// the table appends a hit (and can trip a --hitcount rule), so present addresses are never re-added;
// a packet that adds the address between our read and our write is the one race left.

import { closeSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { canonicalAddr, recentNameProblem, type RecentEntry } from '../model.js';
import { parseRecentTable, rawSrc } from './parse.js';
import { PatchedRestorer, patchedModuleLoaded, XT_RECENT_SYS_DIR } from './patched-restorer.js';
import { RECENT_PROC_DIR } from './poller.js';

interface FsExt {
  seekSync(fd: number, offset: number, whence: number): number;
}
const fsExt = createRequire(import.meta.url)('fs-ext') as FsExt;
const SEEK_SET = 0;

export interface RecentWriteResult {
  /** Addresses added with `+addr`. */
  readonly written: number;
  /** Addresses already in the kernel table, left untouched. */
  readonly skipped: number;
  /** Addresses the kernel refused (or that are not addresses), with why. */
  readonly failed: readonly { readonly addr: string; readonly why: string }[];
}

/** The table cannot be written at all: it does not exist on this node, or its file cannot be opened. */
export class RecentTableError extends Error {
  constructor(readonly table: string, readonly path: string, readonly why: string) {
    super(`${path}: xt_recent table ${JSON.stringify(table)}: ${why}`);
    this.name = 'RecentTableError';
  }
}

/** How replicated entries get into the kernel; one implementation per kernel module flavour. */
export interface RecentRestorer {
  /**
   * 'stock': upstream xt_recent, ages restart at write time. 'patched': the project's module
   * (kmodule/), entries keep their ttl and the age of every hit (patched-restorer.ts).
   */
  readonly kind: 'stock' | 'patched';
  /** Merges `entries` into table `name`; `now` (epoch ms) is what hit ages are measured against. */
  write(name: string, entries: readonly RecentEntry[], now: number): Promise<RecentWriteResult>;
  /** Empties table `name` in the kernel (`/`). */
  clear(name: string): Promise<void>;
}

export class RecentWriter implements RecentRestorer {
  readonly kind = 'stock' as const;
  private readonly procDir: string;

  constructor(opts: { procDir?: string } = {}) {
    this.procDir = opts.procDir ?? RECENT_PROC_DIR;
  }

  /**
   * Adds the entries' addresses that table `name` lacks, one `+addr` each. The stock kernel cannot take
   * ages, so `_now` is unused here (the patched restorer will age the hits against it). Throws
   * RecentTableError when the table is missing; per-address refusals come back in `failed`.
   */
  async write(name: string, entries: readonly RecentEntry[], _now: number): Promise<RecentWriteResult> {
    const path = this.path(name);
    let text: string;
    try {
      text = await readFile(path, 'latin1');
    } catch (e) {
      throw this.tableError(name, path, e);
    }
    const plan = planRestore(presentAddrs(name, text), entries);
    const failed = [...plan.failed];
    let written = 0;
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (e) {
      throw this.tableError(name, path, e);
    }
    try {
      for (const addr of plan.add) {
        try {
          // The kernel takes one command per write(2) and only at offset 0 (a second write gives ESPIPE,
          // pwrite too). lseek(0) + write measured 1.8 us per address against 12 us for open + write +
          // close (100 addresses, kernel 6.18), so one fd is kept and rewound.
          fsExt.seekSync(fd, 0, SEEK_SET);
          writeSync(fd, `+${addr}`);
          written += 1;
        } catch (err) {
          failed.push({ addr, why: (err as Error).message });
        }
      }
    } finally {
      closeSync(fd);
    }
    return { written, skipped: plan.skipped, failed };
  }

  async clear(name: string): Promise<void> {
    const path = this.path(name);
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (e) {
      throw this.tableError(name, path, e);
    }
    try {
      writeSync(fd, '/');
    } catch (e) {
      throw new RecentTableError(name, path, `flush refused: ${(e as Error).message}`);
    } finally {
      closeSync(fd);
    }
  }

  private path(name: string): string {
    const problem = recentNameProblem(name);
    if (problem !== undefined) throw new RecentTableError(name, this.procDir, `bad table name: ${problem}`);
    return join(this.procDir, name);
  }

  private tableError(name: string, path: string, e: unknown): RecentTableError {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      return new RecentTableError(
        name,
        path,
        `no such table on this node (it exists only while an iptables rule uses -m recent --name ${name})`,
      );
    }
    return new RecentTableError(name, path, (e as Error).message);
  }
}

/**
 * The restorer for this node's xt_recent: the patched one when the loaded module is the project's
 * (kmodule/: its /sys/module/xt_recent/version reads `surealived-<n>`), so entries keep their ages;
 * the stock writer otherwise. Looked up on every call: the module can be swapped while the daemon runs.
 */
export function detectRestorer(procDir: string = RECENT_PROC_DIR, sysDir: string = XT_RECENT_SYS_DIR): RecentRestorer {
  return patchedModuleLoaded(sysDir) ? new PatchedRestorer({ procDir }) : new RecentWriter({ procDir });
}

/**
 * What a stock-kernel restore does, as data: the canonical addresses to add with `+addr`, in write
 * order, how many are skipped because the kernel table (`present`) or an earlier entry already has
 * them, and the entries whose address is no address.
 */
export function planRestore(
  present: ReadonlySet<string>,
  entries: readonly RecentEntry[],
): { add: string[]; skipped: number; failed: { addr: string; why: string }[] } {
  // Oldest last hit first: the kernel's LRU then evicts the least recently active entries first if
  // the backup's ip_list_tot is smaller than the master's table.
  const todo = [...entries].sort((a, b) => lastHit(a) - lastHit(b));
  const add: string[] = [];
  const failed: { addr: string; why: string }[] = [];
  const taken = new Set(present);
  let skipped = 0;
  for (const e of todo) {
    const ip = canonicalAddr(e.addr);
    if (ip === undefined) failed.push({ addr: e.addr, why: 'not an IPv4 or IPv6 address' });
    else if (taken.has(ip.addr)) skipped += 1;
    else {
      taken.add(ip.addr);
      add.push(ip.addr);
    }
  }
  return { add, skipped, failed };
}

/** Canonical addresses in a table's text; a malformed line still counts when its address reads. */
function presentAddrs(table: string, text: string): Set<string> {
  const { entries, errors } = parseRecentTable(table, text);
  const out = new Set(entries.map((e) => e.addr));
  if (errors.length > 0) {
    for (const line of text.split('\n')) {
      const raw = rawSrc(line);
      const ip = raw === undefined ? undefined : canonicalAddr(raw);
      if (ip) out.add(ip.addr);
    }
  }
  return out;
}

function lastHit(e: RecentEntry): number {
  return e.hits.length > 0 ? e.hits[e.hits.length - 1]! : 0;
}
