// Behaviour of the dns tester against a real UDP DNS server on loopback: answers, NXDOMAIN,
// empty answers, silence, ICMP unreachable, reply validation and expect.
// Timing (issue 14: must hold on a busy 2-core machine): probes that end by a reply get a deadline
// far beyond it, so the verdict shows it was not the deadline; silence is checked with assertAtDeadline.

import assert from 'node:assert/strict';
import { dnsTester } from '../../testers/dns.js';
import type { AttrValues } from '../../testers/contract.js';
import { closedUdpPort, deadline, startDnsServer, target, type DnsServer } from '../helpers/servers.js';
import { assertAtDeadline, timed } from '../helpers/timing.js';

const compile = (values: AttrValues) => dnsTester.compile(values, { ssl: false, timeoutMs: 1000 });

/** For probes that must end by the reply: a deadline no reply on loopback comes near, even on a busy machine. */
const ANSWER_MS = 20_000;

const SOA = {
  type: 'SOA' as const,
  name: 'example.com',
  ttl: 60,
  data: { mname: 'ns1.example.com', rname: 'hostmaster.example.com', serial: 1, refresh: 60, retry: 60, expire: 60, minimum: 60 },
};

describe('dns tester', () => {
  let srv: DnsServer;
  before(async () => {
    srv = await startDnsServer({
      'example.com': { answers: [SOA] },
      'www.example.com': {
        answers: [
          { type: 'CNAME', name: 'www.example.com', ttl: 60, data: 'web.example.com' },
          { type: 'A', name: 'www.example.com', ttl: 60, data: '192.0.2.10' },
          { type: 'AAAA', name: 'www.example.com', ttl: 60, data: '2001:db8::10' },
        ],
      },
      'empty.example.com': { rcode: 'NOERROR', answers: [] },
      'silent.example.com': { silent: true },
      'decoy.example.com': { decoys: true, answers: [{ type: 'A', name: 'decoy.example.com', ttl: 60, data: '192.0.2.1' }] },
    });
  });
  after(() => srv.close());
  const t = () => target('127.0.0.1', srv.port);

  it('a reply with answers is up; the query is SOA/IN, RD clear, random ID', async () => {
    const p = compile({ request: 'example.com' });
    const results = await Promise.all([1, 2, 3, 4].map(() => dnsTester.probe(t(), p, deadline(ANSWER_MS))));
    for (const r of results) assert.equal(r.ok, true, r.detail);
    const queries = srv.queries.slice(-4);
    for (const q of queries) {
      assert.equal(q.flag_rd, false);
      assert.equal(q.flag_qr, false);
      assert.deepEqual(q.questions, [{ name: 'example.com', type: 'SOA', class: 'IN' }]);
    }
    assert.ok(new Set(queries.map((q) => q.id)).size > 1, 'IDs vary between queries');
    assert.ok(results[0]!.connectMs !== undefined);
  });

  it('accepts a trailing dot in request', async () => {
    const r = await dnsTester.probe(t(), compile({ request: 'example.com.' }), deadline(ANSWER_MS));
    assert.equal(r.ok, true, r.detail);
    assert.equal(srv.queries.at(-1)?.questions?.[0]?.name, 'example.com');
  });

  it('NXDOMAIN is down', async () => {
    const r = await dnsTester.probe(t(), compile({ request: 'nowhere.example.com' }), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'no answer (NXDOMAIN)');
  });

  it('an empty answer (NOERROR, ANCOUNT 0) is down', async () => {
    const r = await dnsTester.probe(t(), compile({ request: 'empty.example.com' }), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'no answer (NOERROR)');
  });

  it('no reply fails at the deadline', async () => {
    const { r, ms } = await timed(() => dnsTester.probe(t(), compile({ request: 'silent.example.com' }), deadline(300)));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'no reply within 300 ms');
    assertAtDeadline(ms, 300);
  });

  it('ICMP port unreachable fails at once', async () => {
    // By the ICMP error, not the deadline ("no reply within").
    const r = await dnsTester.probe(target('127.0.0.1', await closedUdpPort()), compile({ request: 'example.com' }), deadline(ANSWER_MS));
    assert.equal(r.ok, false);
    assert.equal(r.detail, 'port unreachable (ICMP)');
    assert.equal(r.problem, 'rst');
  });

  it('ignores replies with another ID or without QR, and takes the real one', async () => {
    const r = await dnsTester.probe(t(), compile({ request: 'decoy.example.com', qtype: 'A', expect: '192.0.2.1' }), deadline(ANSWER_MS));
    assert.equal(r.ok, true, r.detail);
  });

  it('qtype and expect: up iff an answer of that type has that value', async () => {
    const www = (values: AttrValues) => dnsTester.probe(t(), compile({ request: 'www.example.com', ...values }), deadline(ANSWER_MS));
    assert.equal((await www({ qtype: 'A', expect: '192.0.2.10' })).ok, true);
    assert.equal((await www({ qtype: 'a' })).ok, true);
    const wrong = await www({ qtype: 'A', expect: '192.0.2.99' });
    assert.equal(wrong.ok, false);
    assert.equal(wrong.detail, 'no A 192.0.2.99 in answer (got 192.0.2.10)');
    assert.equal((await www({ qtype: 'AAAA', expect: '2001:0db8:0:0::0010' })).ok, true, 'IPv6 compared canonically');
    assert.equal((await www({ qtype: 'CNAME', expect: 'WEB.example.com.' })).ok, true, 'names compared case-blind');
    assert.equal(srv.queries.at(-1)?.questions?.[0]?.type, 'CNAME');
  });

  it('bad attributes are compile errors naming the attribute', () => {
    const on = (attr: string) => (err: Error & { attr?: string }) => err.name === 'AttrError' && err.attr === attr;
    assert.throws(() => compile({}), on('request'));
    assert.throws(() => compile({ request: 'a..b' }), on('request'));
    assert.throws(() => compile({ request: `${'x'.repeat(64)}.com` }), on('request'));
    assert.throws(() => compile({ request: 'a.b', qtype: 'BOGUS' }), on('qtype'));
    assert.throws(() => compile({ request: 'a.b', qclass: 'XX' }), on('qclass'));
    assert.throws(() => compile({ request: 'a.b', qtype: 'SOA', expect: 'x' }), on('expect'));
    assert.throws(() => compile({ request: 'a.b', qtype: 'A', expect: 'not-an-ip' }), on('expect'));
  });

  it('works for an IPv6 real (::1)', async () => {
    const v6 = await startDnsServer({ 'example.com': { answers: [SOA] } }, '::1');
    try {
      const r = await dnsTester.probe(target('::1', v6.port), compile({ request: 'example.com' }), deadline(ANSWER_MS));
      assert.equal(r.ok, true, r.detail);
      const unreachable = await dnsTester.probe(target('::1', await closedUdpPort('::1')), compile({ request: 'example.com' }), deadline(ANSWER_MS));
      assert.equal(unreachable.ok, false);
      assert.equal(unreachable.detail, 'port unreachable (ICMP)');
    } finally {
      await v6.close();
    }
  });

  it('records the query and reply for debugcomm', async () => {
    const tags: string[] = [];
    const r = await dnsTester.probe(t(), compile({ request: 'example.com' }), deadline(ANSWER_MS, (tag) => tags.push(tag)));
    assert.equal(r.ok, true);
    assert.deepEqual(tags, ['write', 'read']);
  });
});
