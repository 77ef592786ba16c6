// Real servers on loopback for tester tests: TCP listeners that accept, stay silent or trickle,
// HTTP/HTTPS servers (certificates made with the openssl CLI), and a table-driven DNS server.

import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import dgram from 'node:dgram';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket } from 'dns-packet';
import type { ProbeContext, ProbeTarget, CommTag } from '../../testers/contract.js';

export interface Closable {
  close(): Promise<void>;
}

/** A probe context whose signal aborts after `ms`, like the engine's deadline. */
export function deadline(ms: number, comm?: (tag: CommTag, data: Buffer) => void): ProbeContext & { cancel(): void } {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), ms);
  // A probe in flight holds handles of its own; a probe that ended early leaves nothing to wait for.
  timer.unref();
  return { signal: ac.signal, timeoutMs: ms, ...(comm !== undefined ? { comm } : {}), cancel: () => clearTimeout(timer) };
}

export function target(addr: string, port: number, rname = 'r1'): ProbeTarget {
  return { addr, family: net.isIPv6(addr) ? 6 : 4, port, vname: 'v1', rname };
}

/** A port nobody listens on (bound then released), so connecting is refused. */
export async function refusedPort(host = '127.0.0.1'): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

export type TcpMode =
  /** Accept and never send anything. */
  | 'silent'
  /** Accept and send `data` one byte every `intervalMs`, forever (repeating). */
  | 'trickle'
  /** Accept, send `data` at once, then stay silent. */
  | 'greet'
  /** Answer the first bytes received with `data`, then stay silent (or close, with closeAfterReply). */
  | 'reply';

export interface TcpServer extends Closable {
  readonly port: number;
  /** Connections accepted so far. */
  accepted: number;
}

/** A raw TCP listener; every accepted socket is destroyed on close(). */
export async function startTcpServer(
  mode: TcpMode,
  opts: { host?: string; data?: string; intervalMs?: number; closeAfterReply?: boolean } = {},
): Promise<TcpServer> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const data = Buffer.from(opts.data ?? 'x');
  const state = { accepted: 0 };
  const srv = net.createServer((sock) => {
    state.accepted++;
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    if (mode === 'greet') sock.write(data);
    if (mode === 'reply') {
      sock.once('data', () => {
        sock.write(data);
        if (opts.closeAfterReply === true) sock.end();
      });
    }
    if (mode === 'trickle') {
      let i = 0;
      const timer = setInterval(() => {
        if (sock.destroyed) return clearInterval(timer);
        sock.write(data.subarray(i % data.length, (i % data.length) + 1));
        i++;
      }, opts.intervalMs ?? 50);
      timers.add(timer);
      sock.on('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
    }
  });
  await new Promise<void>((resolve) => srv.listen(0, opts.host ?? '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    get accepted() {
      return state.accepted;
    },
    set accepted(n: number) {
      state.accepted = n;
    },
    close: async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

export interface Route {
  status?: number;
  body?: string;
  headers?: Record<string, string>;
  /** Send the headers, then the body one byte every 50 ms. */
  trickleBody?: boolean;
  /** Never answer. */
  silent?: boolean;
}

export interface HttpServer extends Closable {
  readonly port: number;
  /** Headers of the last request received (lower-case names). */
  lastRequest: http.IncomingHttpHeaders | undefined;
  requests: number;
}

function handler(routes: Record<string, Route>, state: { last: http.IncomingHttpHeaders | undefined; requests: number }) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    state.last = req.headers;
    state.requests++;
    const route = routes[req.url ?? ''] ?? { status: 404, body: 'not found\n' };
    if (route.silent === true) return;
    const body = Buffer.from(route.body ?? '');
    res.writeHead(route.status ?? 200, { 'content-type': 'text/plain', 'content-length': String(body.length), ...route.headers });
    if (route.trickleBody !== true) {
      res.end(body);
      return;
    }
    let i = 0;
    const timer = setInterval(() => {
      if (res.destroyed || i >= body.length) return clearInterval(timer);
      res.write(body.subarray(i, i + 1));
      i++;
    }, 50);
    res.on('close', () => clearInterval(timer));
  };
}

