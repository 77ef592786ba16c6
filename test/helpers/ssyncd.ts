// Runs real ssyncd daemons inside test namespaces, each with its own config, control socket, journal
// and log, and drives them with the real ssyncdctl.

import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO, sleep, type Netns } from './netns.js';

export const SSYNCD = join(REPO, 'dist', 'ssyncd', 'cli.js');
export const SSYNCDCTL = join(REPO, 'dist', 'ssyncdctl', 'cli.js');

export interface DaemonSpec {
  readonly ns: Netns;
  readonly name: string;
  readonly args: readonly string[];
  /** Extra config lines (`key value`). */
  readonly config?: readonly string[];
}

export class Daemon {
  child: ChildProcess | undefined;
  output = '';
  readonly dir: string;
  readonly socket: string;
  readonly journal: string;
  readonly configPath: string;

  constructor(readonly spec: DaemonSpec) {
    this.dir = mkdtempSync(join(tmpdir(), `ssyncd-${spec.name}-`));
    this.socket = join(this.dir, 'ctl.sock');
    this.journal = join(this.dir, 'backup.journal');
    this.configPath = join(this.dir, 'ssyncd.cfg');
    writeFileSync(
      this.configPath,
      [`node_name ${spec.name}`, `control_socket ${this.socket}`, `journal ${this.journal}`, ...(spec.config ?? [])].join('\n') + '\n',
    );
  }

  /** Starts the daemon and waits until its control socket answers. */
  async start(extraArgs: readonly string[] = []): Promise<void> {
    const child = this.spec.ns.spawn('node', [SSYNCD, ...this.spec.args, ...extraArgs, '-c', this.configPath]);
    this.child = child;
    child.stdout?.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (this.output += b.toString()));
    for (let i = 0; i < 300; i++) {
      if (child.exitCode !== null) throw new Error(`${this.spec.name} exited ${child.exitCode}:\n${this.output}`);
      const r = await this.ctl(['show', 'mode']);
      if (r.code === 0) return;
      await sleep(50);
    }
    throw new Error(`${this.spec.name} never answered on ${this.socket}:\n${this.output}`);
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL: no goodbye to the peer, no journal flush beyond what write(2) already did. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM');
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    // `ip netns exec` execs node in place, so the child's pid is the daemon's.
    c.kill(sig);
    await gone;
  }

  /** Runs ssyncdctl against this daemon inside its namespace. */
  ctl(words: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return this.spec.ns.exec('node', [SSYNCDCTL, '-s', this.socket, ...words]);
  }

  async json<T>(words: readonly string[]): Promise<T> {
    const r = await this.ctl(['--json', ...words]);
    if (r.code !== 0) throw new Error(`${this.spec.name}: ssyncdctl ${words.join(' ')} exited ${r.code}: ${r.stdout}${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  log(): string {
    return this.output;
  }

  readJournal(): Buffer {
    return readFileSync(this.journal);
  }
}

/** Polls `cond` until it holds or `ms` pass; returns whether it held. */
export async function eventually(cond: () => Promise<boolean>, ms: number, stepMs = 100): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(stepMs);
  }
}
