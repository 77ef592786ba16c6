// Real TCP conversations with the control port of a running daemon whose testers probe real servers
// on loopback: every command and reply byte for byte (spec 9.3), every error string (9.2), rset
// semantics (9.4) checked in the files the daemon writes (diff lines, override.dump, ipvsfull.cfg),
// JSON forms, pipelining. The few figures no real daemon produces (fixed process figures, fixed probe
// timings, counters past 2^32) are checked last, on a stand-in target.

import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlServer } from '../../surealived/control/server.js';
import { TestDaemon, until, type TestDaemonOptions } from '../helpers/daemon.js';
import { Client, END, RealServers, SAMPLE, SAMPLE_VLIST, StandInTarget, fixedProcessStats, ipv6Loopback, serviceXml, sleep, type XmlOptions } from './helpers.js';

const SEL_WEB = 'vproto=tcp vaddr=127.0.0.10 vport=80';
const WEB = 'vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc';
const R_WEB1 = 'r:0 rname=web1 raddr=127.0.1.1 rport=80';
const R_WEB2 = 'r:1 rname=web2 raddr=127.0.1.2 rport=8080';

/** Diff lines (spec 8.4) of a real of the sample; an IPv6 entry's keyword has the `v6` prefix the original ipvssync skips. */
const diffLine = (cmd: 'addreal' | 'chgreal' | 'delreal', virtual: string, real: string, weight: number): string =>
  `cmd=${virtual.includes(' vaddr=::1 ') ? 'v6' : ''}${cmd} ${virtual} ${real} rweight=${weight}\n`;
const present = (virtual: string, real: string, weight: number): string => diffLine('addreal', virtual, real, weight) + diffLine('chgreal', virtual, real, weight);
const WEB_DIFF = 'vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc';
const WEB1 = 'rname=web1 raddr=127.0.1.1 rport=80';
const WEB2 = 'rname=web2 raddr=127.0.1.2 rport=8080';

/** Whole microseconds / milliseconds, truncated (spec 4.8: the original's integer timeval arithmetic). */
const us = (ms: number): number => Math.trunc(Math.round(ms * 1e6) / 1000);
const msOf = (ms: number): number => Math.trunc(us(ms) / 1000);

/** Resolves once `read()` equals `expected` (the daemon writes some files a turn after it replies); asserts it. */
async function settles(read: () => string, expected: string, what: string): Promise<void> {
  await until(() => read() === expected, what).catch(() => undefined);
  assert.equal(read(), expected, what);
}

const cpuUs = (): { user: number; system: number } => {
  const u = process.resourceUsage();
  return { user: u.userCPUTime, system: u.systemCPUTime };
};

/** The Vm* names of this process's /proc/self/status, in order (the daemon runs in this process). */
const vmNames = (): string[] => [...readFileSync('/proc/self/status', 'utf8').matchAll(/^(Vm\S+):/gm)].map((m) => m[1]!);

/**
 * `stats` of SAMPLE up to its tests stats, as both byte-exact checks of it set things up: three reals
 * ONLINE, one OFFLINE and one DOWN, no offline_size limit, four probes that passed and one that failed.
 */
const statsHead = (watchdogPid: number, testerPid: number, overrideSize: number): string =>
  '=== global stats ===\n' +
  `watchdog_pid   : ${watchdogPid}\n` +
  `tester_pid     : ${testerPid}\n` +
  'virtuals       : 5\n' +
  'reals          : 5\n' +
  '\n' +
  '=== real settings ===\n' +
  'ronline        : 3\n' +
  'roffline       : 1\n' +
  'rdown          : 1\n' +
  'offline_size   : 4294967295\n' +
  `override_size  : ${overrideSize}\n` +
  '\n' +
  '=== real stats ===\n' +
  'success        : 4\n' +
  'failed         : 1\n' +
  '\n';

