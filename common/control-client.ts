// A minimal client of surealived's control protocol, as `printf "cmd\n" | nc host port` would be:
// one command line and its reply (up to `_SD_CMD_END_`, or the single error line), or several lines
// pipelined on one connection with their replies in order.

import { createConnection, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';

export interface ControlEndpoint {
  readonly host?: string;
  readonly port?: number;
  /** Unix socket path (control_socket); wins over host/port. */
  readonly path?: string;
}

const END_LINE = '_SD_CMD_END_\n';

function connect(to: ControlEndpoint): Socket {
  return to.path ? createConnection({ path: to.path }) : createConnection({ host: to.host ?? '127.0.0.1', port: to.port ?? 1337 });
}

/** One command; the reply text including its final newline. Rejects on connection errors or after `timeoutMs`. */
export function controlCommand(to: ControlEndpoint, line: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(to);
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
      if (tail.endsWith(END_LINE) || (firstLine !== undefined && firstLine.length === total && ERROR_LINE.test(firstLine))) done();
    });
    c.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    c.write(`${line}\n`);
  });
}

/**
 * Several commands on one connection, sent at once and half-closed (the server answers every
 * complete line in order, then closes): the replies in order, each with its final newline. Rejects
 * on connection errors, when the server closes early, or after `timeoutMs` for the whole batch.
 */
export function controlCommands(to: ControlEndpoint, lines: readonly string[], timeoutMs = 10_000): Promise<string[]> {
  const bad = lines.find((l) => /[\r\n\0]/.test(l));
  if (bad !== undefined) return Promise.reject(new Error(`control: a command line may not hold CR, LF or NUL: ${JSON.stringify(bad)}`));
  if (lines.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const c = connect(to);
    const decoder = new StringDecoder('utf8');
    const replies: string[] = [];
    let pending = '';
    let reply = '';
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        c.destroy();
        reject(error);
      } else {
        c.end();
        resolve(replies);
      }
    };
    const timer = setTimeout(() => finish(new Error(`control: ${replies.length} of ${lines.length} replies within ${timeoutMs} ms`)), timeoutMs);
    c.on('data', (d: Buffer) => {
      pending += decoder.write(d);
      let from = 0;
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n', from)) {
        const ln = pending.slice(from, nl + 1);
        from = nl + 1;
        // An error reply is one line without the marker, and only ever the first line of a reply.
        if (reply === '' && ERROR_LINE.test(ln)) replies.push(ln);
        else {
          reply += ln;
          if (ln === END_LINE) {
            replies.push(reply);
            reply = '';
          }
        }
      }
      pending = pending.slice(from);
      if (replies.length >= lines.length) finish();
    });
    c.on('error', (e) => finish(e));
    c.on('close', () => finish(new Error(`control: the connection closed after ${replies.length} of ${lines.length} replies`)));
    c.end(lines.map((l) => `${l}\n`).join(''));
  });
}

/** Replies that are one line without the end marker (spec 9.1-9.3 and our limits). */
const ERROR_LINE = /^(cmd_\w+: |Invalid request! |Gathering statistics is OFF|Line too long|Too many connections)/;
