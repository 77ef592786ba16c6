// Benchmark real servers: one process listening on one port of many loopback addresses (one listener
// per real, so a real can be made to refuse connections). Answers any request with a fixed HTTP 200.
// Driven over IPC: {fail: string[]} closes those listeners; replies {failed: n}.

import { createServer, type Server } from 'node:net';
import { realAddr } from './addresses.js';

const port = Number(process.argv[2]);
const addrs = Array.from({ length: Number(process.argv[3]) }, (_, i) => realAddr(i));
const response = Buffer.from('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nok\n');
const servers = new Map<string, Server>();
let connections = 0;

function onConnection(c: import('node:net').Socket): void {
  connections++;
  c.on('error', () => undefined);
  c.once('data', () => c.end(response));
}

async function main(): Promise<void> {
  await Promise.all(
    addrs.map(
      (a) =>
        new Promise<void>((resolve, reject) => {
          const s = createServer(onConnection);
          s.once('error', reject);
          s.listen({ port, host: a, backlog: 512 }, () => resolve());
          servers.set(a, s);
        }),
    ),
  );
  process.send?.({ ready: servers.size });
  process.on('message', (m: { fail?: string[]; count?: boolean }) => {
    if (m.fail) {
      for (const a of m.fail) servers.get(a)?.close();
      process.send?.({ failed: m.fail.length });
    }
    if (m.count) process.send?.({ connections });
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`bench server: ${String(e)}\n`);
  process.exit(1);
});
