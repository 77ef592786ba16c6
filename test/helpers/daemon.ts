// A real surealived daemon started in-process for tests: its XML and every state file in a fresh
// temporary directory, the control port on an ephemeral loopback port, its log kept in memory, and
// readers for what it writes (diff lines, ipvsfull.cfg, override.dump, offline.dump).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, type DaemonOptions } from '../../surealived/daemon.js';
import { createLogger, memorySink } from '../../common/log.js';
import type { LogLevelName } from '../../common/main-config.js';
import { testMainConfig } from './main-config.js';
import { readDiffs, readStateFile } from './state-files.js';

export interface TestDaemonOptions {
  /** The service configuration (written to `<dir>/services.xml`). */
  readonly xml: string;
  /** Main config keys on top of testMainConfig's (e.g. `use_offline_dump: 'false'`). */
  readonly main?: Readonly<Record<string, string>>;
  /** Reuse this directory (a restart on the same state files) instead of a fresh one. */
  readonly dir?: string;
  readonly logLevel?: LogLevelName;
  /** Other options of Daemon.start (watchdogPid, noSync, ...). */
  readonly daemon?: Partial<Omit<DaemonOptions, 'xmlPath' | 'main' | 'log'>>;
}

export class TestDaemon {
  private stopped = false;

  private constructor(
    readonly daemon: Daemon,
    readonly dir: string,
    /** Every log line, with its timestamp and level (`[...] warn  : ...\n`). */
    readonly logLines: string[],
  ) {}

  /**
   * Start a daemon. The directory is removed by stop() (also when start fails), unless it was given.
   * Rejects with the daemon's own error when it does not start (config rejected, port taken...).
   */
  static async start(o: TestDaemonOptions): Promise<TestDaemon> {
    const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'sd-test-'));
    const log = memorySink();
    try {
      writeFileSync(join(dir, 'services.xml'), o.xml);
      const daemon = await Daemon.start({
        xmlPath: join(dir, 'services.xml'),
        main: testMainConfig(dir, o.main),
        log: createLogger(o.logLevel ?? 'info', log.sink),
        ...o.daemon,
      });
      return new TestDaemon(daemon, dir, log.lines);
    } catch (e) {
      if (o.dir === undefined) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
      throw e;
    }
  }

  /** Start on an existing directory as it stands (its services.xml, state files of a run before); the caller removes it. */
  static startIn(dir: string, main: Readonly<Record<string, string>> = {}): Promise<TestDaemon> {
    return TestDaemon.start({ dir, xml: readFileSync(join(dir, 'services.xml'), 'utf8'), main });
  }

  /** The control port (TCP, loopback). */
  get port(): number {
    const a = this.daemon.controlAddress;
    if (a === null) throw new Error('the control port is disabled');
    return a.port;
  }

  get log(): string {
    return this.logLines.join('');
  }

  private read(name: string): string {
    return readStateFile(this.dir, name);
  }

  /** Every diff file, oldest first, concatenated (chain lines included). */
  diffs(): string {
    return readDiffs(this.dir);
  }

  /** ipvsfull.cfg ('' when not written). */
  full(): string {
    return this.read('ipvsfull.cfg');
  }

  /** override.dump ('' when absent: no override was ever written). */
  overrideDump(): string {
    return this.read('override.dump');
  }

  offlineDump(): string {
    return this.read('offline.dump');
  }

  /** Every real has had a probe evaluated (its test state is then the probe's verdict). */
  allTested(): boolean {
    return this.daemon.virtuals.every((v) => v.reals.every((r) => r.tested));
  }

  /** Wait for allTested(); rejects with the reals still untested. */
  async waitAllTested(ms = 10_000): Promise<void> {
    await until(() => this.allTested(), () => {
      const left = this.daemon.virtuals.flatMap((v) => v.reals.filter((r) => !r.tested).map((r) => `${v.config.name}:${r.config.name}`));
      return `every real probed once (untested: ${left.join(', ')})`;
    }, ms);
  }

  /** Graceful stop (dumps written), then the directory is removed unless `keepDir`. Idempotent. */
  async stop(keepDir = false): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.daemon.stop();
    // Retried: a notifier script the daemon started may still be writing into the directory.
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  }
}

/** Poll `cond` every 10 ms; rejects after `ms` naming what was awaited. An eventual condition, not a timing bound. */
export async function until(cond: () => boolean, what: string | (() => string), ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
