// The control port: a TCP listener (127.0.0.1:1337 by default, IPv6 allowed), an optional unix socket
// and an optional HTTP listener for GET /metrics and the status page (/, /status.json). Bounded in line length, connections, idle time and work per turn.

import { lstat, chmod, unlink } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Logger } from '../../common/log.js';
import { executeCommand, type CommandContext } from './commands.js';
import { METRICS_CONTENT_TYPE, streamMetrics } from './metrics.js';
import { readProcessStats } from './proc.js';
import { STATUS_PATHS, StatusService } from '../status/http.js';
import { parseCommand } from './protocol.js';
import type { ProcessStats } from './replies.js';
import type { ControlTarget } from './target.js';

export interface ControlServerOptions {
  readonly target: ControlTarget;
  /** listen_addr; default 127.0.0.1 (an IPv6 literal such as `::1` works too). */
  readonly host?: string;
  /** listen_port; default 1337; 0 picks a free port (tests). */
  readonly port?: number;
  /** Also listen on this unix socket path (mode 0600; a stale socket file is replaced). */
  readonly unixPath?: string;
  /** Serve GET /metrics and the status page over HTTP on this address (host default 127.0.0.1). */
  readonly metricsHttp?: { readonly host?: string; readonly port: number };
  /** Simultaneous control connections (TCP + unix); further ones are refused at once. Default 1024. */
  readonly maxConnections?: number;
  /** Close a connection with no traffic in either direction for this long; default 60000 ms, 0 = never. */
  readonly idleTimeoutMs?: number;
  /** Longest request line in bytes, without `\r\n`; default 4096. */
  readonly maxLineBytes?: number;
  /** Lines executed per connection before yielding to the event loop; default 256. */
  readonly linesPerTurn?: number;
  readonly log?: Logger;
  readonly processStats?: () => Promise<ProcessStats>;
}

/** Unread bytes buffered per connection before reading is paused (flow control, not a limit on lines). */
const INBOX_HIGH_WATER = 64 * 1024;
/** How long a connection we are closing may linger so its last reply is not lost to a reset. */
const LINGER_MS = 2000;

export class ControlServer {
  private readonly tcp: Server;
  private unix: Server | null = null;
  /** Set once our unix socket is listening: only then is the path ours to remove on close. */
  private ownsUnixPath = false;
  private http: HttpServer | null = null;
  private status: StatusService | null = null;
  private readonly connections = new Set<ControlConnection>();
  private readonly ctx: CommandContext;
  readonly maxConnections: number;
  readonly idleTimeoutMs: number;
  readonly maxLineBytes: number;
  readonly linesPerTurn: number;
  /** Connections refused because maxConnections was reached (for logs and tests). */
  refused = 0;

  private constructor(private readonly opts: ControlServerOptions) {
    this.ctx = { target: opts.target, processStats: opts.processStats ?? readProcessStats };
    this.maxConnections = opts.maxConnections ?? 1024;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? 60_000;
    this.maxLineBytes = opts.maxLineBytes ?? 4096;
    this.linesPerTurn = Math.max(1, opts.linesPerTurn ?? 256);
    this.tcp = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
  }

  /** Listen on every configured address; rejects (naming the address) if any listen fails. */
  static async start(opts: ControlServerOptions): Promise<ControlServer> {
    const server = new ControlServer(opts);
    try {
      await server.listen();
    } catch (e) {
      await server.close();
      throw e;
    }
    return server;
  }

  private async listen(): Promise<void> {
    const host = this.opts.host ?? '127.0.0.1';
    const port = this.opts.port ?? 1337;
    await listenOn(this.tcp, { host, port }, `control port ${host}:${port}`);
    this.opts.log?.info(`Binding cmd interface to [${host}:${this.tcpAddress.port}]`);
    if (this.opts.unixPath !== undefined) {
      const path = this.opts.unixPath;
      await removeStaleSocket(path);
      this.unix = createServer({ allowHalfOpen: true }, (s) => this.accept(s));
      await listenOn(this.unix, { path }, `control socket ${path}`);
      this.ownsUnixPath = true;
      // No authentication on the protocol (spec 11.28): the file mode is the access control.
      await chmod(path, 0o600);
      this.opts.log?.info(`Binding cmd interface to [${path}]`);
    }
    if (this.opts.metricsHttp) {
      const mh = this.opts.metricsHttp;
      const mhost = mh.host ?? '127.0.0.1';
      this.status = new StatusService(this.opts.target);
      this.http = createHttpServer((req, res) => this.serveHttp(req, res));
      this.http.maxConnections = this.maxConnections;
      this.http.headersTimeout = 10_000;
      this.http.requestTimeout = 10_000;
      this.http.keepAliveTimeout = 5_000;
      this.http.on('clientError', (_err, socket) => socket.destroy());
      await listenOn(this.http, { host: mhost, port: mh.port }, `metrics listener ${mhost}:${mh.port}`);
      this.opts.log?.info(`Serving metrics on [http://${formatHost(mhost)}:${(this.http.address() as AddressInfo).port}/metrics]`);
    }
  }

