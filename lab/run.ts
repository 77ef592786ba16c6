// Command-line entry for the lab: `node dist/lab/run.js 'shell command'` boots the guest, runs it there,
// prints its output and exits with its code (for developers poking at IPVS by hand).
import { runInGuest } from './lab.js';

const command = process.argv.slice(2).join(' ');
if (!command) {
  process.stderr.write("usage: node dist/lab/run.js 'command run in the guest'\n");
  process.exit(2);
}
const r = await runInGuest(command);
process.stdout.write(r.output);
process.stderr.write(`lab: exit ${r.code}, userspace after ${r.bootMs} ms, share ${r.shareDir}${r.timedOut ? ', TIMED OUT' : ''}\n`);
if (r.code < 0) process.stderr.write(r.console);
process.exit(r.code < 0 ? 1 : r.code);
