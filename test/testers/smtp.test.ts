// Behaviour of the smtp tester: the reply parser on its own, then probes against real SMTP servers
// (nodemailer's smtp-server, with and without STARTTLS and implicit TLS), servers that refuse or
// stay silent, scripted servers for multi-line and malformed replies, and the config loader.

import assert from 'node:assert/strict';
import net from 'node:net';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { DEFAULT_HELO_NAME, offersStarttls, parseReply, REPLY_LIMIT, smtpTester, type SmtpParams } from '../../testers/smtp.js';
import type { CommTag, ProbeResult } from '../../testers/contract.js';
import { formatIssue, loadServiceConfig } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';
import { deadline, makeCerts, refusedPort, startTcpServer, target, type TestCerts } from '../helpers/servers.js';

const PLAIN = { ssl: false, timeoutMs: 2000 };
const compile = (values: Record<string, string | boolean>, ssl = false): SmtpParams => smtpTester.compile(values, { ...PLAIN, ssl });
const reply = (text: string): ReturnType<typeof parseReply> => parseReply(Buffer.from(text, 'latin1'));

describe('smtp tester: replies (pure)', () => {
  it('reads a one-line reply and says how many bytes it took', () => {
    assert.deepEqual(reply('220 mx.example ESMTP\r\nrest'), { kind: 'reply', reply: { code: 220, lines: ['mx.example ESMTP'] }, end: 22 });
    assert.deepEqual(reply('221\r\n'), { kind: 'reply', reply: { code: 221, lines: [''] }, end: 5 });
  });

  it('reads a multi-line reply to its last line, with CRLF or bare LF line ends', () => {
    const r = reply('250-mx.example\r\n250-PIPELINING\n250-STARTTLS\r\n250 SIZE 1000\r\n');
    assert.equal(r.kind, 'reply');
    if (r.kind !== 'reply') return;
    assert.equal(r.reply.code, 250);
    assert.deepEqual(r.reply.lines, ['mx.example', 'PIPELINING', 'STARTTLS', 'SIZE 1000']);
    assert.equal(offersStarttls(r.reply), true);
  });

  it('waits for the rest of a reply cut anywhere, including between its lines', () => {
    const full = '220-hello\r\n220 there\r\n';
    for (let i = 0; i < full.length; i++) assert.deepEqual(reply(full.slice(0, i)), { kind: 'partial' }, `cut at ${i}`);
    assert.equal(reply(full).kind, 'reply');
  });

  it('refuses what is not an SMTP reply, and replies that never end', () => {
    const http = reply('HTTP/1.1 400 Bad Request\r\n');
    assert.equal(http.kind, 'malformed');
    assert.match(http.kind === 'malformed' ? http.why : '', /^not an SMTP reply: "HTTP\/1\.1 400 Bad Request\\r\\n"$/);
    assert.equal(reply('2200 x\r\n').kind, 'malformed');
    assert.equal(reply('120 x\r\n').kind, 'malformed');
    assert.deepEqual(reply(`220 ${'x'.repeat(REPLY_LIMIT)}`), { kind: 'malformed', why: `reply over ${REPLY_LIMIT} bytes` });
    assert.deepEqual(reply('250-x\r\n'.repeat(REPLY_LIMIT / 7 + 1)), { kind: 'malformed', why: `reply over ${REPLY_LIMIT} bytes` });
  });

  it('finds STARTTLS only as an extension keyword, not in the greeting line', () => {
    const r = reply('250-STARTTLS welcome\r\n250 PIPELINING\r\n');
    assert.ok(r.kind === 'reply' && !offersStarttls(r.reply));
    const lower = reply('250-mx\r\n250 starttls\r\n');
    assert.ok(lower.kind === 'reply' && offersStarttls(lower.reply));
  });
});