async function listenHttp(srv: http.Server, host: string, state: { last: http.IncomingHttpHeaders | undefined; requests: number }): Promise<HttpServer> {
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('clientError', (_err, s: net.Socket) => s.destroy());
  srv.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, host, resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    get lastRequest() {
      return state.last;
    },
    set lastRequest(h) {
      state.last = h;
    },
    get requests() {
      return state.requests;
    },
    set requests(n) {
      state.requests = n;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

export async function startHttpServer(routes: Record<string, Route>, host = '127.0.0.1'): Promise<HttpServer> {
  const state = { last: undefined as http.IncomingHttpHeaders | undefined, requests: 0 };
  return listenHttp(http.createServer(handler(routes, state)), host, state);
}

export interface TestCerts {
  readonly dir: string;
  /** CA certificate (PEM file path) that signed `cert`. */
  readonly caFile: string;
  readonly key: Buffer;
  /** Server certificate for localhost, probe.test, 127.0.0.1 and ::1. */
  readonly cert: Buffer;
  remove(): void;
}

/** A throw-away CA and server certificate made with the openssl CLI (EC keys: fast). */
export function makeCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'surealived-certs-'));
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=surealived test CA', '-days', '2');
  openssl('req', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=localhost');
  writeFileSync(f('san.ext'), 'subjectAltName=DNS:localhost,DNS:probe.test,IP:127.0.0.1,IP:::1\n');
  openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-extfile', f('san.ext'));
  return {
    dir,
    caFile: f('ca.pem'),
    key: readFileSync(f('server.key')),
    cert: readFileSync(f('server.pem')),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export async function startHttpsServer(routes: Record<string, Route>, certs: TestCerts, host = '127.0.0.1'): Promise<HttpServer & { servernames: (string | false)[] }> {
  const state = { last: undefined as http.IncomingHttpHeaders | undefined, requests: 0 };
  const servernames: (string | false)[] = [];
  const srv = https.createServer({ key: certs.key, cert: certs.cert }, handler(routes, state));
  srv.on('secureConnection', (s: import('node:tls').TLSSocket) => servernames.push(s.servername ?? false));
  const base = await listenHttp(srv, host, state);
  return Object.assign(base, { servernames });
}

export interface DnsEntry {
  rcode?: 'NOERROR' | 'NXDOMAIN' | 'SERVFAIL' | 'REFUSED';
  answers?: Answer[];
  /** Never reply. */
  silent?: boolean;
  /** Before the real reply, send one with a wrong ID and one that is a query (QR clear). */
  decoys?: boolean;
}

export interface DnsServer extends Closable {
  readonly port: number;
  /** Every query received, decoded. */
  readonly queries: DecodedPacket[];
}

/** A DNS server over UDP answering from `table` (keyed by lower-case name without final dot). */
export async function startDnsServer(table: Record<string, DnsEntry>, host = '127.0.0.1'): Promise<DnsServer> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const queries: DecodedPacket[] = [];
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    queries.push(q);
    const question = q.questions?.[0];
    const entry = table[(question?.name ?? '').toLowerCase()] ?? { rcode: 'NXDOMAIN' };
    if (entry.silent === true) return;
    const reply = (id: number, type: 'response' | 'query', answers: Answer[]): Buffer =>
      dnsPacket.encode({
        type,
        id,
        flags: dnsPacket.AUTHORITATIVE_ANSWER | (type === 'response' ? rcodeBits(entry.rcode ?? 'NOERROR') : 0),
        questions: q.questions ?? [],
        answers,
      });
    const answers = entry.answers ?? [];
    const send = (buf: Buffer): void => sock.send(buf, rinfo.port, rinfo.address);
    if (entry.decoys === true) {
      const decoy: Answer[] = [{ type: 'A', name: question?.name ?? '', ttl: 1, data: '192.0.2.66' }];
      send(reply(((q.id ?? 0) + 1) & 0xffff, 'response', decoy));
      send(reply(q.id ?? 0, 'query', decoy));
    }
    send(reply(q.id ?? 0, 'response', answers));
  });
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  return {
    port: sock.address().port,
    queries,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

function rcodeBits(rcode: NonNullable<DnsEntry['rcode']>): number {
  return { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 }[rcode];
}

/** A free UDP port (bound then released): datagrams to it draw an ICMP port unreachable. */
export async function closedUdpPort(host = '127.0.0.1'): Promise<number> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  const port = sock.address().port;
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

/** One row of /proc/net/tcp or /proc/net/tcp6. */
interface TcpRow {
  localPort: number;
  remotePort: number;
  /** Kernel TCP state, hex: '01' ESTABLISHED, '02' SYN_SENT, '06' TIME_WAIT, '0A' LISTEN, ... */
  state: string;
  /** For a listener: the connections waiting in its accept queue. */
  rxQueue: number;
}

/** Every TCP socket of this network namespace (IPv4 and IPv6 tables). */
function tcpRows(): TcpRow[] {
  const rows: TcpRow[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 5) continue;
      rows.push({
        localPort: parseInt(cols[1]!.split(':')[1]!, 16),
        remotePort: parseInt(cols[2]!.split(':')[1]!, 16),
        state: cols[3]!,
        rxQueue: parseInt(cols[4]!.split(':')[1]!, 16),
      });
    }
  }
  return rows;
}

