// Shared plumbing of the TCP testers (tcp, http): connect under the probe deadline, optional TLS,
// failure classification for statistics, and closing every probe connection with a reset.

import net from 'node:net';
import type tlsModule from 'node:tls';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Duplex } from 'node:stream';
import {
  AttrError,
  type AttrSpec,
  type AttrValues,
  type CommTag,
  type GenericSettings,
  type LocalErrno,
  type ProbeContext,
  type ProbeProblem,
  type ProbeResult,
  type ProbeTarget,
} from './contract.js';
import { localErrno, localResult } from './local-error.js';

// node:tls is loaded when a tester is configured with SSL="1", not when the daemon starts.
const require = createRequire(import.meta.url);
let tlsModuleCache: typeof tlsModule | undefined;
function tls(): typeof tlsModule {
  return (tlsModuleCache ??= require('node:tls') as typeof tlsModule);
}

/** A connection error later than this after the probe start is an "ARP problem", earlier an "RST problem". */
export const ARP_THRESHOLD_MS = 1000;

/** TLS attributes shared by every tester that honours SSL="1". */
export const TLS_ATTRS: readonly AttrSpec[] = [
  {
    name: 'verify',
    type: 'bool',
    default: false,
    doc: 'With SSL="1": verify the server certificate (chain, and name for http). Default off: like SureAliveD, any certificate is accepted.',
  },
  {
    name: 'cafile',
    type: 'string',
    maxLength: 4095,
    doc: 'With SSL="1": PEM file of the CA certificates to verify against (instead of the system roots); implies verify="1".',
  },
];

/** TLS settings of one probe kind, compiled once (the secure context is the costly part). */
export interface TlsParams {
  readonly context: tlsModule.SecureContext;
  readonly verify: boolean;
  /** SNI server name; absent when the name is an IP literal or there is no name. */
  readonly servername?: string;
  /** What the certificate must be issued for when verifying; absent = the chain only. */
  readonly identity?: string;
}

/** Strips a port and IPv6 brackets from a Host header value: "[::1]:8443" -> "::1". */
export function hostName(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(1, end) : host;
  }
  const colon = host.indexOf(':');
  return colon >= 0 && host.indexOf(':', colon + 1) < 0 ? host.slice(0, colon) : host;
}

/**
 * TLS parameters from SSL="1", `verify` and `cafile`; undefined without SSL. `name` (the http host)
 * gives SNI (not for IP literals) and the identity checked when verifying.
 */
