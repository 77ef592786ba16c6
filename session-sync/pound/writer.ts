// `write http` for one farm: every session to the local Pound's sync socket as SESS_WRITE, and no
// SYNC_REQUEST, so Pound streams nothing back. Pound merges (same keys replaced, nothing flushed). The
// report is the real outcome: sessions Pound's format cannot carry, and a socket that could not be
// reached or broke off, are failures (v1.0.0 always said it had written everything).

import type { Socket } from 'node:net';
import type { HttpSession } from '../model.js';
import type { SinkReport } from '../source.js';
import { encodeFrame, frameProblem, type PoundFrame } from './codec.js';
import { connectUnix } from './source.js';
import { keyForLog, sessionProblem } from './view.js';

export interface PoundWriteOptions {
  readonly farm: string;
  readonly socketPath: string;
  readonly connectTimeoutMs?: number;
  /** How long to let Pound read to the end and close after our last byte (it reads until EOF). */
  readonly lingerMs?: number;
}

/** Frames go out in writes of about this size. */
const CHUNK_BYTES = 64 * 1024;

/** The SESS_WRITE frame of a session (last access in epoch seconds; 0 asks Pound for "now"). */
export function writeFrame(farm: string, s: HttpSession): PoundFrame {
  return {
    action: 'write',
    farm,
    listener: s.listener,
    service: s.service,
    backend: s.backend,
    key: s.key,
    content: s.content,
    lastAcc: Math.max(0, Math.floor(s.lastAccess / 1000)),
  };
}

type Failure = { what: string; why: string };

/** Encodes what can be sent, in chunks, and lists what cannot. */
function plan(farm: string, sessions: readonly HttpSession[]): { chunks: { bytes: Buffer; sessions: number }[]; failed: Failure[] } {
  const failed: Failure[] = [];
  const chunks: { bytes: Buffer; sessions: number }[] = [];
  let parts: Buffer[] = [];
  let size = 0;
  for (const s of sessions) {
    const f = writeFrame(farm, s);
    const why = sessionProblem(s.key, s.content) ?? frameProblem(f);
    if (why) {
      failed.push({ what: `session ${s.listener}/${s.service}/${keyForLog(s.key)}`, why: `not sent: ${why}` });
      continue;
    }
    const b = encodeFrame(f);
    parts.push(b);
    size += b.length;
    if (size >= CHUNK_BYTES) {
      chunks.push({ bytes: Buffer.concat(parts, size), sessions: parts.length });
      parts = [];
      size = 0;
    }
  }
  if (parts.length) chunks.push({ bytes: Buffer.concat(parts, size), sessions: parts.length });
  return { chunks, failed };
}

export async function writeToPound(opts: PoundWriteOptions, sessions: readonly HttpSession[]): Promise<SinkReport> {
  const { chunks, failed } = plan(opts.farm, sessions);
  const total = chunks.reduce((n, c) => n + c.sessions, 0);
  if (total === 0) return { written: 0, skipped: 0, failed };
  const where = `Pound socket ${opts.socketPath}`;
  let sock: Socket;
  try {
    sock = await connectUnix(opts.socketPath, opts.connectTimeoutMs ?? 2000);
  } catch (e) {
    failed.push({ what: where, why: `cannot connect: ${(e as Error).message}; ${total} sessions not written` });
    return { written: 0, skipped: 0, failed };
  }
  let written = 0;
  let broken: string | undefined;
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  sock.on('error', (e) => (broken ??= e.message));
  sock.on('data', () => undefined); // Pound sends nothing without SYNC_REQUEST; drop anything anyway
  for (const c of chunks) {
    if (broken !== undefined || sock.destroyed) break;
    const more = sock.write(c.bytes, (e) => {
      if (!e) written += c.sessions;
    });
    if (!more) await Promise.race([new Promise((r) => sock.once('drain', r)), closed]);
  }
  await Promise.race([new Promise<void>((r) => sock.end(() => r())), closed]);
  const linger = setTimeout(() => sock.destroy(), opts.lingerMs ?? 2000);
  await closed;
  clearTimeout(linger);
  if (broken !== undefined || written < total) {
    failed.push({ what: where, why: `connection failed (${broken ?? 'closed early'}) after ${written} of ${total} sessions were handed over` });
  }
  return { written, skipped: 0, failed };
}
