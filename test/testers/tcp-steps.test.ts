// The tcp tester's send/expect steps: parsing and matching on their own, then probes against
// loopback servers (binary, regex, banner-first, closing early, TLS), a real redis-server, and the
// config loader (real overrides, file:line errors for malformed steps).

import assert from 'node:assert/strict';
import net from 'node:net';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tcpTester, type TcpParams } from '../../testers/tcp.js';
import { EXPECT_LIMIT, judge, MAX_STEPS, parseExpect, parseSteps, showBytes, STEP_ATTRS, type Step } from '../../testers/steps.js';
import { nativeProber } from '../../testers/native.js';
import type { CommTag, ProbeResult } from '../../testers/contract.js';
import { formatIssue, loadServiceConfig } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';
import { deadline, makeCerts, refusedPort, startHttpsServer, startTcpServer, target, timeWaitCount, type TestCerts } from '../helpers/servers.js';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));
const GENERIC = { ssl: false, timeoutMs: 1000 };
const steps = (values: Record<string, string>): TcpParams => tcpTester.compile(values, GENERIC);
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The AttrError of compiling `values`: its attribute and message. */
function attrError(values: Record<string, string>): { attr: string; message: string } {
  try {
    parseSteps(values);
  } catch (e) {
    const err = e as Error & { attr: string };
    assert.equal(err.name, 'AttrError');
    return { attr: err.attr, message: err.message };
  }
  assert.fail(`no error for ${JSON.stringify(values)}`);
}

describe('tcp steps: parsing (pure)', () => {
  it('declares send1/expect1 ... send8/expect8, in the order they run', () => {
    assert.equal(STEP_ATTRS.length, 2 * MAX_STEPS);
    assert.deepEqual(STEP_ATTRS.slice(0, 4).map((a) => a.name), ['send1', 'expect1', 'send2', 'expect2']);
    assert.equal(STEP_ATTRS.at(-1)!.name, `expect${MAX_STEPS}`);
    for (const a of STEP_ATTRS) assert.equal(a.type, 'string');
  });

  it('no step attribute: the plain connect check, compiled exactly as before', () => {
    assert.deepEqual(parseSteps({}), []);
    const p = tcpTester.compile({}, GENERIC);
    assert.equal(p.steps, undefined);
    assert.deepEqual(p, nativeProber() !== undefined ? { native: p.native } : {});
    // Empty values are no steps either (a real can drop a step of its tester with send2="").
    assert.equal(tcpTester.compile({ send1: '', expect1: '' }, GENERIC).steps, undefined);
  });

  it('runs sendN before expectN, skips absent and empty ones, and keeps text verbatim', () => {
    const s = parseSteps({ expect1: '* OK', send3: 'a1 LOGOUT\r\n', expect3: '', expect4: 're:^\\* BYE' });
    assert.deepEqual(s.map((x) => `${x.kind}${x.n}`), ['expect1', 'send3', 'expect4']);
    const send = s[1] as Extract<Step, { kind: 'send' }>;
    assert.deepEqual(send.data, b('a1 LOGOUT\r\n'));
    assert.equal(send.attr, 'send3');
  });

  it('hex: pairs of digits, any case, whitespace ignored; text: protects a text that starts like a prefix', () => {
    const [s1, e1] = parseSteps({ send1: 'hex:50 49 4E 47 0d0a', expect1: 'text:hex:ff' });
    assert.deepEqual((s1 as Extract<Step, { kind: 'send' }>).data, b('PING\r\n'));
    assert.deepEqual(e1!.kind === 'expect' && e1.match.kind === 'bytes' ? e1.match.bytes : undefined, b('hex:ff'));
    const bin = parseExpect('hex:00ff 2B', 1);
    assert.deepEqual(bin, { kind: 'bytes', bytes: Buffer.from([0, 0xff, 0x2b]), shown: 'hex:00ff2b' });
    assert.equal(parseExpect('+PONG', 1).shown, '"+PONG"');
    assert.equal(parseExpect('re:^\\+PONG', 1).shown, 're:^\\+PONG');
  });

  it('malformed steps are errors naming the attribute, the step and why', () => {
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ send2: 'hex:50494' }, 'send2', /^step 2: hex: odd number of hex digits \(5\)/],
      [{ expect1: 'hex:2g' }, 'expect1', /^step 1: hex: "g" is not a hex digit/],
      [{ expect3: 're:(unclosed' }, 'expect3', /^step 3: re: invalid regular expression: \/\(unclosed\/: Unterminated group$/],
      [{ expect1: 're:x*' }, 'expect1', /^step 1: re: \/x\*\/ matches an empty reply, so it would pass whatever the server says$/],
      [{ expect1: 're:' }, 'expect1', /^step 1: empty regular expression after "re:"$/],
      [{ expect1: 're:caf\u00e9' }, 'expect1', /^step 1: re: "é" is not ASCII; match bytes with \\xHH$/],
      [{ send1: 're:PING' }, 'send1', /^step 1: a send cannot be a regular expression/],
      [{ send4: 'hex:' }, 'send4', /^step 4: nothing to send after "hex:"$/],
      [{ expect2: 'text:' }, 'expect2', /^step 2: nothing to expect after "text:"$/],
    ];
    for (const [values, attr, message] of cases) {
      const err = attrError(values);
      assert.equal(err.attr, attr, JSON.stringify(values));
      assert.match(err.message, message);
    }
  });
});