  get tcpAddress(): AddressInfo {
    return this.tcp.address() as AddressInfo;
  }

  get httpAddress(): AddressInfo | null {
    return this.http ? (this.http.address() as AddressInfo) : null;
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  private accept(socket: Socket): void {
    const peer = peerName(socket);
    // Client errors (ECONNRESET, EPIPE) are the client's business: never let them escape.
    socket.on('error', (e) => this.opts.log?.debug(`control client ${peer}: ${e.message}`));
    if (this.connections.size >= this.maxConnections) {
      this.refused++;
      if (this.refused === 1 || this.refused % 1000 === 0) {
        this.opts.log?.warn(`control port: connection limit ${this.maxConnections} reached, refusing (${this.refused} refused so far)`);
      }
      socket.end(`Too many connections (max ${this.maxConnections})\n`, () => socket.destroy());
      return;
    }
    this.opts.log?.debug(`control client ${peer} connected`);
    const conn = new ControlConnection(socket, peer, this, this.ctx, this.opts.log);
    this.connections.add(conn);
    socket.once('close', () => this.connections.delete(conn));
  }

  private serveHttp(req: IncomingMessage, res: ServerResponse): void {
    res.on('error', () => undefined);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== '/metrics' && !STATUS_PATHS.has(path)) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Not found: try /metrics, / or /status.json\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain' }).end('Method not allowed\n');
      return;
    }
    if (path !== '/metrics') {
      try {
        this.status?.serve(path, q < 0 ? '' : url.slice(q + 1), req.method === 'HEAD', res);
      } catch (e) {
        this.opts.log?.error(`status page: ${e instanceof Error ? e.message : String(e)}`);
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
        res.end('Internal error\n');
      }
      return;
    }
    const t = this.ctx.target;
    res.writeHead(200, { 'Content-Type': METRICS_CONTENT_TYPE });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    // Sent in chunks as it is built, between probes (chunked transfer encoding).
    streamMetrics(t.virtuals, t.counters, t.lateness, (chunk) => res.write(chunk), t.probeLoad).then(
      () => res.end(),
      (e: unknown) => {
        this.opts.log?.error(`metrics: ${e instanceof Error ? e.message : String(e)}`);
        res.destroy();
      },
    );
  }

  /** Stop listening and drop every connection. */
  async close(): Promise<void> {
    this.status?.stop();
    for (const c of this.connections) c.destroy();
    const closing: Array<Promise<void>> = [];
    for (const s of [this.tcp, this.unix, this.http]) {
      if (s?.listening) closing.push(new Promise<void>((resolve) => s.close(() => resolve())));
    }
    this.http?.closeAllConnections();
    await Promise.all(closing);
    if (this.opts.unixPath !== undefined && this.ownsUnixPath) {
      this.ownsUnixPath = false;
      await unlink(this.opts.unixPath).catch(() => undefined); // already gone is fine
    }
  }
}

const TOO_LONG = Symbol('line too long');

/**
 * One client. Bytes are buffered and cut into lines incrementally; every complete line is executed
 * in order (the original ran only the first line of each read and dropped the rest). At most
 * `linesPerTurn` lines run before yielding, and reading pauses while replies or unread input pile
 * up, so a flood costs bounded memory and never starves the event loop.
 */
class ControlConnection {
  private inbox: Buffer = Buffer.alloc(0);
  private running = false;
  private closing = false;
  /** The client shut down its sending side (`echo stats | nc -N`): answer what it sent, then close. */
  private inputEnded = false;
  /** Replies not yet written, and the chain that writes them in order. */
  private outstanding = 0;
  private replies: Promise<void> = Promise.resolve();

  constructor(
    private readonly socket: Socket,
    private readonly peer: string,
    private readonly server: ControlServer,
    private readonly ctx: CommandContext,
    private readonly log: Logger | undefined,
  ) {
    socket.setNoDelay(true);
    if (server.idleTimeoutMs > 0) {
      socket.setTimeout(server.idleTimeoutMs, () => socket.destroy());
    }
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('end', () => {
      this.inputEnded = true;
      void this.run();
    });
  }

