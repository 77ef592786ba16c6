// ipvssync's process shell: options, main config, logger, file checks, -t, --list, backend choice,
// daemonizing, signals, and the sync loop. Everything it calls is in its own module.

import { spawn } from 'node:child_process';
import { access, readdir, readFile } from 'node:fs/promises';
import { loadMainConfig, type MainConfig } from '../common/main-config.js';
import { createLogger, fileSink, stderrSink, type Logger, type LogSink } from '../common/log.js';
import type { IpvsBackend, SyncDaemonControl } from './backend.js';
import { formatList, formatSyncDaemon, formatSyncDaemons } from './format.js';
import { parseRules } from './kernel-table-file.js';
import { FlockLock } from './lock.js';
import { MemoryBackend } from './memory-backend.js';
import { openNetlinkBackend } from './netlink-backend.js';
import { banner, levelFromVerbosity, parseArgs, usage, type CliOptions } from './options.js';
import { parseSyncDaemonConfig, type SyncDaemonConfig } from './sync-daemon-config.js';
import { wantedSyncDaemons } from './sync-daemon-plan.js';
import { loadFullFile, Syncer, type SyncPaths } from './syncer.js';

export interface Io {
  readonly out: (s: string) => void;
  readonly err: (s: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

const DAEMON_ENV = 'IPVSSYNC_DAEMONIZED';

function makeLogger(cfg: MainConfig, opts: CliOptions, daemonChild: boolean): { log: Logger; toStderr: boolean } {
  const level = opts.verbosity >= 0 ? levelFromVerbosity(opts.verbosity) : cfg.ipvssyncLogging;
  // The original could only switch use_log on (11.12): absent means on, `use_log false` now silences.
  const useLog = cfg.raw.has('use_log') ? cfg.useLog : true;
  let sink: LogSink = () => undefined;
  if (useLog) sink = daemonChild && cfg.ipvssyncLog !== 'stderr' ? fileSink(cfg.ipvssyncLog) : stderrSink;
  return { log: createLogger(level, sink), toStderr: useLog && sink === stderrSink };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

type Backend = IpvsBackend & SyncDaemonControl;

async function openBackend(opts: CliOptions, io: Io): Promise<Backend | string> {
  if (!opts.dryRun) {
    try {
      return await openNetlinkBackend();
    } catch (e) {
      return `IPVS init failed: ${(e as Error).message}`;
    }
  }
  let initial;
  if (opts.kernelTable !== undefined) {
    let text: string;
    try {
      text = await readFile(opts.kernelTable, 'utf8');
    } catch (e) {
      return `cannot read kernel table ${opts.kernelTable}: ${(e as Error).message}`;
    }
    const p = parseRules(text, opts.kernelTable);
    if (!p.ok) return p.errors.join('\n');
    initial = p.table;
  }
  return new MemoryBackend({ initial, onOp: (line) => io.out(`${line}\n`), onDaemon: (line) => io.out(`${line}\n`) });
}

/** The table as `ipvsadm -Ln`, then the sync daemons as `ipvsadm -L --daemon`; the error text when a read fails. */
async function listing(b: Backend): Promise<{ text: string; error?: string }> {
  const text = formatList(await b.info(), await b.readTable());
  try {
    return { text: text + formatSyncDaemons(await b.readDaemons()) };
  } catch (e) {
    return { text, error: `cannot read the IPVS sync daemons: ${(e as Error).message}` };
  }
}

/** Run ipvssync; resolves with the exit code. */
export async function runIpvssync(argv: readonly string[], io: Io): Promise<number> {
  const parsed = parseArgs(argv);
  if (!parsed.ok) {
    io.err(`ipvssync: ${parsed.error}\n${usage()}`);
    return 1;
  }
  const opts = parsed.options;
  if (opts.help) {
    io.err(usage());
    return 1;
  }
  if (opts.version) {
    io.err(banner());
    return 1;
  }
  for (const u of opts.unknown) io.err(`ipvssync: ignoring unknown argument '${u}'\n`);

  let cfg: MainConfig;
  try {
    const l = loadMainConfig(opts.config);
    if (l.missing) {
      io.err(`ERROR loading config [${opts.config}]\n`);
      return 1;
    }
    cfg = l.config;
  } catch (e) {
    io.err(`ERROR loading config [${opts.config}]: ${(e as Error).message}\n`);
    return 1;
  }
  const paths: SyncPaths = { fullSyncFile: cfg.fullSyncFile, fullReloadFile: cfg.fullReloadFile, diffSyncDir: cfg.diffSyncDir };
  const daemonParse = parseSyncDaemonConfig(cfg.raw, cfg.lines, opts.config);

  if (opts.testConfig) {
    if (!daemonParse.ok) {
      for (const e of daemonParse.errors) io.err(`${e}\n`);
      io.out(`ipvssync main config [${opts.config}] ERROR\n`);
      return 1;
    }
    if (!(await exists(paths.fullSyncFile))) {
      io.err(`ipvssync config file [${paths.fullSyncFile}] NOT FOUND!\n`);
      return 1;
    }
    // Unlike the original (11.18), read under the lock when it exists, so a half-written file is not judged.
    const lock = (await exists(cfg.lockSyncFile)) ? new FlockLock(cfg.lockSyncFile) : undefined;
    await lock?.acquire();
    const r = await loadFullFile(paths).finally(() => lock?.close());
    if (!r.ok) {
      for (const e of r.errors) io.err(`${e}\n`);
      io.out(`ipvssync config file [${paths.fullSyncFile}] syntax ERROR\n`);
      return 1;
    }
    io.out(`ipvssync config file [${paths.fullSyncFile}] syntax OK\n`);
    return 0;
  }

  if (opts.list && !opts.once) {
    const b = await openBackend(opts, io);
    if (typeof b === 'string') {
      io.err(`${b}\n`);
      return 1;
    }
    const l = await listing(b);
    io.out(l.text);
    await b.close();
    if (l.error !== undefined) {
      io.err(`${l.error}\n`);
      return 1;
    }
    return 0;
  }

  const daemonChild = io.env[DAEMON_ENV] === '1';
  const { log, toStderr } = makeLogger(cfg, opts, daemonChild);
  // Start-up failures reach the operator's terminal even when the log goes elsewhere.
  const fail = (msg: string): number => {
    log.error(msg);
    if (!daemonChild && !toStderr) io.err(`${msg}\n`);
    return 1;
  };
  if (!daemonParse.ok) {
    for (const e of daemonParse.errors) fail(e);
    return fail(`ipvssync main config [${opts.config}] ERROR`);
  }
  const daemonConfig: SyncDaemonConfig = daemonParse.config;
  if (!(await exists(paths.fullSyncFile))) return fail(`ipvssync config file [${paths.fullSyncFile}] NOT FOUND!`);
  if (!(await exists(cfg.lockSyncFile))) return fail(`ipvssync lock file [${cfg.lockSyncFile}] NOT FOUND!`);
  try {
    await readdir(paths.diffSyncDir);
  } catch (e) {
    return fail(`ipvssync diff dir [${paths.diffSyncDir}] unreadable: ${(e as Error).message}`);
  }

  if (opts.daemonize && !daemonChild) {
    // daemon(nochdir=1, noclose=1): a detached copy of this process keeps cwd and stdio.
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, ...argv], {
      detached: true,
      stdio: 'inherit',
      env: { ...io.env, [DAEMON_ENV]: '1' },
    });
    child.unref();
    return 0;
  }

  log.always('info', 'Starting ipvssync');
  log.always('info', `logging level: ${['error', 'warn', 'info', 'debug', 'dbdet'].indexOf(log.level)}`);
  log.always('info', `logging level: ${log.level}`);
  log.always('info', `log file: ${daemonChild ? cfg.ipvssyncLog : 'stderr'}`);
  log.info(`ipvssync pid ${process.pid}${opts.deleteUnmanaged ? ', deleting unmanaged services (-u)' : ''}${opts.keepDiffs ? ', keeping diffs (-k)' : ''}`);

  const backend = await openBackend(opts, io);
  if (typeof backend === 'string') return fail(backend);
  const info = await backend.info();
  log.info(`IPVS version ${info.version} (size=${info.connTabSize})${opts.dryRun ? ' [dry run: in-memory table]' : ''}`);

  let lock: FlockLock;
  try {
    lock = new FlockLock(cfg.lockSyncFile);
  } catch (e) {
    return fail(`ipvssync lock file [${cfg.lockSyncFile}] cannot be opened: ${(e as Error).message}`);
  }
  if (daemonConfig.mode === 'none') log.info('IPVS sync daemons: left alone (ipvs_sync_daemon none)');
  else log.info(`IPVS sync daemons wanted: ${wantedSyncDaemons(daemonConfig).map(formatSyncDaemon).join(', ')}`);
  const syncer = new Syncer({
    paths,
    backend,
    lock,
    log,
    deleteUnmanaged: opts.deleteUnmanaged,
    keepDiffs: opts.keepDiffs,
    syncDaemons: { config: daemonConfig, control: backend },
  });
  const started = await syncer.start();
  if (!started.ok) {
    lock.close();
    return fail(`ipvssync config file [${paths.fullSyncFile}] syntax ERROR`);
  }

  if (!opts.once) {
    const stop = new AbortController();
    const onStop = (sig: string) => (): void => {
      log.info(`ipvssync: received ${sig} - exiting`);
      stop.abort();
    };
    const onHup = (): void => {
      log.info('ipvssync: received SIGHUP - full reload');
      syncer.requestReload();
    };
    const onInt = onStop('SIGINT');
    const onTerm = onStop('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    try {
      await syncer.run(stop.signal);
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
    }
  }
  let code = 0;
  if (opts.list) {
    const l = await listing(backend);
    io.out(l.text);
    if (l.error !== undefined) {
      io.err(`${l.error}\n`);
      code = 1;
    }
  }
  // The sync daemons are left running: they are kernel threads and keep the peer in sync meanwhile.
  await syncer.close();
  lock.close();
  await backend.close();
  return code;
}
