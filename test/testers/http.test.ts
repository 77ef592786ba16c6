// Behaviour of the http tester against real HTTP/HTTPS servers on loopback: statuses, retcode
// lists and ranges, body matching, deadlines against silent and trickling servers, TLS options.
// Timing (issue 14, these must hold on a busy 2-core machine): a probe that must end by the answer
// gets a deadline far beyond any answer, so its verdict shows it did not wait for the deadline; a
// probe judged at its deadline is checked from the verdict, plus assertAtDeadline (not before the
// deadline, not LATE_MS after it). Deadlines that must not pass before the connection is seen are
// 1 s or more, never a few hundred ms that a starved event loop can spend before reading a connect.

import assert from 'node:assert/strict';
import { httpTester, parseRetcodes } from '../../testers/http.js';
import type { AttrValues, CommTag, ProbeResult } from '../../testers/contract.js';
import {
  deadline,
  makeCerts,
  refusedPort,
  startHttpServer,
  startHttpsServer,
  startBlackholeServer,
  startTcpServer,
  target,
  timeWaitCount,
  clientStatesTo,
  type HttpServer,
  type TestCerts,
} from '../helpers/servers.js';
import { assertAtDeadline, timed } from '../helpers/timing.js';
import { PROBE_PATHS, useProbePath } from '../helpers/probe-paths.js';
import { openFdCount } from '../helpers/processes.js';

const plain = (values: AttrValues) => httpTester.compile({ url: '/', host: 'www.example.com', ...values }, { ssl: false, timeoutMs: 1000 });
const secure = (values: AttrValues) => httpTester.compile({ url: '/', host: 'localhost', ...values }, { ssl: true, timeoutMs: 1000 });

/** For probes that must end by the answer: a deadline no answer on loopback comes near, even on a busy machine. */
const ANSWER_MS = 20_000;
/** For probes judged at their deadline after connecting: long enough that the connection is seen first. */
const SILENT_MS = 1000;

function attrErrorOn(attr: string) {
  return (err: Error & { attr?: string }) => err.name === 'AttrError' && err.attr === attr;
}