describe('tcp steps: matching (pure)', () => {
  const text = parseExpect('+PONG', 1);
  const re = parseExpect('re:VERSION \\d+\\.\\d+', 1);

  it('text and hex: the reply must begin with the bytes; decided as soon as one differs', () => {
    assert.deepEqual(judge(text, b(''), false), { kind: 'wait' });
    assert.deepEqual(judge(text, b('+PO'), false), { kind: 'wait' });
    assert.deepEqual(judge(text, b('+PONG\r\n'), false), { kind: 'match', end: 5 });
    assert.deepEqual(judge(text, b('-E'), false), { kind: 'fail', why: 'expected "+PONG", received "-E"' });
    assert.deepEqual(judge(text, b('x+PONG'), false), { kind: 'fail', why: 'expected "+PONG", received "x+PONG"' });
    assert.deepEqual(judge(text, b('+PO'), true), { kind: 'fail', why: 'connection closed by the server, expected "+PONG", received "+PO"' });
    assert.deepEqual(judge(text, b(''), true), { kind: 'fail', why: 'connection closed by the server, expected "+PONG", received nothing' });
  });

  it('re: searched anywhere in what was received; consumes through the match; waits otherwise', () => {
    assert.deepEqual(judge(re, b('STAT pid 1\r\nVERSION 1.6.21\r\n'), false), { kind: 'match', end: 23 });
    assert.deepEqual(judge(re, b('VERSION '), false), { kind: 'wait' });
    assert.equal(judge(re, b('VERSION '), true).kind, 'fail');
    const limit = judge(re, Buffer.alloc(EXPECT_LIMIT, 0x41), false);
    assert.deepEqual(limit, { kind: 'fail', why: `no match for re:VERSION \\d+\\.\\d+ in the first ${EXPECT_LIMIT} bytes` });
  });

  it('re: reads bytes as Latin-1, so \\xHH matches any byte', () => {
    const bin = parseExpect('re:^\\x00[\\x80-\\xff]{2}', 1);
    assert.equal(judge(bin, Buffer.from([0, 0x80, 0xff, 1]), false).kind, 'match');
    assert.equal(judge(bin, Buffer.from([0, 0x7f, 0xff]), false).kind, 'wait');
  });

  it('shows bytes quoted and escaped, at most 64 of them', () => {
    assert.equal(showBytes(Buffer.from('a"\\\r\n\t\x00\xff', 'latin1')), '"a\\"\\\\\\r\\n\\t\\x00\\xff"');
    assert.equal(showBytes(Buffer.alloc(70, 0x61)), `"${'a'.repeat(64)}"... (70 bytes)`);
  });
});

/** A loopback server running `onConnection` for each client; every socket is destroyed on close. */
async function startServer(onConnection: (sock: net.Socket) => void): Promise<{ port: number; received: Buffer[]; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const received: Buffer[] = [];
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    sock.on('data', (d: Buffer) => received.push(d));
    onConnection(sock);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

/** Answers each complete line (or binary request) per `answer`; 'close' ends the connection. */
function lines(answer: (line: string, sock: net.Socket) => string | Buffer | 'close' | undefined): (sock: net.Socket) => void {
  return (sock) => {
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl + 1);
        buf = buf.slice(nl + 1);
        const out = answer(line, sock);
        if (out === 'close') return void sock.end();
        if (out !== undefined) sock.write(out);
      }
    });
  };
}

