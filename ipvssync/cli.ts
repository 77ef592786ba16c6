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
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`ipvssync: fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
