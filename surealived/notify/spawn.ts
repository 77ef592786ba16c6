// Runs a notifier script without a shell or PATH search, output discarded, detached and never awaited
// by the caller; failures are warnings. Arguments go to execve as they are, so quotes are harmless (11.29).

import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import type { Logger } from '../../common/log.js';

export type NotifierExit =
  | { readonly kind: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'failed'; readonly error: string };

/** Starts `argv[0]` with `argv`; what callers (and tests) get back is a promise of how it ended. */
export type NotifierSpawner = (argv: readonly string[], log: Logger) => Promise<NotifierExit>;

/**
 * The script path is used as a file name relative to the working directory, like the original's
 * g_spawn_async without SEARCH_PATH; argv[0] stays as configured. The child is reaped by Node
 * (libuv's SIGCHLD handling) and unref'd so it never keeps the daemon alive. Never throws or rejects.
 */
export const spawnNotifier: NotifierSpawner = (argv, log) => {
  const [script, ...args] = argv;
  if (script === undefined || script === '') {
    log.warn("Can't exec notify line [empty command]");
    return Promise.resolve({ kind: 'failed', error: 'empty command' });
  }
  const line = argv.join(' ');
  return new Promise<NotifierExit>((done) => {
    try {
      const child = spawn(resolve(script), args, { argv0: script, stdio: 'ignore', detached: true, shell: false });
      child.once('error', (e) => {
        log.warn(`Can't exec notify line [${line}, err = ${e.message}]`);
        done({ kind: 'failed', error: e.message });
      });
      child.once('exit', (code, signal) => {
        log.debug(`notifier [${line}] exited [code = ${code}, signal = ${signal}]`);
        done({ kind: 'exited', code, signal });
      });
      child.unref();
    } catch (e) {
      // spawn() throws synchronously on arguments execve cannot take (e.g. a NUL byte in a name).
      log.warn(`Can't exec notify line [${line}, err = ${(e as Error).message}]`);
      done({ kind: 'failed', error: (e as Error).message });
    }
  });
};
