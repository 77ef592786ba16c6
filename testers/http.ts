// The http tester [spec 6.1]: GET <url> with Host: <host> over our own probe connection (optional
// TLS), parsed by undici; the status must match `retcode`, and optionally the body must contain `body`.

import { createRequire } from 'node:module';
import type { Client, Dispatcher, buildConnector } from 'undici';
import type { Duplex } from 'node:stream';
import {
  AttrError,
  type AttrValues,
  type GenericSettings,
  type ProbeContext,
  type ProbeResult,
  type ProbeTarget,
  type Tester,
} from './contract.js';
import { compileTls, describeError, probeConnection, TLS_ATTRS, type ConnectionHooks, type ProbeConnection, type TlsParams } from './socket.js';
import { localErrno } from './local-error.js';
import { nativeCanReach, nativeProber, probeNative, REQUEST_NAIVE, startNative, type HttpOutcome, type NativeJudge } from './native.js';

/** How much of the body is read (and searched for `body`) before deciding. */
export const BODY_LIMIT = 64 * 1024;

export interface HttpParams {
  /** Request target, verbatim from `url` (origin-form "/x" or absolute-form "http://h/x"). */
  readonly path: string;
  /** Flat name/value list: Host, User-Agent, then the `headers` extras. */
  readonly headers: readonly string[];
  /** Accepted statuses as inclusive ranges. */
  readonly retcodes: readonly (readonly [number, number])[];
  readonly retcode: string;
  readonly naive: boolean;
  readonly body?: Buffer;
  readonly tls?: TlsParams;
  /** Plain http on the native prober: the original's HTTP/1.0 request, compiled once. */
  readonly native?: NativeJudge;
}

// Header names the request framing owns; letting a config set them would break the probe.
const RESERVED_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'expect', 'te', 'trailer']);
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// undici's own rule for request targets: visible ASCII and Latin-1, no spaces or controls.
const PATH_CHARS = /^[\u0021-\u00ff]+$/;

/** Parses `retcode`: "200", "200,301", "200-299", or a mix; statuses are 3-digit (100..999). */
export function parseRetcodes(text: string): [number, number][] {
  const ranges: [number, number][] = [];
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(item);
    if (m === null) throw new AttrError('retcode', `invalid retcode "${text}": "${item}" is not a status (e.g. 200) or range (200-299)`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 100 || hi < lo) throw new AttrError('retcode', `invalid retcode "${text}": bad status range "${item}"`);
    ranges.push([lo, hi]);
  }
  return ranges;
}

/** Parses `headers`: "Name: value|Other: value". */
export function parseHeaders(text: string): string[] {
  const flat: string[] = [];
  for (const raw of text.split('|')) {
    if (raw.trim() === '') continue;
    const colon = raw.indexOf(':');
    const name = colon < 0 ? '' : raw.slice(0, colon).trim();
    const value = colon < 0 ? '' : raw.slice(colon + 1).trim();
    if (!TOKEN.test(name)) throw new AttrError('headers', `invalid header "${raw.trim()}": expected "Name: value"`);
    if (/[\r\n\0]/.test(value)) throw new AttrError('headers', `invalid value for header ${name}: control characters`);
    const lower = name.toLowerCase();
    if (RESERVED_HEADERS.has(lower)) throw new AttrError('headers', `header ${name} cannot be set (use the host attribute for Host)`);
    flat.push(name, value);
  }
  return flat;
}

function retcodeOk(status: number, ranges: HttpParams['retcodes']): boolean {
  for (const [lo, hi] of ranges) if (status >= lo && status <= hi) return true;
  return false;
}

/** What a response is judged against, on either probe path. */
type Expectation = Pick<HttpParams, 'retcodes' | 'retcode' | 'body'>;

/** Why a status fails `retcode`, or undefined if it passes. */
function statusMismatch(status: number, p: Expectation): string | undefined {
  return retcodeOk(status, p.retcodes) ? undefined : `status ${status}, expected ${p.retcode}`;
}

