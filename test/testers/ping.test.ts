// Behaviour of the ping tester: ICMP echo to 127.0.0.1 and ::1 on both socket kinds (raw in this
// process, which runs as root; unprivileged datagram ICMP in a network namespace whose
// net.ipv4.ping_group_range allows it), the automatic choice under each setting, a real in another
// namespace that drops echo requests (nftables), the configuration error when no ICMP socket can be
// opened (root without CAP_NET_RAW in a namespace that refuses datagram ICMP), a descriptor
// shortage, and the decision logic and packet code as pure functions.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  chooseKind,
  chooseKinds,
  echoRequest,
  icmpBuilt,
  icmpChecksum,
  parseEchoReply,
  pingTester,
  socketAvailability,
  type KindChoice,
  type PingParams,
  type SocketAvailability,
} from '../../testers/ping.js';
import type { CommTag, ProbeResult } from '../../testers/contract.js';
import { deadline, target } from '../helpers/servers.js';
import { Netns, REPO, link, netnsUnavailable } from '../helpers/netns.js';
import { formatIssue, parseServiceConfig } from '../../surealived/config/xml.js';
import { TesterRegistry } from '../../testers/registry.js';

const GENERIC = { ssl: false, timeoutMs: 1000 };
const OPEN: SocketAvailability = { dgram: undefined, raw: undefined };
const FACTS = { groups: [1000, 27], pingGroupRange: '1\t0\n' };

describe('ping tester: socket choice (pure)', () => {
  it('auto prefers the unprivileged datagram socket and falls back to a raw one', () => {
    assert.deepEqual(chooseKind('auto', OPEN, FACTS), { kind: 'dgram' });
    assert.deepEqual(chooseKind('auto', { dgram: 'EACCES', raw: undefined }, FACTS), { kind: 'raw' });
    assert.deepEqual(chooseKind('auto', { dgram: 'EPROTONOSUPPORT', raw: undefined }, FACTS), { kind: 'raw' });
  });

  it('auto with neither: one error giving both reasons (groups vs ping_group_range, CAP_NET_RAW)', () => {
    assert.deepEqual(chooseKind('auto', { dgram: 'EACCES', raw: 'EPERM' }, FACTS), {
      error:
        'no ICMP socket can be opened: unprivileged ICMP sockets are not allowed: none of this process\'s groups (1000, 27) is in net.ipv4.ping_group_range ("1 0") (EACCES); ' +
        'raw ICMP sockets need CAP_NET_RAW (root, or the capability granted) (EPERM)',
    });
  });

  it('a forced kind is that kind or an error about it alone', () => {
    assert.deepEqual(chooseKind('dgram', { dgram: undefined, raw: 'EPERM' }, FACTS), { kind: 'dgram' });
    assert.deepEqual(chooseKind('raw', { dgram: undefined, raw: undefined }, FACTS), { kind: 'raw' });
    const d = chooseKind('dgram', { dgram: 'EACCES', raw: undefined }, { groups: [0] });
    assert.ok('error' in d && /groups \(0\) is in net\.ipv4\.ping_group_range \(unreadable\)/.test(d.error), JSON.stringify(d));
    const r = chooseKind('raw', { dgram: undefined, raw: 'EPERM' }, FACTS);
    assert.ok('error' in r && /CAP_NET_RAW/.test(r.error) && !/ping_group_range/.test(r.error), JSON.stringify(r));
  });

  it('a shortage of the director during the check (EMFILE ...) decides nothing: it is decided again at a probe', () => {
    assert.deepEqual(chooseKind('auto', { dgram: 'EMFILE', raw: 'EMFILE' }, FACTS), { local: 'EMFILE' });
    assert.deepEqual(chooseKind('raw', { dgram: undefined, raw: 'ENFILE' }, FACTS), { local: 'ENFILE' });
    assert.deepEqual(chooseKind('auto', { dgram: 'EACCES', raw: 'ENOBUFS' }, FACTS), { local: 'ENOBUFS' });
  });

  it('a configuration error only when neither family can ping; one family without ICMP fails only its reals', () => {
    const none: SocketAvailability = { dgram: 'EACCES', raw: 'EPERM' };
    const noV6: SocketAvailability = { dgram: 'EAFNOSUPPORT', raw: 'EAFNOSUPPORT' };
    const both = chooseKinds('auto', { 4: none, 6: none }, FACTS);
    assert.match(both.error ?? '', /^no ICMP socket can be opened: .*ping_group_range.*CAP_NET_RAW/);
    const v4only = chooseKinds('auto', { 4: OPEN, 6: noV6 }, FACTS);
    assert.equal(v4only.error, undefined);
    assert.deepEqual(v4only[4], { kind: 'dgram' });
    assert.ok('error' in v4only[6] && /EAFNOSUPPORT/.test((v4only[6] as { error: string }).error));
    const forced = chooseKinds('raw', { 4: { dgram: undefined, raw: 'EPERM' }, 6: { dgram: undefined, raw: 'EPERM' } }, FACTS);
    assert.match(forced.error ?? '', /^socket="raw": raw ICMP sockets need CAP_NET_RAW/);
    const mixed = chooseKinds('raw', { 4: { dgram: undefined, raw: 'EPERM' }, 6: { dgram: undefined, raw: 'EAFNOSUPPORT' } }, FACTS);
    assert.match(mixed.error ?? '', /^socket="raw": IPv4: .*CAP_NET_RAW.*; IPv6: raw ICMP sockets are not available here \(EAFNOSUPPORT\)/);
  });
});