/** TCP sockets in TIME_WAIT with `port` as local or remote port (IPv4 and IPv6 tables). */
export function timeWaitCount(port: number): number {
  return tcpRows().filter((r) => r.state === '06' && (r.localPort === port || r.remotePort === port)).length;
}

export interface BlackholeServer extends Closable {
  readonly port: number;
}

const SYN_SENT = '02';
const LISTEN = '0A';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A listener that never accepts, with a full accept queue: the kernel drops new SYNs and a
 * connect() to it stays pending (SYN_SENT), the loopback stand-in for a real that does not answer
 * at all. Node always accepts, so the listener lives in a child process that is then SIGSTOPped,
 * and its backlog of 1 is filled with connections of our own.
 *
 * Proven before it is returned, from the kernel's tables rather than from how long a connect took
 * (which says nothing on a busy machine): the listener's accept queue is over its backlog, and a
 * connection opened after that is still in SYN_SENT a while later. Nothing can drain the queue of
 * a stopped process, so every later connect stays pending too. Throws if it cannot be proven.
 */
export async function startBlackholeServer(host = '127.0.0.1'): Promise<BlackholeServer> {
  const backlog = 1;
  const code = `const s=require('net').createServer();s.listen({port:0,host:${JSON.stringify(host)},backlog:${backlog}},()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const fillers: net.Socket[] = [];
  const close = async (): Promise<void> => {
    for (const s of fillers) s.destroy();
    child.kill('SIGKILL');
    await exited;
  };
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', () => reject(new Error('blackhole listener exited')));
    });
    child.kill('SIGSTOP');
    // Stopped for sure ('T' in /proc/PID/stat) before anything is judged: it can accept nothing now.
    for (let i = 0; !/^\d+ \(.*\) T /.test(readFileSync(`/proc/${child.pid}/stat`, 'utf8')); i++) {
      if (i >= 500) throw new Error(`blackhole listener (pid ${child.pid}) did not stop`);
      await sleep(10);
    }
    const queued = (): number => tcpRows().find((r) => r.state === LISTEN && r.localPort === port)?.rxQueue ?? -1;
    const stateOf = (s: net.Socket): string | undefined => {
      const local = s.localPort;
      return local === undefined ? undefined : tcpRows().find((r) => r.localPort === local && r.remotePort === port)?.state;
    };
    // Each round opens one connection. Queue full before it (the kernel drops SYNs then) and still in
    // SYN_SENT 200 ms later: proven. Otherwise it is one more filler, once the kernel has settled it.
    const started = performance.now();
    for (let round = 0; ; round++) {
      if (round >= 32 || performance.now() - started > 20_000) {
        throw new Error(`blackhole on port ${port}: accept queue ${queued()} (backlog ${backlog}) after ${fillers.length} connections in ${Math.round(performance.now() - started)} ms, and a new connect is not held in SYN_SENT`);
      }
      const full = queued() > backlog;
      const s = net.connect({ host, port });
      s.on('error', () => undefined);
      fillers.push(s);
      const opened = performance.now();
      // At least 200 ms, and on until the kernel moved the connection out of SYN_SENT (at most 2 s).
      for (;;) {
        await sleep(20);
        const waited = performance.now() - opened;
        const state = stateOf(s);
        if (waited >= 200 && (state !== SYN_SENT || full)) break;
        if (waited >= 2000) break;
      }
      if (full && stateOf(s) === SYN_SENT && queued() > backlog) {
        fillers.pop();
        s.destroy();
        return { port, close };
      }
    }
  } catch (err) {
    await close();
    throw err;
  }
}

/** TCP states (hex, e.g. '05' FIN_WAIT2, '06' TIME_WAIT) of client-side sockets whose remote port is `port`. */
export function clientStatesTo(port: number): string[] {
  return tcpRows().filter((r) => r.remotePort === port).map((r) => r.state);
}

/**
 * A TCP server on a fixed loopback address and port that can be stopped and started again (a real
 * going down and coming back); it accepts and closes every connection.
 */
export class Listener {
  private server: net.Server | null = null;
  constructor(readonly host: string, readonly port: number) {}
  start(): Promise<void> {
    const s = net.createServer((c) => c.on('error', () => undefined).end());
    this.server = s;
    return new Promise((resolve) => s.listen(this.port, this.host, () => resolve()));
  }
  stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()));
  }
}
