// The ping tester (issue 15; keepalived's PING_CHECK, ldirectord's checktype=ping): one ICMP echo
// request to the real (ICMPv6 for an IPv6 real); up iff its echo reply comes before the deadline.
// The port is not used. ICMP sockets come from the native module (testers/native/icmp.c, built into
// prober.node): an unprivileged datagram ICMP socket where net.ipv4.ping_group_range allows it for
// one of the process's groups, else a raw socket (CAP_NET_RAW). Which one is decided when the
// configuration is loaded, so `surealived -t` says so when neither can be opened.
//
// Replies are matched by identifier, sequence number and the probe's random bytes at the start of
// the data: on a raw socket every echo reply from the real arrives (other programs may be pinging it
// too), and on a datagram socket the kernel chooses the identifier (read back from the socket after
// the first send) and passes only replies carrying it.

import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { randomBytes, randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AttrError,
  type AttrValues,
  type GenericSettings,
  type ProbeContext,
  type ProbeProblem,
  type ProbeResult,
  type ProbeTarget,
  type Tester,
} from './contract.js';
import { localErrno, localResult } from './local-error.js';
import { describeCode, earlyProblem, unwatchDeadline, watchDeadline, type DeadlineBound } from './socket.js';

/** The two kinds of ICMP socket. */
export type IcmpKind = 'dgram' | 'raw';
/** The `socket` attribute. */
export type SocketPreference = 'auto' | IcmpKind;

/** What opening each kind of ICMP socket of one family gives here: undefined = it opens, else the errno name. */
export interface SocketAvailability {
  readonly dgram: string | undefined;
  readonly raw: string | undefined;
}

/** Facts for the explanation of a refusal. */
export interface PermissionFacts {
  /** The process's group ids (primary and supplementary). */
  readonly groups: readonly number[];
  /** net.ipv4.ping_group_range as the kernel shows it ("1\t0"), if readable. */
  readonly pingGroupRange?: string;
}

/**
 * The socket kind for one family: `kind`; or `error`, why no ICMP socket of the wanted kind can be
 * opened; or `local`, when the check itself hit a shortage of the director (EMFILE ...) and decided
 * nothing (decided again at the next probe).
 */
export type KindChoice = { readonly kind: IcmpKind } | { readonly error: string } | { readonly local: string };

/** Errors of socket() that are the director's shortage, not a refusal. */
function isShortage(errno: string | undefined): boolean {
  return localErrno(errno, 'socket') !== undefined;
}

function rangeText(facts: PermissionFacts): string {
  return facts.pingGroupRange === undefined ? 'unreadable' : `"${facts.pingGroupRange.trim().split(/\s+/).join(' ')}"`;
}

/** Why an unprivileged (datagram) ICMP socket was refused. */
export function dgramRefusal(errno: string, facts: PermissionFacts): string {
  if (errno === 'EACCES' || errno === 'EPERM') {
    return `unprivileged ICMP sockets are not allowed: none of this process's groups (${facts.groups.join(', ') || 'none'}) is in net.ipv4.ping_group_range (${rangeText(facts)}) (${errno})`;
  }
  return `unprivileged ICMP sockets are not available here (${errno})`;
}

/** Why a raw ICMP socket was refused. */
export function rawRefusal(errno: string): string {
  if (errno === 'EPERM' || errno === 'EACCES') return `raw ICMP sockets need CAP_NET_RAW (root, or the capability granted) (${errno})`;
  return `raw ICMP sockets are not available here (${errno})`;
}

/**
 * The socket kind for one family, from the `socket` attribute and what opening each kind gave.
 * "auto" prefers the unprivileged datagram socket and falls back to a raw one.
 */
export function chooseKind(pref: SocketPreference, avail: SocketAvailability, facts: PermissionFacts): KindChoice {
  const one = (kind: IcmpKind): KindChoice => {
    const errno = avail[kind];
    if (errno === undefined) return { kind };
    if (isShortage(errno)) return { local: errno };
    return { error: kind === 'dgram' ? dgramRefusal(errno, facts) : rawRefusal(errno) };
  };
  if (pref !== 'auto') return one(pref);
  const dgram = one('dgram');
  if ('kind' in dgram || 'local' in dgram) return dgram;
  const raw = one('raw');
  if ('kind' in raw || 'local' in raw) return raw;
  return { error: `no ICMP socket can be opened: ${dgram.error}; ${raw.error}` };
}

/**
 * The choice for both families, and the configuration error when neither family can ping at all
 * (a family alone without ICMP, e.g. IPv6 disabled, only fails the probes of its reals).
 */