describe('ping tester: echo packets (pure)', () => {
  it('an ICMPv4 echo request carries type 8, id, seq, the data and a valid checksum; ICMPv6 leaves the checksum to the kernel', () => {
    const p = echoRequest(4, 0xbeef, 0x1234, Buffer.from('abcdefghi'));
    assert.deepEqual([...p.subarray(0, 2)], [8, 0]);
    assert.equal(p.readUInt16BE(4), 0xbeef);
    assert.equal(p.readUInt16BE(6), 0x1234);
    assert.equal(p.subarray(8).toString(), 'abcdefghi');
    assert.equal(icmpChecksum(p), 0, 'a packet with its checksum sums to 0');
    // RFC 1071's example words.
    assert.equal(icmpChecksum(Buffer.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), ~0xddf2 & 0xffff);
    const v6 = echoRequest(6, 1, 2, Buffer.alloc(0));
    assert.deepEqual([...v6], [128, 0, 0, 0, 0, 1, 0, 2]);
  });

  it('replies are read after the IP header only on raw IPv4 sockets; anything but an echo reply is none', () => {
    const icmp = Buffer.from([0, 0, 0x12, 0x34, 0xbe, 0xef, 0x00, 0x07, 1, 2, 3]);
    const ip = Buffer.alloc(24);
    ip[0] = 0x46; // IPv4, header of 6 words (with options)
    ip[9] = 1; // ICMP
    assert.deepEqual(parseEchoReply(4, 'raw', Buffer.concat([ip, icmp])), { id: 0xbeef, seq: 7, data: Buffer.from([1, 2, 3]) });
    assert.deepEqual(parseEchoReply(4, 'dgram', icmp), { id: 0xbeef, seq: 7, data: Buffer.from([1, 2, 3]) });
    const v6 = Buffer.from(icmp);
    v6[0] = 129;
    assert.deepEqual(parseEchoReply(6, 'raw', v6)?.seq, 7);
    assert.deepEqual(parseEchoReply(6, 'dgram', v6)?.id, 0xbeef);
    assert.equal(parseEchoReply(6, 'dgram', icmp), undefined, 'type 0 is no ICMPv6 echo reply');
    const request = Buffer.from(icmp);
    request[0] = 8;
    assert.equal(parseEchoReply(4, 'dgram', request), undefined);
    assert.equal(parseEchoReply(4, 'raw', icmp), undefined, 'no IP header');
    assert.equal(parseEchoReply(4, 'dgram', icmp.subarray(0, 7)), undefined);
  });
});