export function compileTls(values: AttrValues, generic: GenericSettings, name?: string): TlsParams | undefined {
  if (!generic.ssl) return undefined;
  const cafile = typeof values.cafile === 'string' && values.cafile !== '' ? values.cafile : undefined;
  const verify = values.verify === true || cafile !== undefined;
  let ca: Buffer | undefined;
  if (cafile !== undefined) {
    try {
      ca = readFileSync(cafile);
    } catch (err) {
      throw new AttrError('cafile', `cannot read CA file ${cafile}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  let context: tlsModule.SecureContext;
  try {
    context = tls().createSecureContext(ca === undefined ? {} : { ca });
  } catch (err) {
    throw new AttrError('cafile', `unusable CA file ${cafile ?? ''}: ${(err as Error).message}`);
  }
  const bare = name === undefined || name === '' ? undefined : hostName(name);
  return {
    context,
    verify,
    ...(bare !== undefined && net.isIP(bare) === 0 ? { servername: bare } : {}),
    ...(bare !== undefined ? { identity: bare } : {}),
  };
}

/** A few words for a socket or TLS error. */
export function describeError(err: Error): string {
  return describeCode((err as NodeJS.ErrnoException).code, err.message);
}

/** A few words for an errno name ("ECONNREFUSED"); `message` is the fallback for the rest. */
export function describeCode(code: string | undefined, message: string): string {
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EPIPE':
      return 'connection closed by peer';
    default:
      return code !== undefined && !message.includes(code) ? `${code}: ${message}` : message;
  }
}

/** The deadline passed before the connection (and TLS handshake) completed. */
export function noConnectionDetail(timeoutMs: number): string {
  return `no connection within ${timeoutMs} ms`;
}

/** Statistics marker for an error before the connection (and TLS handshake) completed. */
export function earlyProblem(elapsedMs: number): ProbeProblem {
  return elapsedMs < ARP_THRESHOLD_MS ? 'rst' : 'arp';
}

/**
 * Byte pipe between a TLS socket and the raw TCP socket under it. Node cannot reset a TLSSocket
 * (resetAndDestroy throws on its handle) and destroying a TLSSocket that natively wraps a socket
 * that was just reset can crash the process (use after free in TLSWrap, seen on Node 20). Running
 * TLS over this JS stream keeps the two handles apart: any teardown ends in raw.resetAndDestroy().
 */
export class ResetOnDestroyStream extends Duplex {
  constructor(private readonly raw: net.Socket) {
    super({ allowHalfOpen: false });
    raw.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) raw.pause();
    });
    raw.on('end', () => this.push(null));
    raw.on('close', () => this.destroy());
  }

  override _read(): void {
    this.raw.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.raw.write(chunk, cb);
  }

  // A TLS close would half-close the TCP connection (FIN); probes never do that, they reset.
  override _final(cb: (err?: Error | null) => void): void {
    cb();
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    resetSocket(this.raw);
    cb(err);
  }
}

/** Abortive close (RST, the original's SO_LINGER {1,0}): no TIME_WAIT on either side. */
export function resetSocket(raw: net.Socket): void {
  if (raw.destroyed) return;
  if (raw.connecting) return resetConnecting(raw);
  if (!canReset(raw)) raw.destroy();
  else raw.resetAndDestroy();
}

/**
 * A socket still connecting as far as this event loop knows: on a busy loop the kernel may have
 * completed the connection long ago (a deadline handled before the connect event), and a plain
 * close would then send a FIN and leave a TIME_WAIT here. resetAndDestroy() would wait for the
 * connect event, for ever against a real that drops SYNs. So the handle is reset at once (SO_LINGER
 * {1,0}, as resetAndDestroy does it: an RST if the connection is up, nothing on the wire if the SYN
 * is still unanswered). Before connect() ran there is no descriptor and nothing to close abortively.
 */
function resetConnecting(raw: net.Socket): void {
  // Node's own reset path (net.Socket#_reset, behind resetAndDestroy); a plain destroy if it is gone.
  const internal = raw as unknown as { _reset?: () => void; _handle?: { fd?: number } | null };
  if (typeof internal._reset === 'function' && (internal._handle?.fd ?? -1) >= 0) internal._reset();
  else raw.destroy();
}

/**
 * Whether resetAndDestroy() can work on `raw` (connected). Once the peer's FIN has arrived, Node
 * ends our side too (allowHalfOpen off): libuv then refuses the reset (EINVAL) and Node (20) leaves
 * the handle open for good: one descriptor leaked per probe, and a process that spins at exit. The
 * peer closed first, so a plain close leaves no TIME_WAIT on our side either.
 */
function canReset(raw: net.Socket): boolean {
  return !raw.connecting && !raw.writableEnded;
}

/** Records the bytes a socket writes and reads (debugcomm); costs nothing when off. */
function tapComm(socket: net.Socket, comm: (tag: CommTag, data: Buffer) => void): void {
  const write = socket.write;
  socket.write = function (this: net.Socket, chunk: unknown, ...rest: unknown[]): boolean {
    if (typeof chunk === 'string') {
      const enc = typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8';
      comm('write', Buffer.from(chunk, enc));
    } else if (chunk instanceof Uint8Array) {
      comm('write', Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    }
    return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof socket.write;
  const push = socket.push;
  socket.push = function (this: net.Socket, chunk: unknown, enc?: BufferEncoding): boolean {
    if (chunk === null) comm('eof', Buffer.alloc(0));
    else if (chunk instanceof Uint8Array) comm('read', Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    return push.call(this, chunk, enc);
  };
}

/** What a tester plugs into a ProbeConnection. */
export interface ConnectionHooks {
  /** The connection (and TLS handshake) completed: run the protocol, then call finish(). */
  onConnected(conn: ProbeConnection): void;
  /** The deadline passed after the connection completed: a few words on what was missing. */
  deadlineDetail(conn: ProbeConnection): string;
  /** A few words for a socket error after the connection completed (default: describeError). */
  errorDetail?(err: Error): string;
}

/** A probe in flight that must end when its deadline passes. */
export interface DeadlineBound {
  deadline(): void;
}

/**
 * Probes in flight per abort signal. The engine gives the probes of one deadline one signal, so
 * one listener per signal (not one per probe: EventTarget listeners cost far more than a Set entry).
 */
const inFlight = new WeakMap<AbortSignal, Set<DeadlineBound>>();

export function watchDeadline(signal: AbortSignal, probe: DeadlineBound): void {
  let set = inFlight.get(signal);
  if (set === undefined) {
    const probes = new Set<DeadlineBound>();
    inFlight.set(signal, probes);
    signal.addEventListener(
      'abort',
      () => {
        inFlight.delete(signal);
        for (const p of probes) p.deadline();
        probes.clear();
      },
      { once: true },
    );
    set = probes;
  }
  set.add(probe);
}

/** The probe ended before its deadline. */
export function unwatchDeadline(signal: AbortSignal, probe: DeadlineBound): void {
  inFlight.get(signal)?.delete(probe);
}

/**
 * One probe's TCP connection from start to verdict: it connects (+TLS), classifies early failures,
 * enforces ctx.signal, and on every outcome resets the socket and resolves exactly once.
 */
export class ProbeConnection implements DeadlineBound {
  readonly started = performance.now();
  readonly raw: net.Socket;
  /** The socket carrying the protocol bytes: the TLS socket with SSL, else `raw`. */
  socket: net.Socket;
  connectMs: number | undefined = undefined;
  settled = false;

  constructor(
    target: ProbeTarget,
    tlsParams: TlsParams | undefined,
    readonly ctx: ProbeContext,
    private readonly resolve: (result: ProbeResult) => void,
    private readonly hooks: ConnectionHooks,
  ) {
    this.raw = net.connect({ host: target.addr, port: target.port, family: target.family });
    this.socket = this.raw;
    this.raw.on('error', (err: Error) => this.socketError(err));
    if (tlsParams === undefined) this.raw.once('connect', () => this.connected());
    else this.raw.once('connect', () => this.startTls(tlsParams));
    if (ctx.signal.aborted) queueMicrotask(() => this.deadline());
    else watchDeadline(ctx.signal, this);
  }

  /**
   * Ends the probe: reset the connection, report. Later calls are ignored. `closeSoon` defers the
   * reset to the end of the current callback, so a parser deciding mid-chunk finishes that chunk
   * first (for undici a response already complete is then closed as idle, which is far cheaper
   * than failing an in-flight request).
   */
  finish(ok: boolean, detail: string, problem?: ProbeProblem, closeSoon = false): void {
    if (this.settled) return;
    this.settled = true;
    unwatchDeadline(this.ctx.signal, this);
    const bytesSent = this.raw.bytesWritten;
    const bytesReceived = this.raw.bytesRead;
    if (closeSoon) queueMicrotask(() => this.close());
    else this.close();
    this.resolve(
      problem !== undefined
        ? { ok, detail, problem, bytesSent, bytesReceived }
        : this.connectMs !== undefined
          ? { ok, detail, connectMs: this.connectMs, bytesSent, bytesReceived }
          : { ok, detail, bytesSent, bytesReceived },
    );
  }

  /** The probe could not run (EMFILE on connect, ...): no verdict, the engine retries at the next slot. */
  private finishLocal(errno: LocalErrno): void {
    if (this.settled) return;
    this.settled = true;
    unwatchDeadline(this.ctx.signal, this);
    this.close();
    this.resolve(localResult(errno, this.connectMs === undefined ? 'cannot open a probe socket' : 'probe connection failed'));
  }

  private close(): void {
    resetSocket(this.raw);
    if (this.socket !== this.raw) this.socket.destroy();
  }

  /**
   * Makes any destroy() of the plain socket a reset, so a library that closes the connection
   * itself (undici on a protocol error) cannot leave a FIN close and a TIME_WAIT behind. An error
   * passed to destroy() is reported as the probe's verdict first.
   */
  resetOnAnyDestroy(): void {
    const raw = this.raw;
    const destroy = raw.destroy;
    let resetting = false;
    raw.destroy = (err?: Error): net.Socket => {
      if (err != null && !this.settled) this.socketError(err);
      if (!resetting && !raw.destroyed && canReset(raw)) {
        resetting = true;
        return raw.resetAndDestroy();
      }
      return destroy.call(raw, err);
    };
  }

  private connected(): void {
    if (this.settled) return;
    this.connectMs = performance.now() - this.started;
    if (this.ctx.comm !== undefined) tapComm(this.socket, this.ctx.comm);
    this.hooks.onConnected(this);
  }

  private startTls(p: TlsParams): void {
    if (this.settled) return;
    const secure = tls().connect({
      socket: new ResetOnDestroyStream(this.raw),
      secureContext: p.context,
      rejectUnauthorized: p.verify,
      ...(p.servername !== undefined ? { servername: p.servername } : {}),
      checkServerIdentity: (_host, cert) =>
        p.identity !== undefined ? tls().checkServerIdentity(p.identity, cert) : undefined,
    });
    this.socket = secure;
    secure.on('error', (err: Error) => this.socketError(err));
    secure.once('close', () => {
      if (this.connectMs === undefined) this.socketError(new Error('connection closed during TLS handshake'));
    });
    secure.once('secureConnect', () => this.connected());
  }

  socketError(err: Error): void {
    if (this.settled) return;
    const local = localErrno((err as NodeJS.ErrnoException).code, 'socket');
    if (local !== undefined) return this.finishLocal(local);
    if (this.connectMs === undefined) {
      const what = this.socket !== this.raw ? `TLS handshake failed: ${describeError(err)}` : describeError(err);
      this.finish(false, what, earlyProblem(performance.now() - this.started));
    } else {
      this.finish(false, this.hooks.errorDetail?.(err) ?? describeError(err));
    }
  }

  /** The probe deadline passed (ctx.signal aborted). */
  deadline(): void {
    if (this.settled) return;
    const ms = this.ctx.timeoutMs;
    if (this.connectMs !== undefined) this.finish(false, this.hooks.deadlineDetail(this));
    else if (this.raw.connecting || this.socket === this.raw) this.finish(false, noConnectionDetail(ms), 'conn');
    else this.finish(false, `TLS handshake not complete within ${ms} ms`, 'conn');
  }
}

/** Runs one connection-based probe; hooks decide what happens once connected. */
export function probeConnection(
  target: ProbeTarget,
  tlsParams: TlsParams | undefined,
  ctx: ProbeContext,
  hooks: ConnectionHooks,
): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => {
    try {
      new ProbeConnection(target, tlsParams, ctx, resolve, hooks);
    } catch (err) {
      // net.connect throws synchronously only on unusable arguments (e.g. a bad port).
      resolve({ ok: false, detail: `cannot connect: ${(err as Error).message}` });
    }
  });
}
