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
    let buf = '';
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`control: no complete reply to "${line}" within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      c.end();
      resolve(buf);
    };
    c.on('data', (d) => {
      buf += d.toString();
      // Success replies end with the marker; an error reply is exactly one line without it.
      if (buf.endsWith('_SD_CMD_END_\n') || (buf.indexOf('\n') === buf.length - 1 && ERROR_LINE.test(buf))) done();
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