describe('ping tester: attributes', () => {
  it('socket and size are checked at compile; no TLS; every attribute has a one-line doc', () => {
    const attr = (name: string) => (e: Error & { attr?: string }) => e.name === 'AttrError' && e.attr === name;
    assert.throws(() => pingTester.compile({ socket: 'icmp' }, GENERIC), attr('socket'));
    assert.throws(() => pingTester.compile({ size: 70000 }, GENERIC), attr('size'));
    assert.throws(() => pingTester.compile({}, { ssl: true, timeoutMs: 1000 }), attr('SSL'));
    for (const a of pingTester.attrs) assert.ok(a.doc.length > 10 && !a.doc.includes('\n'), a.name);
  });
});

describe('ping tester in this process (root: raw sockets)', function () {
  before(function () {
    assert.ok(icmpBuilt(), 'build/Release/prober.node with its ICMP sockets must be built (npm install)');
    if (process.getuid?.() !== 0) this.skip();
  });
  const RAW = (): PingParams => pingTester.compile({ socket: 'raw' }, GENERIC);

  for (const addr of ['127.0.0.1', '::1']) {
    it(`${addr}: up on a raw socket, its round trip as the connect time, the echo recorded by debugcomm`, async () => {
      const comm: [CommTag, Buffer][] = [];
      const ctx = deadline(1000, (tag, data) => comm.push([tag, data]));
      const r = await pingTester.probe(target(addr, 0), RAW(), ctx);
      ctx.cancel();
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /^echo reply in \d+\.\d\d ms \(raw socket\)$/);
      assert.ok(r.connectMs !== undefined && r.connectMs >= 0 && r.connectMs < 1000);
      assert.equal(r.bytesSent, 64, '8-byte header + 56 bytes of data');
      assert.deepEqual(comm.map(([t]) => t), ['write', 'read']);
      const sent = comm[0]![1];
      assert.equal(sent[0], addr === '::1' ? 128 : 8);
      const reply = parseEchoReply(addr === '::1' ? 6 : 4, 'raw', comm[1]![1]);
      assert.ok(reply !== undefined);
      assert.equal(reply.id, sent.readUInt16BE(4));
      assert.equal(reply.seq, sent.readUInt16BE(6));
      assert.deepEqual(reply.data, sent.subarray(8));
    });
  }

  it('60 probes at once to both loopbacks: every raw socket sees every reply from its address and keeps only its own', async () => {
    const p = RAW();
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => pingTester.probe(target(i % 2 === 0 ? '127.0.0.1' : '::1', 0), p, deadline(2000))));
    assert.deepEqual(results.filter((r) => !r.ok), []);
  });

  it('size sets the data length (0 is a bare header)', async () => {
    for (const size of [0, 3, 1400]) {
      const r = await pingTester.probe(target('127.0.0.1', 0), pingTester.compile({ socket: 'raw', size }, GENERIC), deadline(1000));
      assert.equal(r.ok, true, `${size}: ${r.detail}`);
      assert.equal(r.bytesSent, 8 + size);
    }
  });

  it('the automatic choice follows what this host allows', () => {
    const p = pingTester.compile({}, GENERIC);
    for (const family of [4, 6] as const) {
      const avail = socketAvailability(family);
      const want: KindChoice = avail.dgram === undefined ? { kind: 'dgram' } : { kind: 'raw' };
      assert.deepEqual(p.choice[family], want, JSON.stringify(avail));
    }
  });

  it('an unusable address, and a deadline already passed, fail without a socket left behind', async () => {
    const bad = await pingTester.probe({ ...target('127.0.0.1', 0), addr: '127.0.0.300' }, RAW(), deadline(500));
    assert.equal(bad.ok, false);
    assert.equal(bad.detail, 'cannot ping: invalid address 127.0.0.300');
    const ac = new AbortController();
    ac.abort();
    const late = await pingTester.probe(target('127.0.0.1', 0), RAW(), { signal: ac.signal, timeoutMs: 0 });
    assert.equal(late.ok, false);
    assert.equal(late.problem, 'conn');
  });

  it('<tester proto="ping"> compiles through the config loader; a bad socket value is reported at its line', async () => {
    const registry = TesterRegistry.withBuiltins();
    const xml = (socket: string): string => `<surealived>
  <virtual name="web" addr="192.0.2.80" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="ping" testport="80" loopdelay="1" timeout="1" retries2ok="1" retries2fail="1" size="100"
            socket="${socket}"/>
    <real name="a" addr="127.0.0.1" port="80" weight="1"/>
    <real name="b" addr="127.0.0.2" port="80" weight="1" size="8"/>
  </virtual>
</surealived>`;
    const ok = await parseServiceConfig(xml('raw'), 'ping.xml', { registry, canExecute: () => undefined });
    assert.deepEqual(ok.issues.filter((i) => i.severity === 'error').map(formatIssue), []);
    const [a, b] = ok.config!.virtuals[0]!.reals.map((r) => r.params as PingParams);
    assert.deepEqual([a!.socket, a!.size, a!.choice[4]], ['raw', 100, { kind: 'raw' }]);
    assert.equal(b!.size, 8);
    const bad = await parseServiceConfig(xml('icmp'), 'ping.xml', { registry, canExecute: () => undefined });
    assert.equal(bad.config, undefined);
    assert.match(bad.issues.map(formatIssue).join('\n'), /ping\.xml:4: error: virtual "web": tester: attribute "socket": unknown socket "icmp" \(one of auto, dgram, raw\)/);
  });
});

