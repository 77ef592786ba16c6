// Shared fixtures of the control-port tests: the sample service configuration (loopback only) with
// real servers its testers probe, the XML a real daemon is started with, a stand-in target for the
// few figures a real daemon cannot be made to produce, and a line-oriented TCP client.

import { connect, createServer, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { TesterRegistry } from '../../testers/registry.js';
import { parseServiceConfig } from '../../surealived/config/xml.js';
import { buildState, newTestCounters, type RealState, type TestCounters, type VirtualState } from '../../surealived/engine/state.js';
import type { ControlInfo, ControlTarget } from '../../surealived/control/target.js';
import type { ProcessStats } from '../../surealived/control/replies.js';
import { refusedPort, startDnsServer, startTcpServer, type Closable } from '../helpers/servers.js';

// ---- the sample configuration ----------------------------------------------------------------

export interface RealDef {
  readonly name: string;
  readonly addr: string;
  readonly port: number;
  readonly weight: number;
}

export interface VirtualDef {
  readonly name: string;
  readonly proto: 'tcp' | 'udp' | 'fwmark';
  /** Absent for fwmark virtuals. */
  readonly addr?: string;
  readonly port?: number;
  readonly fwmark?: number;
  readonly sched: string;
  readonly rt: 'dr' | 'masq' | 'tun';
  /** tcp: the real is up iff a TCP server accepts; dns: iff a DNS server answers the SOA query for probe.test. */
  readonly tester: 'tcp' | 'dns';
  /** More <tester> attributes (logmicro, stats_samples...). */
  readonly testerAttrs?: Readonly<Record<string, string>>;
  readonly reals: readonly RealDef[];
}

export const realDef = (name: string, addr: string, port: number, weight: number): RealDef => ({ name, addr, port, weight });

/** The common kind of virtual: tcp on addr:port, wlc, direct routing, probed by the tcp tester. */
export const tcpVirtual = (name: string, addr: string, port: number, reals: readonly RealDef[]): VirtualDef => ({
  name,
  proto: 'tcp',
  addr,
  port,
  sched: 'wlc',
  rt: 'dr',
  tester: 'tcp',
  reals,
});

/**
 * The configuration most tests talk about: every kind of virtual (tcp, udp, fwmark, IPv6, one without
 * reals), loopback addresses only. Distinct 127.0.0.x addresses are distinct virtuals; reals are on
 * 127.0.<n>.x and ::1, each with a server of its own that the daemon's testers really probe.
 */
export const SAMPLE: readonly VirtualDef[] = [
  tcpVirtual('web', '127.0.0.10', 80, [realDef('web1', '127.0.1.1', 80, 20), realDef('web2', '127.0.1.2', 8080, 10)]),
  {
    name: 'dns',
    proto: 'udp',
    addr: '127.0.0.20',
    port: 53,
    sched: 'rr',
    rt: 'masq',
    tester: 'dns',
    testerAttrs: { logmicro: '1', stats_samples: '5' },
    reals: [{ name: 'ns1', addr: '127.0.2.1', port: 53, weight: 5 }],
  },
  { name: 'fw', proto: 'fwmark', fwmark: 7, sched: 'sh', rt: 'tun', tester: 'tcp', reals: [{ name: 'fw1', addr: '127.0.3.1', port: 0, weight: 1 }] },
  tcpVirtual('v6', '::1', 443, [realDef('six1', '::1', 443, 3)]),
  tcpVirtual('empty', '127.0.0.90', 81, []),
];

/** `vlist` of the sample, byte for byte (XML order). */
export const SAMPLE_VLIST =
  'v:0 vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc\n' +
  'v:1 vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr\n' +
  'v:2 vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh\n' +
  'v:3 vname=v6 vproto=tcp vaddr=::1 vport=443 vfwmark=0 vrt=dr vsched=wlc\n' +
  'v:4 vname=empty vproto=tcp vaddr=127.0.0.90 vport=81 vfwmark=0 vrt=dr vsched=wlc\n';

/** The name probe.test the dns tester asks for, and the SOA answer that makes a real up. */
const DNS_TABLE = {
  'probe.test': {
    answers: [
      {
        type: 'SOA' as const,
        name: 'probe.test',
        ttl: 60,
        data: { mname: 'ns1.probe.test', rname: 'hostmaster.probe.test', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 60 },
      },
    ],
  },
};

export interface XmlOptions {
  /** Seconds between probes of a real; the default (an hour) probes every real exactly once in a test. */
  readonly loopdelay?: number;
  readonly timeout?: number;
  /** Reals (by name) whose testport is a port nobody listens on: their probe is refused, they go OFFLINE. */
  readonly down?: readonly string[];
}

const xmlAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

/** The XML of `defs`, every real probed at `testport(real name)`. Pure. */
export function serviceXml(defs: readonly VirtualDef[], testport: (real: string) => number, o: XmlOptions = {}): string {
  let out = '<surealived>\n';
  for (const v of defs) {
    const where = v.fwmark !== undefined ? `fwmark="${v.fwmark}"` : `addr="${v.addr}" port="${v.port}"`;
    out += `<virtual name="${xmlAttr(v.name)}" ${where} proto="${v.proto}" sched="${v.sched}" rt="${v.rt}">\n`;
    const attrs = Object.entries(v.testerAttrs ?? {})
      .map(([k, val]) => ` ${k}="${xmlAttr(val)}"`)
      .join('');
    const request = v.tester === 'dns' ? ' request="probe.test"' : '';
    // The tester's own testport is never used: every real names its server's port.
    out += `  <tester proto="${v.tester}" testport="9" loopdelay="${o.loopdelay ?? 3600}" timeout="${o.timeout ?? 2}" retries2ok="1" retries2fail="1"${request}${attrs}/>\n`;
    for (const r of v.reals) {
      out += `  <real name="${xmlAttr(r.name)}" addr="${r.addr}" port="${r.port}" weight="${r.weight}" testport="${testport(r.name)}"/>\n`;
    }
    out += '</virtual>\n';
  }
  return `${out}</surealived>\n`;
}

/**
 * One live server per real (by real name: a name used in several virtuals is one server), on the
 * real's own loopback address and an ephemeral port given to the daemon as the real's testport.
 */
export class RealServers {
  private constructor(
    private readonly defs: readonly VirtualDef[],
    private readonly ports: ReadonlyMap<string, number>,
    private readonly servers: readonly Closable[],
  ) {}

  static async start(defs: readonly VirtualDef[] = SAMPLE): Promise<RealServers> {
    const ports = new Map<string, number>();
    const servers: Closable[] = [];
    try {
      for (const v of defs) {
        for (const r of v.reals) {
          if (ports.has(r.name)) continue;
          const s = v.tester === 'dns' ? await startDnsServer(DNS_TABLE, r.addr) : await startTcpServer('silent', { host: r.addr });
          servers.push(s);
          ports.set(r.name, s.port);
        }
      }
    } catch (e) {
      for (const s of servers) await s.close();
      throw e;
    }
    return new RealServers(defs, ports, servers);
  }

  /** The port the daemon probes for this real (its server). */
  testport(real: string): number {
    const p = this.ports.get(real);
    if (p === undefined) throw new Error(`no server for real ${real}`);
    return p;
  }

  /** The service configuration of these virtuals, each real probed at its server (or refused, if down). */
  async xml(o: XmlOptions = {}): Promise<string> {
    const down = new Set(o.down ?? []);
    const refused = new Map<string, number>();
    for (const v of this.defs) for (const r of v.reals) if (down.has(r.name) && !refused.has(r.name)) refused.set(r.name, await refusedPort(r.addr));
    return serviceXml(this.defs, (r) => refused.get(r) ?? this.testport(r), o);
  }

  async close(): Promise<void> {
    for (const s of this.servers) await s.close();
  }
}

/** Whether this machine has an IPv6 loopback: a plain server can listen on ::1. */
export async function ipv6Loopback(): Promise<boolean> {
  const s = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    s.once('error', () => resolve(false));
    s.listen(0, '::1', () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => s.close(() => resolve()));
  return ok;
}

/**
 * Connections the kernel shows as held by the server side of `host:port` (IPv4; the local end,
 * ESTABLISHED or CLOSE_WAIT): what a listener there has accepted and not yet closed. From /proc/net/tcp.
 */
export function serverSideConnections(port: number, host = '127.0.0.1'): number {
  // /proc/net/tcp writes an IPv4 address as its 32 bits in host order (little-endian here), in hex.
  const addr = host
    .split('.')
    .reverse()
    .map((b) => Number(b).toString(16).toUpperCase().padStart(2, '0'))
    .join('');
  const local = `${addr}:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length >= 4 && cols[1] === local && (cols[3] === '01' || cols[3] === '08')) n++;
  }
  return n;
}

// ---- the stand-in target -----------------------------------------------------------------------

/**
 * NOT the daemon: a ControlTarget over plain state, for the few replies whose figures a real daemon
 * cannot be made to produce — fixed process figures (getrusage, /proc) and fixed probe timings for a
 * byte-exact `stats`/`connstats`, and counters beyond 2^32. Everything else runs against the real
 * daemon (test/helpers/daemon.ts). Its state is built from the same XML the daemon reads.
 */
export class StandInTarget implements ControlTarget {
  readonly counters: TestCounters = newTestCounters();
  infoValue: ControlInfo = { pid: 4242, watchdogPid: -1, offlineSize: 2, overrideSize: 1, gatherStats: true };

  private constructor(readonly virtuals: VirtualState[]) {}

  static async fromXml(xml: string): Promise<StandInTarget> {
    const res = await parseServiceConfig(xml, 'stand-in.xml', { registry: TesterRegistry.withBuiltins(), modulesPath: '/nonexistent' });
    if (!res.config) throw new Error(`stand-in config rejected: ${JSON.stringify(res.issues)}`);
    return new StandInTarget(buildState(res.config.virtuals));
  }

  commitRset(): void {
    // Nothing to persist: the stand-in's tests send no rset (the daemon's own tests check its files).
  }

  info(): ControlInfo {
    return this.infoValue;
  }

  real(vi: number, ri: number): RealState {
    return this.virtuals[vi]!.reals[ri]!;
  }
}

/** Process figures for the stand-in: a real process never has these exact values. */
export const fixedProcessStats: ProcessStats = {
  userTimeUs: 1_234_567,
  systemTimeUs: 89,
  blockInOps: 1,
  blockOutOps: 2,
  messagesSent: 3,
  messagesRcvd: 4,
  signalsRcvd: 5,
  voluntaryCtx: 6,
  involuntaryCtx: 7,
  fdUsed: 12,
  vm: [
    { name: 'Peak', value: 123456, unit: 'kB' },
    { name: 'RSS', value: 42, unit: 'kB' },
  ],
};

export const END = '_SD_CMD_END_\n';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---- the client ------------------------------------------------------------------------------

/** A control-port client that reads replies as the original's clients do: by lines and the end marker. */
export class Client {
  /** Unread text, as received: a reply of megabytes is joined once, when its end is found. */
  private parts: string[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  /** performance.now() when the close was seen. */
  closedAt = NaN;
  readonly closedPromise: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      this.parts.push(d);
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closedPromise = new Promise((resolve) =>
      socket.on('close', () => {
        this.closed = true;
        this.closedAt = performance.now();
        this.wake();
        resolve();
      }),
    );
  }

  static open(port: number, host = '127.0.0.1'): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ port, host }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  static openPath(path: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const s = connect({ path }, () => resolve(new Client(s)));
      s.once('error', reject);
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /**
   * Wait for `pattern` in the unread text and take everything up to and including it. Each chunk is
   * searched once, with the end of the previous one (a pattern may straddle two chunks).
   * `atStart`: the pattern may also begin one character before the text, as if it followed a `\n`.
   */
  private async take(pattern: string, what: string, atStart = false, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    let carry = atStart ? '\n' : '';
    let carryAt = atStart ? -1 : 0; // text offset of carry[0]
    let next = 0; // first chunk not yet searched
    for (;;) {
      for (; next < this.parts.length; next++) {
        const hay = carry + this.parts[next]!;
        const i = hay.indexOf(pattern);
        if (i >= 0) {
          const end = carryAt + i + pattern.length;
          const all = this.parts.join('');
          this.parts = end < all.length ? [all.slice(end)] : [];
          return all.slice(0, end);
        }
        const keep = Math.min(hay.length, pattern.length - 1);
        carryAt += hay.length - keep;
        carry = hay.slice(hay.length - keep);
      }
      if (this.closed) throw new Error(`connection closed while waiting for ${what}; have ${JSON.stringify(this.pending().slice(0, 500))}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timeout waiting for ${what}; have ${JSON.stringify(this.pending().slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** One line, with its `\n` (an error reply). */
  line(): Promise<string> {
    return this.take('\n', 'a line');
  }

  /** Everything up to and including the `_SD_CMD_END_` line (a successful reply). */
  untilEnd(): Promise<string> {
    return this.take(`\n${END}`, 'the end marker', true);
  }

  send(text: string): void {
    this.socket.write(text);
  }

  async ask(line: string): Promise<string> {
    this.send(`${line}\n`);
    return this.untilEnd();
  }

  async askError(line: string): Promise<string> {
    this.send(`${line}\n`);
    return this.line();
  }

  /** Text received and not yet taken. */
  pending(): string {
    return this.parts.join('');
  }

  async waitClosed(ms = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.closedPromise,
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error('connection not closed')), ms);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.socket.destroy();
  }
}
