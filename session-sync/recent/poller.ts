// The master's xt_recent source: reads every table under /proc/net/xt_recent and reports what changed
// since the previous poll as Changes. Improves on the original (spec 5.3, 11.2): an entry counts as
// changed when any byte of its line changed (address, ttl, every stamp), not only the ring index; a
// vanished table gives one 'drop' instead of being forgotten; IPv6 entries are kept; a malformed line is
// logged once and skipped instead of killing the daemon; reset() makes the next poll a full load.
//
// Reads are synchronous into one reused buffer: a table is at most a few hundred kB of kernel text
// produced under the table lock, and a thread-pool round trip per file cost more than the read itself.
// A table whose bytes equal the previous poll's is not even decoded; in one that changed, an
// unchanged entry costs a string compare. Most of a poll's cost is the kernel formatting the text.

import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { recentNameProblem, type Change, type RecentEntry, type TableRef } from '../model.js';
import type { JiffiesClock } from './jiffies.js';
import { chronologicalStamps, parseRecentLine, rawSrc, RecentLineError, type ParsedRecentLine } from './parse.js';

export const RECENT_PROC_DIR = '/proc/net/xt_recent';

export interface RecentPollerOptions {
  /** Directory of the tables (default /proc/net/xt_recent; /proc/<pid>/net/xt_recent reads another netns). */
  readonly procDir?: string;
  readonly clock: JiffiesClock;
  readonly log?: (msg: string) => void;
  /** Which tables to replicate (default all). Called with names that passed recentNameProblem. */
  readonly filter?: (name: string) => boolean;
}

/** What the poller last reported for one kernel entry, keyed by the line's raw `src=` text. */
interface Known {
  readonly line: string;
  /** Canonical address: the key of the Change that reported it. */
  readonly addr: string;
}

interface TableState {
  readonly name: string;
  readonly ref: TableRef;
  entries: Map<string, Known>;
  /** Malformed line texts seen in the last poll, so each is logged once while it stays. */
  bad: Set<string>;
  /** The table file as last read: equal bytes mean nothing changed. */
  bytes: Buffer;
}

/** A directory-level failure that is not "no tables" (e.g. permissions); says where and why. */
export class RecentPollError extends Error {
  constructor(readonly path: string, readonly why: string) {
    super(`${path}: ${why}`);
    this.name = 'RecentPollError';
  }
}

export class RecentPoller {
  private readonly procDir: string;
  private readonly clock: JiffiesClock;
  private readonly log: (msg: string) => void;
  private readonly filter: (name: string) => boolean;
  private state = new Map<string, TableState>();
  /** Names, directory and read failures already logged, so a lasting problem is logged once. */
  private readonly logged = new Set<string>();
  private buf = Buffer.allocUnsafe(64 * 1024);

  constructor(opts: RecentPollerOptions) {
    this.procDir = opts.procDir ?? RECENT_PROC_DIR;
    this.clock = opts.clock;
    this.log = opts.log ?? (() => {});
    this.filter = opts.filter ?? (() => true);
  }

  /** Names of the tables the last poll read, sorted. */
  tables(): string[] {
    return [...this.state.keys()].sort();
  }

  /** Forgets every reported entry: the next poll reports all of them again as upserts. */
  reset(): void {
    this.state = new Map();
  }

  /** Reads every table once; `now` is the epoch ms time hits are aged against. */
  poll(now: number): Change[] {
    const changes: Change[] = [];
    const jNow = this.clock.jiffiesAt(now);
    const seen = new Set<string>();
    for (const name of this.listTables()) {
      const bytes = this.readTable(name);
      if (bytes === 'gone') continue;
      seen.add(name);
      if (bytes === 'unreadable') continue; // logged; keep what was reported until it reads again
      let st = this.state.get(name);
      if (!st) {
        st = { name, ref: { kind: 'recent', name }, entries: new Map(), bad: new Set(), bytes: Buffer.alloc(0) };
        this.state.set(name, st);
      } else if (st.bytes.equals(bytes)) continue;
      this.diffTable(st, bytes.toString('latin1'), now, jNow, changes);
      st.bytes = Buffer.from(bytes); // a copy: `bytes` is a view of the reused read buffer
    }
    for (const [name, st] of this.state) {
      if (seen.has(name)) continue;
      this.state.delete(name);
      changes.push({ op: 'drop', table: st.ref });
    }
    return changes;
  }

