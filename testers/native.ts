// Native probe connections (testers/native/prober.c, built by `npm install`) for the plain tcp and
// http testers: the syscalls of a probe run in C on Node's own event loop, without a net.Socket, a
// stream or an HTTP client per probe. Deadlines, verdicts and statistics stay here, with the same
// details as the net.Socket path, which remains for TLS, for zone-scoped IPv6, and when the module
// is missing or SUREALIVED_PROBES=js.

import { createRequire } from 'node:module';
import { constants } from 'node:os';
import type { ProbeContext, ProbeProblem, ProbeResult, ProbeTarget } from './contract.js';
import { localErrno, localResult } from './local-error.js';
import { describeCode, earlyProblem, noConnectionDetail, unwatchDeadline, watchDeadline, type DeadlineBound } from './socket.js';

/** A request compiled into the native module (opaque). */
export interface NativeRequest {
  readonly nativeRequest: unique symbol;
}

interface Binding {
  init(onResults: (count: number, data: (Buffer | undefined)[] | undefined) => void): Int32Array;
  defineRequest(request: Buffer | null, needle: Buffer | null, flags: number, ranges: number[]): NativeRequest;
  start(family: number, addr: string, port: number, request: NativeRequest | null, flags: number): number;
  abort(slot: number): [connectUs: number, sent: number, received: number, status: number, bodyBytes: number] | null;
}

// Result record fields and codes: the layout of prober.c.
const R_SLOT = 0;
const R_KIND = 1;
const R_ERRNO = 2;
const R_CONNECT_US = 3;
const R_ELAPSED_MS = 4;
const R_SENT = 5;
const R_RECEIVED = 6;
const R_STATUS = 7;
const R_FLAGS = 8;
const R_BODY = 9;
const R_FIELDS = 10;

const K_CONNECTED = 1;
const K_CONNECT_ERROR = 2;
const K_IO_ERROR = 3;
const K_HTTP_DONE = 4;
const K_HTTP_CLOSED_EARLY = 5;
const K_HTTP_MALFORMED = 6;

const F_BODY_FOUND = 1;
const F_EOF = 4;

/** defineRequest flags. */
export const REQUEST_NAIVE = 1;
const START_WANT_DATA = 1;

/** How an HTTP exchange ended, for the tester to judge. */
export interface HttpOutcome {
  /** 'done': status parsed (and the response read as far as needed); the others are failures. */
  readonly end: 'done' | 'closed-early' | 'malformed';
  readonly status: number;
  readonly bodyFound: boolean;
  readonly bodyBytes: number;
}

/** What a tester supplies to judge a native probe once it is connected. */
export interface NativeJudge {
  /** The request bytes (for debugcomm); undefined for connect-only probes. */
  readonly request?: Buffer;
  readonly compiled: NativeRequest | null;
  /** Verdict on a completed exchange (connect-only probes: outcome undefined). */
  verdict(outcome: HttpOutcome | undefined): { ok: boolean; detail: string };
  /** The deadline passed after the connection completed. */
  deadlineDetail(status: number, bodyBytes: number, timeoutMs: number): string;
}

const require = createRequire(import.meta.url);
const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, no]) => [no, name]));

let binding: Binding | null | undefined;
let results: Int32Array;
const probes: (NativeProbe | undefined)[] = [];

function load(): Binding | null {
  if (binding !== undefined) return binding;
  try {
    const b = require('../../build/Release/prober.node') as Binding;
    results = b.init(onResults);
    binding = b;
  } catch {
    binding = null;
  }
  return binding;
}

/**
 * The native prober, or undefined when the plain path is to be used: SUREALIVED_PROBES=js, or the
 * module was not built (`npm install` builds it; it needs a C compiler).
 */
export function nativeProber(): { define(request: Buffer | null, needle: Buffer | null, flags: number, ranges: number[]): NativeRequest } | undefined {
  if (process.env['SUREALIVED_PROBES'] === 'js') return undefined;
  const b = load();
  return b === null ? undefined : { define: (request, needle, flags, ranges) => b.defineRequest(request, needle, flags, ranges) };
}

/** Whether the native module is built and loadable (independent of SUREALIVED_PROBES). */
export function nativeBuilt(): boolean {
  return load() !== null;
}

/** Targets the native path cannot reach: a zone-scoped IPv6 address ("fe80::1%eth0"). */
export function nativeCanReach(target: ProbeTarget): boolean {
  return !target.addr.includes('%');
}

function onResults(count: number, data: (Buffer | undefined)[] | undefined): void {
  for (let i = 0; i < count; i++) {
    const base = i * R_FIELDS;
    const probe = probes[results[base + R_SLOT]!];
    if (probe === undefined) continue;
    probes[results[base + R_SLOT]!] = undefined;
    probe.complete(base, data?.[i]);
  }
}

class NativeProbe implements DeadlineBound {
  slot = -1;