export function chooseKinds(
  pref: SocketPreference,
  avail: { readonly 4: SocketAvailability; readonly 6: SocketAvailability },
  facts: PermissionFacts,
): { readonly 4: KindChoice; readonly 6: KindChoice; readonly error?: string } {
  const v4 = chooseKind(pref, avail[4], facts);
  const v6 = chooseKind(pref, avail[6], facts);
  if ('error' in v4 && 'error' in v6) {
    const text = v4.error === v6.error ? v4.error : `IPv4: ${v4.error}; IPv6: ${v6.error}`;
    return { 4: v4, 6: v6, error: pref === 'auto' ? text : `socket="${pref}": ${text}` };
  }
  return { 4: v4, 6: v6 };
}

// ---- the native part ----

interface IcmpBinding {
  icmpInit(onEvent: (slot: number, errno: number, data: Buffer | undefined) => void): void;
  icmpCheck(family: number, raw: boolean): number;
  icmpOpen(family: number, raw: boolean, addr: string): number;
  icmpSend(slot: number, data: Buffer): number;
  icmpIdent(slot: number): number;
  icmpClose(slot: number): void;
}

const require = createRequire(import.meta.url);
const errnoNames = new Map<number, string>(Object.entries(constants.errno).map(([name, no]) => [no, name]));
const errnoName = (n: number): string => errnoNames.get(n) ?? `errno ${n}`;

let binding: IcmpBinding | null | undefined;
let loadError = '';
/** Probes in flight, by the native module's slot. */
const probes: (PingProbe | undefined)[] = [];

function load(): IcmpBinding | null {
  if (binding !== undefined) return binding;
  try {
    const b = require('../../build/Release/prober.node') as Partial<IcmpBinding>;
    if (typeof b.icmpOpen !== 'function' || typeof b.icmpInit !== 'function') throw new Error('it has no ICMP functions (an older build?)');
    b.icmpInit((slot, errno, data) => probes[slot]?.event(errno, data));
    binding = b as IcmpBinding;
  } catch (err) {
    loadError = (err as Error).message.split('\n')[0] ?? '';
    binding = null;
  }
  return binding;
}

/** Whether the native ICMP sockets are built and loadable. */
export function icmpBuilt(): boolean {
  return load() !== null;
}

/** What opening each kind of ICMP socket of `family` gives right now (needs the native module). */
export function socketAvailability(family: 4 | 6): SocketAvailability {
  const b = load();
  if (b === null) throw new Error(`the native module is not loadable: ${loadError}`);
  const check = (raw: boolean): string | undefined => {
    const e = b.icmpCheck(family, raw);
    return e === 0 ? undefined : errnoName(e);
  };
  return { dgram: check(false), raw: check(true) };
}

/** The process's groups and net.ipv4.ping_group_range, for the explanation of a refusal. */
export function permissionFacts(): PermissionFacts {
  const groups = [...new Set([process.getgid?.() ?? 0, ...(process.getgroups?.() ?? [])])];
  try {
    return { groups, pingGroupRange: readFileSync('/proc/sys/net/ipv4/ping_group_range', 'utf8') };
  } catch {
    return { groups };
  }
}

// ---- echo packets ----

const ECHO_REQUEST = { 4: 8, 6: 128 } as const;
const ECHO_REPLY = { 4: 0, 6: 129 } as const;
/** Bytes at the start of the data that are the probe's own (random): the rest is a fixed pattern. */
const COOKIE = 8;
const MAX_SIZE = 65000;