  private diffTable(st: TableState, text: string, now: number, jNow: number, out: Change[]): void {
    const prev = st.entries;
    const next = new Map<string, Known>();
    const bad = new Set<string>();
    let lineNo = 0;
    let start = 0;
    while (start < text.length) {
      let end = text.indexOf('\n', start);
      if (end === -1) end = text.length;
      const line = text.slice(start, end);
      start = end + 1;
      lineNo += 1;
      const raw = rawSrc(line);
      const old = raw === undefined ? undefined : prev.get(raw);
      if (old !== undefined && old.line === line) {
        next.set(raw!, old);
        continue;
      }
      let p: ParsedRecentLine;
      try {
        p = parseRecentLine(st.name, lineNo, line);
      } catch (e) {
        if (!(e instanceof RecentLineError)) throw e;
        if (!st.bad.has(line)) this.log(`${this.procDir}/${e.message} (line skipped)`);
        bad.add(line);
        // The entry still exists in the kernel: keep its last good state rather than report a delete.
        if (old !== undefined) next.set(raw!, old);
        continue;
      }
      next.set(raw!, { line, addr: p.addr });
      out.push({ op: 'upsert', table: st.ref, entry: this.entry(p, now, jNow) });
    }
    for (const [raw, k] of prev) if (!next.has(raw)) out.push({ op: 'delete', table: st.ref, key: k.addr });
    st.entries = next;
    st.bad = bad;
  }

  /** Hits as epoch ms: age = (jiffies now - stamp) / HZ, never in the future. */
  private entry(p: ParsedRecentLine, now: number, jNow: number): RecentEntry {
    const msPerJiffy = 1000 / this.clock.hz;
    const hits = chronologicalStamps(p).map((s) => Math.min(now, Math.round(now - (jNow - s) * msPerJiffy)));
    return { kind: 'recent', addr: p.addr, family: p.family, ttl: p.ttl, hits };
  }

  private listTables(): string[] {
    let dirents;
    try {
      dirents = readdirSync(this.procDir, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // No directory means no xt_recent in this netns yet: no tables, which drops any we knew.
      if (code === 'ENOENT') {
        this.logOnce(`dir:${code}`, `${this.procDir}: no such directory, so no xt_recent tables`);
        return [];
      }
      throw new RecentPollError(this.procDir, `cannot list tables: ${(e as Error).message}`);
    }
    this.logged.delete('dir:ENOENT');
    const names: string[] = [];
    for (const d of dirents) {
      if (!d.isFile()) continue;
      const problem = recentNameProblem(d.name);
      if (problem !== undefined) {
        this.logOnce(`name:${d.name}`, `${join(this.procDir, d.name)}: table skipped: ${problem}`);
        continue;
      }
      if (this.filter(d.name)) names.push(d.name);
    }
    return names;
  }

  /**
   * The table's bytes, a view of the reused buffer valid until the next read; 'gone' when it vanished
   * since the listing; 'unreadable' (logged) otherwise.
   */
  private readTable(name: string): Buffer | 'gone' | 'unreadable' {
    const path = join(this.procDir, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (e) {
      return this.readFailed(name, path, e);
    }
    try {
      let n = 0;
      for (;;) {
        // One large read lets seq_file emit the whole table in one pass under the table lock; its
        // restart cost on each further read is a walk from the first entry again.
        if (n === this.buf.length) {
          const bigger = Buffer.allocUnsafe(this.buf.length * 2);
          this.buf.copy(bigger, 0, 0, n);
          this.buf = bigger;
        }
        const r = readSync(fd, this.buf, n, this.buf.length - n, null);
        if (r === 0) break;
        n += r;
      }
      this.logged.delete(`read:${name}`);
      return this.buf.subarray(0, n);
    } catch (e) {
      return this.readFailed(name, path, e);
    } finally {
      closeSync(fd);
    }
  }

  private readFailed(name: string, path: string, e: unknown): 'gone' | 'unreadable' {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    this.logOnce(`read:${name}`, `${path}: cannot read table: ${(e as Error).message}`);
    return 'unreadable';
  }

  private logOnce(key: string, msg: string): void {
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log(msg);
  }
}
