#!/usr/bin/env node
// ssyncd: the session-sync daemon (master or backup). Options as Zevenet ssyncd v1.0.0 plus ours;
// `-d` detaches, and unlike the original its parent exits 1 with the reason when start-up fails.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CONFIG_PATH, DEFAULTS, parseConfig, type SsyncdConfig } from './config.js';
import { READY_FD_ENV, reportReady, startDaemon, StartError } from './daemon.js';
import { EXTENSION_HELP, HELP_TEXT, parseArgs } from './options.js';

const DAEMON_CHILD_ENV = 'SSYNCD_DAEMON_CHILD';

function loadConfig(path: string | undefined): SsyncdConfig | string {
  const file = path ?? (existsSync(DEFAULT_CONFIG_PATH) ? DEFAULT_CONFIG_PATH : undefined);
  if (!file) return DEFAULTS;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    return `config ${file}: ${(e as Error).message}`;
  }
  const r = parseConfig(text, file);
  return r.ok ? r.config : r.errors.join('\n');
}

/** Re-runs us detached with a pipe on fd 3, and waits for the child to say it is ready. */
function daemonize(argv: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      env: { ...process.env, [DAEMON_CHILD_ENV]: '1', [READY_FD_ENV]: '3' },
    });
    let said = '';
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    const finish = (code: number, msg?: string): void => {
      if (msg) process.stderr.write(`${msg}\n`);
      child.unref();
      (pipe as unknown as { destroy?: () => void }).destroy?.();
      resolve(code);
    };
    pipe.on('data', (b: Buffer) => {
      said += b.toString();
      if (said.startsWith('ready')) finish(0);
      else if (said.includes('\n')) finish(1, said.replace(/^error: /, '').trim());
    });
    child.on('exit', (code) => finish(1, `ssyncd exited during start-up (code ${code})${said ? `: ${said.trim()}` : ''}`));
    setTimeout(() => finish(1, 'ssyncd did not report ready within 30 s'), 30_000).unref();
  });
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    process.stdout.write(`${parsed.error}\n${HELP_TEXT}\n${EXTENSION_HELP}\n`);
    return 1;
  }
  const o = parsed.options;
  if (o.help) {
    process.stdout.write(`${HELP_TEXT}\n${EXTENSION_HELP}\n`);
    return 0;
  }
  const cfg = loadConfig(o.config);
  if (typeof cfg === 'string') {
    process.stderr.write(`${cfg}\n`);
    return 1;
  }
  if (!o.mode && !cfg.mode) {
    process.stdout.write(`${HELP_TEXT}\n${EXTENSION_HELP}\n`);
    return 1;
  }
  if ((o.mode ?? cfg.mode) === 'backup' && !(o.address ?? cfg.masterAddress)) {
    process.stdout.write('Need to specify master ip with option -a\n');
    return 1;
  }
  const child = process.env[DAEMON_CHILD_ENV] === '1';
  if (o.daemon && !child) return daemonize(argv);
  if (child) process.chdir('/');
  let d;
  try {
    d = await startDaemon(o, cfg, child);
  } catch (e) {
    const why = e instanceof StartError ? e.message : (e as Error).stack ?? String(e);
    reportReady(why);
    process.stderr.write(`ssyncd: ${why}\n`);
    return 1;
  }
  reportReady();
  const onSignal = (sig: string): void => {
    d.log.info(`${sig} received`);
    void d.stop(0);
  };
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGHUP', () => d.log.info('SIGHUP ignored (nothing to reload: restart to change options)'));
  return d.done;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sockets and timers are closed by then; exit even if a stray handle lingers.
    setTimeout(() => process.exit(code), 200).unref();
  },
  (e: unknown) => {
    process.stderr.write(`ssyncd: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
