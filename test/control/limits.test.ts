// The control port's bounds on a running daemon: 4 KiB lines, connection limit, idle timeout, floods
// and fuzzing that must neither crash the daemon nor keep it from probing; plus the unix socket and
// IPv6 listeners and a port already taken. Timing is checked by order and causality, or against the
// configured timeouts with generous margins, never by tight wall-clock windows.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { TestDaemon, until, type TestDaemonOptions } from '../helpers/daemon.js';
import { prng } from '../helpers/prng.js';
import { progressOf, type WorkerJob, type WorkerResult } from './client-worker.js';
import { Client, END, RealServers, SAMPLE, SAMPLE_VLIST, ipv6Loopback, serverSideConnections, sleep, type XmlOptions } from './helpers.js';

const VLIST_HEAD = 'v:0 vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc\n';
/** The sample without its IPv6 virtual, for a machine without an IPv6 loopback. */
const SAMPLE_VLIST_V4 =
  'v:0 vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc\n' +
  'v:1 vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr\n' +
  'v:2 vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh\n' +
  'v:3 vname=empty vproto=tcp vaddr=127.0.0.90 vport=81 vfwmark=0 vrt=dr vsched=wlc\n';
/** Probe timeout of the configurations that keep probing (loopdelay 0.1 s) during floods. */
const PROBE_TIMEOUT_S = 2;

function runClients(job: WorkerJob): Promise<WorkerResult[]> {
  return new Promise((resolve, reject) => {
    const w = new Worker(new URL('./client-worker.js', import.meta.url), { workerData: job });
    w.once('message', (m: WorkerResult[]) => {
      resolve(m);
      void w.terminate();
    });
    w.once('error', reject);
  });
}

interface ProbeFigures {
  readonly tSuccess: number;
  readonly tFailed: number;
  /** Reals currently failing their tests. */
  readonly failed: number;
}

async function probeFigures(c: Client): Promise<ProbeFigures> {
  const j = JSON.parse((await c.ask('stats json')).split('\n')[0]!) as Record<string, number>;
  return { tSuccess: j['t_success']!, tFailed: j['t_failed']!, failed: j['failed']! };
}

/**
 * Once the worker has received replies on every connection, runs `during` (another client's command);
 * `stillRunning`: some connection of the worker was not fully answered yet when `during` had its reply.
 */
async function whileRunning<T>(progress: SharedArrayBuffer, conns: number, during: () => Promise<T>): Promise<{ value: T; stillRunning: boolean }> {
  await until(() => Array.from({ length: conns }, (_, i) => progressOf(progress, i).bytes > 0).every(Boolean), 'the first replies to the flood', 60_000);
  const value = await during();
  const stillRunning = Array.from({ length: conns }, (_, i) => progressOf(progress, i).done).some((d) => !d);
  return { value, stillRunning };
}

