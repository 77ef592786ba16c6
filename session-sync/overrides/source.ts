// The master's source of surealived's operator overrides: follows its override.dump and reports what
// changed. The file is re-read only when it changed: a stat (inode, size, mtime, ctime) at each poll,
// plus a watch on its directory (surealived replaces it by rename) for rewrites a coarse file-system
// clock and a reused inode number could hide from the stat. A missing file means no overrides.

import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { formatWarning } from '../../common/dump-lines.js';
import type { Change, OperatorOverride, TableRef } from '../model.js';
import type { Source } from '../source.js';
import { diffOverrides } from './diff.js';
import { readOverrideDump } from './dump.js';

export type OverridesLog = (level: 'info' | 'warn' | 'error', msg: string) => void;

export interface OverrideDumpSourceOptions {
  /** The local surealived's override.dump. */
  readonly path: string;
  /** The table's name (`surealived` unless several run). */
  readonly name: string;
  readonly log: OverridesLog;
}

const ABSENT = 'absent';

/** What identifies one version of the file without reading it; ABSENT when there is none. */
async function stampOf(path: string): Promise<string> {
  try {
    const s = await stat(path, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ABSENT;
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

export class OverrideDumpSource implements Source {
  readonly id: string;
  private readonly table: TableRef;
  private reported: ReadonlyMap<string, OperatorOverride> = new Map();
  /** The version last read; undefined before the first read. */
  private stamp: string | undefined;
  /** Set by the directory watch: the file may have changed whatever its stat says. */
  private touched = true;
  private watcher: FSWatcher | undefined;
  private watchProblem = '';
  private closed = false;
  private readCount = 0;

  constructor(private readonly opts: OverrideDumpSourceOptions) {
    this.id = `overrides/${opts.name}`;
    this.table = { kind: 'overrides', name: opts.name };
  }

  /** How many times the file was actually read (not just stat'ed). */
  get reads(): number {
    return this.readCount;
  }

  async poll(_now: number): Promise<Change[]> {
    this.watchDir();
    const { path } = this.opts;
    const stamp = await stampOf(path);
    if (!this.touched && stamp === this.stamp) return [];
    this.touched = false;
    let text = '';
    if (stamp !== ABSENT) {
      try {
        text = await readFile(path, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
          this.touched = true;
          throw new Error(`${path}: ${(e as Error).message}`);
        }
      }
    }
    this.readCount += 1;
    this.stamp = stamp;
    const { overrides, warnings } = readOverrideDump(text, path);
    for (const w of warnings) this.opts.log('warn', `skipped: ${formatWarning(w)}`);
    const changes = diffOverrides(this.table, this.reported, overrides);
    this.reported = overrides;
    return changes;
  }

  owns(table: TableRef): boolean {
    return table.kind === 'overrides' && table.name === this.opts.name;
  }

  reset(): void {
    this.reported = new Map();
    this.touched = true;
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = undefined;
  }

  /** (Re)starts the directory watch; without it the stat alone still sees every replacement. */
  private watchDir(): void {
    if (this.watcher || this.closed) return;
    const dir = dirname(this.opts.path);
    const base = basename(this.opts.path);
    try {
      const w = watch(dir, { persistent: false }, (_event, file) => {
        if (file === null || file === base) this.touched = true;
      });
      w.on('error', (e) => {
        this.opts.log('warn', `watching ${dir} for ${base}: ${e.message}; watching again at the next poll`);
        w.close();
        if (this.watcher === w) this.watcher = undefined;
        this.touched = true;
      });
      this.watcher = w;
      this.watchProblem = '';
    } catch (e) {
      const why = (e as Error).message;
      if (why !== this.watchProblem) this.opts.log('warn', `cannot watch ${dir} for ${base} (${why}): checking it at each poll only`);
      this.watchProblem = why;
    }
  }
}
