// Behaviour of the tcp tester against real loopback listeners: verdicts, failure classes,
// deadlines, TLS, and the reset-on-close that keeps TIME_WAIT away.

import assert from 'node:assert/strict';
import net from 'node:net';
import { tcpTester } from '../../testers/tcp.js';
import { earlyProblem } from '../../testers/socket.js';
import type { ProbeResult } from '../../testers/contract.js';
import {
  deadline,
  makeCerts,
  refusedPort,
  startBlackholeServer,
  startHttpServer,
  startHttpsServer,
  startTcpServer,
  target,
  timeWaitCount,
  type TestCerts,
} from '../helpers/servers.js';
import { PROBE_PATHS, useProbePath } from '../helpers/probe-paths.js';

async function timed(p: Promise<ProbeResult>): Promise<{ r: ProbeResult; ms: number }> {
  const t0 = performance.now();
  const r = await p;
  return { r, ms: performance.now() - t0 };
}

for (const path of PROBE_PATHS) describe(`tcp tester (${path} probes)`, () => {
  useProbePath(path);
  let PLAIN: ReturnType<typeof tcpTester.compile>;
  before(() => {
    PLAIN = tcpTester.compile({}, { ssl: false, timeoutMs: 1000 });
    assert.equal(PLAIN.native !== undefined, path === 'native', 'probe path in use');
  });

  it('a real accepting the connection is up, with its connect time', async () => {
    const srv = await startTcpServer('silent');
    try {
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), PLAIN, deadline(1000));
      assert.equal(r.ok, true, r.detail);
      assert.equal(r.problem, undefined);
      assert.ok(r.connectMs !== undefined && r.connectMs >= 0 && r.connectMs < 1000);
    } finally {
      await srv.close();
    }
  });

  it('works for an IPv6 real (::1)', async () => {
    const srv = await startTcpServer('silent', { host: '::1' });
    try {
      const r = await tcpTester.probe(target('::1', srv.port), PLAIN, deadline(1000));
      assert.equal(r.ok, true, r.detail);
      const refused = await tcpTester.probe(target('::1', await refusedPort('::1')), PLAIN, deadline(1000));
      assert.equal(refused.ok, false);
      assert.equal(refused.problem, 'rst');
    } finally {
      await srv.close();
    }
  });

  it('a refused connection fails at once as an RST problem', async () => {
    const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', await refusedPort()), PLAIN, deadline(2000)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'connection refused');
    assert.equal(r.problem, 'rst');
    assert.equal(r.connectMs, undefined);
    assert.ok(ms < 500, `took ${ms} ms`);
  });

  it('a real that never answers the SYN fails at the deadline as a conn problem', async () => {
    const bh = await startBlackholeServer();
    try {
      const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', bh.port), PLAIN, deadline(300)));
      assert.equal(r.ok, false);
      assert.equal(r.problem, 'conn');
      assert.match(r.detail, /no connection within 300 ms/);
      assert.ok(ms >= 290 && ms < 450, `took ${ms} ms`);
    } finally {
      await bh.close();
    }
  });

  it('a probe whose deadline already passed fails without connecting', async () => {
    const srv = await startTcpServer('silent');
    try {
      const ac = new AbortController();
      ac.abort();
      const r = await tcpTester.probe(target('127.0.0.1', srv.port), PLAIN, { signal: ac.signal, timeoutMs: 0 });
      assert.equal(r.ok, false);
      assert.equal(r.problem, 'conn');
    } finally {
      await srv.close();
    }
  });

  it('classifies connection errors before/after 1 s as rst/arp', () => {
    assert.equal(earlyProblem(0), 'rst');
    assert.equal(earlyProblem(999.9), 'rst');
    assert.equal(earlyProblem(1000), 'arp');
    assert.equal(earlyProblem(4000), 'arp');
  });

  it('resets its connections: ~1000 probes leave no TIME_WAIT behind (a FIN-closing control does)', async () => {
    const srv = await startTcpServer('silent');
    const control = await startTcpServer('silent');
    try {
      const t = target('127.0.0.1', srv.port);
      let ok = 0;
      for (let batch = 0; batch < 20; batch++) {
        const results = await Promise.all(Array.from({ length: 50 }, () => tcpTester.probe(t, PLAIN, deadline(2000))));
        ok += results.filter((r) => r.ok).length;
      }
      assert.equal(ok, 1000);
      // The control closes 20 connections the ordinary way (FIN): this proves the counter sees TIME_WAIT.
      await Promise.all(
        Array.from({ length: 20 }, () => new Promise<void>((resolve) => {
          const s = net.connect({ host: '127.0.0.1', port: control.port }, () => s.end());
          s.on('close', () => resolve());
          s.on('error', () => resolve());
        })),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(timeWaitCount(control.port) > 0, 'control: FIN close should leave TIME_WAIT');
      const tw = timeWaitCount(srv.port);
      assert.ok(tw <= 5, `${tw} TIME_WAIT sockets for the probed port`);
    } finally {
      await srv.close();
      await control.close();
    }
  });

  if (path === 'native') describe('with SSL="1" (always on the net.Socket path)', () => {
    let certs: TestCerts;
    before(() => {
      certs = makeCerts();
    });
    after(() => certs.remove());

    it('is up only once the TLS handshake completes; connect time includes it', async () => {
      const srv = await startHttpsServer({}, certs);
      try {
        const p = tcpTester.compile({}, { ssl: true, timeoutMs: 1000 });
        const r = await tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(1000));
        assert.equal(r.ok, true, r.detail);
        assert.match(r.detail, /TLS/);
        assert.ok(r.connectMs !== undefined && r.connectMs > 0);
      } finally {
        await srv.close();
      }
    });

    it('fails against a plain-text server', async () => {
      const srv = await startHttpServer({});
      try {
        const p = tcpTester.compile({}, { ssl: true, timeoutMs: 1000 });
        const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(1000)));
        assert.equal(r.ok, false);
        assert.match(r.detail, /TLS handshake failed/);
        assert.equal(r.problem, 'rst');
        assert.ok(ms < 900, `took ${ms} ms`);
      } finally {
        await srv.close();
      }
    });

    it('fails at the deadline when the server never answers the handshake', async () => {
      const srv = await startTcpServer('silent');
      try {
        const p = tcpTester.compile({}, { ssl: true, timeoutMs: 300 });
        const { r, ms } = await timed(tcpTester.probe(target('127.0.0.1', srv.port), p, deadline(300)));
        assert.equal(r.ok, false);
        assert.equal(r.problem, 'conn');
        assert.match(r.detail, /TLS handshake not complete within 300 ms/);
        assert.ok(ms < 450, `took ${ms} ms`);
      } finally {
        await srv.close();
      }
    });

    it('with verify="1" rejects an untrusted certificate and accepts it given the cafile', async () => {
      const srv = await startHttpsServer({}, certs);
      try {
        const t = target('127.0.0.1', srv.port);
        const strict = tcpTester.compile({ verify: true }, { ssl: true, timeoutMs: 1000 });
        const bad = await tcpTester.probe(t, strict, deadline(1000));
        assert.equal(bad.ok, false);
        assert.match(bad.detail, /TLS handshake failed: .*(self.signed|unable to verify|local issuer)/i);
        const withCa = tcpTester.compile({ cafile: certs.caFile }, { ssl: true, timeoutMs: 1000 });
        const good = await tcpTester.probe(t, withCa, deadline(1000));
        assert.equal(good.ok, true, good.detail);
      } finally {
        await srv.close();
      }
    });

    it('an unreadable cafile is a compile error naming the attribute', () => {
      assert.throws(
        () => tcpTester.compile({ cafile: '/nonexistent/ca.pem' }, { ssl: true, timeoutMs: 1000 }),
        (err: Error & { attr?: string }) => err.name === 'AttrError' && err.attr === 'cafile',
      );
    });
  });
});