describe('smtp tester: attributes', () => {
  it('EHLO name defaults to keepalived\'s helo_name; one visible word is accepted', () => {
    assert.equal(compile({}).heloName, DEFAULT_HELO_NAME);
    assert.equal(DEFAULT_HELO_NAME, 'smtpchecker.keepalived.org');
    assert.equal(compile({ helo_name: 'lb1.example.net' }).heloName, 'lb1.example.net');
    assert.equal(compile({ helo_name: '[192.0.2.1]' }).heloName, '[192.0.2.1]');
  });

  it('a helo_name with spaces or line breaks is an error naming the attribute', () => {
    for (const bad of ['two words', 'x\r\nRSET', 'tab\there']) {
      assert.throws(() => compile({ helo_name: bad }), (e: Error & { attr?: string }) => e.name === 'AttrError' && e.attr === 'helo_name' && /no spaces or control characters/.test(e.message));
    }
  });

  it('starttls="1" with SSL="1" is an error naming starttls; each alone compiles its TLS context', () => {
    assert.throws(() => compile({ starttls: true }, true), (e: Error & { attr?: string }) => e.attr === 'starttls' && /SSL="1"/.test(e.message));
    const st = compile({ starttls: true });
    assert.ok(st.starttls !== undefined && st.tls === undefined);
    const implicit = compile({}, true);
    assert.ok(implicit.tls !== undefined && implicit.starttls === undefined);
    assert.throws(() => compile({ starttls: true, cafile: '/nonexistent/ca.pem' }), (e: Error & { attr?: string }) => e.attr === 'cafile');
  });
});

interface SmtpTestServer {
  readonly port: number;
  /** Sessions that completed a TLS handshake (STARTTLS or implicit). */
  secured: number;
  close(): Promise<void>;
}

const quiet = { info: (): void => undefined, debug: (): void => undefined, error: (): void => undefined, warn: (): void => undefined, trace: (): void => undefined, fatal: (): void => undefined, level: (): void => undefined, child: () => quiet };

/** smtp-server on loopback; `certs` serve STARTTLS (and keep it from using its built-in test certificate). */
async function startSmtp(certs: TestCerts, opts: SMTPServerOptions): Promise<SmtpTestServer> {
  const state = { secured: 0 };
  const srv = new SMTPServer({
    disableReverseLookup: true,
    authOptional: true,
    logger: quiet as unknown as SMTPServerOptions['logger'],
    name: 'mx.test',
    key: certs.key,
    cert: certs.cert,
    onSecure: (_socket, _session, cb) => {
      state.secured++;
      cb();
    },
    ...opts,
  });
  srv.on('error', () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.server.address() as net.AddressInfo).port,
    get secured() {
      return state.secured;
    },
    close: () => new Promise<void>((resolve) => srv.close(() => resolve())),
  };
}

/** A scripted server: `greeting` at connect, then one canned reply per command line received. */
async function startScripted(greeting: string, answer: (line: string) => string | 'close'): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => undefined);
    sock.on('close', () => sockets.delete(sock));
    if (greeting !== '') sock.write(greeting);
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        const out = answer(line);
        if (out === 'close') return void sock.end();
        sock.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    port: (srv.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    },
  };
}

