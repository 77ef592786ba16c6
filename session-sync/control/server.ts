// ssyncd's control socket: a unix stream socket (mode 0600, directory 0700 when we create it) that takes
// one command frame per connection, checks who sent it (SO_PEERCRED: root and the daemon's own uid),
// hands it to the daemon's handler and writes the reply, then closes. Fixed vs v1.0.0 (spec 8.5, 8.6,
// 3.4): frames are reassembled from any number of reads and bounded; a bad frame gets `Command error`
// and the connection is closed (v1.0.0 left the client hanging); a client that leaves early never
// takes the daemon down (Node ignores SIGPIPE, and EPIPE/ECONNRESET are dropped here); any local user
// could command v1.0.0, only allowed uids can command us. Commands run one at a time, in arrival order.

import { once } from 'node:events';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { peerCredAvailable, peerCredOf, type PeerCred } from '../../common/peercred.js';
import { describeCommand, type Command, type RequestOptions } from './commands.js';
import { ControlFrameReader, DEFAULT_MAX_FRAME, encodeStatusTrailer, frameProblemText, type ControlRequest, type ReadState } from './frame.js';
import { commandErrorReply, NEW_TEXT, peerRefusedText, unknownCommandReply, type Reply } from './replies.js';

/** Runs one command. Never called concurrently: the next command waits until this promise settles. */
export type CommandHandler = (cmd: Command, opts: RequestOptions) => Promise<Reply>;
export type ControlLog = (level: 'info' | 'warn' | 'error', msg: string) => void;

export interface ControlServerOptions {
  /** Socket path; its directory is created with mode 0700 if absent. */
  readonly path: string;
  readonly handler: CommandHandler;
  readonly log: ControlLog;
  /** Largest request accepted, bytes; default 1024 (v1.0.0's recv buffer). */
  readonly maxFrame?: number;
  /** Uids allowed to send commands; default root and the daemon's own uid. */
  readonly allowedUids?: readonly number[];
  /** A client must send its whole frame within this long, and read the reply without stalling as long; default 5000 ms. */
  readonly ioTimeoutMs?: number;
  /** Simultaneous connections; more are told so and closed. Default 32. */
  readonly maxConnections?: number;
  /** close() lets a running command finish and its reply go out for this long; default 5000 ms. */
  readonly closeGraceMs?: number;
}

export type ControlServerErrorCode = 'IN_USE' | 'NOT_A_SOCKET' | 'NO_PEERCRED' | 'DIRECTORY' | 'LISTEN' | 'PROBE';

/** The control socket could not be set up; `path` and `code` say where and why. */
export class ControlServerError extends Error {
  override readonly name = 'ControlServerError';
  constructor(
    readonly path: string,
    readonly code: ControlServerErrorCode,
    why: string,
  ) {
    super(`control socket ${path}: ${why}`);
  }
}

interface Conn {
  readonly sock: Socket;
  /** `pid P uid U`, for logs. */
  who: string;
  /** reading: collecting the frame; done: refused, answered or dispatched. */
  phase: 'reading' | 'done';
  /** Set for a peer whose uid is not allowed: the reply to whatever it sends. */
  refusal?: string;
  readonly reader: ControlFrameReader;
}

