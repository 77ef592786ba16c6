// ssyncd's shell: turns options and config into a running session-sync service with its control
// socket, answers signals, and reports readiness to a daemonizing parent. Everything else is the
// session-sync library's.

import { existsSync, readFileSync, writeSync, closeSync } from 'node:fs';
import { createLogger, fileSink, stderrSink, type Logger } from '../common/log.js';
import { kernelNftBackend, kernelRecentBackend } from '../session-sync/backends.js';
import { overridesBackend } from '../session-sync/overrides/backend.js';
import { poundBackend } from '../session-sync/pound/backend.js';
import { ControlServer, ControlServerError } from '../session-sync/control/server.js';
import { SyncService, type Role } from '../session-sync/service.js';
import { KeyFileError, readKeyFile } from '../session-sync/wire/auth.js';
import { DEFAULT_KEY_FILE, type SsyncdConfig } from './config.js';
import type { SsyncdOptions } from './options.js';

/** The fd a daemonizing parent reads our readiness (or our start-up error) from. */
export const READY_FD_ENV = 'SSYNCD_READY_FD';

export class StartError extends Error {
  override readonly name = 'StartError';
}

export interface RunningDaemon {
  readonly service: SyncService;
  readonly control: ControlServer;
  readonly log: Logger;
  /** Resolves with the exit code once the daemon has stopped (quit, SIGTERM, SIGINT). */
  readonly done: Promise<number>;
  stop(code?: number): Promise<void>;
}

function loadKey(explicit: string | undefined): { key: Buffer | undefined; path: string | undefined } {
  const path = explicit ?? (existsSync(DEFAULT_KEY_FILE) ? DEFAULT_KEY_FILE : undefined);
  if (!path) return { key: undefined, path: undefined };
  try {
    return { key: readKeyFile(path), path };
  } catch (e) {
    throw new StartError(e instanceof KeyFileError ? e.message : `key file ${path}: ${(e as Error).message}`);
  }
}

function readPem(what: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new StartError(`${what} ${path}: ${(e as Error).message}`);
  }
}

/** Starts everything; throws StartError with a clear reason when it cannot. */
export async function startDaemon(opts: SsyncdOptions, cfg: SsyncdConfig, daemonized = false): Promise<RunningDaemon> {
  const mode = opts.mode ?? cfg.mode;
  if (!mode) throw new StartError('no mode: give -M or -B (or mode in the config)');
  const host = opts.address ?? cfg.masterAddress;
  if (mode === 'backup' && !host) throw new StartError('Need to specify master ip with option -a');
  const port = opts.port ?? cfg.port;
  const logPath = cfg.log ?? (daemonized ? '/var/log/ssyncd.log' : undefined);
  const log = createLogger(cfg.logging, logPath ? fileSink(logPath) : stderrSink);
  const { key, path: keyPath } = loadKey(opts.keyFile ?? cfg.keyFile);
  const cert = readPem('tls_cert', cfg.tlsCert);
  const tlsKey = readPem('tls_key', cfg.tlsKey);
  const ca = readPem('tls_ca', cfg.tlsCa);
  const role: Role = mode === 'master' ? { mode, port } : { mode, host: host!, port };
  const socketPath = opts.socket ?? cfg.controlSocket;

  let service: SyncService | undefined;
  let control: ControlServer;
  try {
    control = await ControlServer.listen({
      path: socketPath,
      handler: (cmd, ro) => (service ? service.handle(cmd, ro) : Promise.resolve({ text: 'starting', status: 1 })),
      log: (level, msg) => log[level](msg), // the server's lines already say `control:`
    });
  } catch (e) {
    if (e instanceof ControlServerError && e.code === 'IN_USE') throw new StartError(`another ssyncd is running: ${e.message}`);
    throw new StartError((e as Error).message);
  }

  try {
    const recent = await kernelRecentBackend({ procDir: cfg.recentProcDir, log: (m) => log.info(m) });
    service = await SyncService.start(role, {
      node: cfg.nodeName,
      key,
      bind: opts.bind ?? cfg.bind,
      tlsServer: cert && tlsKey ? { cert, key: tlsKey, ...(ca ? { ca, requestCert: true, rejectUnauthorized: true } : {}) } : undefined,
      tlsClient: ca || cert ? { ...(ca ? { ca } : {}), ...(cert && tlsKey ? { cert, key: tlsKey } : {}), checkServerIdentity: () => undefined } : undefined,
      pollIntervalMs: cfg.pollIntervalMs,
      pollCpuBudget: cfg.pollCpuBudget / 100,
      timers: { heartbeatMs: cfg.heartbeatMs, deadMs: cfg.deadTimeMs },
      limits: { maxPending: cfg.maxPending, window: 64, batch: 2000 },
      journalPath: cfg.journal,
      reconnect: { minMs: cfg.reconnectMinMs, maxMs: cfg.reconnectMaxMs },
      recent,
      nft: kernelNftBackend({ toleranceMs: cfg.nftToleranceMs }),
      http: poundBackend({ socketDir: cfg.poundSocketDir, log: (level, msg) => log[level](msg) }),
      overrides: overridesBackend({ overrideDump: cfg.surealivedOverrideDump, control: cfg.surealivedControl, log: (level, msg) => log[level](msg) }),
      overridesContinuous: cfg.overridesApply === 'continuous',
      tablesContinuous: cfg.tablesApply === 'continuous',
      log,
      autoStart: { recent: cfg.syncRecent, nft: cfg.syncNft, http: cfg.syncHttp, overrides: cfg.syncOverrides },
    });
  } catch (e) {
    await control.close();
    throw new StartError((e as Error).message);
  }
  log.info(`ssyncd ${mode} started (node ${cfg.nodeName}, control ${socketPath}${keyPath ? `, key ${keyPath}` : ''}${cert ? ', TLS' : ''})`);

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  let stopping = false;
  const stop = async (code = 0): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info('ssyncd stopping');
    await control.close();
    await service!.close();
    resolveDone(code);
  };
  service.onQuit = () => void stop(0);
  return { service, control, log, done, stop };
}

/** Tells a daemonizing parent we are up (or why not), through the fd it gave us. */
export function reportReady(error?: string): void {
  const fd = Number(process.env[READY_FD_ENV]);
  if (!Number.isInteger(fd) || fd < 3) return;
  try {
    writeSync(fd, error === undefined ? 'ready\n' : `error: ${error}\n`);
    closeSync(fd);
  } catch {
    /* the parent is gone: nothing to tell */
  }
  delete process.env[READY_FD_ENV];
}
