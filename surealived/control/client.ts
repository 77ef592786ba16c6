// A minimal client of the control protocol, as `printf "cmd\n" | nc host port` would be: sends one
// command line and resolves with the reply (up to `_SD_CMD_END_`, or the single error line).

import { createConnection } from 'node:net';

export interface ControlEndpoint {
  readonly host?: string;
  readonly port?: number;
  /** Unix socket path (control_socket); wins over host/port. */
  readonly path?: string;
}

/** One command; the reply text including its final newline. Rejects on connection errors or after `timeoutMs`. */
export function controlCommand(to: ControlEndpoint, line: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = to.path ? createConnection({ path: to.path }) : createConnection({ host: to.host ?? '127.0.0.1', port: to.port ?? 1337 });
    // Chunks are joined once at the end: a `metrics` reply of a large director is megabytes.
    const chunks: Buffer[] = [];
    let total = 0;
    let tail = '';
    let firstLine: string | undefined;
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`control: no complete reply to "${line}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      c.end();
      resolve(Buffer.concat(chunks).toString());
    };
    c.on('data', (d: Buffer) => {
      chunks.push(d);
      total += d.length;
      tail = (tail + d.toString('latin1')).slice(-64);
      if (firstLine === undefined) {
        const head = Buffer.concat(chunks).toString('latin1');
        const nl = head.indexOf('\n');
        if (nl >= 0) firstLine = head.slice(0, nl + 1);
      }
      // Success replies end with the marker; an error reply is exactly one line without it.
      if (tail.endsWith('_SD_CMD_END_\n') || (firstLine !== undefined && firstLine.length === total && ERROR_LINE.test(firstLine))) done();
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.write(`${line}\n`);
  });
}

/** Replies that are one line without the end marker (spec 9.1-9.3 and our limits). */
const ERROR_LINE = /^(cmd_\w+: |Invalid request! |Gathering statistics is OFF|Line too long|Too many connections)/;
