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

/** TCP sockets in TIME_WAIT with `port` as local or remote port (IPv4 and IPv6 tables). */
export function timeWaitCount(port: number): number {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  let n = 0;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4) continue;
      const local = cols[1]!.split(':')[1];
      const remote = cols[2]!.split(':')[1];
      if (cols[3] === '06' && (local === hex || remote === hex)) n++;
    }
  }
  return n;
}

export interface BlackholeServer extends Closable {
  readonly port: number;
}

/**
 * A listener that never accepts, with a full accept queue: the kernel drops new SYNs and a
 * connect() to it stays pending, the loopback stand-in for a real that does not answer at all.
 * Node always accepts, so the listener lives in a child process that is then SIGSTOPped, and its
 * small backlog is filled with connections of our own.
 */
export async function startBlackholeServer(host = '127.0.0.1'): Promise<BlackholeServer> {
  const code = `const s=require('net').createServer();s.listen({port:0,host:${JSON.stringify(host)},backlog:1},()=>console.log(s.address().port));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', () => reject(new Error('blackhole listener exited')));
  });
  child.kill('SIGSTOP');
  const fillers: net.Socket[] = [];
  // Until a connect no longer completes within 200 ms, the queue still had room.
  for (let i = 0; i < 16; i++) {
    const s = net.connect({ host, port });
    s.on('error', () => undefined);
    fillers.push(s);
    const connected = await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 200);
      s.once('connect', () => {
        clearTimeout(t);
        resolve(true);
      });
    });
    if (!connected) break;
  }
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    },
  };
}

/** TCP states (hex, e.g. '05' FIN_WAIT2, '06' TIME_WAIT) of client-side sockets whose remote port is `port`. */
export function clientStatesTo(port: number): string[] {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  const states: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length >= 4 && cols[2]!.split(':')[1] === hex) states.push(cols[3]!);
    }
  }
  return states;
}