// ---- in network namespaces, through child processes (a process cannot change its own namespace) ----

const testers = fileURLToPath(new URL('../../testers/', import.meta.url));
const PING_CHILD = `
const { pingTester, socketAvailability } = await import(${JSON.stringify(join(testers, 'ping.js'))});
const o = JSON.parse(process.argv[1]);
const avail = { 4: socketAvailability(4), 6: socketAvailability(6) };
let params;
try {
  params = pingTester.compile(o.values, { ssl: false, timeoutMs: o.timeoutMs });
} catch (e) {
  process.stdout.write(JSON.stringify({ avail, compileError: e.message, attr: e.attr }));
  process.exit(0);
}
const t0 = performance.now();
const results = await Promise.all(o.targets.map(async (addr) => {
  const r = await pingTester.probe({ addr, family: addr.includes(':') ? 6 : 4, port: 0, vname: 'v', rname: 'r' }, params, { signal: AbortSignal.timeout(o.timeoutMs), timeoutMs: o.timeoutMs });
  return { ...r, ms: performance.now() - t0 };
}));
process.stdout.write(JSON.stringify({ avail, choice: params.choice, results }));
`;

interface ChildOut {
  avail: Record<'4' | '6', SocketAvailability>;
  compileError?: string;
  attr?: string;
  choice?: PingParams['choice'];
  results?: (ProbeResult & { ms: number })[];
}