for (const path of PROBE_PATHS) describe(`http tester (${path} probes)`, () => {
  useProbePath(path);
  let srv: HttpServer;
  before(async () => {
    srv = await startHttpServer({
      '/': { status: 200, body: 'hello, all systems go\n' },
      '/down': { status: 503, body: 'maintenance\n' },
      '/moved': { status: 301, headers: { location: '/' } },
      '/empty': { status: 204 },
      // One byte every 50 ms: about a minute, far past any deadline here.
      '/slow-body': { status: 200, body: 'abcdefghijklmnopqrstuvwxyz'.repeat(40), trickleBody: true },
      '/silent': { silent: true },
      '/big': { status: 200, body: `${'x'.repeat(70 * 1024)}needle` },
    });
  });
  after(async () => {
    await httpTester.close?.();
    await srv.close();
  });
  const t = () => target('127.0.0.1', srv.port);

  it('a 200 is up; the request is GET url with Host and User-Agent: SureAliveD', async () => {
    assert.equal(plain({}).native !== undefined, path === 'native', 'probe path in use');
    const r = await httpTester.probe(t(), plain({}), deadline(ANSWER_MS));
    assert.equal(r.ok, true, r.detail);
    assert.equal(r.detail, 'status 200');
    assert.ok(r.connectMs !== undefined && r.connectMs >= 0);
    assert.equal(srv.lastRequest?.host, 'www.example.com');
    assert.equal(srv.lastRequest?.['user-agent'], 'SureAliveD');
  });

  it('naive="1" decides on the status line', async () => {
    const r = await httpTester.probe(t(), plain({ naive: true }), deadline(ANSWER_MS));
    assert.equal(r.ok, true, r.detail);
  });

  it('a wrong status is down, saying what came and what was expected', async () => {
    const r = await httpTester.probe(t(), plain({ url: '/down' }), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'status 503, expected 200');
    assert.equal(r.problem, undefined);
  });

  it('retcode accepts lists and ranges', async () => {
    assert.equal((await httpTester.probe(t(), plain({ url: '/moved', retcode: '200,301' }), deadline(ANSWER_MS))).ok, true);
    assert.equal((await httpTester.probe(t(), plain({ url: '/empty', retcode: '200-299' }), deadline(ANSWER_MS))).ok, true);
    assert.equal((await httpTester.probe(t(), plain({ url: '/moved', retcode: '200-299' }), deadline(ANSWER_MS))).ok, false);
    const r = await httpTester.probe(t(), plain({ url: '/down', retcode: '200, 500-502, 504' }), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'status 503, expected 200, 500-502, 504');
  });

  it('garbage retcode, url, host and headers are compile errors naming the attribute', () => {
    assert.deepEqual(parseRetcodes('200'), [[200, 200]]);
    assert.deepEqual(parseRetcodes('200,301-302'), [[200, 200], [301, 302]]);
    for (const bad of ['20', 'ok', '200,', '299-200', '2000', '200-']) assert.throws(() => plain({ retcode: bad }), attrErrorOn('retcode'), bad);
    assert.throws(() => plain({ url: 'index.html' }), attrErrorOn('url'));
    assert.throws(() => plain({ url: '/a b' }), attrErrorOn('url'));
    assert.throws(() => httpTester.compile({ url: '/' }, { ssl: false, timeoutMs: 1 }), attrErrorOn('host'));
    assert.throws(() => plain({ headers: 'no colon here' }), attrErrorOn('headers'));
    assert.throws(() => plain({ headers: 'Host: other' }), attrErrorOn('headers'));
    assert.throws(() => plain({ headers: 'Bad Name: x' }), attrErrorOn('headers'));
  });

  it('sends the custom headers', async () => {
    const r = await httpTester.probe(t(), plain({ headers: 'X-Probe: 1|Accept: text/plain' }), deadline(ANSWER_MS));
    assert.equal(r.ok, true, r.detail);
    assert.equal(srv.lastRequest?.['x-probe'], '1');
    assert.equal(srv.lastRequest?.accept, 'text/plain');
  });

  it('body: up iff the text is in the body; searched within the first 64 KiB only', async () => {
    assert.equal((await httpTester.probe(t(), plain({ body: 'systems go' }), deadline(ANSWER_MS))).ok, true);
    const miss = await httpTester.probe(t(), plain({ body: 'on fire' }), deadline(ANSWER_MS));
    assert.equal(miss.ok, false);
    assert.match(miss.detail, /body does not contain "on fire"/);
    const beyond = await httpTester.probe(t(), plain({ url: '/big', body: 'needle' }), deadline(ANSWER_MS));
    assert.equal(beyond.ok, false, 'text after 64 KiB does not count');
    assert.match(beyond.detail, /read 65536 bytes/);
  });

  it('a refused connection fails at once as an RST problem', async () => {
    const r = await httpTester.probe(target('127.0.0.1', await refusedPort()), plain({}), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    // The refusal, not the deadline ('conn', "no connection within"), and an RST problem: seen
    // within ARP_THRESHOLD_MS of the start by the tester's own clock.
    assert.equal(r.detail, 'connection refused');
    assert.equal(r.problem, 'rst');
  });

  it('a server that accepts and never answers fails at the deadline', async () => {
    const { r, ms } = await timed(() => httpTester.probe(t(), plain({ url: '/silent' }), deadline(SILENT_MS)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, `no response within ${SILENT_MS} ms`);
    assert.equal(r.problem, undefined);
    assert.ok(r.connectMs !== undefined);
    assertAtDeadline(ms, SILENT_MS);
  });

  it('a server trickling its status line past the deadline cannot hold the probe', async () => {
    // The status line alone takes 17 x 100 ms: the server's timer runs on this event loop, so however
    // late the loop is, the deadline (earlier) passes first.
    const trickle = await startTcpServer('trickle', { data: 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n', intervalMs: 100 });
    try {
      const { r, ms } = await timed(() => httpTester.probe(target('127.0.0.1', trickle.port), plain({ naive: true }), deadline(SILENT_MS)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, `no response within ${SILENT_MS} ms`);
      assertAtDeadline(ms, SILENT_MS);
    } finally {
      await trickle.close();
    }
  });

  it('a trickling body: non-naive fails at the deadline, naive is up on the status', async () => {
    const { r, ms } = await timed(() => httpTester.probe(t(), plain({ url: '/slow-body' }), deadline(SILENT_MS)));
    assert.equal(r.ok, false);
    assert.match(r.detail, /response incomplete at deadline \(status 200, \d+ body bytes\)/);
    assertAtDeadline(ms, SILENT_MS);
    // The body takes a minute and the deadline is ANSWER_MS: up means decided on the status alone.
    const naive = await httpTester.probe(t(), plain({ url: '/slow-body', naive: true }), deadline(ANSWER_MS));
    assert.equal(naive.ok, true, naive.detail);
    assert.equal(naive.detail, 'status 200');
  });

  it('a server speaking another protocol is down, with the parser error, and is still reset', async () => {
    const garbage = await startTcpServer('greet', { data: 'SSH-2.0-OpenSSH_9.6\r\n' });
    try {
      const r = await httpTester.probe(target('127.0.0.1', garbage.port), plain({}), deadline(ANSWER_MS));
      assert.equal(r.ok, false);
      assert.match(r.detail, /HTTP error/);
      // undici closes the socket on a parse error; a FIN close would leave FIN_WAIT2/TIME_WAIT here.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(clientStatesTo(garbage.port), []);
    } finally {
      await garbage.close();
    }
  });

  it('reads a response to its end however it is framed: length, chunks, or the server closing', async () => {
    const framings = [
      { name: 'chunked, connection kept open', data: 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nall ok\r\n0\r\n\r\n', close: false },
      { name: 'Content-Length, connection kept open', data: 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nall ok', close: false },
      { name: 'no length, ended by the close', data: 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nall ok', close: true },
    ];
    for (const f of framings) {
      const srv2 = await startTcpServer('reply', { data: f.data, closeAfterReply: f.close });
      try {
        // Must not wait for the deadline: at the deadline the verdict would be "response incomplete".
        const r = await httpTester.probe(target('127.0.0.1', srv2.port), plain({ body: 'all ok' }), deadline(ANSWER_MS));
        assert.equal(r.ok, true, `${f.name}: ${r.detail}`);
        assert.equal(r.detail, 'status 200, body matched', f.name);
      } finally {
        await srv2.close();
      }
    }
  });

  it('a response head beyond what a server may send is an HTTP error', async () => {
    const huge = `HTTP/1.1 200 OK\r\nX-Filler: ${'y'.repeat(70 * 1024)}\r\nContent-Length: 0\r\n\r\n`;
    const srv2 = await startTcpServer('reply', { data: huge });
    try {
      const r = await httpTester.probe(target('127.0.0.1', srv2.port), plain({}), deadline(ANSWER_MS));
      assert.equal(r.ok, false);
      assert.match(r.detail, /^HTTP error: /);
    } finally {
      await srv2.close();
    }
  });

  it('works for an IPv6 real (::1)', async () => {
    const v6 = await startHttpServer({ '/': { status: 200, body: 'v6' } }, '::1');
    try {
      const r = await httpTester.probe(target('::1', v6.port), plain({ body: 'v6' }), deadline(ANSWER_MS));
      assert.equal(r.ok, true, r.detail);
    } finally {
      await v6.close();
    }
  });

  it('records the exchanged bytes for debugcomm', async () => {
    const seen: { tag: CommTag; data: string }[] = [];
    const r = await httpTester.probe(t(), plain({}), deadline(ANSWER_MS, (tag, data) => seen.push({ tag, data: data.toString('latin1') })));
    assert.equal(r.ok, true);
    const written = seen.filter((s) => s.tag === 'write').map((s) => s.data).join('');
    const read = seen.filter((s) => s.tag === 'read').map((s) => s.data).join('');
    // Native: the original's request, HTTP/1.0; undici always speaks HTTP/1.1.
    assert.match(written, path === 'native' ? /^GET \/ HTTP\/1\.0\r\nHost: www\.example\.com\r\nUser-Agent: SureAliveD\r\n\r\n$/ : /^GET \/ HTTP\/1\.1\r\n/);
    assert.match(written, /host: www\.example\.com\r\n/i);
    assert.match(read, /^HTTP\/1\.1 200 OK\r\n/);
    assert.ok(r.bytesSent !== undefined && r.bytesSent > 0 && r.bytesReceived !== undefined && r.bytesReceived > 0);
  });

  it('many concurrent probes, mixed outcomes, reuse connections-free clients correctly and leave no TIME_WAIT', async () => {
    const cases = [
      { values: {}, ok: true },
      { values: { url: '/down' }, ok: false },
      { values: { naive: true }, ok: true },
      { values: { body: 'nope' }, ok: false },
      { values: { url: '/moved', retcode: '301' }, ok: true },
    ];
    const compiled = cases.map((c) => ({ p: plain(c.values), ok: c.ok }));
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => httpTester.probe(t(), compiled[i % compiled.length]!.p, deadline(ANSWER_MS))),
      );
      results.forEach((r, i) => assert.equal(r.ok, compiled[i % compiled.length]!.ok, `round ${round} probe ${i}: ${r.detail}`));
    }
    const tw = timeWaitCount(srv.port);
    assert.ok(tw <= 5, `${tw} TIME_WAIT sockets`);
  });

  it('2,000 probes in flight at once, ending every way (answer, refusal, deadline before and after connect), each get their own verdict', async () => {
    const refused = await refusedPort();
    const silent = await startTcpServer('silent');
    const blackhole = await startBlackholeServer();
    // Starting 2,000 probes, and answering 800 of them from this same process, keeps the event loop
    // busy for seconds on a loaded machine. The probes that end by an answer get ANSWER_MS, so their
    // verdicts are the answers'; the two kinds that end at a deadline get one long enough that the
    // silent server's connections are seen first (the blackhole's never are: proven full queue).
    const DEADLINE_MS = 5000;
    try {
      const kinds = [
        { t: t(), p: plain({}), ms: ANSWER_MS, check: (r: ProbeResult) => r.ok && r.detail === 'status 200' },
        { t: t(), p: plain({ url: '/down' }), ms: ANSWER_MS, check: (r: ProbeResult) => !r.ok && r.detail === 'status 503, expected 200' },
        // rst or arp: which one is the time from the start to the refusal being read, and reading
        // it waits for the rest of the burst to start (the engine spreads its starts for this reason).
        { t: target('127.0.0.1', refused), p: plain({}), ms: ANSWER_MS, check: (r: ProbeResult) => !r.ok && r.detail === 'connection refused' && (r.problem === 'rst' || r.problem === 'arp') },
        { t: target('127.0.0.1', silent.port), p: plain({}), ms: DEADLINE_MS, check: (r: ProbeResult) => !r.ok && r.problem === undefined && r.detail === `no response within ${DEADLINE_MS} ms` },
        { t: target('127.0.0.1', blackhole.port), p: plain({}), ms: DEADLINE_MS, check: (r: ProbeResult) => !r.ok && r.problem === 'conn' && r.detail === `no connection within ${DEADLINE_MS} ms` },
      ];
      const picks = Array.from({ length: 2000 }, (_, i) => kinds[(i * 7) % kinds.length]!);
      const results = await Promise.all(picks.map((k) => httpTester.probe(k.t, k.p, deadline(k.ms))));
      results.forEach((r, i) => assert.ok(picks[i]!.check(r), `probe ${i} (kind ${(i * 7) % kinds.length}): ${r.detail}`));
    } finally {
      await silent.close();
      await blackhole.close();
    }
  });

  if (path === 'native') describe('with SSL="1" (always on the net.Socket path)', () => {
    let certs: TestCerts;
    let tlsSrv: Awaited<ReturnType<typeof startHttpsServer>>;
    before(async () => {
      certs = makeCerts();
      tlsSrv = await startHttpsServer({ '/': { status: 200, body: 'secure ok' }, '/silent': { silent: true } }, certs);
    });
    after(async () => {
      await tlsSrv.close();
      certs.remove();
    });
    const ts = () => target('127.0.0.1', tlsSrv.port);

    it('accepts any certificate by default (like the original) and sends SNI from host', async () => {
      const r = await httpTester.probe(ts(), secure({ body: 'secure ok' }), deadline(ANSWER_MS));
      assert.equal(r.ok, true, r.detail);
      assert.equal(tlsSrv.servernames.at(-1), 'localhost');
    });

    it('sends no SNI when host is an IP literal', async () => {
      const r = await httpTester.probe(ts(), secure({ host: '127.0.0.1' }), deadline(ANSWER_MS));
      assert.equal(r.ok, true, r.detail);
      assert.equal(tlsSrv.servernames.at(-1), false);
    });

    it('verify="1": an untrusted certificate is down; with cafile it is up; a wrong name is down', async () => {
      const untrusted = await httpTester.probe(ts(), secure({ verify: true }), deadline(ANSWER_MS));
      assert.equal(untrusted.ok, false);
      assert.match(untrusted.detail, /TLS handshake failed/);
      const trusted = await httpTester.probe(ts(), secure({ cafile: certs.caFile }), deadline(ANSWER_MS));
      assert.equal(trusted.ok, true, trusted.detail);
      const byIp = await httpTester.probe(ts(), secure({ cafile: certs.caFile, host: '127.0.0.1' }), deadline(ANSWER_MS));
      assert.equal(byIp.ok, true, byIp.detail);
      const wrongName = await httpTester.probe(ts(), secure({ cafile: certs.caFile, host: 'wrong.example' }), deadline(ANSWER_MS));
      assert.equal(wrongName.ok, false);
      assert.match(wrongName.detail, /TLS handshake failed: .*wrong\.example/);
    });

    it('a plain-text server on an SSL probe is down at once, and leaves no descriptor behind', async () => {
      // The server closes on the ClientHello. Down by that close, not by the deadline ("TLS handshake
      // not complete within"); and its socket is closed although Node had already ended its side (a
      // reset then fails with EINVAL, and the descriptor used to stay open for good).
      const before = openFdCount();
      for (let i = 0; i < 20; i++) {
        const r = await httpTester.probe(t(), secure({}), deadline(ANSWER_MS));
        assert.equal(r.ok, false);
        assert.match(r.detail, /^TLS handshake failed: /);
        assert.doesNotMatch(r.detail, /EINVAL/);
      }
      const leaked = openFdCount() - before;
      assert.ok(leaked < 10, `${leaked} more descriptors open after 20 probes`);
    });

    it('a silent TLS server fails at the deadline', async () => {
      // The handshake with this process's server must be done before the deadline: 2 s.
      const { r, ms } = await timed(() => httpTester.probe(ts(), secure({ url: '/silent' }), deadline(2 * SILENT_MS)));
      assert.equal(r.ok, false);
      assert.equal(r.detail, `no response within ${2 * SILENT_MS} ms`);
      assertAtDeadline(ms, 2 * SILENT_MS);
    });

    it('200 TLS probes reset at every stage survive and leave no TIME_WAIT', async () => {
      const variants = [secure({}), secure({ naive: true }), secure({ url: '/missing' }), secure({ url: '/silent' })];
      const results = await Promise.all(
        // The silent ones end at 200 ms, at whatever stage they are (connecting, handshaking, waiting).
        Array.from({ length: 200 }, (_, i) => httpTester.probe(ts(), variants[i % variants.length]!, deadline(i % 4 === 3 ? 200 : ANSWER_MS))),
      );
      results.forEach((r, i) => assert.equal(r.ok, i % 4 < 2, `${i}: ${r.detail}`));
      const tw = timeWaitCount(tlsSrv.port);
      assert.ok(tw <= 5, `${tw} TIME_WAIT sockets`);
    });
  });
});