async function timed(p: Promise<ProbeResult>): Promise<{ r: ProbeResult; ms: number }> {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

describe('tcp steps against loopback servers', function () {
  this.timeout(20_000);

  it('binary protocol: hex sends and hex expectations, two rounds on one connection', async () => {
    const srv = await startServer((sock) => {
      sock.on('data', (d: Buffer) => {
        if (d.equals(Buffer.from([0x00, 0x01, 0xfe]))) sock.write(Buffer.from([0xca, 0xfe, 0x00, 0x02, 0x99]));
        else if (d.equals(Buffer.from([0x00, 0x02]))) sock.write(Buffer.from([0x0b, 0x1e]));
        else sock.write(Buffer.from([0xff]));
      });
    });
    try {
      const p = steps({ send1: 'hex:00 01 fe', expect1: 'hex:cafe0002', send2: 'hex:0002', expect2: 'hex:0b1e' });
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'connected, 4 steps passed');
      const wrong = await tcpTester.probe(target('127.0.0.1', srv.port), steps({ send1: 'hex:0003', expect1: 'hex:cafe' }), deadline(1000));
      assert.equal(wrong.ok, false);
      assert.equal(wrong.detail, 'step 1 (expect1): expected hex:cafe, received "\\xff"');
    } finally {
      await srv.close();
    }
  });

  it('regex expectation (memcached-style "version"): up on a match, the detail counting the steps', async () => {
    const srv = await startServer(lines((l) => (l === 'version\r\n' ? 'VERSION 1.6.21\r\n' : 'ERROR\r\n')));
    try {
      const t = target('127.0.0.1', srv.port);
      const r = await tcpTester.probe(t, steps({ send1: 'version\r\n', expect1: 're:^VERSION \\d+\\.\\d+' }), deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'connected, 2 steps passed');
      const bad = await tcpTester.probe(t, steps({ send1: 'stats\r\n', expect1: 're:^VERSION' }), deadline(300));
      assert.equal(bad.ok, false);
      assert.equal(bad.detail, 'step 1 (expect1): no re:^VERSION within 300 ms, received "ERROR\\r\\n"');
    } finally {
      await srv.close();
    }
  });

  it('banner-first protocol (IMAP): expect the greeting, then LOGOUT and its tagged reply', async () => {
    const srv = await startServer((sock) => {
      sock.write('* OK [CAPABILITY IMAP4rev1] ready\r\n');
      lines((l) => (l === 'a1 LOGOUT\r\n' ? '* BYE logging out\r\na1 OK LOGOUT completed\r\n' : 'a1 BAD\r\n'))(sock);
    });
    try {
      const p = steps({ expect1: '* OK', send2: 'a1 LOGOUT\r\n', expect2: '* BYE', expect3: 're:\\r\\na1 OK' });
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(Buffer.concat(srv.received).toString('latin1'), 'a1 LOGOUT\r\n', 'the rest of the banner is discarded, not matched');
    } finally {
      await srv.close();
    }
  });

  it('text split over many small reads is matched as it arrives', async () => {
    const srv = await startTcpServer('trickle', { data: '+PONG\r\n', intervalMs: 5 });
    try {
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), steps({ expect1: '+PONG\r\n' }), deadline(1000));
      assert.equal(r.ok, true, r.detail);
    } finally {
      await srv.close();
    }
  });

  it('a server closing early is down at once, saying at which step and what it had sent', async () => {
    const cut = await startServer((sock) => sock.end('+PO'));
    const mute = await startServer(lines(() => 'close'));
    try {
      const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', cut.port), steps({ send1: 'PING\r\n', expect1: '+PONG' }), deadline(2000)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'step 1 (expect1): connection closed by the server, expected "+PONG", received "+PO"');
      assert.ok(ms < 1000, `took ${ms} ms`);
      const r2 = await tcpTester.probe(target('127.0.0.1', mute.port), steps({ send1: 'QUIT\r\n', expect2: '+OK' }), deadline(2000));
      assert.equal(r2.ok, false);
      assert.equal(r2.detail, 'step 2 (expect2): connection closed by the server, expected "+OK", received nothing');
    } finally {
      await cut.close();
      await mute.close();
    }
  });

  it('a wrong answer fails as soon as it differs, not at the deadline', async () => {
    const srv = await startServer(lines(() => '-ERR unknown command\r\n'));
    try {
      const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', srv.port), steps({ send1: 'PING\r\n', expect1: '+PONG' }), deadline(2000)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'step 1 (expect1): expected "+PONG", received "-ERR unknown command\\r\\n"');
      assert.ok(ms < 1000, `took ${ms} ms`);
    } finally {
      await srv.close();
    }
  });

  it('a send as the last step: up once written', async () => {
    const srv = await startServer(() => undefined);
    try {
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), steps({ send1: 'hello\r\n' }), deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'connected, 1 step passed');
      assert.equal(r.bytesSent, 7);
    } finally {
      await srv.close();
    }
  });

  it('connection failures are classified as for the plain check', async () => {
    const r = await tcpTester.probe(target('127.0.0.1', await refusedPort()), steps({ send1: 'PING\r\n', expect1: '+PONG' }), deadline(1000));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'connection refused');
    assert.equal(r.problem, 'rst');
  });

  it('records the exchanged bytes for debugcomm; the start() callback form runs the steps too', async () => {
    const srv = await startServer(lines(() => '+PONG\r\n'));
    try {
      const seen: { tag: CommTag; data: string }[] = [];
      const r = await new Promise<ProbeResult>((resolve) =>
        tcpTester.start!(target('127.0.0.1', srv.port), steps({ send1: 'PING\r\n', expect1: '+PONG' }), deadline(1000, (tag, data) => seen.push({ tag, data: data.toString('latin1') })), resolve),
      );
      assert.equal(r.ok, true, r.detail);
      assert.deepEqual(seen, [{ tag: 'write', data: 'PING\r\n' }, { tag: 'read', data: '+PONG\r\n' }]);
    } finally {
      await srv.close();
    }
  });

  it('resets its connections: 500 step probes leave no TIME_WAIT behind', async () => {
    const srv = await startServer(lines(() => '+PONG\r\n'));
    try {
      const p = steps({ send1: 'PING\r\n', expect1: '+PONG' });
      const t = target('127.0.0.1', srv.port);
      for (let batch = 0; batch < 10; batch++) {
        const results = await Promise.all(Array.from({ length: 50 }, () => tcpTester.probe(t, p, deadline(2000))));
        for (const r of results) assert.equal(r.ok, true, r.detail);
      }
      const tw = timeWaitCount(srv.port);
      assert.ok(tw <= 5, `${tw} TIME_WAIT sockets for the probed port`);
    } finally {
      await srv.close();
    }
  });

  describe('with SSL="1"', () => {
    let certs: TestCerts;
    before(() => {
      certs = makeCerts();
    });
    after(() => certs.remove());

    it('the steps run over TLS once the handshake is done', async () => {
      const srv = await startHttpsServer({ '/': { status: 200, body: 'ok' } }, certs);
      try {
        const p = tcpTester.compile({ send1: 'GET / HTTP/1.0\r\n\r\n', expect1: 'HTTP/1.1 200 ', expect2: 're:\\r\\n\\r\\nok' }, { ssl: true, timeoutMs: 1000 });
        const r = await tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(1000));
        assert.equal(r.ok, true, r.detail);
        assert.equal(r.detail, 'connected, TLS handshake done, 3 steps passed');
      } finally {
        await srv.close();
      }
    });
  });
});