/** Runs the ping tester inside `ns`; `noNetRaw` drops CAP_NET_RAW (root stays root otherwise). */
async function pingIn(ns: Netns, o: { values?: Record<string, string | number>; targets: string[]; timeoutMs?: number; noNetRaw?: boolean }): Promise<ChildOut> {
  const node = [process.execPath, '--input-type=module', '-e', PING_CHILD, JSON.stringify({ values: o.values ?? {}, targets: o.targets, timeoutMs: o.timeoutMs ?? 1000 })];
  const r = o.noNetRaw === true ? await ns.exec('setpriv', ['--bounding-set', '-net_raw', ...node]) : await ns.exec(node[0]!, node.slice(1));
  if (r.code !== 0) throw new Error(`ping child in ${ns.name} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as ChildOut;
}

const ALLOW_ALL = '0 2147483647';

describe('ping tester in network namespaces (socket kinds, automatic choice, a real that drops ICMP)', function () {
  this.timeout(60_000);
  const made: Netns[] = [];
  const ns = async (prefix: string): Promise<Netns> => {
    const n = await Netns.create(prefix);
    made.push(n);
    return n;
  };
  before(function () {
    const why = netnsUnavailable();
    if (why !== undefined) throw new Error(`these tests need network namespaces: ${why}`);
  });
  after(async () => {
    for (const n of made) await n.destroy();
  });

  it('datagram ICMP refused (a new namespace\'s ping_group_range "1 0"): auto takes raw sockets, both loopbacks up', async () => {
    const n = await ns('sdpr');
    assert.equal((await n.must('sysctl', ['-n', 'net.ipv4.ping_group_range'])).trim().split(/\s+/).join(' '), '1 0');
    const out = await pingIn(n, { targets: ['127.0.0.1', '::1'] });
    assert.equal(out.avail[4].dgram, 'EACCES');
    assert.deepEqual(out.choice, { 4: { kind: 'raw' }, 6: { kind: 'raw' } });
    for (const r of out.results!) assert.match(r.detail, /^echo reply in .* \(raw socket\)$/);
    const forced = await pingIn(n, { values: { socket: 'dgram' }, targets: ['127.0.0.1'] });
    assert.equal(forced.attr, 'socket');
    assert.match(forced.compileError!, /^socket="dgram": unprivileged ICMP sockets are not allowed: none of this process's groups \(0\) is in net\.ipv4\.ping_group_range \("1 0"\) \(EACCES\)$/);
  });

  it('datagram ICMP allowed (ping_group_range "0 2147483647"): auto takes unprivileged sockets, the kernel\'s identifier is matched; 40 at once; raw still forcible', async () => {
    const n = await ns('sdpd');
    await n.must('sysctl', ['-w', `net.ipv4.ping_group_range=${ALLOW_ALL}`]);
    const targets = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? '127.0.0.1' : '::1'));
    const out = await pingIn(n, { targets });
    assert.deepEqual(out.choice, { 4: { kind: 'dgram' }, 6: { kind: 'dgram' } });
    assert.equal(out.results!.length, 40);
    for (const r of out.results!) {
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /\(dgram socket\)$/);
    }
    // Without CAP_NET_RAW too: the unprivileged path needs no privilege.
    const unpriv = await pingIn(n, { targets: ['127.0.0.1', '::1'], noNetRaw: true });
    assert.equal(unpriv.avail[4].dgram, undefined, 'datagram ICMP opens');
    assert.equal(unpriv.avail[4].raw, 'EPERM');
    for (const r of unpriv.results!) assert.match(r.detail, /^echo reply in .* \(dgram socket\)$/);
    const raw = await pingIn(n, { values: { socket: 'raw' }, targets: ['127.0.0.1', '::1'] });
    for (const r of raw.results!) assert.match(r.detail, /\(raw socket\)$/);
  });

  it('a real in another namespace: up; once it drops echo requests (nftables), down at the deadline, on both socket kinds and both families', async () => {
    const cl = await ns('sdpc');
    const rl = await ns('sdpt');
    await link(cl, { v4: '198.18.77.1', v6: 'fd77::1' }, rl, { v4: '198.18.77.2', v6: 'fd77::2' });
    await cl.must('sysctl', ['-w', `net.ipv4.ping_group_range=${ALLOW_ALL}`]);
    const targets = ['198.18.77.2', 'fd77::2'];
    for (const socket of ['dgram', 'raw']) {
      const up = await pingIn(cl, { values: { socket }, targets, timeoutMs: 2000 });
      for (const r of up.results!) assert.equal(r.ok, true, `${socket}: ${r.detail}`);
    }
    await rl.must('nft', ['-f', '-'], `table inet sdping {
  chain in {
    type filter hook input priority 0; policy accept;
    icmp type echo-request drop
    icmpv6 type echo-request drop
  }
}
`);
    for (const socket of ['dgram', 'raw']) {
      const down = await pingIn(cl, { values: { socket }, targets, timeoutMs: 500 });
      for (const r of down.results!) {
        assert.equal(r.ok, false, `${socket}: ${r.detail}`);
        assert.equal(r.detail, 'no echo reply within 500 ms');
        assert.equal(r.problem, 'conn');
        assert.ok(r.ms >= 490 && r.ms < 2000, `${socket}: settled after ${r.ms} ms`);
      }
    }
  });

  it('neither socket possible (root without CAP_NET_RAW, datagram ICMP refused): a compile error naming both reasons, and `surealived -t` refuses the file', async () => {
    const n = await ns('sdpn');
    const out = await pingIn(n, { targets: ['127.0.0.1'], noNetRaw: true });
    assert.deepEqual(out.avail[4], { dgram: 'EACCES', raw: 'EPERM' });
    assert.equal(out.attr, 'socket');
    assert.match(out.compileError!, /^no ICMP socket can be opened: unprivileged ICMP sockets are not allowed: .*ping_group_range \("1 0"\) \(EACCES\); raw ICMP sockets need CAP_NET_RAW .*\(EPERM\)$/);

    const dir = mkdtempSync(join(tmpdir(), 'sd-ping-'));
    try {
      const cfg = join(dir, 'surealived.cfg');
      writeFileSync(
        cfg,
        ['listen_port 0',
          ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${dir}/`)),
          ''].join('\n'),
      );
      const xml = join(dir, 'ping.xml');
      writeFileSync(xml, `<surealived>
  <virtual name="web" addr="192.0.2.80" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="ping" testport="80" loopdelay="1" timeout="1" retries2ok="1" retries2fail="1"/>
    <real name="a" addr="127.0.0.1" port="80" weight="1"/>
  </virtual>
</surealived>
`);
      const cli = [process.execPath, join(REPO, 'dist/surealived/cli.js'), '-c', cfg, '-t', xml];
      const refused = await n.exec('setpriv', ['--bounding-set', '-net_raw', ...cli]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(refused.stderr, /ping\.xml:3: error: virtual "web": tester: no ICMP socket can be opened: .*ping_group_range.*CAP_NET_RAW/);
      assert.match(refused.stderr, /XML configuration file \[.*ping\.xml\] ERROR/);
      // The same file is fine where raw sockets can be opened, and where datagram ICMP is allowed.
      const asRoot = await n.exec(cli[0]!, cli.slice(1));
      assert.equal(asRoot.code, 0, asRoot.stderr);
      await n.must('sysctl', ['-w', `net.ipv4.ping_group_range=${ALLOW_ALL}`]);
      const allowed = await n.exec('setpriv', ['--bounding-set', '-net_raw', ...cli]);
      assert.equal(allowed.code, 0, allowed.stderr);
      assert.match(allowed.stderr, /XML configuration file \[.*ping\.xml\] OK/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Runs in a child under `prlimit --nofile=48`: compiled first, then every descriptor taken.
const EMFILE_CHILD = `
const { pingTester } = await import(${JSON.stringify(join(testers, 'ping.js'))});
const { openSync, closeSync } = await import('node:fs');
const params = pingTester.compile({ socket: 'raw' }, { ssl: false, timeoutMs: 500 });
const held = [];
try { for (;;) held.push(openSync('/dev/null', 'r')); } catch {}
const r = await pingTester.probe({ addr: '127.0.0.1', family: 4, port: 0, vname: 'v', rname: 'r' }, params, { signal: AbortSignal.timeout(500), timeoutMs: 500 });
closeSync(held.pop());
closeSync(held.pop());
const again = await pingTester.probe({ addr: '127.0.0.1', family: 4, port: 0, vname: 'v', rname: 'r' }, params, { signal: AbortSignal.timeout(500), timeoutMs: 500 });
process.stdout.write(JSON.stringify([r, again]));
`;

describe('ping tester under a descriptor shortage', function () {
  this.timeout(20_000);
  it('a probe that cannot get an ICMP socket is a local error (EMFILE); with a descriptor free again it runs', async function () {
    if (process.getuid?.() !== 0) this.skip();
    const [r, again] = await new Promise<ProbeResult[]>((resolve, reject) =>
      execFile('prlimit', ['--nofile=48:48', process.execPath, '--input-type=module', '-e', EMFILE_CHILD], { timeout: 15_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout) as ProbeResult[]),
      ),
    );
    assert.equal(r!.ok, false);
    assert.equal(r!.local, 'EMFILE', r!.detail);
    assert.equal(r!.detail, 'cannot open an ICMP socket: EMFILE on the director, not a verdict on the real');
    assert.equal(again!.ok, true, again!.detail);
  });
});