async function timed(p: Promise<ProbeResult>): Promise<{ r: ProbeResult; ms: number }> {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

describe('smtp tester against smtp-server', function () {
  this.timeout(20_000);
  let certs: TestCerts;
  before(() => {
    certs = makeCerts();
  });
  after(() => certs.remove());

  it('a server greeting 220 and accepting EHLO is up; QUIT is sent and its 221 awaited', async () => {
    const srv = await startSmtp(certs, { hideSTARTTLS: true });
    try {
      const seen: { tag: CommTag; data: string }[] = [];
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({ helo_name: 'lb1.example.net' }), deadline(2000, (tag, data) => seen.push({ tag, data: data.toString('latin1') })));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'banner 220, EHLO 250, QUIT 221');
      assert.ok(r.connectMs !== undefined && r.bytesSent === 'EHLO lb1.example.net\r\nQUIT\r\n'.length, JSON.stringify(r));
      // debugcomm: what was written and read, in order.
      assert.equal(seen.filter((s) => s.tag === 'write').map((s) => s.data).join(''), 'EHLO lb1.example.net\r\nQUIT\r\n');
      const read = seen.filter((s) => s.tag === 'read').map((s) => s.data).join('');
      assert.match(read, /^220 mx\.test ESMTP\r\n250-mx\.test Nice to meet you[^\n]*\r\n(250-[^\n]*\r\n)*250 [^\n]*\r\n221 Bye\r\n$/);
    } finally {
      await srv.close();
    }
  });

  it('the start() callback form gives the same verdict', async () => {
    const srv = await startSmtp(certs, { hideSTARTTLS: true });
    try {
      const r = await new Promise<ProbeResult>((resolve) => smtpTester.start!(target('127.0.0.1', srv.port), compile({}), deadline(2000), resolve));
      assert.equal(r.ok, true, r.detail);
    } finally {
      await srv.close();
    }
  });

  it('with starttls="1": STARTTLS, TLS handshake, EHLO again over TLS; debugcomm shows the plain text, not TLS records', async () => {
    const srv = await startSmtp(certs, {});
    try {
      const seen: { tag: CommTag; data: Buffer }[] = [];
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({ starttls: true }), deadline(2000, (tag, data) => seen.push({ tag, data })));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'banner 220, EHLO 250, STARTTLS, EHLO over TLS 250, QUIT 221');
      assert.equal(srv.secured, 1);
      const written = seen.filter((s) => s.tag === 'write').map((s) => s.data.toString('latin1'));
      assert.deepEqual(written, [`EHLO ${DEFAULT_HELO_NAME}\r\n`, 'STARTTLS\r\n', `EHLO ${DEFAULT_HELO_NAME}\r\n`, 'QUIT\r\n']);
      const read = Buffer.concat(seen.filter((s) => s.tag === 'read').map((s) => s.data)).toString('latin1');
      assert.match(read, /220 Ready to start TLS\r\n/);
      assert.match(read, /221 Bye\r\n$/);
      assert.doesNotMatch(read, /^\x16\x03/m, 'no TLS record in the dump');
      // The wire carried more than the plain text: the handshake and the TLS records.
      assert.ok(r.bytesSent! > written.join('').length);
    } finally {
      await srv.close();
    }
  });

  it('with starttls="1" and verify: an untrusted certificate fails the handshake, the CA file makes it pass', async () => {
    const srv = await startSmtp(certs, {});
    try {
      const t = target('127.0.0.1', srv.port);
      const bad = await smtpTester.probe(t, compile({ starttls: true, verify: true }), deadline(2000));
      assert.equal(bad.ok, false);
      assert.match(bad.detail, /^STARTTLS handshake failed: .*(self.signed|unable to verify|local issuer).* \(after banner 220, EHLO 250\)$/i);
      const good = await smtpTester.probe(t, compile({ starttls: true, cafile: certs.caFile }), deadline(2000));
      assert.equal(good.ok, true, good.detail);
    } finally {
      await srv.close();
    }
  });

  it('with starttls="1", a server that does not offer STARTTLS is down', async () => {
    const srv = await startSmtp(certs, { hideSTARTTLS: true });
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({ starttls: true }), deadline(2000));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'STARTTLS not offered in the reply to EHLO (after banner 220, EHLO 250)');
    } finally {
      await srv.close();
    }
  });

  it('SSL="1" speaks SMTP over TLS from the first byte (port 465 style); without it the banner never comes', async () => {
    const srv = await startSmtp(certs, { secure: true });
    try {
      const t = target('127.0.0.1', srv.port);
      const r = await smtpTester.probe(t, compile({}, true), deadline(2000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'banner 220, EHLO 250, QUIT 221');
      assert.equal(srv.secured, 1);
      const plain = await smtpTester.probe(t, compile({}), deadline(400));
      assert.equal(plain.ok, false);
      assert.match(plain.detail, /^no banner within 400 ms/);
    } finally {
      await srv.close();
    }
  });

  it('a server greeting 554 is down at once, its reply in the detail', async () => {
    const srv = await startSmtp(certs, {
      onConnect: (_s, cb) => cb(Object.assign(new Error('no SMTP service here'), { responseCode: 554 })),
    });
    try {
      const { r, ms } = await timed(smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(2000)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'banner 554 "no SMTP service here", expected 220');
      assert.ok(ms < 1000, `took ${ms} ms`);
    } finally {
      await srv.close();
    }
  });

  it('a server rejecting EHLO is down, with its reply', async () => {
    const srv = await startSmtp(certs, { disabledCommands: ['EHLO'] });
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(2000));
      assert.equal(r.ok, false);
      assert.match(r.detail, /^EHLO rejected: 5\d\d ".*" \(after banner 220\)$/);
    } finally {
      await srv.close();
    }
  });
});