/** The verdict on a response read to its end (or BODY_LIMIT of its body), the same on both paths. */
function responseVerdict(p: Expectation, status: number, bodyFound: boolean, bodyBytes: number): { ok: boolean; detail: string } {
  const mismatch = statusMismatch(status, p);
  if (mismatch !== undefined) return { ok: false, detail: mismatch };
  if (p.body === undefined) return { ok: true, detail: `status ${status}` };
  if (bodyFound) return { ok: true, detail: `status ${status}, body matched` };
  return { ok: false, detail: `status ${status}, body does not contain "${p.body.toString()}" (read ${Math.min(bodyBytes, BODY_LIMIT)} bytes)` };
}

/** The deadline passed after the connection: what was missing. */
function incompleteDetail(status: number, bodyBytes: number, timeoutMs: number): string {
  if (status === 0) return `no response within ${timeoutMs} ms`;
  return `response incomplete at deadline (status ${status}, ${bodyBytes} body bytes)`;
}

// undici (~20 MB of RSS once loaded) is loaded on the first http probe, not when the daemon starts.
const require = createRequire(import.meta.url);
let undiciClient: typeof Client | undefined;
function clientClass(): typeof Client {
  return (undiciClient ??= (require('undici') as typeof import('undici')).Client);
}

/**
 * undici Clients bound to no particular real: the connector hands over the socket of the probe
 * that checked the client out. One Client per probe in flight instead of one per real (10,000
 * reals would need 10,000 Clients), and none is built per probe.
 */
class ClientPool {
  private readonly idle: PooledClient[] = [];
  private closed = false;
  // A burst of concurrency should not pin its peak number of clients forever.
  private static readonly MAX_IDLE = 1024;

  acquire(): PooledClient {
    return this.idle.pop() ?? new PooledClient(this);
  }

  release(client: PooledClient): void {
    if (this.closed || this.idle.length >= ClientPool.MAX_IDLE) void client.client.destroy().catch(() => undefined);
    else this.idle.push(client);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = this.idle.splice(0);
    await Promise.all(all.map((c) => c.client.destroy().catch(() => undefined)));
  }
}

class PooledClient {
  readonly client: Client;
  /** The connected socket of the probe using this client, until undici picks it up. */
  next: Duplex | null = null;

  constructor(pool: ClientPool) {
    const connect: buildConnector.connector = (_opts, cb) => {
      const socket = this.next;
      this.next = null;
      // undici expects the callback asynchronously: called synchronously it never writes the request.
      queueMicrotask(() => {
        if (socket === null || socket.destroyed) cb(new Error('probe connection already closed'), null);
        else cb(null, socket as Parameters<buildConnector.Callback>[1] & object);
      });
    };
    const ClientClass = clientClass();
    this.client = new ClientClass('http://probe.invalid', {
      connect,
      // The probe deadline (ctx.signal) bounds everything; undici's own timers would only cost.
      headersTimeout: 0,
      bodyTimeout: 0,
      pipelining: 1,
    });
    // After a probe the connection is reset; once undici has seen the close the client is free again.
    this.client.on('disconnect', () => pool.release(this));
  }
}

const pool = new ClientPool();

/** Per-probe response state; also the undici dispatch handler. */
class HttpExchange implements ConnectionHooks, Dispatcher.DispatchHandler {
  private conn: ProbeConnection | undefined;
  private status = 0;
  private received = 0;
  private chunks: Buffer[] | undefined;

  constructor(private readonly p: HttpParams) {}

  onConnected(conn: ProbeConnection): void {
    this.conn = conn;
    // With TLS the stream under it already resets on any teardown.
    if (conn.socket === conn.raw) conn.resetOnAnyDestroy();
    let lease: PooledClient;
    try {
      lease = pool.acquire();
    } catch (err) {
      // Loading undici for a zone-scoped real of a native-path tester, under EMFILE.
      return conn.socketError(err as Error);
    }
    lease.next = conn.socket;
    lease.client.dispatch({ method: 'GET', path: this.p.path, headers: this.p.headers as string[] }, this);
  }