describe('control port of a running daemon: commands and replies', function () {
  this.timeout(30_000);
  let servers: RealServers | undefined;
  const daemons: TestDaemon[] = [];
  const clients: Client[] = [];

  before(async function () {
    // The sample has an IPv6 virtual whose real is probed on ::1.
    if (!(await ipv6Loopback())) this.skip();
    servers = await RealServers.start();
  });
  after(async () => {
    await servers?.close();
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const d of daemons.splice(0)) await d.stop();
  });

  /** A daemon on the sample (or `xml`), every real probed once (no further probe in a test), and a client. */
  async function start(o: XmlOptions & Partial<TestDaemonOptions> = {}): Promise<{ d: TestDaemon; c: Client }> {
    const d = await TestDaemon.start({ ...o, xml: o.xml ?? (await servers!.xml(o)) });
    daemons.push(d);
    await d.waitAllTested();
    const c = await Client.open(d.port);
    clients.push(c);
    return { d, c };
  }

  it('vlist: one v:<idx> line per virtual in XML order, then the end marker', async () => {
    const { c } = await start();
    assert.equal(await c.ask('vlist'), SAMPLE_VLIST + END);
  });

  it('vlist with no virtuals is the end marker alone: started without any, or reloaded to none', async () => {
    const { c: none } = await start({ xml: '<surealived>\n</surealived>\n' });
    assert.equal(await none.ask('vlist'), END);

    const { d, c } = await start();
    writeFileSync(join(d.dir, 'services.xml'), '<surealived>\n</surealived>\n');
    assert.equal(await d.daemon.reload(), true);
    assert.equal(await c.ask('vlist'), END, 'the same connection sees the reloaded configuration');
    assert.doesNotMatch(d.full(), /^(virtual|real) /m, 'the forced full hand-off of the reload has no virtual left');
  });

  it('rlist: the virtual line, r:<idx> lines with currwgt 0 for offline reals, then the end marker', async () => {
    const { d, c } = await start({ down: ['web2'] });
    assert.equal(
      await c.ask(`rlist ${SEL_WEB}`),
      `${WEB}\n` + `${R_WEB1} currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE\n` + `${R_WEB2} currwgt=0 confwgt=10 ronline=FALSE rstate=ONLINE\n` + END,
    );
    // What rlist says is what the daemon handed off when web2's probe was refused.
    await settles(() => d.diffs(), present(WEB_DIFF, WEB2, 0), 'web2 at weight 0 in the diff');
    await settles(() => d.offlineDump(), '127.0.0.10:80:0:0 - 127.0.1.2:8080\n', 'web2 in offline.dump');
    assert.match(await c.ask('stats'), /^offline_size {3}: 1$/m);
  });

  it('rlist of a virtual without reals says EMPTY LIST', async () => {
    const { c } = await start();
    assert.equal(
      await c.ask('rlist vproto=tcp vaddr=127.0.0.90 vport=81'),
      'vname=empty vproto=tcp vaddr=127.0.0.90 vport=81 vfwmark=0 vrt=dr vsched=wlc\nEMPTY LIST - no reals defined in virtual\n' + END,
    );
  });

  it('selects fwmark virtuals by vfwmark whatever vproto says, by name (extension), and IPv6 in any spelling', async () => {
    const { c } = await start();
    const fw = 'vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh\nr:0 rname=fw1 raddr=127.0.3.1 rport=0 currwgt=1 confwgt=1 ronline=TRUE rstate=ONLINE\n' + END;
    assert.equal(await c.ask('rlist vproto=fwmark vfwmark=7'), fw);
    assert.equal(await c.ask('rlist vproto=bogus vfwmark=7'), fw);
    assert.equal(
      await c.ask('rlist vname=dns'),
      'vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr\nr:0 rname=ns1 raddr=127.0.2.1 rport=53 currwgt=5 confwgt=5 ronline=TRUE rstate=ONLINE\n' + END,
    );
    // One pass over the virtuals as the original: an unknown fwmark still lets proto/addr/port match.
    assert.ok((await c.ask(`rlist ${SEL_WEB} vfwmark=8`)).startsWith(`${WEB}\n`));
    const v6 = 'vname=v6 vproto=tcp vaddr=::1 vport=443 vfwmark=0 vrt=dr vsched=wlc\nr:0 rname=six1 raddr=::1 rport=443 currwgt=3 confwgt=3 ronline=TRUE rstate=ONLINE\n' + END;
    assert.equal(await c.ask('rlist vproto=tcp vaddr=0:0:0:0:0:0:0:1 vport=443'), v6);
    assert.equal(await c.ask('rlist vproto=tcp vaddr=0::0:1 vport=443'), v6);
  });

  it('answers every selection error with the exact one-line message and no end marker, changing nothing', async () => {
    const { d, c } = await start();
    const diffsBefore = d.diffs();
    const cases: Array<[string, string]> = [
      ['rlist', 'cmd_find_virt: No vproto specified\n'],
      ['rlist vaddr=127.0.0.10 vport=80', 'cmd_find_virt: No vproto specified\n'],
      ['rlist vproto=tcp vaddr=127.0.0.10 vport=81', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=TCP vaddr=127.0.0.10 vport=80', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=fwmark vfwmark=9', 'cmd_find_virt: Virt not found\n'],
      ['rlist vname=nope', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=tcp vaddr=127.0.0.10.5 vport=80', 'cmd_find_virt: invalid IP\n'],
      ['rlist vproto=tcp vaddr=zzz', 'cmd_find_virt: invalid IP\n'],
      ['rset vproto=tcp vaddr=127.0.0.10 vport=99 raddr=127.0.1.1 rport=80 rstate=DOWN', 'cmd_find_virt: Virt not found\n'],
      ['rset vproto=tcp vaddr=127.0.0.90 vport=81 raddr=127.0.1.1 rport=80 rstate=DOWN', 'cmd_find_real: empty realArr\n'],
      ['rset vproto=tcp vaddr=127.0.0.90 vport=81', 'cmd_find_real: empty realArr\n'],
      [`rset ${SEL_WEB} rport=80 rstate=DOWN`, 'cmd_find_real: raddr not found\n'],
      [`rset ${SEL_WEB} raddr=127.0.1.1 rstate=DOWN`, 'cmd_find_real: rport not found\n'],
      [`rset ${SEL_WEB} raddr=127.0.1.x rport=80 rstate=DOWN`, 'cmd_find_real: invalid IP\n'],
      [`rset ${SEL_WEB} raddr=127.0.1.1 rport=81 rstate=DOWN`, 'cmd_find_real: Real not found\n'],
      [`rset ${SEL_WEB} raddr=127.0.1.1 rport=80`, "cmd_rset: you need to set at least 'rstate' or 'rweight'\n"],
      [`rset ${SEL_WEB} raddr=127.0.1.1 rport=80 rstate=Down`, 'cmd_rset: rstate unknown [Down]\n'],
      ['foo', 'Invalid request! [foo]\n'],
      ['', 'Invalid request! []\n'],
      [' vlist', 'Invalid request! [ vlist]\n'],
      ['help me\r', 'Invalid request! [help me]\n'],
    ];
    for (const [line, reply] of cases) assert.equal(await c.askError(line), reply, line);
    assert.equal(c.pending(), '', 'no end marker after error replies');
    // Hand-off writes are serialised: had a failed rset been committed, its lines would come before
    // those of this valid one, which changes nothing (ns1 ONLINE at its configured weight).
    assert.equal(await c.ask('rset vname=dns raddr=127.0.2.1 rport=53 rweight=5'), `Set: rstate=ONLINE, weight=5, inpercent=FALSE\n${END}`);
    const DNS = 'vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr';
    await settles(() => d.diffs(), diffsBefore + present(DNS, 'rname=ns1 raddr=127.0.2.1 rport=53', 5), 'only the valid rset reached the diff');
    assert.equal(d.overrideDump(), '', 'no override written');
  });

  it('rset of each rstate and each weight form: the reply, then override.dump written, the diff lines and rlist', async () => {
    const { d, c } = await start();
    const KEY = '127.0.0.10:80:0:0 - 127.0.1.1:80 - ';
    const web2 = `${R_WEB2} currwgt=10 confwgt=10 ronline=TRUE rstate=ONLINE\n`;
    const steps: Array<{ args: string; reply: string; diff: string; dump: string; web1: string; why?: string }> = [
      { args: 'rstate=DOWN', reply: 'rstate=DOWN, weight=20, inpercent=FALSE', diff: diffLine('delreal', WEB_DIFF, WEB1, 0), dump: 'weight=20  rstate=DOWN', web1: 'currwgt=0 confwgt=20 ronline=TRUE rstate=DOWN', why: 'the configured weight is pinned' },
      { args: 'rweight=50%', reply: 'rstate=DOWN, weight=50, inpercent=TRUE', diff: diffLine('delreal', WEB_DIFF, WEB1, 0), dump: 'weight=50% rstate=DOWN', web1: 'currwgt=0 confwgt=20 ronline=TRUE rstate=DOWN', why: 'an rweight-only rset keeps the rstate' },
      { args: 'rstate=ONLINE', reply: 'rstate=ONLINE, weight=50, inpercent=TRUE', diff: present(WEB_DIFF, WEB1, 10), dump: 'weight=50% rstate=ONLINE', web1: 'currwgt=10 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'percent: floor(20 * 50 / 100)' },
      { args: 'rweight=1%', reply: 'rstate=ONLINE, weight=1, inpercent=TRUE', diff: present(WEB_DIFF, WEB1, 1), dump: 'weight=1% rstate=ONLINE', web1: 'currwgt=1 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'percent never goes below 1' },
      { args: 'rweight=250%', reply: 'rstate=ONLINE, weight=250, inpercent=TRUE', diff: present(WEB_DIFF, WEB1, 50), dump: 'weight=250% rstate=ONLINE', web1: 'currwgt=50 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'more than 100 % is allowed' },
      { args: 'rweight=100%', reply: 'rstate=ONLINE, weight=100, inpercent=TRUE', diff: present(WEB_DIFF, WEB1, 20), dump: '', web1: 'currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'ONLINE at exactly 100 % deletes the override entry' },
      { args: 'rweight=7', reply: 'rstate=ONLINE, weight=7, inpercent=FALSE', diff: present(WEB_DIFF, WEB1, 7), dump: 'weight=7  rstate=ONLINE', web1: 'currwgt=7 confwgt=20 ronline=TRUE rstate=ONLINE' },
      { args: 'rstate=OFFLINE', reply: 'rstate=OFFLINE, weight=7, inpercent=FALSE', diff: present(WEB_DIFF, WEB1, 0), dump: 'weight=7  rstate=OFFLINE', web1: 'currwgt=0 confwgt=20 ronline=TRUE rstate=OFFLINE' },
      { args: 'rweight=0 rstate=ONLINE', reply: 'rstate=ONLINE, weight=0, inpercent=FALSE', diff: present(WEB_DIFF, WEB1, 20), dump: 'weight=0  rstate=ONLINE', web1: 'currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'a zero override falls back to the configured weight' },
      { args: 'rweight=20', reply: 'rstate=ONLINE, weight=20, inpercent=FALSE', diff: present(WEB_DIFF, WEB1, 20), dump: '', web1: 'currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE', why: 'ONLINE at the configured weight deletes the entry' },
      { args: 'rweight=-1', reply: 'rstate=ONLINE, weight=20, inpercent=FALSE', diff: present(WEB_DIFF, WEB1, 20), dump: '', web1: 'currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE', why: '-1 is the configured weight' },
    ];
    const initial = d.diffs();
    let all = initial;
    for (const s of steps) {
      const what = `rset ${s.args}${s.why ? ` (${s.why})` : ''}`;
      assert.equal(await c.ask(`rset ${SEL_WEB} raddr=127.0.1.1 rport=80 ${s.args}`), `Set: ${s.reply}\n${END}`, what);
      // The reply is sent once override.dump is on disk.
      assert.equal(d.overrideDump(), s.dump === '' ? '' : `${KEY}${s.dump}\n`, `${what}: override.dump`);
      all += s.diff;
      await settles(() => d.diffs(), all, `${what}: the diff lines, from the state the rset set`);
      assert.equal(await c.ask(`rlist ${SEL_WEB}`), `${WEB}\n${R_WEB1} ${s.web1}\n${web2}${END}`, `${what}: rlist`);
    }
    assert.equal(d.diffs(), initial + steps.map((s) => s.diff).join(''), 'one diff write per successful rset, nothing else');
  });

  it('rset finds IPv6 reals and fwmark virtuals; what it sets survives a restart (override.dump, ipvsfull.cfg)', async () => {
    const { d, c } = await start();
    const V6 = 'vname=v6 vproto=tcp vaddr=::1 vport=443 vfwmark=0 vrt=dr vsched=wlc';
    const FW = 'vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh';
    const DNS = 'vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr';
    const before = d.diffs();
    assert.equal(await c.ask('rset vproto=tcp vaddr=0:0::1 vport=443 raddr=0::0:1 rport=443 rstate=OFFLINE'), `Set: rstate=OFFLINE, weight=3, inpercent=FALSE\n${END}`);
    await settles(() => d.diffs(), before + present(V6, 'rname=six1 raddr=::1 rport=443', 0), 'six1 at weight 0');
    assert.equal(await c.ask('rset vproto=fwmark vfwmark=7 raddr=127.0.3.1 rport=0 rweight=5'), `Set: rstate=ONLINE, weight=5, inpercent=FALSE\n${END}`);
    await settles(() => d.diffs(), before + present(V6, 'rname=six1 raddr=::1 rport=443', 0) + present(FW, 'rname=fw1 raddr=127.0.3.1 rport=0', 5), 'fw1 at weight 5');
    assert.equal(await c.ask('rset vname=dns raddr=127.0.2.1 rport=53 rstate=DOWN json'), `{"rstate":"DOWN","weight":5,"inpercent":false,"deleted":false}\n${END}`);
    await settles(
      () => d.diffs(),
      before + present(V6, 'rname=six1 raddr=::1 rport=443', 0) + present(FW, 'rname=fw1 raddr=127.0.3.1 rport=0', 5) + diffLine('delreal', DNS, 'rname=ns1 raddr=127.0.2.1 rport=53', 0),
      'ns1 removed',
    );
    const dump = '127.0.0.20:53:1:0 - 127.0.2.1:53 - weight=5  rstate=DOWN\n' + '0.0.0.0:0:2:7 - 127.0.3.1:0 - weight=5  rstate=ONLINE\n' + '[::1]:443:0:0 - [::1]:443 - weight=3  rstate=OFFLINE\n';
    assert.equal(d.overrideDump(), dump);

    await d.stop(true);
    const again = await TestDaemon.start({ xml: readFileSync(join(d.dir, 'services.xml'), 'utf8'), dir: d.dir });
    daemons.push(again);
    // The forced full write at start, before any probe, carries the overrides read back.
    const full = again.full();
    assert.match(full, /\nv6real rname=six1 raddr=::1 rport=443 rweight=0\n/);
    assert.match(full, /\nreal rname=fw1 raddr=127\.0\.3\.1 rport=0 rweight=5\n/);
    assert.doesNotMatch(full, /rname=ns1 /, 'a DOWN real is not in IPVS');
    const c2 = await Client.open(again.port);
    clients.push(c2);
    assert.match(await c2.ask('rlist vname=v6'), /\nr:0 rname=six1 raddr=::1 rport=443 currwgt=0 confwgt=3 ronline=TRUE rstate=OFFLINE\n/);
    assert.equal(again.overrideDump(), dump);
  });

  it('an rset whose override.dump cannot be written is refused in one line, and neither memory nor IPVS changes', async () => {
    // A directory that does not exist, with a newline in its name: the error message has one too.
    const missing = join(tmpdir(), `sd-missing-${process.pid}-${Date.now()}\ndir`);
    const { d, c } = await start({ main: { override_dump: join(missing, 'override.dump') } });
    const before = d.diffs();
    const reply = await c.askError(`rset ${SEL_WEB} raddr=127.0.1.1 rport=80 rstate=DOWN`);
    const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    assert.match(
      reply,
      new RegExp(`^cmd_rset: not applied, saving failed: ENOENT: no such file or directory, open '${esc(missing.replace('\n', ' '))}/\\.override\\.dump\\.${process.pid}\\.\\d+\\.tmp'\\n$`),
    );
    assert.equal(c.pending(), '');
    assert.equal(await c.ask(`rlist ${SEL_WEB}`), `${WEB}\n${R_WEB1} currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE\n${R_WEB2} currwgt=10 confwgt=10 ronline=TRUE rstate=ONLINE\n${END}`);
    const j = JSON.parse((await c.ask(`rlist ${SEL_WEB} json`)).split('\n')[0]!) as { reals: Array<{ override: unknown; rstate: string }> };
    assert.equal(j.reals[0]!.rstate, 'ONLINE');
    assert.equal(j.reals[0]!.override, null);
    // The real was queued for the diff before the write failed: the line written states it as it was.
    await settles(() => d.diffs(), before + present(WEB_DIFF, WEB1, 20), 'the diff re-states web1 unchanged (no delreal)');
    assert.equal(existsSync(missing), false);
    assert.match(await c.ask('stats'), /^override_size  : 0$/m);
  });

  it('stats: the exact report of a running daemon, 4294967295 when the offline dump is off', async () => {
    const { c } = await start({ down: ['web2'], main: { use_offline_dump: 'false' }, daemon: { watchdogPid: process.ppid } });
    assert.equal(await c.ask('rset vname=dns raddr=127.0.2.1 rport=53 rstate=OFFLINE'), `Set: rstate=OFFLINE, weight=5, inpercent=FALSE\n${END}`);
    assert.equal(await c.ask('rset vproto=fwmark vfwmark=7 raddr=127.0.3.1 rport=0 rstate=DOWN'), `Set: rstate=DOWN, weight=1, inpercent=FALSE\n${END}`);
    const text = await c.ask('stats');
    const cut = text.indexOf('=== resource usage ===\n');
    assert.ok(cut > 0, text);
    // Each real was probed once: four answered, web2's connect was refused (an "RST problem", < 1 s).
    assert.equal(
      text.slice(0, cut),
      statsHead(process.ppid, process.pid, 2) +
        '=== tests stats ===\n' +
        't_success      : 4\n' +
        't_failed       : 1\n' +
        't_online_set   : 0\n' +
        't_offline_set  : 1\n' +
        't_conn_problem : 0\n' +
        't_arp_problem  : 0\n' +
        't_rst_problem  : 1\n' +
        't_bytes_rcvd   : 0\n' +
        't_bytes_sent   : 0\n' +
        '\n',
    );
    const tail = text.slice(cut).split('\n');
    const shape: Array<string | RegExp> = [
      '=== resource usage ===',
      /^user_time {6}: \d+\.\d{6} sec$/,
      /^system_time {4}: \d+\.\d{6} sec$/,
      /^block_in_ops {3}: \d+$/,
      /^block_out_ops {2}: \d+$/,
      /^messages_sent {2}: \d+$/,
      /^messages_rcvd {2}: \d+$/,
      /^signals_rcvd {3}: \d+$/,
      /^voluntary_ctx {2}: \d+$/,
      /^involunt_ctx {3}: \d+$/,
      /^fd_used {8}: [1-9]\d*$/,
      '',
      '=== memory usage ===',
    ];
    shape.forEach((s, i) => (typeof s === 'string' ? assert.equal(tail[i], s) : assert.match(tail[i]!, s)));
    const vm = vmNames();
    assert.deepEqual(
      tail.slice(shape.length).map((l, i) => (i < vm.length ? /^(Vm\S+?) +: \d+ +\S+$/.exec(l)?.[1] : l)),
      [...vm, '_SD_CMD_END_', ''],
      'a line per Vm* line of the process, then the end marker',
    );
  });

  it('stats: resource and memory figures are those of the daemon process, in the original layout', async () => {
    const { c } = await start();
    const before = cpuUs();
    const text = await c.ask('stats');
    const after = cpuUs();
    const secs = (name: string): number => {
      const m = new RegExp(`^${name} +: (\\d+)\\.(\\d{6}) sec$`, 'm').exec(text);
      assert.ok(m, `${name} in ${text}`);
      return Number(m[1]) * 1e6 + Number(m[2]);
    };
    // CPU times only grow: the reported figure was read between our two readings.
    assert.ok(before.user <= secs('user_time') && secs('user_time') <= after.user, `user_time ${secs('user_time')} within [${before.user}, ${after.user}] us`);
    assert.ok(before.system <= secs('system_time') && secs('system_time') <= after.system, `system_time within [${before.system}, ${after.system}] us`);
    assert.match(text, /^fd_used {8}: [1-9]\d*$/m);
    const mem = text.slice(text.indexOf('=== memory usage ===\n') + '=== memory usage ===\n'.length, -END.length).split('\n').slice(0, -1);
    assert.deepEqual(
      mem.map((l) => /^(Vm\S+?) +: /.exec(l)?.[1]),
      vmNames(),
      'one line per Vm* line of /proc/<pid>/status, in order',
    );
    for (const l of mem) {
      const m = /^(Vm\S+?) +: (\d+) +(\S+)$/.exec(l);
      assert.ok(m, l);
      // `Vm<name padded to 12> : <value left-justified in 6> <unit>`
      assert.equal(l, `${m[1]!.padEnd(15)}: ${m[2]!.padEnd(6)} ${m[3]}`);
    }
    if (process.platform === 'linux') assert.match(text, /^VmRSS {10}: \d+ +kB$/m);
  });

  it('connstats: per virtual and per real statistics in ms and us of the probes just made, the same as connstats json', async () => {
    const { c } = await start({ down: ['web2'] });
    const text = await c.ask('connstats');
    type T = { conn: number; resp: number; total: number };
    type Probs = { connprob: number; arpprob: number; rstprob: number };
    const j = JSON.parse((await c.ask('connstats json')).split('\n')[0]!) as {
      virtuals: Array<Probs & { vname: string; total: number; samples: number; savg_ms: T; reals: Array<Probs & { rname: string; total: number; last_ms: T; savg_ms: T; tavg_ms: T }> }>;
    };
    assert.deepEqual(
      j.virtuals.map((v) => [v.vname, v.samples, v.reals.map((r) => [r.rname, r.total, r.connprob, r.arpprob, r.rstprob])]),
      [
        ['web', 20, [['web1', 1, 0, 0, 0], ['web2', 1, 0, 0, 1]]],
        ['dns', 5, [['ns1', 1, 0, 0, 0]]],
        ['fw', 20, [['fw1', 1, 0, 0, 0]]],
        ['v6', 20, [['six1', 1, 0, 0, 0]]],
        ['empty', 20, []],
      ],
      'one probe per real; stats_samples 5 on dns, 20 by default',
    );
    const web2 = j.virtuals[0]!.reals[1]!;
    assert.equal(web2.last_ms.conn, -3, 'a refused connect is marked -3 ("RST problem")');
    assert.equal(web2.savg_ms.conn, web2.last_ms.total, 'the rolling conn sample of a failed connect is its total time');
    const web1 = j.virtuals[0]!.reals[0]!;
    assert.ok(web1.last_ms.conn > 0 && web1.last_ms.total >= web1.last_ms.conn, JSON.stringify(web1.last_ms));
    assert.deepEqual(web1.savg_ms, web1.last_ms, 'one sample: the rolling average is the sample');
    assert.deepEqual(web1.tavg_ms, web1.last_ms, 'one probe: the lifetime average is the sample');

    // The text, written out from the JSON figures by the spec's rules (9.3): whole ms and us, truncated;
    // the virtual line in us on the logmicro virtual (dns).
    const VS: Array<[string, string]> = [
      ['vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0', 'vrt=dr vsched=wlc'],
      ['vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0', 'vrt=masq vsched=rr'],
      ['vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7', 'vrt=tun vsched=sh'],
      ['vproto=tcp vaddr=::1 vport=443 vfwmark=0', 'vrt=dr vsched=wlc'],
      ['vproto=tcp vaddr=127.0.0.90 vport=81 vfwmark=0', 'vrt=dr vsched=wlc'],
    ];
    const three = (a: T, k: string, f: (x: number) => number, u: string): string => `${k}conn=${f(a.conn)}${u} ${k}resp=${f(a.resp)}${u} ${k}total=${f(a.total)}${u}`;
    const probs = (p: Probs): string => `connprob=${p.connprob} arpprob=${p.arpprob} rstprob=${p.rstprob}`;
    let expected = '';
    VS.forEach(([fields, rt], vi) => {
      const jv = j.virtuals[vi]!;
      const [f, u] = jv.vname === 'dns' ? [us, 'us'] : [msOf, 'ms'];
      expected += `Virtual:\nv:${vi} vname=${jv.vname} ${fields} ${rt} samples=${jv.samples} total=${jv.total} ${three(jv.savg_ms, 'savg', f, u)} ${probs(jv)}\n\nReals:\n`;
      const V = `vname=${jv.vname} ${fields} `;
      jv.reals.forEach((r, ri) => {
        const cfg = SAMPLE[vi]!.reals[ri]!;
        const R = `rname=${r.rname} raddr=${cfg.addr} rport=${cfg.port} total=${r.total} `;
        const p = `r:${vi}.${ri}`;
        expected +=
          `${p} real-stats ${V}${R}${probs(r)}\n` +
          `${p} lstats_ms  ${V}${R}${three(r.last_ms, 'last', msOf, 'ms')}\n` +
          `${p} lstats_us  ${V}${R}${three(r.last_ms, 'last', us, 'us')}\n` +
          `${p} sstats_ms  ${V}${R}${three(r.savg_ms, 'savg', msOf, 'ms')}\n` +
          `${p} sstats_us  ${V}${R}${three(r.savg_ms, 'savg', us, 'us')}\n` +
          `${p} tstats_ms  ${V}${R}${three(r.tavg_ms, 'tavg', msOf, 'ms')}\n` +
          `${p} tstats_us  ${V}${R}${three(r.tavg_ms, 'tavg', us, 'us')}\n` +
          '\n';
      });
      if (jv.reals.length > 0) expected += '-----\n';
      expected += '\n';
    });
    assert.equal(text, expected + END);
    assert.ok(text.includes(' lastconn=-3ms ') && text.includes(' lastconn=-3000us '), 'the markers in ms and us');
  });

  it('connstats with gather_stats off is one line without the end marker', async () => {
    const { c } = await start({ main: { gather_stats: 'false' } });
    assert.equal(await c.askError('connstats'), 'Gathering statistics is OFF\n');
    assert.equal(await c.askError('connstats json'), 'Gathering statistics is OFF\n');
  });

  it('executes every complete line of one write in order (the original ran only the first)', async () => {
    const { d, c } = await start();
    const before = d.diffs();
    c.send(`vlist\nfoo\r\nrlist ${SEL_WEB}\nrset ${SEL_WEB} raddr=127.0.1.2 rport=8080 rstate=DOWN\nrlist vname=web`);
    assert.equal(await c.untilEnd(), SAMPLE_VLIST + END);
    assert.equal(await c.line(), 'Invalid request! [foo]\n');
    assert.equal(await c.untilEnd(), `${WEB}\n${R_WEB1} currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE\n${R_WEB2} currwgt=10 confwgt=10 ronline=TRUE rstate=ONLINE\n${END}`);
    assert.equal(await c.untilEnd(), `Set: rstate=DOWN, weight=10, inpercent=FALSE\n${END}`);
    assert.equal(c.pending(), '', 'the unterminated last line waits for its newline');
    await settles(() => d.diffs(), before + diffLine('delreal', WEB_DIFF, WEB2, 0), 'web2 removed by the pipelined rset');
    c.send('\n');
    assert.ok((await c.untilEnd()).includes(`${R_WEB2} currwgt=0 confwgt=10 ronline=TRUE rstate=DOWN\n`));
  });

  it('answers every line of a client that half-closes after sending (echo ... | nc -N), then closes', async () => {
    const { c } = await start();
    c.socket.end('vlist\nstats\nrlist vname=dns');
    assert.equal(await c.untilEnd(), SAMPLE_VLIST + END);
    assert.ok((await c.untilEnd()).startsWith('=== global stats ===\n'));
    await c.waitClosed();
    assert.equal(c.pending(), '', 'the unterminated last line is not executed');
  });

  it('accepts a line split over many writes', async () => {
    const { c } = await start();
    for (const ch of 'rlist vname=dns\n') {
      c.send(ch);
      await sleep(1);
    }
    assert.ok((await c.untilEnd()).startsWith('vname=dns '));
  });

  describe('JSON forms: one JSON line, then the end marker', () => {
    const json = async (c: Client, line: string): Promise<unknown> => {
      const text = await c.ask(line);
      const lines = text.split('\n');
      assert.equal(lines.length, 3, `one JSON line + marker: ${text}`);
      assert.equal(lines[1], '_SD_CMD_END_');
      return JSON.parse(lines[0]!) as unknown;
    };

    it('vlist json', async () => {
      const { c } = await start();
      const j = (await json(c, 'vlist json')) as { virtuals: Array<Record<string, unknown>> };
      assert.equal(j.virtuals.length, 5);
      assert.deepEqual(j.virtuals[2], { index: 2, vname: 'fw', vproto: 'fwmark', vaddr: '0.0.0.0', vport: 0, vfwmark: 7, vrt: 'tun', vsched: 'sh' });
      assert.deepEqual(j.virtuals[3], { index: 3, vname: 'v6', vproto: 'tcp', vaddr: '::1', vport: 443, vfwmark: 0, vrt: 'dr', vsched: 'wlc' });
    });

    it('rlist json', async () => {
      const { c } = await start({ down: ['web2'] });
      assert.equal(await c.ask(`rset ${SEL_WEB} raddr=127.0.1.1 rport=80 rweight=50%`), `Set: rstate=ONLINE, weight=50, inpercent=TRUE\n${END}`);
      const j = (await json(c, `rlist ${SEL_WEB} json`)) as { virtual: Record<string, unknown>; reals: Array<Record<string, unknown>> };
      assert.deepEqual(j.virtual, { index: 0, vname: 'web', vproto: 'tcp', vaddr: '127.0.0.10', vport: 80, vfwmark: 0, vrt: 'dr', vsched: 'wlc' });
      assert.deepEqual(j.reals, [
        { index: 0, rname: 'web1', raddr: '127.0.1.1', rport: 80, currwgt: 10, confwgt: 20, ronline: true, rstate: 'ONLINE', override: { weight: 50, percent: true }, inipvs: true },
        { index: 1, rname: 'web2', raddr: '127.0.1.2', rport: 8080, currwgt: 0, confwgt: 10, ronline: false, rstate: 'ONLINE', override: null, inipvs: true },
      ]);
      assert.deepEqual(((await json(c, 'rlist vname=empty json')) as { reals: unknown[] }).reals, []);
      assert.equal(await c.askError('rlist vname=nope json'), 'cmd_find_virt: Virt not found\n', 'errors stay plain lines');
    });

    it('stats json', async () => {
      const { c } = await start({ down: ['web2'], main: { use_offline_dump: 'false' } });
      const before = cpuUs();
      const j = (await json(c, 'stats json')) as Record<string, unknown>;
      const after = cpuUs();
      assert.equal(j['tester_pid'], process.pid);
      assert.equal(j['watchdog_pid'], -1);
      assert.equal(j['reals'], 5);
      assert.equal(j['offline_size'], null);
      assert.deepEqual([j['success'], j['failed'], j['t_success'], j['t_failed'], j['t_rst_problem']], [4, 1, 4, 1, 1]);
      const user = j['user_time_us'] as number;
      assert.ok(Number.isInteger(user) && before.user <= user && user <= after.user, `user_time_us ${user} within [${before.user}, ${after.user}]`);
      const memory = j['memory'] as Record<string, { value: number; unit: string }>;
      assert.deepEqual(Object.keys(memory), vmNames());
      assert.ok(Object.values(memory).every((m) => Number.isInteger(m.value) && m.unit === 'kB'), JSON.stringify(memory));
    });

    it('connstats json keeps fractional milliseconds (probe timings as measured)', async () => {
      const { c } = await start();
      const j = (await json(c, 'connstats json')) as { virtuals: Array<{ vname: string; total: number; reals: Array<Record<string, { conn: number; resp: number; total: number }>> }> };
      assert.equal(j.virtuals.length, 5);
      const last = j.virtuals.flatMap((v) => v.reals.map((r) => r['last_ms']!));
      assert.equal(last.length, 5);
      // performance.now() timings: five whole-millisecond totals in a row would mean they were rounded.
      assert.ok(last.some((l) => !Number.isInteger(l.total)), JSON.stringify(last));
    });
  });
});

// ---- the stand-in target ---------------------------------------------------------------------

describe('control port on a stand-in target (figures no running daemon can be made to show)', () => {
  let target: StandInTarget;
  let server: ControlServer;
  let c: Client;
  const anyPort = (): number => 9; // never probed: no daemon reads the stand-in's XML

  afterEach(async () => {
    c?.close();
    await server?.close();
  });

  const serve = async (t: StandInTarget): Promise<void> => {
    target = t;
    server = await ControlServer.start({ target, port: 0, processStats: () => Promise.resolve(fixedProcessStats) });
    c = await Client.open(server.tcpAddress.port);
  };

  // Fixed process figures (a real process has its own) and counters past 2^32 (4 GiB of probe traffic).
  it('stats: the exact report with fixed process figures, 32-bit counters, 4294967295 when the offline dump is off', async () => {
    await serve(await StandInTarget.fromXml(serviceXml(SAMPLE, anyPort)));
    target.real(0, 1).online = false;
    target.real(1, 0).rstate = 'OFFLINE';
    target.real(2, 0).rstate = 'DOWN';
    Object.assign(target.counters, { success: 10, failed: 3, onlineSet: 1, offlineSet: 2, connProblem: 4, arpProblem: 5, rstProblem: 6, bytesRcvd: 2 ** 32 + 5, bytesSent: 77 });
    target.infoValue = { pid: 4242, watchdogPid: 4241, offlineSize: null, overrideSize: 1, gatherStats: true };
    assert.equal(
      await c.ask('stats'),
      statsHead(4241, 4242, 1) +
        '=== tests stats ===\n' +
        't_success      : 10\n' +
        't_failed       : 3\n' +
        't_online_set   : 1\n' +
        't_offline_set  : 2\n' +
        't_conn_problem : 4\n' +
        't_arp_problem  : 5\n' +
        't_rst_problem  : 6\n' +
        't_bytes_rcvd   : 5\n' +
        't_bytes_sent   : 77\n' +
        '\n' +
        '=== resource usage ===\n' +
        'user_time      : 1.234567 sec\n' +
        'system_time    : 0.000089 sec\n' +
        'block_in_ops   : 1\n' +
        'block_out_ops  : 2\n' +
        'messages_sent  : 3\n' +
        'messages_rcvd  : 4\n' +
        'signals_rcvd   : 5\n' +
        'voluntary_ctx  : 6\n' +
        'involunt_ctx   : 7\n' +
        'fd_used        : 12\n' +
        '\n' +
        '=== memory usage ===\n' +
        'VmPeak         : 123456 kB\n' +
        'VmRSS          : 42     kB\n' +
        END,
    );
  });

  it('stats json with fixed process figures', async () => {
    await serve(await StandInTarget.fromXml(serviceXml(SAMPLE, anyPort)));
    target.infoValue = { ...target.infoValue, offlineSize: null };
    const text = await c.ask('stats json');
    const j = JSON.parse(text.split('\n')[0]!) as Record<string, unknown>;
    assert.equal(j['tester_pid'], 4242);
    assert.equal(j['reals'], 5);
    assert.equal(j['offline_size'], null);
    assert.equal(j['user_time_us'], 1_234_567);
    assert.deepEqual(j['memory'], { VmPeak: { value: 123456, unit: 'kB' }, VmRSS: { value: 42, unit: 'kB' } });
  });

  // Fixed probe timings: real probes take whatever they take.
  it('connstats: per virtual and per real statistics in ms and us, us on logmicro virtuals', async () => {
    await serve(await StandInTarget.fromXml(serviceXml(SAMPLE.filter((v) => ['web', 'dns', 'empty'].includes(v.name)), anyPort)));
    Object.assign(target.real(0, 0).stats, {
      total: 4,
      connProblems: 1,
      rstProblems: 2,
      lastConn: 1.5,
      lastResp: 2.25,
      lastTotal: 3.75,
      sumConn: 10,
      sumResp: 6,
      sumTotal: 17,
    });
    // As recordProbe stores them: a failed connect's conn sample is its total time.
    target.real(0, 0).stats.samples.push([1, 2, 3], [1000, 0, 1000]);
    Object.assign(target.virtuals[0]!.stats, { total: 4, avgConn: 250.25, avgResp: 0.5, avgTotal: 250.75, connProblems: 1, arpProblems: 0, rstProblems: 2 });
    Object.assign(target.virtuals[1]!.stats, { total: 3, avgConn: 1.5, avgResp: 0.25, avgTotal: 1.75 });

    const V = 'vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 ';
    const R1 = 'rname=web1 raddr=127.0.1.1 rport=80 total=4 ';
    const R2 = 'rname=web2 raddr=127.0.1.2 rport=8080 total=0 ';
    const VD = 'vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 ';
    const RD = 'rname=ns1 raddr=127.0.2.1 rport=53 total=0 ';
    const zeros = (p: string, v: string, r: string): string =>
      `${p} real-stats ${v}${r}connprob=0 arpprob=0 rstprob=0\n` +
      `${p} lstats_ms  ${v}${r}lastconn=0ms lastresp=0ms lasttotal=0ms\n` +
      `${p} lstats_us  ${v}${r}lastconn=0us lastresp=0us lasttotal=0us\n` +
      `${p} sstats_ms  ${v}${r}savgconn=0ms savgresp=0ms savgtotal=0ms\n` +
      `${p} sstats_us  ${v}${r}savgconn=0us savgresp=0us savgtotal=0us\n` +
      `${p} tstats_ms  ${v}${r}tavgconn=0ms tavgresp=0ms tavgtotal=0ms\n` +
      `${p} tstats_us  ${v}${r}tavgconn=0us tavgresp=0us tavgtotal=0us\n` +
      '\n';
    assert.equal(
      await c.ask('connstats'),
      'Virtual:\n' +
        'v:0 vname=web vproto=tcp vaddr=127.0.0.10 vport=80 vfwmark=0 vrt=dr vsched=wlc samples=20 total=4 savgconn=250ms savgresp=0ms savgtotal=250ms connprob=1 arpprob=0 rstprob=2\n' +
        '\n' +
        'Reals:\n' +
        `r:0.0 real-stats ${V}${R1}connprob=1 arpprob=0 rstprob=2\n` +
        `r:0.0 lstats_ms  ${V}${R1}lastconn=1ms lastresp=2ms lasttotal=3ms\n` +
        `r:0.0 lstats_us  ${V}${R1}lastconn=1500us lastresp=2250us lasttotal=3750us\n` +
        `r:0.0 sstats_ms  ${V}${R1}savgconn=500ms savgresp=1ms savgtotal=501ms\n` +
        `r:0.0 sstats_us  ${V}${R1}savgconn=500500us savgresp=1000us savgtotal=501500us\n` +
        `r:0.0 tstats_ms  ${V}${R1}tavgconn=2ms tavgresp=1ms tavgtotal=4ms\n` +
        `r:0.0 tstats_us  ${V}${R1}tavgconn=2500us tavgresp=1500us tavgtotal=4250us\n` +
        '\n' +
        zeros('r:0.1', V, R2) +
        '-----\n' +
        '\n' +
        'Virtual:\n' +
        'v:1 vname=dns vproto=udp vaddr=127.0.0.20 vport=53 vfwmark=0 vrt=masq vsched=rr samples=5 total=3 savgconn=1500us savgresp=250us savgtotal=1750us connprob=0 arpprob=0 rstprob=0\n' +
        '\n' +
        'Reals:\n' +
        zeros('r:1.0', VD, RD) +
        '-----\n' +
        '\n' +
        'Virtual:\n' +
        'v:2 vname=empty vproto=tcp vaddr=127.0.0.90 vport=81 vfwmark=0 vrt=dr vsched=wlc samples=20 total=0 savgconn=0ms savgresp=0ms savgtotal=0ms connprob=0 arpprob=0 rstprob=0\n' +
        '\n' +
        'Reals:\n' +
        '\n' +
        END,
    );
  });

  it('connstats json keeps fractional milliseconds (fixed figures)', async () => {
    await serve(await StandInTarget.fromXml(serviceXml(SAMPLE, anyPort)));
    Object.assign(target.real(0, 0).stats, { total: 2, lastConn: 1.5, lastResp: 2.25, lastTotal: 3.75, sumConn: 3, sumResp: 4, sumTotal: 7 });
    Object.assign(target.virtuals[0]!.stats, { total: 2, avgConn: 0.75 });
    const j = JSON.parse((await c.ask('connstats json')).split('\n')[0]!) as { virtuals: Array<{ vname: string; total: number; reals: Array<Record<string, unknown>> }> };
    assert.equal(j.virtuals.length, 5);
    assert.equal(j.virtuals[0]!.total, 2);
    assert.deepEqual((j.virtuals[0] as unknown as Record<string, unknown>)['savg_ms'], { conn: 0.75, resp: 0, total: 0 });
    assert.deepEqual(j.virtuals[0]!.reals[0]!['last_ms'], { conn: 1.5, resp: 2.25, total: 3.75 });
    assert.deepEqual(j.virtuals[0]!.reals[0]!['tavg_ms'], { conn: 1.5, resp: 2, total: 3.5 });
  });
});