/** The Internet checksum (RFC 1071) of `buf`. */
export function icmpChecksum(buf: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < buf.length; i += 2) sum += buf.readUInt16BE(i);
  if (buf.length % 2 === 1) sum += buf[buf.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * An echo request. The ICMPv4 checksum is filled in (a raw socket sends it as it is; a datagram
 * socket recomputes it after writing its own identifier); ICMPv6 checksums are the kernel's.
 */
export function echoRequest(family: 4 | 6, id: number, seq: number, data: Buffer): Buffer {
  const p = Buffer.alloc(8 + data.length);
  p[0] = ECHO_REQUEST[family];
  p.writeUInt16BE(id & 0xffff, 4);
  p.writeUInt16BE(seq & 0xffff, 6);
  data.copy(p, 8);
  if (family === 4) p.writeUInt16BE(icmpChecksum(p), 2);
  return p;
}

export interface EchoReply {
  readonly id: number;
  readonly seq: number;
  readonly data: Buffer;
}

/**
 * The echo reply in a datagram read from an ICMP socket, or undefined when it is none. Only a raw
 * IPv4 socket's datagrams start with the IP header.
 */
export function parseEchoReply(family: 4 | 6, kind: IcmpKind, datagram: Buffer): EchoReply | undefined {
  let icmp = datagram;
  if (family === 4 && kind === 'raw') {
    if (datagram.length < 20 || datagram[0]! >> 4 !== 4 || datagram[9] !== 1) return undefined;
    icmp = datagram.subarray((datagram[0]! & 0x0f) * 4);
  }
  if (icmp.length < 8 || icmp[0] !== ECHO_REPLY[family] || icmp[1] !== 0) return undefined;
  return { id: icmp.readUInt16BE(4), seq: icmp.readUInt16BE(6), data: icmp.subarray(8) };
}

// ---- the tester ----

export interface PingParams {
  readonly socket: SocketPreference;
  /** Data bytes after the 8-byte ICMP header. */
  readonly size: number;
  /** The socket kind per family; a `local` choice is decided again by the next probe. */
  readonly choice: { 4: KindChoice; 6: KindChoice };
}

/** Identifier of this process's raw-socket echo requests (datagram sockets get the kernel's). */
const RAW_ID = randomInt(0x10000);
let nextSeq = randomInt(0x10000);

class PingProbe implements DeadlineBound {
  private slot = -1;
  private settled = false;
  private readonly started = performance.now();
  private sentAt = 0;
  private sent = false;
  private id = RAW_ID;
  private readonly seq: number;
  private request: Buffer = Buffer.alloc(0);
  private received = 0;
  private ignored = 0;

  constructor(
    private readonly target: ProbeTarget,
    private readonly kind: IcmpKind,
    private readonly data: Buffer,
    private readonly ctx: ProbeContext,
    private readonly done: (r: ProbeResult) => void,
  ) {
    this.seq = nextSeq;
    nextSeq = (nextSeq + 1) & 0xffff;
  }

  run(b: IcmpBinding): void {
    const family = this.target.family;
    const slot = b.icmpOpen(family, this.kind === 'raw', this.target.addr);
    if (slot < 0) return this.openFailed(errnoName(-slot));
    this.slot = slot;
    probes[slot] = this;
    this.request = echoRequest(family, this.id, this.seq, this.data);
    this.sentAt = performance.now();
    const err = b.icmpSend(slot, this.request);
    if (err !== 0) {
      const code = errnoName(err);
      const local = localErrno(code, 'socket');
      if (local !== undefined) return this.finishWith(localResult(local, 'cannot send the echo request'));
      return this.finish(false, `cannot send the echo request: ${describeCode(code, code)}`, earlyProblem(performance.now() - this.started));
    }
    this.sent = true;
    if (this.kind === 'dgram') {
      // The kernel wrote the socket's identifier into the request; replies carry it.
      const ident = b.icmpIdent(slot);
      if (ident >= 0) {
        this.id = ident;
        this.request.writeUInt16BE(ident, 4);
      }
    }
    this.ctx.comm?.('write', this.request);
    watchDeadline(this.ctx.signal, this);
  }

  private openFailed(code: string): void {
    const local = localErrno(code, 'socket');
    if (local !== undefined) return this.done(localResult(local, 'cannot open an ICMP socket'));
    if (code === 'EINVAL') return this.done({ ok: false, detail: `cannot ping: invalid address ${this.target.addr}` });
    if (code === 'EACCES' || code === 'EPERM') {
      const why = this.kind === 'dgram' ? dgramRefusal(code, permissionFacts()) : rawRefusal(code);
      return this.done({ ok: false, detail: `cannot open an ICMP ${this.kind} socket: ${why}` });
    }
    // connect() of a datagram socket fails at once when there is no route.
    this.done({ ok: false, detail: describeCode(code, code), problem: earlyProblem(performance.now() - this.started) });
  }

  /** A datagram (or a socket error) for this probe's socket. */
  event(errno: number, datagram: Buffer | undefined): void {
    if (this.settled) return;
    const elapsed = performance.now() - this.started;
    if (errno !== 0) {
      // An ICMP error about our request (host or network unreachable, ...), or a local one.
      const code = errnoName(errno);
      const local = localErrno(code, 'socket');
      if (local !== undefined) return this.finishWith(localResult(local, 'echo request failed'));
      return this.finish(false, describeCode(code, code), earlyProblem(elapsed));
    }
    if (datagram === undefined) return;
    this.received += datagram.length;
    this.ctx.comm?.('read', datagram);
    const reply = parseEchoReply(this.target.family, this.kind, datagram);
    const cookie = this.data.subarray(0, COOKIE);
    if (reply === undefined || reply.id !== this.id || reply.seq !== this.seq || !reply.data.subarray(0, cookie.length).equals(cookie)) {
      this.ignored++;
      return;
    }
    const rtt = performance.now() - this.sentAt;
    this.finishWith({
      ok: true,
      detail: `echo reply in ${rtt.toFixed(2)} ms (${this.kind} socket)`,
      connectMs: rtt,
      bytesSent: this.request.length,
      bytesReceived: this.received,
    });
  }

  deadline(): void {
    if (this.settled) return;
    const more = this.ignored > 0 ? ` (${this.ignored} other ICMP datagram(s) ignored)` : '';
    this.finish(false, `no echo reply within ${this.ctx.timeoutMs} ms${more}`, 'conn');
  }

  private finish(ok: boolean, detail: string, problem: ProbeProblem): void {
    this.finishWith({ ok, detail, problem, bytesSent: this.sent ? this.request.length : 0, bytesReceived: this.received });
  }

  private finishWith(result: ProbeResult): void {
    if (this.settled) return;
    this.settled = true;
    unwatchDeadline(this.ctx.signal, this);
    if (this.slot >= 0) {
      probes[this.slot] = undefined;
      binding?.icmpClose(this.slot);
    }
    this.done(result);
  }
}

function startPing(target: ProbeTarget, params: PingParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
  if (ctx.signal.aborted) return done({ ok: false, detail: `no echo reply within ${ctx.timeoutMs} ms`, problem: 'conn' });
  const b = load();
  if (b === null) return done({ ok: false, detail: `cannot ping: the native module is not loadable: ${loadError}` });
  let choice = params.choice[target.family];
  if ('local' in choice) {
    // The check at config load hit a shortage: decide now.
    choice = params.choice[target.family] = chooseKind(params.socket, socketAvailability(target.family), permissionFacts());
    if ('local' in choice) {
      const local = localErrno(choice.local, 'socket');
      if (local !== undefined) return done(localResult(local, 'cannot open an ICMP socket'));
    }
  }
  if ('error' in choice) return done({ ok: false, detail: `cannot ping (IPv${target.family}): ${choice.error}` });
  if (!('kind' in choice)) return done({ ok: false, detail: 'cannot ping: no ICMP socket kind decided' });
  // The data: the probe's random bytes, then a fixed pattern (as ping(8)'s).
  const data = Buffer.alloc(params.size);
  randomBytes(Math.min(COOKIE, params.size)).copy(data);
  for (let i = COOKIE; i < params.size; i++) data[i] = i & 0xff;
  new PingProbe(target, choice.kind, data, ctx, done).run(b);
}

const SOCKET_PREFS: readonly SocketPreference[] = ['auto', 'dgram', 'raw'];

export const pingTester: Tester<PingParams> = {
  name: 'ping',
  attrs: [
    {
      name: 'socket',
      type: 'string',
      maxLength: 5,
      default: 'auto',
      doc: 'ICMP socket: "auto" (default: unprivileged "dgram" where net.ipv4.ping_group_range allows it, else "raw"), "dgram" or "raw" (needs CAP_NET_RAW).',
    },
    { name: 'size', type: 'uint', default: 56, doc: 'Data bytes in the echo request after the ICMP header (default 56, as ping; at most 65000).' },
  ],

  compile(values: AttrValues, generic: GenericSettings): PingParams {
    if (generic.ssl) throw new AttrError('SSL', 'the ping tester has no TLS (SSL="1" is not supported)');
    const text = (typeof values.socket === 'string' && values.socket !== '' ? values.socket : 'auto').toLowerCase();
    const socket = SOCKET_PREFS.find((p) => p === text);
    if (socket === undefined) throw new AttrError('socket', `unknown socket "${values.socket}" (one of ${SOCKET_PREFS.join(', ')})`);
    const size = typeof values.size === 'number' ? values.size : 56;
    if (!Number.isInteger(size) || size < 0 || size > MAX_SIZE) throw new AttrError('size', `size ${size} is out of range (0..${MAX_SIZE})`);
    if (load() === null) {
      throw new AttrError('socket', `the ping tester needs build/Release/prober.node with its ICMP sockets (npm install builds it; it needs a C compiler): ${loadError}`);
    }
    const facts = permissionFacts();
    const decided = chooseKinds(socket, { 4: socketAvailability(4), 6: socketAvailability(6) }, facts);
    if (decided.error !== undefined) throw new AttrError('socket', decided.error);
    return { socket, size, choice: { 4: decided[4], 6: decided[6] } };
  },

  probe(target: ProbeTarget, params: PingParams, ctx: ProbeContext): Promise<ProbeResult> {
    return new Promise<ProbeResult>((resolve) => startPing(target, params, ctx, resolve));
  },

  start(target: ProbeTarget, params: PingParams, ctx: ProbeContext, done: (r: ProbeResult) => void): void {
    startPing(target, params, ctx, done);
  },
};