  deadlineDetail(): string {
    return incompleteDetail(this.status, this.received, this.conn?.ctx.timeoutMs ?? 0);
  }

  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    const conn = this.conn;
    if (conn === undefined || conn.settled || statusCode < 200) return;
    this.status = statusCode;
    // Decided on the status: the rest of this chunk (often the whole response) is parsed first.
    const mismatch = statusMismatch(statusCode, this.p);
    if (mismatch !== undefined) conn.finish(false, mismatch, undefined, true);
    else if (this.p.body !== undefined) this.chunks = [];
    else if (this.p.naive) conn.finish(true, `status ${statusCode}`, undefined, true);
  }

  onResponseData(_c: Dispatcher.DispatchController, chunk: Buffer): void {
    const conn = this.conn;
    if (conn === undefined || conn.settled) return;
    this.received += chunk.length;
    if (this.chunks !== undefined) {
      this.chunks.push(chunk);
      // naive: the status already passed, stop as soon as the text is seen.
      if (this.p.naive && this.bodyFound()) return conn.finish(true, responseVerdict(this.p, this.status, true, this.received).detail, undefined, true);
    }
    if (this.received >= BODY_LIMIT) this.decide(conn);
  }

  onResponseEnd(): void {
    const conn = this.conn;
    if (conn !== undefined && !conn.settled) this.decide(conn);
  }

  onResponseError(_c: Dispatcher.DispatchController | null, err: Error): void {
    const conn = this.conn;
    if (conn === undefined || conn.settled) return;
    const code = (err as NodeJS.ErrnoException).code;
    // undici loads its parser at the first connection: under EMFILE that load fails, a local error.
    if (localErrno(code, 'socket') !== undefined) return conn.socketError(err);
    if (code === 'UND_ERR_SOCKET' && this.status === 0) conn.finish(false, 'connection closed before a response');
    else if (code === 'UND_ERR_SOCKET') conn.finish(false, `connection closed mid-response (status ${this.status}, ${this.received} body bytes)`);
    else conn.finish(false, this.errorDetail(err));
  }

  /** undici reports protocol errors by destroying the socket with them. */
  errorDetail(err: Error): string {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    return err.name === 'HTTPParserError' || code.startsWith('HPE_') || code.startsWith('UND_ERR') ? `HTTP error: ${err.message}` : describeError(err);
  }

  /** The whole body (or BODY_LIMIT of it) is in: judge it. */
  private decide(conn: ProbeConnection): void {
    const v = responseVerdict(this.p, this.status, this.bodyFound(), this.received);
    conn.finish(v.ok, v.detail);
  }

  private bodyFound(): boolean {
    const chunks = this.chunks;
    const needle = this.p.body;
    if (chunks === undefined || needle === undefined) return false;
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    if (chunks.length > 1) chunks.splice(0, chunks.length, all);
    return all.subarray(0, BODY_LIMIT).includes(needle);
  }
}

/**
 * The native path sends the original's request, HTTP/1.0 with no Connection header (the server
 * closes after the response), and reads to the end of the response (Content-Length, EOF or the last
 * chunk) unless naive; the status and the body search are judged the same way as on the undici path.
 */
function nativeJudge(p: Expectation & Pick<HttpParams, 'path' | 'headers' | 'naive'>): NativeJudge | undefined {
  const prober = nativeProber();
  if (prober === undefined) return undefined;
  const lines = [`GET ${p.path} HTTP/1.0`];
  for (let i = 0; i < p.headers.length; i += 2) lines.push(`${HEADER_CASE[p.headers[i]!] ?? p.headers[i]!}: ${p.headers[i + 1]!}`);
  const request = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  const compiled = prober.define(request, p.body ?? null, p.naive ? REQUEST_NAIVE : 0, p.retcodes.flat());
  return {
    request,
    compiled,
    verdict(o: HttpOutcome | undefined): { ok: boolean; detail: string } {
      if (o === undefined || o.end === 'closed-early') return { ok: false, detail: 'connection closed before a response' };
      if (o.end === 'malformed') return { ok: false, detail: o.status === 0 ? 'HTTP error: not an HTTP/1.x status line' : 'HTTP error: response head over 64 KiB' };
      return responseVerdict(p, o.status, o.bodyFound, o.bodyBytes);
    },
    deadlineDetail: incompleteDetail,
  };
}