describe('smtp tester against scripted servers', function () {
  this.timeout(10_000);

  it('a silent server (no banner) fails at the deadline, no sooner', async () => {
    const srv = await startTcpServer('silent');
    try {
      const { r, ms } = await timed(smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(300)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'no banner within 300 ms');
      assert.equal(r.problem, undefined, 'connected: not a connection problem');
      assert.ok(ms >= 290 && ms < 600, `took ${ms} ms`);
    } finally {
      await srv.close();
    }
  });

  it('multi-line banner and EHLO replies are read to their last line before the next command', async () => {
    const commands: string[] = [];
    const srv = await startScripted('220-mx.test first line\r\n220-second\r\n220 ready\r\n', (line) => {
      commands.push(line);
      if (line.startsWith('EHLO')) return '250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n';
      return '221 2.0.0 bye\r\n';
    });
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.deepEqual(commands, [`EHLO ${DEFAULT_HELO_NAME}`, 'QUIT']);
    } finally {
      await srv.close();
    }
  });

  it('any reply to QUIT, or the server closing after it, still counts as up (keepalived: any line)', async () => {
    const srv = await startScripted('220 mx\r\n', (line) => (line.startsWith('EHLO') ? '250 mx\r\n' : 'close'));
    const odd = await startScripted('220 mx\r\n', (line) => (line.startsWith('EHLO') ? '250 mx\r\n' : '500 what\r\n'));
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.detail, 'banner 220, EHLO 250, connection closed after QUIT');
      const r2 = await smtpTester.probe(target('127.0.0.1', odd.port), compile({}), deadline(1000));
      assert.equal(r2.ok, true, r2.detail);
      assert.equal(r2.detail, 'banner 220, EHLO 250, QUIT 500');
    } finally {
      await srv.close();
      await odd.close();
    }
  });

  it('a server that stops answering after EHLO fails at the deadline saying what was missing', async () => {
    const srv = await startScripted('220 mx\r\n', (line) => (line.startsWith('EHLO') ? '250-mx\r\n' : ''));
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({}), deadline(300));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'no reply to EHLO within 300 ms, received "250-mx\\r\\n" (after banner 220)');
    } finally {
      await srv.close();
    }
  });

  it('a server closing after its banner, and one speaking another protocol, are down with the reason', async () => {
    const closing = await startScripted('220 mx\r\n', () => 'close');
    const http = await startTcpServer('greet', { data: 'HTTP/1.1 400 Bad Request\r\n\r\n' });
    try {
      const r = await smtpTester.probe(target('127.0.0.1', closing.port), compile({}), deadline(1000));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'connection closed by the server before the reply to EHLO (after banner 220)');
      const h = await smtpTester.probe(target('127.0.0.1', http.port), compile({}), deadline(1000));
      assert.equal(h.ok, false);
      assert.equal(h.detail, 'malformed banner: not an SMTP reply: "HTTP/1.1 400 Bad Request\\r\\n"');
    } finally {
      await closing.close();
      await http.close();
    }
  });

  it('STARTTLS refused by the server (454) is down', async () => {
    const srv = await startScripted('220 mx\r\n', (line) => (line.startsWith('EHLO') ? '250-mx\r\n250 STARTTLS\r\n' : line === 'STARTTLS' ? '454 4.7.0 TLS not available\r\n' : '221 bye\r\n'));
    try {
      const r = await smtpTester.probe(target('127.0.0.1', srv.port), compile({ starttls: true }), deadline(1000));
      assert.equal(r.ok, false);
      assert.equal(r.detail, 'STARTTLS rejected: 454 "4.7.0 TLS not available" (after banner 220, EHLO 250)');
    } finally {
      await srv.close();
    }
  });

  it('a refused connection is an RST problem, as for every connection tester', async () => {
    const r = await smtpTester.probe(target('127.0.0.1', await refusedPort()), compile({}), deadline(1000));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'connection refused');
    assert.equal(r.problem, 'rst');
  });
});

const testers = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'testers');

// Under `prlimit --nofile=64`: 100 smtp probes and 100 tcp step probes at once against a server that
// accepts and never answers. Probes that cannot get a socket are the director's shortage.
const CHILD = `
const { smtpTester } = await import(${JSON.stringify(join(testers, 'smtp.js'))});
const { tcpTester } = await import(${JSON.stringify(join(testers, 'tcp.js'))});
const port = Number(process.argv[1]);
const generic = { ssl: false, timeoutMs: 800 };
const target = (i) => ({ addr: '127.0.0.1', family: 4, port, vname: 'v', rname: 'r' + i });
const ctx = { signal: AbortSignal.timeout(800), timeoutMs: 800 };
const smtp = smtpTester.compile({ starttls: true }, generic);
const steps = tcpTester.compile({ send1: 'PING\\r\\n', expect1: '+PONG' }, generic);
const results = await Promise.all([
  ...Array.from({ length: 100 }, (_, i) => smtpTester.probe(target(i), smtp, ctx)),
  ...Array.from({ length: 100 }, (_, i) => tcpTester.probe(target(i), steps, ctx)),
]);
process.stdout.write(JSON.stringify({ smtp: results.slice(0, 100), steps: results.slice(100) }));
`;

