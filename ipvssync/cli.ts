#!/usr/bin/env node
// The `ipvssync` executable: runs the kernel synchroniser with the process's argv, stdio and env.

import { runIpvssync } from './main.js';

// `ipvssync --dry-run | head` must not die of EPIPE in the middle of a sync.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
});

runIpvssync(process.argv.slice(2), {
  out: (s) => process.stdout.write(s),
  err: (s) => process.stderr.write(s),
  env: process.env,
}).then(
  (code) => exitAfterFlush(code),
  (e: unknown) => {
    process.stderr.write(`ipvssync: fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    exitAfterFlush(1);
  },
);

/**
 * Exit once everything written to stdout/stderr has left: writes to a pipe are asynchronous, and a
 * bare process.exit() cut `ipvssync --list` of a large table short.
 */
function exitAfterFlush(code: number): void {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