// The request header names we set ourselves, spelled as the original sends them.
const HEADER_CASE: Readonly<Record<string, string>> = { host: 'Host', 'user-agent': 'User-Agent' };

export const httpTester: Tester<HttpParams> = {
  name: 'http',
  attrs: [
    { name: 'url', type: 'string', required: true, maxLength: 8191, doc: 'Request target, sent verbatim: "/status" (or absolute "http://host/status").' },
    { name: 'host', type: 'string', required: true, maxLength: 255, doc: 'Host header; with SSL="1" also the SNI name (unless an IP) and the name verified.' },
    { name: 'naive', type: 'bool', default: false, doc: 'Decide on the status line and reset at once; default off: read the whole response (up to 64 KiB of body) first.' },
    { name: 'retcode', type: 'string', maxLength: 255, default: '200', doc: 'Accepted statuses: "200", a list "200,301" or a range "200-299".' },
    { name: 'body', type: 'string', maxLength: 1023, doc: 'Text that must appear in the first 64 KiB of the body.' },
    { name: 'headers', type: 'string', maxLength: 4095, doc: 'Extra request headers: "Name: value|Other: value".' },
    ...TLS_ATTRS,
  ],

  compile(values: AttrValues, generic: GenericSettings): HttpParams {
    const url = values.url;
    if (typeof url !== 'string' || url === '') throw new AttrError('url', 'url is required');
    if (!PATH_CHARS.test(url) || !(url.startsWith('/') || /^https?:\/\//i.test(url))) {
      throw new AttrError('url', `invalid url "${url}": must start with "/" (or http://) and contain no spaces or control characters`);
    }
    const host = values.host;
    if (typeof host !== 'string' || host === '') throw new AttrError('host', 'host is required');
    if (!PATH_CHARS.test(host)) throw new AttrError('host', `invalid host "${host}": spaces or control characters`);
    const retcode = typeof values.retcode === 'string' && values.retcode.trim() !== '' ? values.retcode.trim() : '200';
    const headers = ['host', host, 'user-agent', 'SureAliveD'];
    if (typeof values.headers === 'string') headers.push(...parseHeaders(values.headers));
    const body = typeof values.body === 'string' && values.body !== '' ? Buffer.from(values.body) : undefined;
    const tls = compileTls(values, generic, host);
    const plainParams = {
      path: url,
      headers,
      retcodes: parseRetcodes(retcode),
      retcode,
      naive: values.naive === true,
      ...(body !== undefined ? { body } : {}),
    };
    const native = tls === undefined ? nativeJudge(plainParams) : undefined;
    // Loaded now, not at the first probe: under descriptor pressure that require() itself would fail
    // (EMFILE opening undici's files) in the middle of a probe.
    if (native === undefined) clientClass();
    return { ...plainParams, ...(tls !== undefined ? { tls } : {}), ...(native !== undefined ? { native } : {}) };
  },

  probe(target: ProbeTarget, params: HttpParams, ctx: ProbeContext): Promise<ProbeResult> {
    if (params.native !== undefined && nativeCanReach(target)) return probeNative(target, params.native, ctx);
    return probeConnection(target, params.tls, ctx, new HttpExchange(params));
  },

  start(target: ProbeTarget, params: HttpParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
    if (params.native !== undefined && nativeCanReach(target)) return startNative(target, params.native, ctx, done);
    void probeConnection(target, params.tls, ctx, new HttpExchange(params)).then(done);
  },

  close(): Promise<void> {
    return pool.close();
  },
};