/** Errors a departed client causes; they are its business, not the daemon's. */
const CLIENT_GONE = new Set(['EPIPE', 'ECONNRESET', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

export class ControlServer {
  private readonly connections = new Set<Socket>();
  /** Connections whose command is queued or running, or whose reply is being written. */
  private readonly working = new Set<Socket>();
  private queue: Promise<void> = Promise.resolve();
  private closing: Promise<void> | undefined;
  private readonly allowed: ReadonlySet<number>;
  private readonly maxFrame: number;
  private readonly ioTimeoutMs: number;
  private readonly maxConnections: number;
  private readonly closeGraceMs: number;
  /** The inode we bound: close() removes the path only while it is still our socket. */
  private ino: number | undefined;

  private constructor(
    private readonly opts: ControlServerOptions,
    private readonly server: Server,
  ) {
    this.allowed = new Set(opts.allowedUids ?? [0, process.getuid?.() ?? 0]);
    this.maxFrame = opts.maxFrame ?? DEFAULT_MAX_FRAME;
    this.ioTimeoutMs = opts.ioTimeoutMs ?? 5000;
    this.maxConnections = opts.maxConnections ?? 32;
    this.closeGraceMs = opts.closeGraceMs ?? 5000;
    // Fails on a bad bound now rather than on the first connection.
    new ControlFrameReader(this.maxFrame);
  }

  get path(): string {
    return this.opts.path;
  }

  /**
   * Listen on `opts.path`. A socket file nobody answers on is a leftover and is replaced; a live one
   * belongs to another daemon and is left alone (IN_USE); anything else at the path is not touched.
   */
  static async listen(opts: ControlServerOptions): Promise<ControlServer> {
    const path = opts.path;
    if (!peerCredAvailable()) {
      throw new ControlServerError(path, 'NO_PEERCRED', 'cannot check peer credentials: build/Release/peercred.node is not built (npm install builds it)');
    }
    const server = new ControlServer(opts, createServer({ allowHalfOpen: true }));
    const dir = dirname(path);
    try {
      const made = await mkdir(dir, { recursive: true, mode: 0o700 });
      if (made !== undefined) {
        await chmod(dir, 0o700); // the mode given to mkdir is subject to the umask
        opts.log('info', `created control socket directory ${dir} (mode 0700)`);
      }
    } catch (e) {
      throw new ControlServerError(path, 'DIRECTORY', `cannot create its directory ${dir}: ${(e as Error).message}`);
    }
    await takeOverStale(path, opts.log);
    server.server.on('connection', (s: Socket) => server.accept(s));
    try {
      server.server.listen({ path });
      await once(server.server, 'listening');
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      throw new ControlServerError(path, 'LISTEN', `cannot listen: ${err.code === 'EADDRINUSE' ? 'another process bound it meanwhile' : err.message}`);
    }
    try {
      // Peer credentials are checked on every connection, so the moment before chmod is harmless.
      await chmod(path, 0o600);
      server.ino = (await lstat(path)).ino;
    } catch (e) {
      await server.close();
      throw new ControlServerError(path, 'LISTEN', `cannot set mode 0600: ${(e as Error).message}`);
    }
    opts.log('info', `control socket listening on ${path} (mode 0600, uids ${[...server.allowed].join(', ')})`);
    return server;
  }

  private accept(sock: Socket): void {
    const conn: Conn = { sock, who: 'unknown peer', phase: 'done', reader: new ControlFrameReader(this.maxFrame) };
    sock.on('error', (e: NodeJS.ErrnoException) => {
      if (CLIENT_GONE.has(e.code ?? '')) this.opts.log('info', `control socket ${this.path}: ${conn.who} went away before its reply was sent (${e.code})`);
      else this.opts.log('warn', `control socket ${this.path}: ${conn.who}: ${e.message}`);
    });
    if (this.closing) {
      sock.destroy();
      return;
    }
    this.connections.add(sock);
    sock.once('close', () => {
      this.connections.delete(sock);
      this.working.delete(sock);
    });
    // A connection quiet for ioTimeoutMs is ended (while reading: with Command error); none while a command runs.
    sock.setTimeout(this.ioTimeoutMs);
    sock.on('timeout', () => {
      if (conn.phase === 'reading') this.settle(conn, conn.reader.end(), `nothing more came for ${this.ioTimeoutMs} ms`);
      else sock.destroy();
    });
    if (this.connections.size > this.maxConnections) {
      this.opts.log('warn', `control socket ${this.path}: ${this.maxConnections} connections open, refusing another`);
      this.refuse(conn, NEW_TEXT.tooManyConnections);
      return;
    }
    let cred: PeerCred;
    try {
      cred = peerCredOf(sock);
    } catch (e) {
      this.opts.log('error', `control socket ${this.path}: refused a connection, cannot read its credentials: ${(e as Error).message}`);
      this.refuse(conn, 'Permission denied: peer credentials unavailable');
      return;
    }
    conn.who = `pid ${cred.pid} uid ${cred.uid}`;
    if (!this.allowed.has(cred.uid)) {
      this.opts.log('warn', `control socket ${this.path}: refused ${conn.who} gid ${cred.gid}: uid not allowed (allowed: ${[...this.allowed].join(', ')})`);
      // Its frame is still read (bounded as any other), so the refusal can carry the status it asks for.
      conn.refusal = peerRefusedText(cred.uid);
    }
    conn.phase = 'reading';
    sock.on('data', (chunk: Buffer) => {
      const r = conn.reader.push(chunk);
      if (r.state !== 'incomplete') this.settle(conn, r, 'received');
    });
    sock.on('end', () => this.settle(conn, conn.reader.end(), 'the client closed its side'));
  }

  /** Tell the peer why, close, and drain whatever it still sends. */
  private refuse(conn: Conn, text: string): void {
    conn.phase = 'done';
    conn.sock.on('data', () => undefined);
    conn.sock.end(text);
  }

  private settle(conn: Conn, state: Exclude<ReadState, { state: 'incomplete' }>, how: string): void {
    if (conn.phase !== 'reading') return;
    conn.phase = 'done';
    if (conn.refusal !== undefined) {
      this.reply(conn.sock, { text: conn.refusal, status: 1 }, state.state === 'frame' && state.request.options.wantStatus);
      return;
    }
    if (state.state === 'frame') {
      this.dispatch(conn, state.request);
      return;
    }
    if (state.problem.kind === 'incomplete' && state.problem.have === 0) {
      this.opts.log('info', `control socket ${this.path}: ${conn.who} sent no command (${how})`);
      conn.sock.end();
      return;
    }
    this.opts.log('warn', `control socket ${this.path}: bad frame from ${conn.who}: ${frameProblemText(state.problem)} (${how}); answered Command error`);
    this.reply(conn.sock, commandErrorReply(), false);
  }

  private dispatch(conn: Conn, req: ControlRequest): void {
    const { sock, who } = conn;
    if (req.kind === 'unknown-command') {
      this.opts.log('warn', `control socket ${this.path}: unknown command id ${req.id} from ${who}`);
      this.reply(sock, unknownCommandReply(), req.options.wantStatus);
      return;
    }
    const what = describeCommand(req.command);
    this.opts.log('info', `control: "${what}" from ${who}${req.options.json ? ' (json)' : ''}`);
    this.working.add(sock);
    sock.setTimeout(0); // a command may take long (write); the client waits for it
    this.queue = this.queue.then(async () => {
      let reply: Reply;
      try {
        reply = await this.opts.handler(req.command, req.options);
      } catch (e) {
        const msg = e instanceof Error ? e.message : String(e);
        this.opts.log('error', `control: "${what}" failed: ${msg}`);
        reply = { text: `error: ${msg}`, status: 1 };
      }
      if (sock.destroyed || !sock.writable) {
        this.opts.log('info', `control: ${who} left before the reply to "${what}"`);
        this.working.delete(sock);
        return;
      }
      sock.setTimeout(this.ioTimeoutMs);
      this.reply(sock, reply, req.options.wantStatus);
    });
  }

  private reply(sock: Socket, reply: Reply, wantStatus: boolean): void {
    const text = Buffer.from(reply.text, 'utf8');
    this.working.add(sock);
    sock.end(wantStatus ? Buffer.concat([text, encodeStatusTrailer(reply.status)]) : text, () => this.working.delete(sock));
  }

  /**
   * Stop listening. Idle connections are dropped at once; a command already received still runs and
   * its reply goes out (so `quit` gets its answer) unless that takes longer than closeGraceMs. Do not
   * await close() inside the handler: it waits for that very command. The socket file is removed if
   * it is still ours.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.connections) if (!this.working.has(s)) s.destroy();
    const deadline = Date.now() + this.closeGraceMs;
    while (this.working.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    for (const s of this.connections) s.destroy();
    await closed;
    // libuv unlinks a bound path on close; this covers the rest, and never removes another's socket.
    try {
      if ((await lstat(this.path)).ino === this.ino) await unlink(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.log('warn', `control socket ${this.path}: cannot remove: ${(e as Error).message}`);
    }
  }
}

/** Remove a socket file nobody answers on; refuse to touch a live socket or a non-socket. */
async function takeOverStale(path: string, log: ControlLog): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new ControlServerError(path, 'PROBE', `cannot inspect the path: ${(e as Error).message}`);
  }
  if (!isSocket) throw new ControlServerError(path, 'NOT_A_SOCKET', 'the path exists and is not a socket; not replacing it');
  const state = await probe(path);
  if (state.alive) {
    throw new ControlServerError(path, 'IN_USE', `in use by a running daemon${state.pid !== undefined ? ` (pid ${state.pid})` : ''}; not taking it over`);
  }
  if (state.gone) return;
  await unlink(path);
  log('warn', `control socket ${path}: removed a stale socket file (nothing answered on it)`);
}

async function probe(path: string): Promise<{ alive: true; pid: number | undefined; gone?: never } | { alive: false; gone: boolean }> {
  const sock = connect({ path });
  try {
    await once(sock, 'connect');
    let pid: number | undefined;
    try {
      pid = peerCredOf(sock).pid;
    } catch {
      pid = undefined; // the name of the holder is a courtesy
    }
    return { alive: true, pid };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return { alive: false, gone: false };
    if (code === 'ENOENT') return { alive: false, gone: true };
    throw new ControlServerError(path, 'PROBE', `cannot tell whether a daemon listens on it: ${(e as Error).message}`);
  } finally {
    sock.destroy();
  }
}
