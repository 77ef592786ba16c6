import { strict as assert } from 'node:assert';
import { createServer } from 'node:net';
import { controlCommand } from '../../common/control-client.js';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Daemon } from '../../surealived/daemon.js';
import { TestDaemon, until as waitUntil } from '../helpers/daemon.js';
import { Listener } from '../helpers/servers.js';
import { readDiffs, readStateFile } from '../helpers/state-files.js';

/** Poll until `fn` holds; fails naming `what` after 5000 ms. */
const until = (what: string, fn: () => boolean, ms = 5000): Promise<void> => waitUntil(fn, what, ms);

describe('surealived daemon end to end (real TCP servers, real hand-off files)', function () {
  this.timeout(20000);
  const PORT = 18611;
  let dir: string;
  /** Main config keys of this test on top of testMainConfig's. */
  let mainKeys: Record<string, string>;
  let td: TestDaemon | null = null;
  /** Servers a test opened for itself: closed after it, whatever happened. */
  const ownServers: HttpServer[] = [];
  const listeners = [new Listener('127.0.0.61', PORT), new Listener('127.0.0.62', PORT), new Listener('127.0.0.63', PORT)];

  const xml = (extra = ''): string => `<surealived>
  <virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="2"/>
    <real name="a" addr="127.0.0.61" port="80" weight="10"/>
    <real name="b" addr="127.0.0.62" port="80" weight="20"/>
    ${extra}
  </virtual>
  <virtual name="rof" addr="192.0.2.11" port="80" proto="tcp" sched="rr" rt="dr">
    <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1" remove_on_fail="1"/>
    <real name="c" addr="127.0.0.63" port="80" weight="5"/>
  </virtual>
</surealived>
`;
  const diffs = (): string => readDiffs(dir);
  const full = (): string => readStateFile(dir, 'ipvsfull.cfg');
  /** A daemon on this test's directory and its services.xml as it stands. */
  const start = async (): Promise<Daemon> => (td = await TestDaemon.startIn(dir, mainKeys)).daemon;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-daemon-'));
    writeFileSync(join(dir, 'services.xml'), xml());
    mainKeys = {};
    for (const l of listeners) await l.start();
  });
  afterEach(async () => {
    await td?.stop(true);
    td = null;
    for (const l of listeners) await l.stop();
    for (const s of ownServers.splice(0)) {
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('writes the forced full hand-off and the reload flag before any probe, every real present with its weight', async () => {
    await start();
    assert.ok(existsSync(join(dir, 'ipvsfull.reload')));
    assert.match(full(), /^meta version=1\.0 mdate=\d{4}-\d\d-\d\d mtime=\d\d:\d\d:\d\d\n\nDIFF file=.*diff_sync\.\d+\n\n/);
    assert.match(full(), /virtual vname=web vproto=tcp vaddr=192\.0\.2\.10 vport=80 vrt=dr vsched=wrr\nreal rname=a raddr=127\.0\.0\.61 rport=80 rweight=10\nreal rname=b raddr=127\.0\.0\.62 rport=80 rweight=20\n\n/);
  });

  it('a real that fails retries2fail times in a row goes OFFLINE: chgreal weight 0, offline.dump; it comes back when it answers again', async () => {
    const d = await start();
    await until('all reals tested', () => d.virtuals.every((v) => v.reals.every((r) => r.tested)));
    await listeners[1]!.stop();
    await until('b offline in the diff', () => /cmd=chgreal vname=web .* rname=b raddr=127\.0\.0\.62 rport=80 rweight=0\n/.test(diffs()));
    assert.match(diffs(), /cmd=addreal vname=web vproto=tcp vaddr=192\.0\.2\.10 vport=80 vfwmark=0 vrt=dr vsched=wrr rname=b raddr=127\.0\.0\.62 rport=80 rweight=0\ncmd=chgreal /);
    await until('offline.dump written', () => existsSync(join(dir, 'offline.dump')) && readFileSync(join(dir, 'offline.dump'), 'utf8').includes('192.0.2.10:80:0:0 - 127.0.0.62:80'));
    assert.match(td!.log, /Real: \[web:b - 192\.0\.2\.10:80:tcp 127\.0\.0\.62:80\] changed its test state to OFFLINE \(rstate = ONLINE\)/);
    await listeners[1]!.start();
    await until('b back with weight 20', () => /rname=b raddr=127\.0\.0\.62 rport=80 rweight=20\n$/.test(diffs()));
    await until('offline.dump emptied', () => readFileSync(join(dir, 'offline.dump'), 'utf8') === '');
  });

  it('with remove_on_fail a failing real gets a delreal line', async () => {
    const d = await start();
    await until('all reals tested', () => d.virtuals.every((v) => v.reals.every((r) => r.tested)));
    await listeners[2]!.stop();
    await until('delreal for c', () => /^cmd=delreal vname=rof vproto=tcp vaddr=192\.0\.2\.11 vport=80 vfwmark=0 vrt=dr vsched=rr rname=c raddr=127\.0\.0\.63 rport=80 rweight=0$/m.test(diffs()));
  });

  it('a real listed in offline.dump starts offline (weight 0 in the first full write)', async () => {
    writeFileSync(join(dir, 'offline.dump'), '192.0.2.10:80:0:0 - 127.0.0.62:80\n');
    await listeners[1]!.stop();
    await start();
    assert.match(full(), /real rname=b raddr=127\.0\.0\.62 rport=80 rweight=0\n/);
    assert.match(full(), /real rname=a raddr=127\.0\.0\.61 rport=80 rweight=10\n/);
  });

  it('rset over the control port writes the diff at once and override.dump; a restart keeps the override', async () => {
    const d = await start();
    const port = d.controlAddress!.port;
    const reply = await controlCommand({ port }, 'rset vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.0.61 rport=80 rstate=OFFLINE');
    assert.equal(reply, 'Set: rstate=OFFLINE, weight=10, inpercent=FALSE\n_SD_CMD_END_\n');
    await until('diff written', () => /cmd=chgreal vname=web .* rname=a raddr=127\.0\.0\.61 rport=80 rweight=0\n/.test(diffs()));
    assert.equal(readFileSync(join(dir, 'override.dump'), 'utf8'), '192.0.2.10:80:0:0 - 127.0.0.61:80 - weight=10  rstate=OFFLINE\n');
    const w = await controlCommand({ port }, 'rset vname=web raddr=127.0.0.62 rport=80 rweight=50%');
    assert.equal(w, 'Set: rstate=ONLINE, weight=50, inpercent=TRUE\n_SD_CMD_END_\n');
    await until('b at half weight', () => /rname=b raddr=127\.0\.0\.62 rport=80 rweight=10\n$/.test(diffs()));
    await d.stop();
    const again = await start();
    assert.match(full(), /real rname=a raddr=127\.0\.0\.61 rport=80 rweight=0\n/);
    assert.match(full(), /real rname=b raddr=127\.0\.0\.62 rport=80 rweight=10\n/);
    const list = await controlCommand({ port: again.controlAddress!.port }, 'rlist vproto=tcp vaddr=192.0.2.10 vport=80');
    assert.match(list, /r:0 rname=a raddr=127\.0\.0\.61 rport=80 currwgt=0 confwgt=10 ronline=TRUE rstate=OFFLINE\n/);
  });

  it('a reload applies only what changed, keeps the state of unchanged reals, and refuses a broken XML', async () => {
    const d = await start();
    await until('all reals tested', () => d.virtuals.every((v) => v.reals.every((r) => r.tested)));
    const a = d.virtuals[0]!.reals[0]!;
    a.rstate = 'DOWN'; // an operator state that only survives if the real's state is carried over
    writeFileSync(join(dir, 'services.xml'), xml('<real name="new" addr="127.0.0.64" port="80" weight="7"/>'));
    rmSync(join(dir, 'ipvsfull.reload'));
    assert.equal(await d.reload(), true);
    assert.equal(d.virtuals[0]!.reals[0]!.rstate, 'DOWN');
    assert.equal(d.virtuals[0]!.reals[0]!.tested, true);
    assert.equal(d.virtuals[0]!.reals.length, 3);
    assert.ok(existsSync(join(dir, 'ipvsfull.reload')), 'reload flag set for ipvssync');
    assert.match(full(), /real rname=new raddr=127\.0\.0\.64 rport=80 rweight=7\n/);
    assert.doesNotMatch(full(), /rname=a /);
    writeFileSync(join(dir, 'services.xml'), '<surealived><virtual name="x"></surealived>');
    assert.equal(await d.reload(), false);
    assert.equal(d.virtuals[0]!.reals.length, 3, 'running configuration kept');
    assert.match(td!.log, /reload refused, keeping the running configuration/);
  });

  it('runs the notifiers, writes the stats log and the debugcomm dump, and saves stats.dump at stop', async () => {
    const script = join(dir, 'notify.sh');
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${dir}/notify.log\n`);
    chmodSync(script, 0o755);
    writeFileSync(
      join(dir, 'services.xml'),
      `<surealived><virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1" debugcomm="1"
          notify_up="${script}" notify_down="${script}" notify_min_reals="2" real_notify_up="${script}" real_notify_down="${script}"/>
  <real name="a" addr="127.0.0.61" port="80" weight="10"/>
  <real name="b" addr="127.0.0.62" port="80" weight="20"/>
</virtual>
<virtual name="www" addr="192.0.2.12" port="80" proto="tcp" sched="wrr" rt="dr">
  <tester proto="http" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1" debugcomm="1" url="/health" host="www.test"/>
  <real name="h" addr="127.0.0.65" port="80" weight="1"/>
</virtual></surealived>`,
    );
    const web = createHttpServer((_req, res) => res.end('ok'));
    await new Promise<void>((r) => web.listen(PORT, '127.0.0.65', () => r()));
    ownServers.push(web);
    mainKeys = { ...mainKeys, log_stats_combined: 'true', debug_comm: '1', debug_comm_path: join(dir, 'comm') };
    const d = await start();
    const notes = (): string => readStateFile(dir, 'notify.log');
    await until('virtual UP notification', () => notes().includes('notify=UP vname=web vaddr=192.0.2.10 vport=80 vproto=tcp vfwmark=0'));
    await listeners[1]!.stop();
    await until('real DOWN notification', () => notes().includes('notify=DOWN vname=web vaddr=192.0.2.10 vport=80 vproto=tcp vfwmark=0 rname=b raddr=127.0.0.62 rport=80'));
    await until('virtual DOWN notification (min_reals 2)', () => /notify=DOWN vname=web vaddr=192\.0\.2\.10 vport=80 vproto=tcp vfwmark=0\n/.test(notes()));
    await until('notify.dump', () => existsSync(join(dir, 'notify.dump')) && readFileSync(join(dir, 'notify.dump'), 'utf8') === 'vnotify 192.0.2.10:80:0:0 - state=DOWN\n');
    await until('stats log', () => existsSync(join(dir, 'stats', 'sd_fullstats.log')) && /END {3}Virtual: web end time=/.test(readFileSync(join(dir, 'stats', 'sd_fullstats.log'), 'utf8')));
    assert.match(readFileSync(join(dir, 'stats', 'sd_fullstats.log'), 'utf8'), /START Virtual: web start time=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}\n.* virt=web:80 vproto=tcp vaddr=192\.0\.2\.10:80 real=a:80 raddr=127\.0\.0\.61:80 conntime=\d+ms resptime=\d+ms totaltime=\d+ms currtest=TRUE online=TRUE\n/);
    await until('debugcomm dump of the http probe', () => existsSync(join(dir, 'comm', 'www_h')) && readFileSync(join(dir, 'comm', 'www_h'), 'latin1').includes(' sd_write ->\nGET /health HTTP/1.0'));
    assert.match(readFileSync(join(dir, 'comm', 'www_h'), 'latin1'), /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}\]  sd_write ->\nGET \/health HTTP\/1\.0\r\n/);
    await d.stop();
    td = null;
    assert.match(readFileSync(join(dir, 'stats.dump'), 'utf8'), /^vstats 192\.0\.2\.10:80:0:0 - \d+ \d+ - /);
    assert.match(readFileSync(join(dir, 'stats.dump'), 'utf8'), /\nrstats 127\.0\.0\.61:80 - \d+ - /);
  });
  it('a control port that cannot listen fails the start and leaves no descriptor of the first hand-off open', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    try {
      mainKeys = { ...mainKeys, listen_addr: '127.0.0.1', listen_port: String(port) };
      const fds = (): string[] => readdirSync('/proc/self/fd').sort();
      const before = fds();
      await assert.rejects(start(), /EADDRINUSE/);
      td = null;
      assert.ok(existsSync(join(dir, 'ipvsfull.cfg')), 'the first hand-off was written before the control port');
      assert.deepEqual(fds(), before, 'descriptors left open by the failed start');
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  it("connstats: a virtual's statistics follow every round (loopdelay, at least 1 s), not only the stats.dump saves", async () => {
    // stats_dump_savesec 3600: no save happens during the test, and no stats logging is on.
    mainKeys = { ...mainKeys, stats_dump_savesec: '3600', log_stats: 'false', log_stats_combined: 'false' };
    // logmicro: loopback connects take well under a millisecond, which would print as 0ms.
    writeFileSync(join(dir, 'services.xml'), xml().replace('retries2fail="2"/>', 'retries2fail="2" logmicro="1"/>'));
    const d = await start();
    const ctl = { host: '127.0.0.1', port: d.controlAddress!.port };
    const vline = async (): Promise<string> => /^v:0 .*$/m.exec(await controlCommand(ctl, 'connstats'))![0];
    const total = (line: string): number => Number(/ total=(\d+) /.exec(line)![1]);
    // Rounds end every second; wait for two of them, then see the averages are the reals' (non-zero).
    let line = await vline();
    const end = Date.now() + 10_000;
    while (total(line) < 2 && Date.now() < end) {
      await sleep(200);
      line = await vline();
    }
    assert.ok(total(line) >= 2, `no rounds counted: ${line}`);
    assert.match(line, /^v:0 vname=web vproto=tcp vaddr=192\.0\.2\.10 vport=80 vfwmark=0 vrt=dr vsched=wrr samples=\d+ total=\d+ savgconn=[\d.]+us savgresp=[\d.]+us savgtotal=[\d.]+us connprob=0 arpprob=0 rstprob=0$/);
    assert.ok(!/savgtotal=0(\.0+)?us/.test(line), `the virtual's averages are still empty after ${total(line)} rounds: ${line}`);
    assert.ok(!existsSync(join(dir, 'stats.dump')), 'stats.dump was saved, so this does not show the rounds on their own');
  });
});

