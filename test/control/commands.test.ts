// Real TCP conversations with the control port: every command and reply byte for byte (spec 9.3),
// every error string (9.2), rset semantics (9.4) and the commitRset hand-off, JSON forms, pipelining.

import { strict as assert } from 'node:assert';
import { ControlServer } from '../../surealived/control/server.js';
import { effectiveWeight } from '../../surealived/engine/state.js';
import { Client, END, TestTarget, fixedProcessStats, real, virtual } from './helpers.js';

describe('control port: commands and replies', () => {
  let target: TestTarget;
  let server: ControlServer;
  let c: Client;

  beforeEach(async () => {
    target = new TestTarget();
    server = await ControlServer.start({ target, port: 0, processStats: () => Promise.resolve(fixedProcessStats) });
    c = await Client.open(server.tcpAddress.port);
  });

  afterEach(async () => {
    c.close();
    await server.close();
  });

  const WEB = 'vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vfwmark=0 vrt=dr vsched=wlc';
  const SEL_WEB = 'vproto=tcp vaddr=10.0.0.1 vport=80';

  it('vlist: one v:<idx> line per virtual in XML order, then the end marker', async () => {
    assert.equal(
      await c.ask('vlist'),
      `v:0 ${WEB}\n` +
        'v:1 vname=dns vproto=udp vaddr=10.0.0.2 vport=53 vfwmark=0 vrt=masq vsched=rr\n' +
        'v:2 vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh\n' +
        'v:3 vname=v6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wlc\n' +
        'v:4 vname=empty vproto=tcp vaddr=10.0.0.9 vport=81 vfwmark=0 vrt=dr vsched=wlc\n' +
        END,
    );
  });

  it('vlist with no virtuals is the end marker alone', async () => {
    target.virtuals.length = 0;
    assert.equal(await c.ask('vlist'), END);
  });

  it('rlist: the virtual line, r:<idx> lines with currwgt 0 for offline reals, then the end marker', async () => {
    target.real(0, 1).online = false;
    assert.equal(
      await c.ask(`rlist ${SEL_WEB}`),
      `${WEB}\n` +
        'r:0 rname=web1 raddr=10.0.1.1 rport=80 currwgt=20 confwgt=20 ronline=TRUE rstate=ONLINE\n' +
        'r:1 rname=web2 raddr=10.0.1.2 rport=8080 currwgt=0 confwgt=10 ronline=FALSE rstate=ONLINE\n' +
        END,
    );
  });

  it('rlist of a virtual without reals says EMPTY LIST', async () => {
    assert.equal(
      await c.ask('rlist vproto=tcp vaddr=10.0.0.9 vport=81'),
      'vname=empty vproto=tcp vaddr=10.0.0.9 vport=81 vfwmark=0 vrt=dr vsched=wlc\nEMPTY LIST - no reals defined in virtual\n' + END,
    );
  });

  it('selects fwmark virtuals by vfwmark whatever vproto says, by name (extension), and IPv6 in any spelling', async () => {
    const fw = 'vname=fw vproto=fwmark vaddr=0.0.0.0 vport=0 vfwmark=7 vrt=tun vsched=sh\n';
    assert.ok((await c.ask('rlist vproto=fwmark vfwmark=7')).startsWith(fw));
    assert.ok((await c.ask('rlist vproto=bogus vfwmark=7')).startsWith(fw));
    assert.ok((await c.ask('rlist vname=dns')).startsWith('vname=dns vproto=udp'));
    // One pass over the virtuals as the original: an unknown fwmark still lets proto/addr/port match.
    assert.ok((await c.ask(`rlist ${SEL_WEB} vfwmark=8`)).startsWith(`${WEB}\n`));
    assert.equal(
      await c.ask('rlist vproto=tcp vaddr=2001:DB8:0:0:0::10 vport=443'),
      'vname=v6 vproto=tcp vaddr=2001:db8::10 vport=443 vfwmark=0 vrt=dr vsched=wlc\n' +
        'r:0 rname=six1 raddr=2001:db8::1 rport=443 currwgt=3 confwgt=3 ronline=TRUE rstate=ONLINE\n' +
        END,
    );
  });

  it('answers every selection error with the exact one-line message and no end marker', async () => {
    const cases: Array<[string, string]> = [
      ['rlist', 'cmd_find_virt: No vproto specified\n'],
      ['rlist vaddr=10.0.0.1 vport=80', 'cmd_find_virt: No vproto specified\n'],
      ['rlist vproto=tcp vaddr=10.0.0.1 vport=81', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=TCP vaddr=10.0.0.1 vport=80', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=fwmark vfwmark=9', 'cmd_find_virt: Virt not found\n'],
      ['rlist vname=nope', 'cmd_find_virt: Virt not found\n'],
      ['rlist vproto=tcp vaddr=10.0.0.1.5 vport=80', 'cmd_find_virt: invalid IP\n'],
      ['rlist vproto=tcp vaddr=zzz', 'cmd_find_virt: invalid IP\n'],
      ['rset vproto=tcp vaddr=10.0.0.1 vport=99 raddr=10.0.1.1 rport=80 rstate=DOWN', 'cmd_find_virt: Virt not found\n'],
      ['rset vproto=tcp vaddr=10.0.0.9 vport=81 raddr=10.0.1.1 rport=80 rstate=DOWN', 'cmd_find_real: empty realArr\n'],
      ['rset vproto=tcp vaddr=10.0.0.9 vport=81', 'cmd_find_real: empty realArr\n'],
      [`rset ${SEL_WEB} rport=80 rstate=DOWN`, 'cmd_find_real: raddr not found\n'],
      [`rset ${SEL_WEB} raddr=10.0.1.1 rstate=DOWN`, 'cmd_find_real: rport not found\n'],
      [`rset ${SEL_WEB} raddr=10.0.1.x rport=80 rstate=DOWN`, 'cmd_find_real: invalid IP\n'],
      [`rset ${SEL_WEB} raddr=10.0.1.1 rport=81 rstate=DOWN`, 'cmd_find_real: Real not found\n'],
      [`rset ${SEL_WEB} raddr=10.0.1.1 rport=80`, "cmd_rset: you need to set at least 'rstate' or 'rweight'\n"],
      [`rset ${SEL_WEB} raddr=10.0.1.1 rport=80 rstate=Down`, 'cmd_rset: rstate unknown [Down]\n'],
      ['foo', 'Invalid request! [foo]\n'],
      ['', 'Invalid request! []\n'],
      [' vlist', 'Invalid request! [ vlist]\n'],
      ['help me\r', 'Invalid request! [help me]\n'],
    ];
    for (const [line, reply] of cases) assert.equal(await c.askError(line), reply, line);
    assert.equal(c.pending(), '', 'no end marker after error replies');
    assert.equal(target.commits.length, 0, 'no failed rset reached commitRset');
  });

  it('rset of each rstate and each weight form updates the real, commits at once and replies Set: ...', async () => {
    const r = target.real(0, 0); // web1, configured weight 20
    const rset = (args: string): Promise<string> => c.ask(`rset ${SEL_WEB} raddr=10.0.1.1 rport=80 ${args}`);
    const last = () => target.commits[target.commits.length - 1]!;

    assert.equal(await rset('rstate=DOWN'), `Set: rstate=DOWN, weight=20, inpercent=FALSE\n${END}`);
    assert.equal(r.rstate, 'DOWN');
    assert.deepEqual(r.override, { weight: 20, percent: false });
    assert.equal(effectiveWeight(r), 0);
    assert.deepEqual(last().commit, { deleteEntry: false, previous: { rstate: 'ONLINE', override: null } });
    assert.equal(last().real, r);
    assert.equal(last().rstate, 'DOWN', 'the real was updated before commitRset ran');

    assert.equal(await rset('rweight=50%'), `Set: rstate=DOWN, weight=50, inpercent=TRUE\n${END}`);
    assert.equal(r.rstate, 'DOWN', 'an rweight-only rset keeps the rstate');
    assert.deepEqual(last().commit.previous, { rstate: 'DOWN', override: { weight: 20, percent: false } });

    assert.equal(await rset('rstate=ONLINE'), `Set: rstate=ONLINE, weight=50, inpercent=TRUE\n${END}`);
    assert.equal(effectiveWeight(r), 10, 'percent: floor(20 * 50 / 100)');
    assert.equal(last().commit.deleteEntry, false);

    assert.equal(await rset('rweight=1%'), `Set: rstate=ONLINE, weight=1, inpercent=TRUE\n${END}`);
    assert.equal(effectiveWeight(r), 1, 'percent never goes below 1');

    assert.equal(await rset('rweight=250%'), `Set: rstate=ONLINE, weight=250, inpercent=TRUE\n${END}`);
    assert.equal(effectiveWeight(r), 50, 'more than 100 % is allowed');

    assert.equal(await rset('rweight=100%'), `Set: rstate=ONLINE, weight=100, inpercent=TRUE\n${END}`);
    assert.equal(last().commit.deleteEntry, true, 'ONLINE at exactly 100 % deletes the override entry');

    assert.equal(await rset('rweight=7'), `Set: rstate=ONLINE, weight=7, inpercent=FALSE\n${END}`);
    assert.equal(effectiveWeight(r), 7);
    assert.equal(last().commit.deleteEntry, false);
    assert.ok((await c.ask(`rlist ${SEL_WEB}`)).includes('r:0 rname=web1 raddr=10.0.1.1 rport=80 currwgt=7 confwgt=20 ronline=TRUE rstate=ONLINE\n'));

    assert.equal(await rset('rstate=OFFLINE'), `Set: rstate=OFFLINE, weight=7, inpercent=FALSE\n${END}`);
    assert.equal(effectiveWeight(r), 0);

    assert.equal(await rset('rweight=0 rstate=ONLINE'), `Set: rstate=ONLINE, weight=0, inpercent=FALSE\n${END}`);
    assert.equal(effectiveWeight(r), 20, 'a zero override falls back to the configured weight');
    assert.equal(last().commit.deleteEntry, false);

    assert.equal(await rset('rweight=20'), `Set: rstate=ONLINE, weight=20, inpercent=FALSE\n${END}`);
    assert.equal(last().commit.deleteEntry, true, 'ONLINE at the configured weight deletes the entry');

    assert.equal(await rset('rweight=-1'), `Set: rstate=ONLINE, weight=20, inpercent=FALSE\n${END}`);
    assert.equal(target.commits.length, 11, 'one commitRset per successful rset');
  });

  it('rset finds IPv6 reals and fwmark virtuals', async () => {
    assert.equal(
      await c.ask('rset vproto=tcp vaddr=2001:db8::10 vport=443 raddr=2001:DB8:0::1 rport=443 rstate=OFFLINE'),
      `Set: rstate=OFFLINE, weight=3, inpercent=FALSE\n${END}`,
    );
    assert.equal(target.real(3, 0).rstate, 'OFFLINE');
    assert.equal(await c.ask('rset vproto=fwmark vfwmark=7 raddr=10.0.3.1 rport=0 rweight=5'), `Set: rstate=ONLINE, weight=5, inpercent=FALSE\n${END}`);
    assert.equal(await c.ask('rset vname=dns raddr=10.0.2.1 rport=53 rstate=DOWN json'), `{"rstate":"DOWN","weight":5,"inpercent":false,"deleted":false}\n${END}`);
  });

  it('a failing commitRset leaves the real as it was and says why in one line', async () => {
    target.failCommit = new Error('ENOSPC: no space left\non device');
    assert.equal(
      await c.askError(`rset ${SEL_WEB} raddr=10.0.1.1 rport=80 rstate=DOWN`),
      'cmd_rset: not applied, saving failed: ENOSPC: no space left on device\n',
    );
    assert.equal(target.real(0, 0).rstate, 'ONLINE');
    assert.equal(target.real(0, 0).override, null);
  });

  it('stats: the exact report, 32-bit counters, 4294967295 when the offline dump is off', async () => {
    target.real(0, 1).online = false;
    target.real(1, 0).rstate = 'OFFLINE';
    target.real(2, 0).rstate = 'DOWN';
    Object.assign(target.counters, { success: 10, failed: 3, onlineSet: 1, offlineSet: 2, connProblem: 4, arpProblem: 5, rstProblem: 6, bytesRcvd: 2 ** 32 + 5, bytesSent: 77 });
    target.infoValue = { pid: 4242, watchdogPid: 4241, offlineSize: null, overrideSize: 1, gatherStats: true };
    assert.equal(
      await c.ask('stats'),
      '=== global stats ===\n' +
        'watchdog_pid   : 4241\n' +
        'tester_pid     : 4242\n' +
        'virtuals       : 5\n' +
        'reals          : 5\n' +
        '\n' +
        '=== real settings ===\n' +
        'ronline        : 3\n' +
        'roffline       : 1\n' +
        'rdown          : 1\n' +
        'offline_size   : 4294967295\n' +
        'override_size  : 1\n' +
        '\n' +
        '=== real stats ===\n' +
        'success        : 4\n' +
        'failed         : 1\n' +
        '\n' +
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

  it('connstats: per virtual and per real statistics in ms and us, us on logmicro virtuals', async () => {
    target = new TestTarget([
      virtual('web', 'tcp', '10.0.0.1', 80, { reals: [real('web1', '10.0.1.1', 80, 20), real('web2', '10.0.1.2', 8080, 10)] }),
      virtual('dns', 'udp', '10.0.0.2', 53, { sched: 'rr', rt: 'masq', tester: { logmicro: true, statsSamples: 5 }, reals: [real('ns1', '10.0.2.1', 53, 5)] }),
      virtual('empty', 'tcp', '10.0.0.9', 81),
    ]);
    await server.close();
    server = await ControlServer.start({ target, port: 0 });
    c = await Client.open(server.tcpAddress.port);
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

    const V = 'vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vfwmark=0 ';
    const R1 = 'rname=web1 raddr=10.0.1.1 rport=80 total=4 ';
    const R2 = 'rname=web2 raddr=10.0.1.2 rport=8080 total=0 ';
    const VD = 'vname=dns vproto=udp vaddr=10.0.0.2 vport=53 vfwmark=0 ';
    const RD = 'rname=ns1 raddr=10.0.2.1 rport=53 total=0 ';
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
        'v:0 vname=web vproto=tcp vaddr=10.0.0.1 vport=80 vfwmark=0 vrt=dr vsched=wlc samples=20 total=4 savgconn=250ms savgresp=0ms savgtotal=250ms connprob=1 arpprob=0 rstprob=2\n' +
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
        'v:1 vname=dns vproto=udp vaddr=10.0.0.2 vport=53 vfwmark=0 vrt=masq vsched=rr samples=5 total=3 savgconn=1500us savgresp=250us savgtotal=1750us connprob=0 arpprob=0 rstprob=0\n' +
        '\n' +
        'Reals:\n' +
        zeros('r:1.0', VD, RD) +
        '-----\n' +
        '\n' +
        'Virtual:\n' +
        'v:2 vname=empty vproto=tcp vaddr=10.0.0.9 vport=81 vfwmark=0 vrt=dr vsched=wlc samples=20 total=0 savgconn=0ms savgresp=0ms savgtotal=0ms connprob=0 arpprob=0 rstprob=0\n' +
        '\n' +
        'Reals:\n' +
        '\n' +
        END,
    );
  });

  it('connstats with gather_stats off is one line without the end marker', async () => {
    target.infoValue = { ...target.infoValue, gatherStats: false };
    assert.equal(await c.askError('connstats'), 'Gathering statistics is OFF\n');
    assert.equal(await c.askError('connstats json'), 'Gathering statistics is OFF\n');
  });

  it('executes every complete line of one write in order (the original ran only the first)', async () => {
    c.send(`vlist\nfoo\r\nrlist ${SEL_WEB}\nrset ${SEL_WEB} raddr=10.0.1.2 rport=8080 rstate=DOWN\nrlist vname=web`);
    assert.ok((await c.untilEnd()).startsWith(`v:0 ${WEB}\n`));
    assert.equal(await c.line(), 'Invalid request! [foo]\n');
    assert.ok((await c.untilEnd()).includes('rstate=ONLINE\n'));
    assert.equal(await c.untilEnd(), `Set: rstate=DOWN, weight=10, inpercent=FALSE\n${END}`);
    assert.equal(c.pending(), '', 'the unterminated last line waits for its newline');
    c.send('\n');
    assert.ok((await c.untilEnd()).includes('r:1 rname=web2 raddr=10.0.1.2 rport=8080 currwgt=0 confwgt=10 ronline=TRUE rstate=DOWN\n'));
  });

  it('answers every line of a client that half-closes after sending (echo ... | nc -N), then closes', async () => {
    c.socket.end('vlist\nstats\nrlist vname=dns');
    assert.ok((await c.untilEnd()).startsWith(`v:0 ${WEB}\n`));
    assert.ok((await c.untilEnd()).startsWith('=== global stats ===\n'));
    await c.waitClosed();
    assert.equal(c.pending(), '', 'the unterminated last line is not executed');
  });

  it('accepts a line split over many writes', async () => {
    for (const ch of 'rlist vname=dns\n') {
      c.send(ch);
      await new Promise((r) => setTimeout(r, 1));
    }
    assert.ok((await c.untilEnd()).startsWith('vname=dns '));
  });

  describe('JSON forms: one JSON line, then the end marker', () => {
    const json = async (line: string): Promise<unknown> => {
      const text = await c.ask(line);
      const lines = text.split('\n');
      assert.equal(lines.length, 3, `one JSON line + marker: ${text}`);
      assert.equal(lines[1], '_SD_CMD_END_');
      return JSON.parse(lines[0]!) as unknown;
    };

    it('vlist json', async () => {
      const j = (await json('vlist json')) as { virtuals: Array<Record<string, unknown>> };
      assert.equal(j.virtuals.length, 5);
      assert.deepEqual(j.virtuals[2], { index: 2, vname: 'fw', vproto: 'fwmark', vaddr: '0.0.0.0', vport: 0, vfwmark: 7, vrt: 'tun', vsched: 'sh' });
    });

    it('rlist json', async () => {
      target.real(0, 1).online = false;
      target.real(0, 0).override = { weight: 50, percent: true };
      const j = (await json(`rlist ${SEL_WEB} json`)) as { virtual: Record<string, unknown>; reals: Array<Record<string, unknown>> };
      assert.equal(j.virtual['vname'], 'web');
      assert.deepEqual(j.reals, [
        { index: 0, rname: 'web1', raddr: '10.0.1.1', rport: 80, currwgt: 10, confwgt: 20, ronline: true, rstate: 'ONLINE', override: { weight: 50, percent: true }, inipvs: true },
        { index: 1, rname: 'web2', raddr: '10.0.1.2', rport: 8080, currwgt: 0, confwgt: 10, ronline: false, rstate: 'ONLINE', override: null, inipvs: true },
      ]);
      assert.deepEqual(((await json('rlist vname=empty json')) as { reals: unknown[] }).reals, []);
      assert.equal(await c.askError('rlist vname=nope json'), 'cmd_find_virt: Virt not found\n', 'errors stay plain lines');
    });

    it('stats json', async () => {
      target.infoValue = { ...target.infoValue, offlineSize: null };
      const j = (await json('stats json')) as Record<string, unknown>;
      assert.equal(j['tester_pid'], 4242);
      assert.equal(j['reals'], 5);
      assert.equal(j['offline_size'], null);
      assert.equal(j['user_time_us'], 1_234_567);
      assert.deepEqual(j['memory'], { VmPeak: { value: 123456, unit: 'kB' }, VmRSS: { value: 42, unit: 'kB' } });
    });

    it('connstats json keeps fractional milliseconds', async () => {
      Object.assign(target.real(0, 0).stats, { total: 2, lastConn: 1.5, lastResp: 2.25, lastTotal: 3.75, sumConn: 3, sumResp: 4, sumTotal: 7 });
      Object.assign(target.virtuals[0]!.stats, { total: 2, avgConn: 0.75 });
      const j = (await json('connstats json')) as { virtuals: Array<{ vname: string; total: number; reals: Array<Record<string, unknown>> }> };
      assert.equal(j.virtuals.length, 5);
      assert.equal(j.virtuals[0]!.total, 2);
      assert.deepEqual((j.virtuals[0] as unknown as Record<string, unknown>)['savg_ms'], { conn: 0.75, resp: 0, total: 0 });
      assert.deepEqual(j.virtuals[0]!.reals[0]!['last_ms'], { conn: 1.5, resp: 2.25, total: 3.75 });
      assert.deepEqual(j.virtuals[0]!.reals[0]!['tavg_ms'], { conn: 1.5, resp: 2, total: 3.5 });
    });
  });
});

describe('control port: stats from the real process', () => {
  it('reports this process and its Vm lines', async () => {
    const target = new TestTarget();
    const server = await ControlServer.start({ target, port: 0 });
    const c = await Client.open(server.tcpAddress.port);
    try {
      const text = await c.ask('stats');
      assert.match(text, /^user_time      : \d+\.\d{6} sec$/m);
      assert.match(text, /^fd_used        : [1-9]\d*$/m);
      if (process.platform === 'linux') assert.match(text, /^VmRSS {10}: \d+ +kB$/m);
    } finally {
      c.close();
      await server.close();
    }
  });
});
