// The kernel-facing backends of the service on a real node: xt_recent through /proc (a poller for the
// master, the restorer for `write recent`) and nftables through netlink (a poller per set, a writer).

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { NftRef } from './control/commands.js';
import type { Change, NftEntry, RecentEntry, TableRef } from './model.js';
import { NftPoller } from './nft/poller.js';
import { readSetInfo } from './nft/sets.js';
import { NftSocket } from './nft/socket.js';
import { classifySet } from './nft/types.js';
import { NftWriter } from './nft/writer.js';
import { KernelJiffiesClock, type JiffiesClock } from './recent/jiffies.js';
import { RecentPoller, RECENT_PROC_DIR } from './recent/poller.js';
import { detectRestorer } from './recent/writer.js';
import type { NftBackend, RecentBackend } from './service.js';
import type { SinkReport, Source } from './source.js';

/** Re-anchor jiffies to the monotonic clock this often (they drift apart by ppm). */
const REANCHOR_MS = 60_000;

export interface KernelRecentOptions {
  readonly procDir?: string;
  readonly log: (msg: string) => void;
}

/**
 * xt_recent on this node. The jiffies clock is set up once (HZ from /proc/config.gz or measured from
 * /proc/timer_list); when that fails the daemon still runs, and `start recent` says why it cannot.
 */
export async function kernelRecentBackend(opts: KernelRecentOptions): Promise<RecentBackend> {
  const procDir = opts.procDir ?? RECENT_PROC_DIR;
  let clock: KernelJiffiesClock | undefined;
  let clockProblem = '';
  try {
    clock = await KernelJiffiesClock.start();
    opts.log(`kernel HZ ${clock.hz} (${clock.hzSource})`);
  } catch (e) {
    clockProblem = (e as Error).message;
  }
  let lastAnchor = Date.now();
  const needClock = (): JiffiesClock => {
    if (!clock) throw new Error(`cannot read the kernel's jiffies: ${clockProblem}`);
    return clock;
  };
  return {
    source(): Source {
      const c = needClock();
      try {
        if (!statSync(procDir).isDirectory()) throw new Error('not a directory');
      } catch (e) {
        throw new Error(`xt_recent is not available here: ${procDir}: ${(e as Error).message}`);
      }
      const poller = new RecentPoller({ procDir, clock: c, log: opts.log });
      return {
        id: 'recent',
        async poll(now: number) {
          if (clock && now - lastAnchor > REANCHOR_MS) {
            lastAnchor = now;
            await clock.reanchor();
          }
          return poller.poll(now);
        },
        owns: (t: TableRef) => t.kind === 'recent',
        reset: () => poller.reset(),
      };
    },
    async write(name: string, entries: readonly RecentEntry[], now: number): Promise<SinkReport> {
      const r = await detectRestorer(procDir).write(name, entries, now);
      return { written: r.written, skipped: r.skipped, failed: r.failed.map((f) => ({ what: f.addr, why: f.why })) };
    },
    exists: (name: string) => existsSync(join(procDir, name)),
    jiffiesAt: (ms: number) => (clock ? clock.jiffiesAt(ms) : 0),
  };
}

export interface KernelNftOptions {
  /** How far an element's deadline may move before it counts as refreshed (default 20 ms). */
  readonly toleranceMs?: number;
}

export function kernelNftBackend(opts: KernelNftOptions = {}): NftBackend {
  let writer: NftWriter | undefined;
  const pollers = new Set<NftPoller>();
  return {
    async source(ref: NftRef): Promise<Source> {
      // A first look says at once whether the set exists and has a type we replicate.
      const sock = new NftSocket();
      try {
        const info = await readSetInfo(sock, ref);
        if (!info) throw new Error(`no set ${ref.set} in table ${ref.family} ${ref.table}`);
        const c = classifySet(info);
        if (!c.ok) throw new Error(c.reason);
      } finally {
        sock.close();
      }
      const poller = new NftPoller(ref, opts.toleranceMs === undefined ? {} : { toleranceMs: opts.toleranceMs });
      pollers.add(poller);
      return {
        id: `nft/${ref.family}/${ref.table}/${ref.set}`,
        poll: (now: number, early?: (changes: Change[]) => void) => poller.poll(now, early),
        owns: (t: TableRef) => t.kind === 'nft' && t.family === ref.family && t.table === ref.table && t.set === ref.set,
        reset: () => poller.reset(),
        close: () => {
          pollers.delete(poller);
          poller.close();
        },
      };
    },
    async write(ref: NftRef, entries: readonly NftEntry[], now: number): Promise<SinkReport> {
      writer ??= new NftWriter(opts.toleranceMs === undefined ? {} : { toleranceMs: opts.toleranceMs });
      const r = await writer.write(ref, entries, now);
      return { written: r.written, skipped: r.skipped + r.expired, failed: [] };
    },
    close(): void {
      writer?.close();
      writer = undefined;
      for (const p of pollers) p.close();
      pollers.clear();
    },
  };
}