describe('control port of a running daemon: limits and robustness', function () {
  this.timeout(60_000);
  let servers: RealServers | undefined;
  let ipv6 = false;
  const daemons: TestDaemon[] = [];
  const clients: Client[] = [];

  before(async () => {
    ipv6 = await ipv6Loopback();
    servers = await RealServers.start(ipv6 ? SAMPLE : SAMPLE.filter((v) => v.name !== 'v6'));
  });
  after(async () => {
    await servers?.close();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const d of daemons.splice(0)) await d.stop();
  });

  const open = async (port: number, host?: string): Promise<Client> => {
    const c = await Client.open(port, host);
    clients.push(c);
    return c;
  };

  /** A daemon on the sample (or `xml`), every real probed once before the test goes on. */
  async function start(o: XmlOptions & Partial<TestDaemonOptions> = {}): Promise<TestDaemon> {
    const d = await TestDaemon.start({ ...o, xml: o.xml ?? (await servers!.xml(o)) });
    daemons.push(d);
    await d.waitAllTested();
    return d;
  }

  /** A new connection that the daemon accepts, retried while it refuses for the connection limit (a slot is freed a moment after a close). */
  async function openAccepted(port: number, limitText: string): Promise<Client> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = await open(port);
      c.send('vlist\n');
      try {
        await c.untilEnd();
        return c;
      } catch (e) {
        if (c.pending() !== limitText || Date.now() > deadline) throw e;
        await sleep(20);
      }
    }
  }

  it('executes a line of exactly 4096 bytes (with or without \\r), and answers a longer one with one error line, then closes', async () => {
    const d = await start();
    const c = await open(d.port);
    const line4096 = 'vlist' + ' '.repeat(4091);
    assert.equal(Buffer.byteLength(line4096), 4096);
    assert.ok((await c.ask(line4096)).startsWith(VLIST_HEAD));
    assert.ok((await c.ask(`${line4096}\r`)).startsWith(VLIST_HEAD));
    c.send(`vlist${' '.repeat(4092)}\nvlist\n`);
    assert.equal(await c.line(), 'Line too long (max 4096 bytes)\n');
    await c.waitClosed();
    assert.equal(c.pending(), '', 'nothing after the error line: the following vlist was not run');
  });

  it('keeps a partial line across writes, closes a connection that sends more than 4 KiB without any newline, and logs the peer', async () => {
    const d = await start();
    const c = await open(d.port);
    const peer = `127.0.0.1:${c.socket.localPort}`;
    c.send('x'.repeat(3000));
    await sleep(20);
    assert.equal(c.closed, false);
    // The 3000 bytes were kept: completing the line to exactly 4096 bytes runs it.
    c.send(`${'x'.repeat(1096)}\n`);
    assert.equal(await c.line(), `Invalid request! [${'x'.repeat(4096)}]\n`);
    c.send('y'.repeat(3000));
    await sleep(20);
    assert.equal(c.closed, false);
    c.send('y'.repeat(3000));
    assert.equal(await c.line(), 'Line too long (max 4096 bytes)\n');
    await c.waitClosed();
    // Logged before the line was sent, naming this very client.
    assert.ok(d.logLines.some((l) => l.endsWith(`warn  : control client ${peer}: request line longer than 4096 bytes, closing\n`)), d.log);
  });

  it('holds 1024 idle connections, refuses the 76 beyond them at once, and accepts again when one leaves', async () => {
    const d = await start();
    const port = d.port;
    const LIMIT = 'Too many connections (max 1024)\n';
    const all: Client[] = [];
    for (let i = 0; i < 1100; i += 100) {
      all.push(...(await Promise.all(Array.from({ length: 100 }, () => open(port)))));
    }
    await until(
      () => all.filter((c) => c.closed).length === 76 && serverSideConnections(port) === 1024,
      () => `1024 held / 76 refused, have ${serverSideConnections(port)} held / ${all.filter((c) => c.closed).length} closed`,
      20_000,
    );
    const refused = all.filter((c) => c.closed);
    for (const c of refused) assert.equal(c.pending(), LIMIT);
    const held = all.filter((c) => !c.closed);
    assert.equal(held.length, 1024);
    assert.ok((await held[0]!.ask('vlist')).startsWith(VLIST_HEAD), 'held connections are served');
    assert.ok((await held[1023]!.ask('vlist')).startsWith(VLIST_HEAD));
    assert.match(d.log, /warn  : control port: connection limit 1024 reached, refusing \(1 refused so far\)\n/);
    // Still full: one more is refused.
    const extra = await open(port);
    await extra.waitClosed();
    assert.equal(extra.pending(), LIMIT);
    held[5]!.close();
    await until(() => serverSideConnections(port) === 1023, 'the daemon closes its side of the connection that left');
    const again = await openAccepted(port, LIMIT);
    assert.equal(again.closed, false);
    // The freed slot is taken again: the next one is refused.
    const over = await open(port);
    await over.waitClosed();
    assert.equal(over.pending(), LIMIT);
  });

  it('closes connections idle for control_idle_timeout and keeps busy ones; both slots are free again afterwards', async () => {
    const IDLE_MS = 1000; // control_idle_timeout is in whole seconds
    // Timers fire on libuv's millisecond clock: allow its truncation, nothing more.
    const CLOCK_MS = 2;
    const d = await start({ main: { control_idle_timeout: '1', control_max_clients: '2' } });
    const port = d.port;
    const t0 = performance.now(); // before the daemon can have seen either connection
    const idle = await open(port);
    const busy = await open(port);
    const third = await open(port);
    await third.waitClosed();
    assert.equal(third.pending(), 'Too many connections (max 2)\n', 'both slots are taken by the two');

    let lastSent = t0;
    while (performance.now() - t0 < 3 * IDLE_MS) {
      await sleep(200);
      assert.equal(busy.closed, false, `a connection with traffic every ~200 ms was closed ${(performance.now() - t0).toFixed(0)} ms in`);
      lastSent = performance.now();
      assert.ok((await busy.ask('vlist')).startsWith(VLIST_HEAD));
    }
    assert.equal(idle.closed, true, 'the idle connection was closed');
    assert.ok(idle.closedAt - t0 >= IDLE_MS - CLOCK_MS, `idle connection closed ${(idle.closedAt - t0).toFixed(1)} ms after it opened`);
    assert.ok(idle.closedAt < lastSent, 'the idle one was closed while the busy one was still served');
    assert.equal(busy.closed, false);
    await busy.waitClosed(10 * IDLE_MS);
    assert.ok(busy.closedAt - lastSent >= IDLE_MS - CLOCK_MS, `busy connection closed ${(busy.closedAt - lastSent).toFixed(1)} ms after its last request`);
    // The daemon forgot both: two new connections are served.
    await openAccepted(port, 'Too many connections (max 2)\n');
    await openAccepted(port, 'Too many connections (max 2)\n');
  });

  it('survives clients that reset mid-reply and clients that never read', async () => {
    const d = await start();
    for (let i = 0; i < 20; i++) {
      const s = connect({ port: d.port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      await new Promise((r) => s.once('connect', r));
      s.write('connstats\nvlist\nstats\n'.repeat(50));
      s.resetAndDestroy();
    }
    // A client that never reads: replies pile up until TCP backpressure pauses the connection.
    const lazy = connect({ port: d.port, host: '127.0.0.1' });
    lazy.on('error', () => undefined);
    try {
      await new Promise((r) => lazy.once('connect', r));
      lazy.pause();
      lazy.write('connstats\n'.repeat(20_000));
      await sleep(200);
      const c = await open(d.port);
      assert.equal(await c.ask('vlist'), (ipv6 ? SAMPLE_VLIST : SAMPLE_VLIST_V4) + END, 'other clients are still served');
    } finally {
      lazy.destroy();
    }
  });

  it('a flood of 300,000 empty lines is answered line by line while other clients are served and probes keep their deadlines', async function () {
    this.timeout(120_000);
    const d = await start({ loopdelay: 0.1, timeout: PROBE_TIMEOUT_S });
    const side = await open(d.port);
    const before = await probeFigures(side);
    const n = 300_000;
    const progress = new SharedArrayBuffer(8);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const flood = runClients({ port: d.port, returnOutput: true, progress, connections: [{ chunks: [Buffer.from('\n'.repeat(n))], sentinel: 'flood-done' }] });
    // Another client's command, sent once the flood is being answered, is answered before the flood is.
    const during = await whileRunning(progress, 1, () => side.ask('vlist'));
    const [res] = await flood;
    h.disable();
    assert.equal(during.value, (ipv6 ? SAMPLE_VLIST : SAMPLE_VLIST_V4) + END);
    assert.ok(during.stillRunning, 'the flood was still being answered when the other client got its reply');
    assert.equal(res!.closedEarly, false);
    assert.ok(res!.output === 'Invalid request! []\n'.repeat(n) + 'Invalid request! [flood-done]\n', 'one error line per empty line, in order');
    const after = await probeFigures(side);
    assert.ok(after.tSuccess > before.tSuccess, `probes ran during the flood (${before.tSuccess} -> ${after.tSuccess})`);
    // A stall as long as the probe timeout would have failed probes of these live servers.
    assert.equal(after.tFailed, before.tFailed, 'no probe missed its deadline');
    assert.equal(after.failed, 0, 'every real still online');
    const maxMs = h.max / 1e6;
    assert.ok(maxMs < PROBE_TIMEOUT_S * 1000, `event loop delay max ${maxMs.toFixed(1)} ms, beyond the probe timeout`);
    if (process.env['CONTROL_TEST_VERBOSE']) console.log(`flood: event loop delay max ${maxMs.toFixed(1)} ms`);
  });

  it('survives 10,000 random and mutated command lines (seeded), probing on, then answers vlist exactly and has saved what it applied', async function () {
    this.timeout(120_000);
    const d = await start({ loopdelay: 0.1, timeout: PROBE_TIMEOUT_S });
    const side = await open(d.port);
    const before = await probeFigures(side);
    const diffsBefore = d.diffs().length;
    const rnd = prng(0x5eed1337);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const valid = [
      'vlist',
      'vlist json',
      'rlist vproto=tcp vaddr=127.0.0.10 vport=80',
      'rlist vproto=fwmark vfwmark=7 json',
      'rlist vname=v6',
      'rset vproto=tcp vaddr=127.0.0.10 vport=80 raddr=127.0.1.1 rport=80 rstate=DOWN',
      'rset vproto=udp vaddr=127.0.0.20 vport=53 raddr=127.0.2.1 rport=53 rweight=50%',
      'rset vname=v6 raddr=::1 rport=443 rstate=ONLINE rweight=3',
      'stats',
      'stats json',
      'connstats',
      'connstats json',
      'metrics',
    ];
    const alphabet = ' \t=%:.\r\0abcdefvlistrsetprotoaddrweightONLINEDOWN0123456789-+xyzé€\u{1F600}';
    const mutate = (s: string): string => {
      const chars = [...s];
      const edits = 1 + Math.floor(rnd() * 4);
      for (let i = 0; i < edits; i++) {
        const at = Math.floor(rnd() * (chars.length + 1));
        const op = rnd();
        if (op < 0.3) chars.splice(at, 1);
        else if (op < 0.6) chars.splice(at, 0, pick([...alphabet]));
        else if (op < 0.8) chars.splice(at, 1, pick([...alphabet]));
        else chars.splice(at, 0, ...pick([' vport=99999999999', ' vfwmark=-1', ' rweight=%%%', ' raddr=::', ' vaddr=1.2.3', ' =', ' json', ' vname=']));
      }
      return chars.join('');
    };
    const randomBytes = (): Buffer => {
      const len = Math.floor(rnd() * 300);
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) {
        let x = Math.floor(rnd() * 256);
        if (x === 0x0a) x = 0x0b; // newline would split the line
        b[i] = x;
      }
      return b;
    };
    const lines: Buffer[] = [];
    for (let i = 0; i < 10_000; i++) {
      const r = rnd();
      if (r < 0.35) lines.push(randomBytes());
      else if (r < 0.9) lines.push(Buffer.from(mutate(pick(valid)), 'utf8'));
      else lines.push(Buffer.from(pick(valid), 'utf8'));
    }

    // Four connections from another thread, each sending its share in large writes as a hostile
    // client would, while this thread (the daemon's) serves them and one more client.
    const conns = 4;
    const progress = new SharedArrayBuffer(8 * conns);
    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const fuzz = runClients({
      port: d.port,
      returnOutput: false,
      progress,
      connections: Array.from({ length: conns }, (_, ci) => {
        const mine = lines.filter((_, i) => i % conns === ci);
        const chunks: Buffer[] = [];
        for (let i = 0; i < mine.length; i += 500) chunks.push(Buffer.concat(mine.slice(i, i + 500).flatMap((l) => [l, Buffer.from('\n')])));
        return { chunks, sentinel: `fuzz-done-${ci}` };
      }),
    });
    const during = await whileRunning(progress, conns, () => side.ask('rlist vname=dns'));
    const results = await fuzz;
    h.disable();
    assert.ok(during.value.startsWith('vname=dns vproto=udp vaddr=127.0.0.20 vport=53 '), during.value);
    for (const r of results) assert.equal(r.closedEarly, false, 'every line was answered and no fuzz line closed the connection');
    const maxMs = h.max / 1e6;
    if (process.env['CONTROL_TEST_VERBOSE']) {
      console.log(`fuzz: event loop delay max ${maxMs.toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, other client served during the fuzz: ${during.stillRunning}, ${results.map((r) => r.bytes).join('/')} bytes`);
    }
    const after = await probeFigures(side);
    assert.ok(after.tSuccess > before.tSuccess, `probes ran during the fuzz (${before.tSuccess} -> ${after.tSuccess})`);
    assert.equal(after.tFailed, before.tFailed, 'no probe missed its deadline');
    assert.equal(after.failed, 0, 'every real still online');
    assert.ok(maxMs < PROBE_TIMEOUT_S * 1000, `event loop delay max ${maxMs.toFixed(1)} ms, beyond the probe timeout`);

    const fresh = await open(d.port);
    assert.equal(await fresh.ask('vlist'), (ipv6 ? SAMPLE_VLIST : SAMPLE_VLIST_V4) + END);
    assert.ok(d.diffs().length > diffsBefore, 'some fuzzed rset lines were valid and reached the hand-off');
    // What the daemon holds (rlist json) is what override.dump says (spec 7.2, written by hand here).
    assert.equal(d.overrideDump(), await overrideDumpOf(fresh));
    side.close();
    await until(() => serverSideConnections(d.port) === 1, () => `the fuzz connections are gone (${serverSideConnections(d.port)} held)`);
  });

  it('listens on a unix socket with mode 0600, replacing a stale socket file but not a live one', async () => {
    const path = join(tmpdir(), `surealived-ctl-${process.pid}-${Date.now()}.sock`);
    // A daemon killed with SIGKILL leaves its socket file behind.
    const child = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => child.once('exit', r));
    assert.ok((await stat(path)).isSocket(), 'stale socket file present');
    const d = await start({ main: { control_socket: path } });
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    await assert.rejects(start({ main: { control_socket: path } }), /control socket .*: cannot listen: EADDRINUSE/);
    const c = await Client.openPath(path);
    clients.push(c);
    assert.ok((await c.ask('vlist')).startsWith(VLIST_HEAD), 'the live socket was not taken over');
    await d.stop();
    await assert.rejects(stat(path), /ENOENT/, 'the socket file is removed on stop');
  });

  describe('on IPv6', () => {
    before(async function () {
      // Checked apart from the control port (a plain server on ::1): only a machine without an IPv6
      // loopback skips; there, any error of the daemon's IPv6 listener fails the test.
      if (!(await ipv6Loopback())) this.skip();
    });

    it('listens on an IPv6 address when asked', async () => {
      const d = await start({ main: { listen_addr: '::1' } });
      assert.deepEqual(d.daemon.controlAddress, { address: '::1', family: 'IPv6', port: d.port });
      const c = await open(d.port, '::1');
      assert.equal(await c.ask('vlist'), (ipv6 ? SAMPLE_VLIST : SAMPLE_VLIST_V4) + END);
      assert.match(d.log, new RegExp(`info  : Binding cmd interface to \\[::1:${d.port}\\]\\n`));
    });
  });

  it('fails to start with a message naming the address when the port is taken', async () => {
    const d = await start();
    await assert.rejects(start({ main: { listen_port: String(d.port) } }), new RegExp(`control port 127\\.0\\.0\\.1:${d.port}: cannot listen: EADDRINUSE`));
    assert.ok((await (await open(d.port)).ask('vlist')).startsWith(VLIST_HEAD), 'the running daemon keeps its port');
  });
});

