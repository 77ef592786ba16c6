#!/usr/bin/env node
// ssyncdctl: send one command to ssyncd over its control socket and print the reply. Exit status 0 done,
// 1 refused or failed, 2 usage error, 254 daemon not running (v1.0.0 exited 0 whatever the daemon said).

import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { sendCommand } from '../session-sync/control/client.js';
import { parseArgv, USAGE_TEXT } from '../session-sync/control/grammar.js';

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

export const EXIT = { done: 0, failed: 1, usage: 2, notRunning: 254 } as const;

/** The v1.0.0 text, printed on stdout as v1.0.0 did (scripts capture stdout). */
export const NOT_RUNNING_TEXT = 'ssyncd daemon not running';

const processIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
};

export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  const req = parseArgv(argv);
  if (req.kind === 'help') {
    io.stdout(USAGE_TEXT + '\n');
    return EXIT.done;
  }
  if (req.kind === 'usage') {
    io.stderr(`ssyncdctl: ${req.message}\nTry 'ssyncdctl help'.\n`);
    return EXIT.usage;
  }
  let r;
  try {
    r = await sendCommand(req.socket, req.command, req.options);
  } catch (e) {
    io.stderr(`ssyncdctl: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT.failed;
  }
  if ('notRunning' in r) {
    io.stdout(NOT_RUNNING_TEXT + '\n');
    return EXIT.notRunning;
  }
  // As v1.0.0: the reply, then a newline if anything arrived.
  if (r.text.length > 0) io.stdout(r.text + '\n');
  if (r.statusMissing) {
    io.stderr('ssyncdctl: the reply carried no status: command outcome unknown\n');
    return EXIT.failed;
  }
  return r.status;
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // `ssyncdctl show recent | head` must end quietly.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
  });
  // exitCode rather than exit(): stdout to a pipe is written asynchronously and must not be cut short.
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`ssyncdctl: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = EXIT.failed;
    },
  );
}
