#!/usr/bin/env -S node --max-semi-space-size=16
// surealived command line (spec 1.1, 1.2): options, config test (-t), foreground run and -d watchdog mode.
// The interpreter line fixes V8's semi-space at 16 MB (V8's default on a 64-bit host with a few GB, set
// here so that it holds on any host; the -d watchdog passes it on). A probe's objects live as long as
// the probe, up to its timeout: with a smaller young generation (4 MB was tried) thousands of them are
// promoted every second and the old generation fills with garbage between major GCs (RSS up to
// 212-236 MB over minutes with 10,000 reals, against <= 150 MB here, and a third of the GC time).

import { parseArgs } from 'node:util';
import { DEFAULT_MAIN_CONFIG_PATH, loadMainConfig, LOG_LEVELS, type MainConfig } from '../common/main-config.js';
import { createLogger, fileSink, stderrSink, type Logger } from '../common/log.js';
import { formatIssue, loadServiceConfig } from './config/xml.js';
import { TesterRegistry } from '../testers/registry.js';
import { ConfigRejected, Daemon } from './daemon.js';
import { runWatchdog, spawnDetachedWatchdog, WATCHDOG_PID_ENV, WATCHDOG_ROLE_ENV } from './watchdog.js';
import { VERSION } from '../common/version.js';

const BANNER = `=== SureAliveD v.1.0.6 === (surealived-ts ${VERSION})`;

const USAGE = `${BANNER}
Usage: surealived [options] <xml_config_file>
Ex   : surealived -c /root/sd_new.conf -vv -d test_http.xml

Options:
\t--help\t\t-h\t\tThis help info
\t--test-config\t-t\t\tTest configuration and exit
\t--config\t-c <path>\tUse <path> as config file
\t--verbose\t-v\t\tIncrease verbosity level
\t--daemonize\t-d\t\tRun in background (daemonize)
\t--no-sync\t-n\t\tDo not write sync info
\t--no-dumpfile\t-k\t\tDo not load and create offline.dump
\t--version\t-V\t\tShow Version information
`;

interface CliArgs {
  readonly help: boolean;
  readonly version: boolean;
  readonly test: boolean;
  readonly config: string;
  readonly verbose: number;
  readonly daemonize: boolean;
  readonly noSync: boolean;
  readonly noDump: boolean;
  readonly xml: string | undefined;
}

function parseCli(argv: string[]): CliArgs | string {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        help: { type: 'boolean', short: 'h' },
        'test-config': { type: 'boolean', short: 't' },
        config: { type: 'string', short: 'c' },
        verbose: { type: 'boolean', short: 'v', multiple: true },
        daemonize: { type: 'boolean', short: 'd' },
        'no-sync': { type: 'boolean', short: 'n' },
        'no-dumpfile': { type: 'boolean', short: 'k' },
        version: { type: 'boolean', short: 'V' },
      },
    });
    return {
      help: values.help ?? false,
      version: values.version ?? false,
      test: values['test-config'] ?? false,
      config: values.config ?? DEFAULT_MAIN_CONFIG_PATH,
      verbose: values.verbose?.length ?? 0,
      daemonize: values.daemonize ?? false,
      noSync: values['no-sync'] ?? false,
      noDump: values['no-dumpfile'] ?? false,
      xml: positionals[0],
    };
  } catch (e) {
    return (e as Error).message;
  }
}

/** -v counting as the original: -v error, -vv warn, -vvv info, -vvvv debug, -vvvvv (or more) dbdet. */
function effectiveLevel(main: MainConfig, verbose: number): MainConfig['logging'] {
  if (verbose === 0) return main.logging;
  return LOG_LEVELS[Math.min(verbose - 1, LOG_LEVELS.length - 1)]!;
}

async function testConfig(xml: string, main: MainConfig, log: Logger): Promise<number> {
  const res = await loadServiceConfig(xml, { registry: TesterRegistry.withBuiltins(), modulesPath: main.modulesPath });
  for (const i of res.issues) process.stderr.write(`${formatIssue(i)}\n`);
  const ok = res.config !== undefined && !res.issues.some((i) => i.severity === 'error');
  log.always('info', `XML configuration file [${xml}] ${ok ? 'OK' : 'ERROR'}`);
  return ok ? 0 : 1;
}

async function runForeground(args: CliArgs, xml: string, main: MainConfig, log: Logger): Promise<void> {
  log.always('info', `Starting surealived ${VERSION}`);
  log.always('info', `logging level: ${log.level}`);
  // Signal handlers first: start-up writes the hand-off before it returns, and a SIGHUP (a reload by
  // whoever saw that file) arriving before the handlers existed would kill the daemon. Signals during
  // start-up are acted on once it is done.
  let daemon: Daemon | undefined;
  let stopping = false;
  let reloadPending = false;
  const stop = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`surealived: received signal ${sig} - stopping...`);
    if (daemon) void daemon.stop().then(() => process.exit(0));
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGHUP', () => {
    log.info('surealived: received signal SIGHUP - reloading configuration');
    if (daemon) void daemon.reload();
    else reloadPending = true;
  });
  // A vanished peer must never kill the daemon (the original did not ignore SIGPIPE: bug 11.23).
  process.on('SIGPIPE', () => undefined);
  try {
    const watchdogPid = Number(process.env[WATCHDOG_PID_ENV] ?? -1);
    daemon = await Daemon.start({ xmlPath: xml, main, log, noSync: args.noSync, noOfflineDump: args.noDump || !main.useOfflineDump, watchdogPid });
  } catch (e) {
    if (e instanceof ConfigRejected) {
      for (const l of e.lines) log.error(l);
      log.error('Configuration file is broken!');
    } else log.error(`surealived: cannot start: ${(e as Error).message}`);
    process.exit(1);
  }
  if (stopping) void daemon.stop().then(() => process.exit(0));
  else if (reloadPending) void daemon.reload();
}

async function main(): Promise<void> {
  const args = parseCli(process.argv.slice(2));
  if (typeof args === 'string') {
    process.stderr.write(`surealived: ${args}\n${USAGE}`);
    process.exit(1);
  }
  if (args.version) {
    process.stderr.write(`${BANNER}\n`);
    process.exit(1);
  }
  if (args.help || args.xml === undefined) {
    process.stderr.write(USAGE);
    process.exit(1);
  }
  const { config: main, missing } = loadMainConfig(args.config);
  if (missing) process.stderr.write('No surealived.cfg, setting defaults\n');
  const level = effectiveLevel(main, args.verbose);
  const role = process.env[WATCHDOG_ROLE_ENV];
  const inBackground = role === 'child';
  const sink = inBackground ? (main.useLog && main.log !== 'stderr' ? fileSink(main.log) : () => undefined) : stderrSink;
  const log = createLogger(level, sink);

  if (args.test) {
    // Exit once the (possibly long) list of issues has left: writes to a pipe are asynchronous.
    const code = await testConfig(args.xml, main, log);
    process.stderr.write('', () => process.exit(code));
    return;
  }
  if (args.daemonize && role === undefined) {
    spawnDetachedWatchdog(process.argv.slice(1));
    process.exit(0);
  }
  if (role === 'watchdog') {
    runWatchdog({ argv: process.argv.slice(1), memlimitKb: main.memlimit, log: createLogger(level, main.useLog && main.log !== 'stderr' ? fileSink(main.log) : () => undefined) });
    return;
  }
  await runForeground(args, args.xml, main, log);
}

void main();