  destroy(): void {
    this.closing = true;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closing) return; // lingering before close: discard
    this.inbox = this.inbox.length === 0 ? chunk : Buffer.concat([this.inbox, chunk]);
    if (this.inbox.length > INBOX_HIGH_WATER) this.socket.pause();
    void this.run();
  }

  /** Next complete line (without `\n`), null if none yet, TOO_LONG if the limit is exceeded. */
  private nextLine(): string | null | typeof TOO_LONG {
    const max = this.server.maxLineBytes;
    const nl = this.inbox.indexOf(0x0a);
    if (nl === -1) {
      // +1: a line of exactly `max` bytes may still be waiting for its `\r\n`.
      return this.inbox.length > max + 1 ? TOO_LONG : null;
    }
    const len = nl > 0 && this.inbox[nl - 1] === 0x0d ? nl - 1 : nl;
    if (len > max) return TOO_LONG;
    const line = this.inbox.toString('utf8', 0, nl);
    this.inbox = this.inbox.subarray(nl + 1);
    return line;
  }

  private async run(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      let budget = this.server.linesPerTurn;
      while (!this.closing && !this.socket.destroyed) {
        const line = this.nextLine();
        if (line === null) {
          // Lines that arrive while replies are still settling are picked up by this same loop.
          if (this.outstanding === 0) break;
          await this.replies;
          continue;
        }
        if (line === TOO_LONG) {
          this.log?.warn(`control client ${this.peer}: request line longer than ${this.server.maxLineBytes} bytes, closing`);
          this.closeWith(`Line too long (max ${this.server.maxLineBytes} bytes)\n`);
          return;
        }
        this.log?.debug(`control client ${this.peer}: [${line}]`);
        // Commands run in order at once; their replies are written in the same order as they settle,
        // so a pipelined burst of rsets shares override.dump writes instead of waiting for each one.
        const reply = this.execute(line);
        this.outstanding++;
        this.replies = this.replies.then(async () => {
          const text = await reply;
          this.outstanding--;
          if (this.closing || this.socket.destroyed) return;
          if (!this.socket.write(text)) {
            // The client is not reading its replies: stop reading its requests until it does.
            this.socket.pause();
            await waitDrain(this.socket);
          }
        });
        if (this.outstanding >= MAX_OUTSTANDING_REPLIES) await this.replies;
        if (this.closing || this.socket.destroyed) return;
        if (--budget === 0) {
          await new Promise<void>((resolve) => setImmediate(resolve));
          budget = this.server.linesPerTurn;
        }
      }
      await this.replies;
    } finally {
      this.running = false;
    }
    if (this.closing || this.socket.destroyed) return;
    if (this.inputEnded) {
      // Every complete line is answered; a last line without `\n` is ignored, as the original did.
      this.closing = true;
      this.socket.end();
    } else if (this.inbox.length <= INBOX_HIGH_WATER) {
      this.socket.resume();
    }
  }

  private async execute(line: string): Promise<string> {
    try {
      return await executeCommand(parseCommand(line), this.ctx);
    } catch (e) {
      // A bug in a command must cost one error line, not the daemon.
      const why = (e instanceof Error ? e.message : String(e)).replace(/[\r\n]+/g, ' ');
      this.log?.error(`control client ${this.peer}: command [${line}] failed: ${why}`);
      return `Internal error: ${why}\n`;
    }
  }

  /** Send a last line and close; keep discarding input for a moment so the line is not lost to a reset. */
  private closeWith(text: string): void {
    this.closing = true;
    this.inbox = Buffer.alloc(0);
    this.socket.resume();
    this.socket.end(text);
    setTimeout(() => this.socket.destroy(), LINGER_MS).unref();
  }
}

/** Commands executed ahead of their written replies on one connection (bounds memory per client). */
const MAX_OUTSTANDING_REPLIES = 1024;

function waitDrain(socket: Socket): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

async function listenOn(server: Server | HttpServer, where: { host: string; port: number } | { path: string }, what: string): Promise<void> {
  server.listen({ ...where, exclusive: true });
  try {
    await once(server, 'listening'); // rejects with the 'error' event (EADDRINUSE, EACCES...)
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new Error(`${what}: cannot listen: ${err.code ?? err.message}`, { cause: e });
  }
}

/**
 * A socket file left by a crashed daemon makes listen fail with EADDRINUSE, so it is removed; one that
 * still accepts connections belongs to a running daemon and is left alone (listen then fails).
 */
async function removeStaleSocket(path: string): Promise<void> {
  try {
    if (!(await lstat(path)).isSocket()) return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (!alive) await unlink(path);
}

/** `addr:port` of a TCP peer, `unix` for the unix socket (whose peers have no address). */
function peerName(socket: Socket): string {
  return socket.remoteAddress === undefined ? 'unix' : `${formatHost(socket.remoteAddress)}:${socket.remotePort ?? 0}`;
}

function formatHost(h: string): string {
  return h.includes(':') ? `[${h}]` : h;
}