/**
 * override.dump as spec 7.2 says it must read for what the daemon reports: a line per real that is
 * not ONLINE at its configured weight (or 100 %), `VKEY - RKEY - weight=<W><% or space> rstate=<R>`.
 */
async function overrideDumpOf(c: Client): Promise<string> {
  const jsonOf = async (line: string): Promise<unknown> => JSON.parse((await c.ask(line)).split('\n')[0]!) as unknown;
  const vlist = (await jsonOf('vlist json')) as { virtuals: Array<{ index: number; vname: string; vproto: string; vaddr: string; vport: number; vfwmark: number }> };
  const host = (a: string): string => (a.includes(':') ? `[${a}]` : a);
  let out = '';
  for (const v of vlist.virtuals) {
    const rl = (await jsonOf(`rlist vname=${v.vname} json`)) as {
      reals: Array<{ raddr: string; rport: number; confwgt: number; rstate: string; override: { weight: number; percent: boolean } | null }>;
    };
    const vkey = `${host(v.vaddr)}:${v.vport}:${{ tcp: 0, udp: 1, fwmark: 2 }[v.vproto]}:${v.vfwmark}`;
    for (const r of rl.reals) {
      const o = r.override ?? { weight: r.confwgt, percent: false };
      const neutral = r.rstate === 'ONLINE' && (o.percent ? o.weight === 100 : o.weight === r.confwgt);
      if (!neutral) out += `${vkey} - ${host(r.raddr)}:${r.rport} - weight=${o.weight >>> 0}${o.percent ? '%' : ' '} rstate=${r.rstate}\n`;
    }
  }
  return out;
}