describe('smtp and tcp step probes under a descriptor limit of 64 (a child process under prlimit)', function () {
  this.timeout(30_000);

  it('probes that cannot get a socket are flagged EMFILE (no verdict); the others fail at the deadline', async () => {
    const srv = await startTcpServer('silent');
    try {
      const out = await new Promise<{ smtp: ProbeResult[]; steps: ProbeResult[] }>((resolve, reject) => {
        execFile('prlimit', ['--nofile=64:64', process.execPath, '--input-type=module', '-e', CHILD, String(srv.port)], { timeout: 20_000 }, (err, stdout, stderr) =>
          err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as { smtp: ProbeResult[]; steps: ProbeResult[] }),
        );
      });
      for (const [name, results] of Object.entries(out)) {
        const local = results.filter((r) => r.local !== undefined);
        assert.ok(local.length >= 30, `${name}: ${local.length} probes flagged local`);
        for (const r of local) {
          assert.equal(r.local, 'EMFILE', r.detail);
          assert.match(r.detail, /EMFILE on the director, not a verdict on the real/);
        }
        for (const r of results.filter((x) => x.local === undefined)) {
          assert.equal(r.ok, false);
          assert.doesNotMatch(r.detail, /EMFILE|ENFILE/, `${name}: a judged probe never carries a local errno: ${r.detail}`);
        }
      }
    } finally {
      await srv.close();
    }
  });
});

describe('smtp tester in a service config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-smtp-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const xml = (tester: string, real2 = ''): string => `<surealived>
  <virtual name="mail" addr="192.0.2.25" port="25" proto="tcp" sched="wlc" rt="dr">
    <tester proto="smtp" testport="25" loopdelay="5" timeout="3" retries2ok="1" retries2fail="2"
            ${tester}/>
    <real name="mx1" addr="198.51.100.1" port="25" weight="1"/>
    <real name="mx2" addr="198.51.100.2" port="25" weight="1" ${real2}/>
  </virtual>
</surealived>
`;

  it('compiles helo_name and starttls, a real overriding them for itself', async () => {
    const file = join(dir, 'mail.xml');
    writeFileSync(file, xml('helo_name="lb.example.net"', 'starttls="1" helo_name="lb2.example.net"'));
    const r = await loadServiceConfig(file, { registry: TesterRegistry.withBuiltins() });
    assert.deepEqual(r.issues.map(formatIssue), []);
    const reals = r.config!.virtuals[0]!.reals;
    const [p1, p2] = reals.map((x) => x.params as SmtpParams);
    assert.equal(p1!.heloName, 'lb.example.net');
    assert.equal(p1!.starttls, undefined);
    assert.equal(p2!.heloName, 'lb2.example.net');
    assert.ok(p2!.starttls !== undefined);
  });

  it('a bad helo_name, or starttls with SSL, is an error at its file:line', async () => {
    const file = join(dir, 'mail.xml');
    writeFileSync(file, xml('helo_name="lb example"'));
    const r = await loadServiceConfig(file, { registry: TesterRegistry.withBuiltins() });
    assert.equal(r.config, undefined);
    assert.deepEqual(r.issues.map(formatIssue), [`${file}:4: error: virtual "mail": tester: attribute "helo_name": invalid helo_name "lb example": one host name or [address], no spaces or control characters`]);
    writeFileSync(file, xml('SSL="1"', 'starttls="1"'));
    const r2 = await loadServiceConfig(file, { registry: TesterRegistry.withBuiltins() });
    assert.equal(r2.config, undefined);
    assert.equal(r2.issues.length, 1);
    assert.match(formatIssue(r2.issues[0]!), new RegExp(`^${file}:6: error: .*real "mx2".*attribute "starttls": starttls="1" with SSL="1"`));
  });
});