/** A redis-server of our own on a loopback port: no daemon, no persistence, its files in a temp dir. */
async function startRedis(): Promise<{ port: number; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'sd-redis-'));
  const port = await refusedPort();
  const conf = join(dir, 'redis.conf');
  writeFileSync(conf, [`port ${port}`, 'bind 127.0.0.1', 'protected-mode yes', 'daemonize no', 'supervised no', 'save ""', 'appendonly no', `dir ${dir}`, 'logfile ""', 'databases 1', ''].join('\n'));
  const child: ChildProcess = spawn('redis-server', [conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server not ready within 10 s:\n${log}`)), 10_000);
    const seen = (d: Buffer): void => {
      log += d.toString();
      if (/Ready to accept connections/.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', seen);
    child.stderr!.on('data', seen);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}):\n${log}`));
    });
  });
  return {
    port,
    close: async () => {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function hasRedis(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('tcp steps against redis-server', function () {
  this.timeout(30_000);
  let redis: { port: number; close(): Promise<void> } | undefined;
  before(async function () {
    if (!hasRedis()) {
      // Installing a Debian package needs root; elsewhere redis-server must already be there.
      if (process.getuid?.() !== 0) this.skip();
      this.timeout(15 * 60_000);
      execFileSync('sh', [join(REPO, 'test', 'setup', 'host-tools.sh'), 'redis-server'], {
        stdio: ['ignore', 'inherit', 'inherit'],
        env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
        timeout: 15 * 60_000,
      });
    }
    redis = await startRedis();
  });
  after(async () => {
    await redis?.close();
  });

  it('PING answered +PONG: up', async () => {
    const r = await tcpTester.probe(target('127.0.0.1', redis!.port), steps({ send1: 'PING\r\n', expect1: '+PONG\r\n' }), deadline(1000));
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'connected, 2 steps passed');
  });

  it('a wrong expectation is down at once, showing what redis said', async () => {
    const t = target('127.0.0.1', redis!.port);
    const { r, ms } = await timed(tcpTester.probe(t, steps({ send1: 'PING\r\n', expect1: '+PANG' }), deadline(2000)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'step 1 (expect1): expected "+PANG", received "+PONG\\r\\n"');
    assert.ok(ms < 1000, `took ${ms} ms`);
    const unknown = await tcpTester.probe(t, steps({ send1: 'PONG\r\n', expect1: '+PONG' }), deadline(1000));
    assert.equal(unknown.ok, false);
    assert.match(unknown.detail, /^step 1 \(expect1\): expected "\+PONG", received "-ERR unknown command 'PONG'/);
  });

  it('several exchanges on one connection, with a regex on INFO', async () => {
    const p = steps({
      send1: 'PING\r\n',
      expect1: '+PONG\r\n',
      send2: 'INFO replication\r\n',
      expect2: 're:\\r\\nrole:master\\r\\n',
      send3: 'QUIT\r\n',
      expect3: '+OK',
    });
    const r = await tcpTester.probe(target('127.0.0.1', redis!.port), p, deadline(1000));
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'connected, 6 steps passed');
  });
});

describe('tcp steps in a service config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-steps-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = async (xml: string): Promise<Awaited<ReturnType<typeof loadServiceConfig>> & { file: string }> => {
    const file = join(dir, 'redis.xml');
    writeFileSync(file, xml);
    return { ...(await loadServiceConfig(file, { registry: TesterRegistry.withBuiltins() })), file };
  };
  const xml = (tester: string, real2 = ''): string => `<surealived>
  <virtual name="redis" addr="192.0.2.10" port="6379" proto="tcp" sched="wlc" rt="dr">
    <tester proto="tcp" testport="6379" loopdelay="2" timeout="1" retries2ok="1" retries2fail="2"
            send1="PING&#13;&#10;" expect1="+PONG"
            ${tester}/>
    <real name="r1" addr="198.51.100.1" port="6379" weight="1"/>
    <real name="r2" addr="198.51.100.2" port="6379" weight="1"
          ${real2}/>
  </virtual>
</surealived>
`;

  it('compiles the steps (CR LF from character references); a real overrides or drops one for itself', async () => {
    const r = await load(xml('send2="hex:0d0a"', 'expect1="re:^\\+PONG" send2=""'));
    assert.deepEqual(r.issues.map(formatIssue), []);
    const [p1, p2] = r.config!.virtuals[0]!.reals.map((x) => x.params as TcpParams);
    assert.deepEqual(p1!.steps!.map((s) => `${s.kind}${s.n}`), ['send1', 'expect1', 'send2']);
    assert.deepEqual((p1!.steps![0] as Extract<Step, { kind: 'send' }>).data, b('PING\r\n'));
    assert.deepEqual(p2!.steps!.map((s) => `${s.kind}${s.n}`), ['send1', 'expect1']);
    const e = p2!.steps![1]!;
    assert.ok(e.kind === 'expect' && e.match.kind === 'regex' && e.match.re.source === '^\\+PONG');
  });

  it('a malformed step is an error at the line of its attribute, naming the step and why', async () => {
    const r = await load(xml('expect2="re:(+PONG"', 'send1="hex:zz"'));
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.map(formatIssue), [
      `${r.file}:5: error: virtual "redis": tester: attribute "expect2": step 2: re: invalid regular expression: /(+PONG/: Nothing to repeat`,
    ]);
    // The tester's steps are fine; the real's own override is not: the error is on the real's line.
    const r2 = await load(xml('', 'send1="hex:zz"'));
    assert.equal(r2.config, undefined);
    assert.equal(r2.issues.length, 1);
    assert.match(formatIssue(r2.issues[0]!), new RegExp(`^${r2.file}:8: error: virtual "redis": real "r2": attribute "send1": step 1: hex: "z" is not a hex digit`));
  });
});
