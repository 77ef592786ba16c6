// The real `surealived` command (dist/surealived/cli.js) in the foreground for tests: a main config
// file with every state file under one temporary directory, its log (stderr, -vvv) kept, its control
// port found from the log, and signals, readers and a stop that always ends the process.

import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readDiffs, readStateFile } from './state-files.js';

export const SUREALIVED_CLI = join(fileURLToPath(new URL('../../..', import.meta.url)), 'dist/surealived/cli.js');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Write `<dir>/surealived.cfg`: every state and hand-off file under `dir`, the control port on an
 * ephemeral port (`listen_port 0`), a short start-up spread; `extra` lines are appended (later wins).
 */
export function writeMainConfigFile(dir: string, extra: readonly string[] = []): string {
  const cfg = join(dir, 'surealived.cfg');
  const files = ['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'];
  writeFileSync(cfg, ['listen_port 0', 'startup_delay_ms 100', ...files.map((l) => l.replace(' ', ` ${dir}/`)), ...extra, ''].join('\n'));
  return cfg;
}

export interface CliOptions {
  /** Directory of the main config (written by writeMainConfigFile unless `cfg` is given) and the XML. */
  readonly dir: string;
  /** The service configuration, written to `<dir>/services.xml`. */
  readonly xml: string;
  /** Extra main config lines. */
  readonly cfgLines?: readonly string[];
  /** Extra command-line options (`-n`, `-k`). */
  readonly args?: readonly string[];
}

/** A foreground `surealived -c <cfg> -vvv [args] <xml>`. */
export class SurealivedCli {
  stderr = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly xmlPath: string,
    readonly child: ChildProcess,
  ) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      }),
    );
  }

  /** Start and wait until the control port listens (rejects with the log if the process ends first). */
  static async start(o: CliOptions): Promise<SurealivedCli> {
    const cfg = writeMainConfigFile(o.dir, o.cfgLines ?? []);
    const xmlPath = join(o.dir, 'services.xml');
    writeFileSync(xmlPath, o.xml);
    const child = spawn(process.execPath, [SUREALIVED_CLI, '-c', cfg, '-vvv', ...(o.args ?? []), xmlPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    const run = new SurealivedCli(o.dir, xmlPath, child);
    running.add(run);
    try {
      await run.waitLog(/control port listening on /, 15_000);
    } catch (e) {
      await run.stop();
      throw e;
    }
    return run;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  /** The TCP control port, from the log line `control port listening on <addr>:<port>`. */
  get controlPort(): number {
    const m = /control port listening on .*:(\d+)\n/.exec(this.stderr);
    if (!m) throw new Error(`no control port in the log:\n${this.stderr}`);
    return Number(m[1]);
  }

  /** Lines logged so far that match `re` (global search over the log). */
  count(re: RegExp): number {
    return (this.stderr.match(new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`)) ?? []).length;
  }

  /** Wait until the log matches `re` (from offset `from` of the log); the match. */
  async waitLog(re: RegExp, ms = 10_000, from = 0): Promise<RegExpExecArray> {
    const end = performance.now() + ms;
    for (;;) {
      const m = re.exec(this.stderr.slice(from));
      if (m) return m;
      if (!this.running) throw new Error(`surealived ended (${this.exitSignal ?? `code ${this.exitCode}`}) before logging ${re}:\n${this.stderr}`);
      if (performance.now() > end) throw new Error(`timed out waiting for ${re} in the log:\n${this.stderr}`);
      await sleep(20);
    }
  }

  signal(sig: NodeJS.Signals): void {
    this.child.kill(sig);
  }

  /** Rewrite the XML and send SIGHUP; resolves once the reload is logged (the log offset before it). */
  async reload(xml: string): Promise<number> {
    const from = this.stderr.length;
    const before = this.count(/surealived: configuration reloaded/);
    writeFileSync(this.xmlPath, xml);
    this.signal('SIGHUP');
    const end = performance.now() + 10_000;
    while (this.count(/surealived: configuration reloaded/) === before) {
      if (!this.running || performance.now() > end) throw new Error(`no reload logged:\n${this.stderr}`);
      await sleep(10);
    }
    return from;
  }

  /** A state or hand-off file under the directory ('' when absent). */
  file(name: string): string {
    return readStateFile(this.dir, name);
  }

  /** Every diff file, oldest first, concatenated. */
  diffs(): string {
    return readDiffs(this.dir);
  }

  /** SIGTERM (graceful stop), then SIGKILL if it has not ended within `ms`. Resolves once it has ended. */
  async stop(ms = 10_000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
      await this.exited;
      clearTimeout(timer);
    }
    running.delete(this);
  }
}

const running = new Set<SurealivedCli>();

/** Stop every process started by SurealivedCli.start that is still running (afterEach). */
export async function stopAllSurealived(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}
