// The client end of the control socket: connect, send one frame, read the reply until the daemon
// closes. As v1.0.0's ssyncdctl, but the request carries the extension asking for a status trailer,
// so the caller learns whether the command was done.

import { connect } from 'node:net';
import type { Command, RequestOptions } from './commands.js';
import { encodeCommandFrame, splitStatusTrailer, type ReplyStatus } from './frame.js';

export type SendResult =
  | {
      readonly text: string;
      /** From the trailer; 0 when no status was asked for (the original protocol has none). */
      readonly status: ReplyStatus;
      /** A status was asked for but the reply carried none: an old daemon, or it died mid-reply. status is 1. */
      readonly statusMissing?: true;
    }
  | { readonly notRunning: true };

export interface SendOptions extends RequestOptions {
  /** Give up (ControlClientError ETIMEDOUT) when the exchange takes longer; default none, as v1.0.0. */
  readonly timeoutMs?: number;
}

/** The exchange failed for another reason than "nobody listens" (permissions, timeout, reset). */
export class ControlClientError extends Error {
  override readonly name = 'ControlClientError';
  constructor(
    readonly path: string,
    readonly code: string,
    why: string,
  ) {
    super(`control socket ${path}: ${why}`);
  }
}

/** Send one command; `{ notRunning }` when no daemon listens on `path`. */
export async function sendCommand(path: string, cmd: Command, opts: SendOptions): Promise<SendResult> {
  const reply = await exchange(path, encodeCommandFrame(cmd, { json: opts.json, wantStatus: opts.wantStatus }), opts.timeoutMs);
  if ('notRunning' in reply) return reply;
  if (!opts.wantStatus) return { text: reply.toString('utf8'), status: 0 };
  const split = splitStatusTrailer(reply);
  if (split === undefined) return { text: reply.toString('utf8'), status: 1, statusMissing: true };
  return { text: split.text.toString('utf8'), status: split.status };
}

/**
 * Write `bytes`, then read until the daemon closes. ENOENT and ECONNREFUSED (no socket file, or a
 * stale one) mean "not running"; anything else is a ControlClientError.
 */
export function exchange(path: string, bytes: Buffer, timeoutMs?: number): Promise<Buffer | { readonly notRunning: true }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let connected = false;
    let settled = false;
    const sock = connect({ path });
    const finish = (r: Buffer | { readonly notRunning: true } | ControlClientError): void => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      sock.destroy();
      if (r instanceof ControlClientError) reject(r);
      else resolve(r);
    };
    const timer =
      timeoutMs !== undefined ? setTimeout(() => finish(new ControlClientError(path, 'ETIMEDOUT', `no complete reply within ${timeoutMs} ms`)), timeoutMs) : undefined;
    sock.on('connect', () => {
      connected = true;
      sock.write(bytes);
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => finish(Buffer.concat(chunks)));
    sock.on('close', () => finish(Buffer.concat(chunks)));
    sock.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? 'EUNKNOWN';
      if (!connected && (code === 'ENOENT' || code === 'ECONNREFUSED')) return finish({ notRunning: true });
      // The daemon may close while our frame is still being written (a refusal): keep what it said.
      if (connected && (code === 'EPIPE' || code === 'ECONNRESET') && chunks.length > 0) return finish(Buffer.concat(chunks));
      finish(new ControlClientError(path, code, connected ? e.message : `cannot connect: ${e.message}`));
    });
  });
}
