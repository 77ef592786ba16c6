// Behaviour of the udp tester against real UDP sockets on loopback (IPv4 and ::1): an echo server,
// a server with a fixed answer, a silent port (bound, never answering) and a closed port (ICMP port
// unreachable); text and hex payloads, pattern match and mismatch, a descriptor shortage, and the
// tester through the config loader and the running daemon.

import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compilePattern, matchesHex, parseHex, parseText, silenceMs, udpTester, type UdpParams } from '../../testers/udp.js';
import type { AttrValues, CommTag, ProbeResult } from '../../testers/contract.js';
import { closedUdpPort, deadline, target } from '../helpers/servers.js';
import { parseServiceConfig, formatIssue } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';

const compile = (values: AttrValues, timeoutMs = 1000): UdpParams => udpTester.compile(values, { ssl: false, timeoutMs });

async function timed(p: Promise<ProbeResult>): Promise<{ r: ProbeResult; ms: number }> {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

interface UdpServer {
  readonly port: number;
  /** Datagrams received, in order. */
  readonly got: Buffer[];
  close(): Promise<void>;
}

/** A UDP socket on `host`: 'echo' sends each datagram back, 'fixed' answers `answer`, 'silent' never answers. */
async function startUdpServer(mode: 'echo' | 'fixed' | 'silent', host = '127.0.0.1', answer = Buffer.alloc(0)): Promise<UdpServer> {
  const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
  const got: Buffer[] = [];
  sock.on('message', (msg, rinfo) => {
    got.push(msg);
    if (mode === 'echo') sock.send(msg, rinfo.port, rinfo.address);
    if (mode === 'fixed') sock.send(answer, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, host, resolve));
  return { port: sock.address().port, got, close: () => new Promise<void>((resolve) => sock.close(() => resolve())) };
}

describe('udp tester: payloads and patterns (pure)', () => {
  it('hex: octet pairs, spaces between octets, a lone digit is one octet; x is a wildcard nibble only where allowed', () => {
    assert.deepEqual(parseHex('0a1B2c', 'a', false).bytes, Buffer.from([0x0a, 0x1b, 0x2c]));
    assert.deepEqual(parseHex('0a 1b\t2c', 'a', false).bytes, Buffer.from([0x0a, 0x1b, 0x2c]));
    assert.deepEqual(parseHex('1 ff 2', 'a', false).bytes, Buffer.from([0x01, 0xff, 0x02]));
    const w = parseHex('4x x5 xx', 'a', true);
    assert.deepEqual(w.bytes, Buffer.from([0x40, 0x05, 0x00]));
    assert.deepEqual(w.mask, Buffer.from([0xf0, 0x0f, 0x00]));
    assert.throws(() => parseHex('4x', 'payload_hex', false), (e: Error & { attr?: string }) => e.name === 'AttrError' && e.attr === 'payload_hex' && /"x" is not a hex digit/.test(e.message));
    assert.throws(() => parseHex('zz', 'expect_hex', true), /"z" is not a hex digit or x/);
    assert.throws(() => parseHex('   ', 'expect_hex', true), /no bytes/);
  });

  it('hex expectation: a prefix of the reply, compared under the mask; a shorter reply does not match', () => {
    const want = parseHex('de xd', 'expect_hex', true);
    assert.equal(matchesHex(Buffer.from([0xde, 0x0d, 0x99]), want), true);
    assert.equal(matchesHex(Buffer.from([0xde, 0xfd]), want), true);
    assert.equal(matchesHex(Buffer.from([0xdf, 0x0d]), want), false);
    assert.equal(matchesHex(Buffer.from([0xde, 0x0e]), want), false);
    assert.equal(matchesHex(Buffer.from([0xde]), want), false);
  });

  it('text payload: C escapes \\n \\r \\t \\0 \\\\ \\xHH, other backslashes kept, UTF-8 beyond Latin-1', () => {
    assert.deepEqual(parseText('PING\\r\\n'), Buffer.from('PING\r\n'));
    assert.deepEqual(parseText('a\\x00\\xffb\\0\\t\\\\'), Buffer.from([0x61, 0x00, 0xff, 0x62, 0x00, 0x09, 0x5c]));
    assert.deepEqual(parseText('\\q\\x4'), Buffer.from('\\q\\x4'));
    assert.deepEqual(parseText('é'), Buffer.from('é', 'utf8'));
  });

  it('patterns: plain source or /source/flags; g and y are refused, a bad pattern names the attribute', () => {
    assert.equal(compilePattern('^PONG').test('PONG 1'), true);
    assert.equal(compilePattern('/^pong/i').test('PONG 1'), true);
    assert.equal(compilePattern('^pong').test('PONG'), false);
    assert.throws(() => compilePattern('/x/g'), (e: Error & { attr?: string }) => e.attr === 'expect' && /flag "g"/.test(e.message));
    assert.throws(() => compilePattern('(unclosed'), (e: Error & { attr?: string }) => e.attr === 'expect' && /not a regular expression/.test(e.message));
  });

  it('compile: defaults, exclusive payloads, an expectation implies require_reply, no TLS', () => {
    assert.deepEqual(compile({}), { payload: Buffer.alloc(0), requireReply: false });
    assert.equal(compile({ require_reply: true }).requireReply, true);
    assert.equal(compile({ expect: 'x' }).requireReply, true);
    assert.equal(compile({ expect_hex: '01' }).requireReply, true);
    assert.deepEqual(compile({ payload_hex: 'ff00' }).payload, Buffer.from([0xff, 0x00]));
    assert.throws(() => compile({ payload: 'a', payload_hex: '61' }), (e: Error & { attr?: string }) => e.attr === 'payload_hex' && /exclusive/.test(e.message));
    assert.throws(() => udpTester.compile({}, { ssl: true, timeoutMs: 1000 }), (e: Error & { attr?: string }) => e.attr === 'SSL');
  });

  it('silence counts as up shortly before the deadline: 10 % of the timeout, 10..500 ms', () => {
    assert.equal(silenceMs(5000), 4500);
    assert.equal(silenceMs(10_000), 9500);
    assert.equal(silenceMs(1000), 900);
    assert.equal(silenceMs(50), 40);
    assert.equal(silenceMs(5), 0);
  });

  it('every attribute has a one-line doc', () => {
    for (const a of udpTester.attrs) assert.ok(a.doc.length > 10 && !a.doc.includes('\n'), a.name);
  });
});

for (const host of ['127.0.0.1', '::1']) describe(`udp tester against real sockets on ${host}`, () => {
  let echo: UdpServer;
  let fixed: UdpServer;
  let silent: UdpServer;
  before(async () => {
    echo = await startUdpServer('echo', host);
    fixed = await startUdpServer('fixed', host, Buffer.from('PONG\x00\x01 v2'));
    silent = await startUdpServer('silent', host);
  });
  after(async () => {
    await echo.close();
    await fixed.close();
    await silent.close();
  });

  it('text payload echoed and matching the pattern: up, the payload sent as written (escapes decoded), bytes and comm recorded', async () => {
    const comm: [CommTag, string][] = [];
    const ctx = deadline(1000, (tag, data) => comm.push([tag, data.toString('latin1')]));
    const r = await udpTester.probe(target(host, echo.port), compile({ payload: 'PING 42\\r\\n', expect: '^PING \\d+\\r\\n$' }), ctx);
    ctx.cancel();
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'reply matches (9 bytes)');
    assert.deepEqual(echo.got.at(-1), Buffer.from('PING 42\r\n'));
    assert.equal(r.bytesSent, 9);
    assert.equal(r.bytesReceived, 9);
    assert.ok(r.connectMs !== undefined && r.connectMs >= 0 && r.connectMs < 1000);
    assert.deepEqual(comm, [['write', 'PING 42\r\n'], ['read', 'PING 42\r\n']]);
  });

  it('a reply that does not match the pattern is down at once, the reply shown', async () => {
    const { r, ms } = await timed(udpTester.probe(target(host, fixed.port), compile({ payload: 'ping', expect: '^PONG v2' }, 5000), deadline(5000)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'reply "PONG\\x00\\x01 v2" does not match /^PONG v2/');
    assert.equal(r.problem, undefined);
    assert.ok(ms < 2500, `took ${ms} ms: decided on the reply, not at the deadline`);
    const ok = await udpTester.probe(target(host, fixed.port), compile({ payload: 'ping', expect: '/^pong\\x00\\x01 V2$/i' }), deadline(1000));
    assert.equal(ok.ok, true, ok.detail);
  });

  it('hex payload, hex expectation with wildcards (keepalived payload / require_reply <hex>): match up, mismatch down', async () => {
    const payload_hex = 'de ad be ef 00 01';
    const up = await udpTester.probe(target(host, echo.port), compile({ payload_hex, expect_hex: 'dead xxef' }), deadline(1000));
    assert.equal(up.ok, true, up.detail);
    assert.deepEqual(echo.got.at(-1), Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
    const down = await udpTester.probe(target(host, echo.port), compile({ payload_hex, expect_hex: 'deadbeef02' }), deadline(1000));
    assert.equal(down.ok, false);
    assert.equal(down.detail, 'reply "\\xde\\xad\\xbe\\xef\\x00\\x01" does not start with the expected bytes');
  });

  it('any reply is up when no pattern is set (with or without require_reply); an empty payload is a zero-length datagram', async () => {
    for (const values of [{}, { require_reply: true }]) {
      const before = echo.got.length;
      const { r, ms } = await timed(udpTester.probe(target(host, echo.port), compile(values, 5000), deadline(5000)));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'reply received (0 bytes)');
      assert.ok(ms < 2500, `took ${ms} ms: a reply decides at once`);
      assert.equal(echo.got.length, before + 1);
      assert.equal(echo.got.at(-1)!.length, 0);
    }
  });

  it('a silent port (bound, never answering) is up shortly before the deadline when no reply is required', async () => {
    // The signal never aborts: the verdict must come from the tester itself, before the deadline
    // (the engine judges a probe still running at its deadline as failed).
    const ctx = { signal: new AbortController().signal, timeoutMs: 1000 };
    const { r, ms } = await timed(udpTester.probe(target(host, silent.port), compile({ payload: 'hello' }, 1000), ctx));
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'no reply and no ICMP port unreachable within 900 ms');
    assert.ok(ms >= 890 && ms < 5000, `took ${ms} ms`);
    assert.deepEqual(silent.got.at(-1), Buffer.from('hello'));
  });

  it('a silent port is down at the deadline when a reply is required (require_reply, expect or expect_hex)', async () => {
    for (const values of [{ require_reply: true }, { expect: 'x' }, { expect_hex: '78' }]) {
      const { r, ms } = await timed(udpTester.probe(target(host, silent.port), compile({ payload: 'x', ...values }, 300), deadline(300)));
      assert.equal(r.ok, false, JSON.stringify(values));
      assert.equal(r.detail, 'no reply within 300 ms');
      assert.ok(ms >= 290 && ms < 1500, `took ${ms} ms`);
    }
  });

  it('a closed port (ICMP port unreachable, ECONNREFUSED on the connected socket) is down at once, with or without require_reply', async () => {
    const port = await closedUdpPort(host);
    for (const values of [{}, { require_reply: true }, { payload: 'x', expect: 'x' }]) {
      const { r, ms } = await timed(udpTester.probe(target(host, port), compile(values, 5000), deadline(5000)));
      assert.equal(r.ok, false, JSON.stringify(values));
      assert.equal(r.detail, 'port unreachable (ICMP)');
      assert.equal(r.problem, 'rst');
      assert.ok(ms < 2500, `took ${ms} ms: before the deadline`);
    }
  });

  it('a probe whose deadline already passed fails without a verdict of silence', async () => {
    const ac = new AbortController();
    ac.abort();
    const r = await udpTester.probe(target(host, echo.port), compile({ require_reply: true }), { signal: ac.signal, timeoutMs: 0 });
    assert.equal(r.ok, false);
  });
});

// Runs in a child under `prlimit --nofile=48`: every descriptor taken, then probes.
const testers = fileURLToPath(new URL('../../testers/', import.meta.url));
const EMFILE_CHILD = `
const { udpTester } = await import(${JSON.stringify(join(testers, 'udp.js'))});
const { openSync } = await import('node:fs');
const params = udpTester.compile({ payload: 'x' }, { ssl: false, timeoutMs: 500 });
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
const out = [];
for (let i = 0; i < 3; i++) out.push(await udpTester.probe({ addr: '127.0.0.1', family: 4, port: Number(process.argv[1]), vname: 'v', rname: 'r' }, params, { signal: AbortSignal.timeout(500), timeoutMs: 500 }));
process.stdout.write(JSON.stringify(out));
`;

describe('udp tester under a descriptor shortage', function () {
  this.timeout(20_000);
  it('a probe that cannot get a socket is a local error (EMFILE), not a verdict on the real', async () => {
    const srv = await startUdpServer('echo');
    try {
      const out = await new Promise<ProbeResult[]>((resolve, reject) =>
        execFile('prlimit', ['--nofile=48:48', process.execPath, '--input-type=module', '-e', EMFILE_CHILD, String(srv.port)], { timeout: 15_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ProbeResult[]),
        ),
      );
      assert.equal(out.length, 3);
      for (const r of out) {
        assert.equal(r.ok, false);
        assert.equal(r.local, 'EMFILE', r.detail);
        assert.equal(r.detail, 'cannot send the datagram: EMFILE on the director, not a verdict on the real');
      }
    } finally {
      await srv.close();
    }
  });
});

describe('udp tester through the configuration and the daemon', function () {
  this.timeout(30_000);

  it('<tester proto="udp" ...> compiles through the config loader, tester values overridden per real', async () => {
    const registry = TesterRegistry.withBuiltins();
    const xml = `<surealived>
  <virtual name="dns" addr="192.0.2.53" port="53" proto="udp" sched="wrr" rt="dr">
    <tester proto="udp" testport="5353" loopdelay="1" timeout="2" retries2ok="1" retries2fail="1"
            payload_hex="00 01" expect_hex="00 xx"/>
    <real name="a" addr="127.0.0.1" port="53" weight="1"/>
    <real name="b" addr="127.0.0.2" port="53" weight="1" payload="hi\\n" payload_hex="" expect="^ho" expect_hex=""/>
  </virtual>
</surealived>`;
    const r = await parseServiceConfig(xml, 'udp.xml', { registry, canExecute: () => undefined });
    assert.deepEqual(r.issues.filter((i) => i.severity === 'error').map(formatIssue), []);
    const [a, b] = r.config!.virtuals[0]!.reals;
    const pa = a!.params as UdpParams;
    const pb = b!.params as UdpParams;
    assert.deepEqual(pa.payload, Buffer.from([0x00, 0x01]));
    assert.equal(pa.requireReply, true);
    assert.deepEqual(pa.expectHex?.mask, Buffer.from([0xff, 0x00]));
    assert.deepEqual(pb.payload, Buffer.from('hi\n'));
    assert.equal(pb.expect?.source, '^ho');
    assert.equal(pb.expectHex, undefined);

    const bad = await parseServiceConfig(xml.replace('expect_hex="00 xx"', 'expect_hex="0g"'), 'udp.xml', { registry, canExecute: () => undefined });
    assert.equal(bad.config, undefined);
    assert.match(bad.issues.map(formatIssue).join('\n'), /udp\.xml:4: error: virtual "dns": tester: attribute "expect_hex".*"g" is not a hex digit/);
  });

  it('the daemon keeps a real answering UDP in service and takes out one whose port is closed (offline.dump)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sd-udp-'));
    const echo = await startUdpServer('echo', '127.0.0.1');
    const closed = await closedUdpPort('127.0.0.1');
    const cfg = join(dir, 'surealived.cfg');
    writeFileSync(
      cfg,
      ['listen_port 0', 'startup_delay_ms 100',
        ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${dir}/`)),
        ''].join('\n'),
    );
    const xml = join(dir, 'services.xml');
    writeFileSync(
      xml,
      `<surealived><virtual name="u" addr="192.0.2.54" port="53" proto="udp" sched="wrr" rt="dr">
  <tester proto="udp" testport="${echo.port}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1" payload="ping" expect="^ping$"/>
  <real name="up" addr="127.0.0.1" port="53" weight="1"/>
  <real name="closed" addr="127.0.0.1" port="54" testport="${closed}" weight="1"/>
</virtual></surealived>`,
    );
    const cli = join(fileURLToPath(new URL('../../..', import.meta.url)), 'dist/surealived/cli.js');
    const child = spawn(process.execPath, [cli, '-c', cfg, '-vvv', xml], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '';
    child.stderr.on('data', (d: Buffer) => (log += d.toString()));
    try {
      const offline = join(dir, 'offline.dump');
      const end = Date.now() + 15_000;
      while (!(existsSync(offline) && readFileSync(offline, 'utf8').includes(`127.0.0.1:54`)) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      assert.equal(readFileSync(offline, 'utf8'), `192.0.2.54:53:1:0 - 127.0.0.1:54\n`, log);
      // The answering real was probed (its echo server saw the payload) and stays in service.
      assert.ok(echo.got.some((g) => g.toString() === 'ping'), log);
      assert.match(log, /Real: \[u:closed - .*\] changed its test state to OFFLINE/);
      assert.doesNotMatch(log, /Real: \[u:up - .*\] changed its test state to OFFLINE/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await echo.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