  constructor(
    private readonly judge: NativeJudge,
    private readonly ctx: ProbeContext,
    private readonly done: (r: ProbeResult) => void,
  ) {}

  complete(base: number, data: Buffer | undefined): void {
    unwatchDeadline(this.ctx.signal, this);
    const kind = results[base + R_KIND]!;
    const connectUs = results[base + R_CONNECT_US]!;
    const bytesSent = results[base + R_SENT]!;
    const bytesReceived = results[base + R_RECEIVED]!;
    if (this.ctx.comm !== undefined) this.record(bytesSent, data, (results[base + R_FLAGS]! & F_EOF) !== 0);
    if (kind === K_CONNECT_ERROR || kind === K_IO_ERROR) {
      const local = localErrno(errnoNames.get(results[base + R_ERRNO]!), 'socket');
      if (local !== undefined) return this.done(localResult(local, 'probe could not run'));
    }
    if (kind === K_CONNECT_ERROR) {
      const problem: ProbeProblem = earlyProblem(results[base + R_ELAPSED_MS]!);
      return this.done({ ok: false, detail: describeErrno(results[base + R_ERRNO]!), problem, bytesSent, bytesReceived });
    }
    const connectMs = connectUs / 1000;
    if (kind === K_IO_ERROR) {
      return this.done({ ok: false, detail: describeErrno(results[base + R_ERRNO]!), connectMs, bytesSent, bytesReceived });
    }
    const outcome: HttpOutcome | undefined =
      kind === K_CONNECTED
        ? undefined
        : {
            end: kind === K_HTTP_DONE ? 'done' : kind === K_HTTP_CLOSED_EARLY ? 'closed-early' : 'malformed',
            status: results[base + R_STATUS]!,
            bodyFound: (results[base + R_FLAGS]! & F_BODY_FOUND) !== 0,
            bodyBytes: results[base + R_BODY]!,
          };
    const { ok, detail } = this.judge.verdict(outcome);
    this.done({ ok, detail, connectMs, bytesSent, bytesReceived });
  }

  deadline(): void {
    const progress = binding?.abort(this.slot);
    probes[this.slot] = undefined;
    if (progress === null || progress === undefined) return;
    const [connectUs, bytesSent, bytesReceived, status, bodyBytes] = progress;
    if (this.ctx.comm !== undefined && bytesSent > 0) this.record(bytesSent, undefined, false);
    if (connectUs < 0) this.done({ ok: false, detail: noConnectionDetail(this.ctx.timeoutMs), problem: 'conn', bytesSent, bytesReceived });
    else this.done({ ok: false, detail: this.judge.deadlineDetail(status, bodyBytes, this.ctx.timeoutMs), connectMs: connectUs / 1000, bytesSent, bytesReceived });
  }

  private record(bytesSent: number, data: Buffer | undefined, eof: boolean): void {
    const comm = this.ctx.comm!;
    const request = this.judge.request;
    if (request !== undefined && bytesSent > 0) comm('write', request.subarray(0, bytesSent));
    if (data !== undefined) comm('read', data);
    if (eof) comm('eof', Buffer.alloc(0));
  }
}

function describeErrno(errno: number): string {
  const code = errnoNames.get(errno);
  return describeCode(code, code ?? `error ${errno}`);
}

/**
 * Runs one probe on the native path (nativeProber() must have returned the module) and passes its
 * result to `done` exactly once: synchronously when it cannot start, else from the prober's batch of
 * results or from the deadline. No Promise per probe (see Tester.start).
 */
export function startNative(target: ProbeTarget, judge: NativeJudge, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
  if (ctx.signal.aborted) return done({ ok: false, detail: noConnectionDetail(ctx.timeoutMs), problem: 'conn' });
  const slot = binding!.start(target.family, target.addr, target.port, judge.compiled, ctx.comm !== undefined ? START_WANT_DATA : 0);
  if (slot < 0) {
    // Refused at once (or unusable arguments): nothing was opened.
    const code = errnoNames.get(-slot);
    // socket() failing (EMFILE), or the prober's slot table full (ENOMEM): nothing reached the real.
    const local = localErrno(code, 'socket');
    if (local !== undefined) return done(localResult(local, 'cannot open a probe socket'));
    if (code === 'EINVAL') return done({ ok: false, detail: `cannot connect: invalid address ${target.addr} port ${target.port}` });
    return done({ ok: false, detail: describeErrno(-slot), problem: 'rst' });
  }
  const probe = new NativeProbe(judge, ctx, done);
  probe.slot = slot;
  probes[slot] = probe;
  watchDeadline(ctx.signal, probe);
}

/** startNative as a promise (Tester.probe). */
export function probeNative(target: ProbeTarget, judge: NativeJudge, ctx: ProbeContext): Promise<ProbeResult> {
  return new Promise<ProbeResult>((resolve) => startNative(target, judge, ctx, resolve));
}
