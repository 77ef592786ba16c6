// The panic threshold end to end: the real daemon, real tcp testers against real loopback servers,
// the real hand-off files (read back with ipvssync's own parser), the log, the control port and the
// metrics; and the command line (-t, SIGHUP) with both fallbacks.

import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCommand } from '../../common/control-client.js';
import type { Daemon } from '../../surealived/daemon.js';
import { TestDaemon, until as waitUntil } from '../helpers/daemon.js';
import { Listener } from '../helpers/servers.js';
import { ipvssyncView, readDiffs, readStateFile } from '../helpers/state-files.js';
import { SUREALIVED_CLI as cli, writeMainConfigFile } from '../helpers/surealived-cli.js';
import { toTable } from '../../ipvssync/handoff.js';

/** Poll until `fn` holds; fails naming `what` after 8000 ms. */
const until = (what: string, fn: () => boolean, ms = 8000): Promise<void> => waitUntil(fn, what, ms);

describe('surealived daemon: panic threshold end to end (real TCP servers, real hand-off files)', function () {
  this.timeout(30000);
  const PORT = 18641;
  const ADDRS = ['127.0.0.91', '127.0.0.92', '127.0.0.93', '127.0.0.94'];
  const WEIGHTS = [10, 20, 30, 40];
  let dir: string;
  let td: TestDaemon | null = null;
  const listeners = ADDRS.map((a) => new Listener(a, PORT));
  const LABELS = 'virtual="web",vproto="tcp",vaddr="192.0.2.30",vport="80",vfwmark="0"';

  const xml = (vattrs = ' panic="50"', testerAttrs = ''): string => `<surealived>
  <virtual name="web" addr="192.0.2.30" port="80" proto="tcp" sched="wrr" rt="dr"${vattrs}>
    <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1"${testerAttrs}/>
${ADDRS.map((a, i) => `    <real name="r${i + 1}" addr="${a}" port="80" weight="${WEIGHTS[i]}"/>`).join('\n')}
    <sorry name="sorry" addr="127.0.0.99" port="8080" weight="1"/>
  </virtual>
</surealived>
`;
  const diffs = (): string => readDiffs(dir);
  const full = (): string => readStateFile(dir, 'ipvsfull.cfg');
  const logText = (): string => td!.log;
  /** rweight of the last diff line of a real ('absent' after a delreal, undefined when none). */
  const lastWeight = (rname: string): number | 'absent' | undefined => {
    const line = diffs().split('\n').filter((l) => l.includes(` rname=${rname} `)).at(-1);
    if (line === undefined) return undefined;
    return line.startsWith('cmd=delreal') ? 'absent' : Number(/ rweight=(\d+)/.exec(line)![1]);
  };
  /** A daemon on this test's directory and its services.xml as it stands. */
  const start = async (): Promise<Daemon> => (td = await TestDaemon.startIn(dir)).daemon;
  const ask = (line: string): Promise<string> => controlCommand({ port: td!.port }, line);
  /** ipvssync's view: the full file, then the diff chain it names. */
  const ipvssyncWeights = (): Record<string, number> => Object.fromEntries(toTable(ipvssyncView(dir))[0]!.dests.map((d) => [d.addr, d.weight]));

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-panic-'));
    writeFileSync(join(dir, 'services.xml'), xml());
    for (const l of listeners) await l.start();
  });
  afterEach(async () => {
    await td?.stop(true);
    td = null;
    for (const l of listeners) await l.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('panic="50", 3 of 4 reals stop: all 4 stay in at their weight, logged, on the control port and in metrics; recovery: verdicts again', async () => {
    const d = await start();
    await until('all reals tested', () => d.virtuals[0]!.reals.every((r) => r.tested));
    assert.match(await ask('fallbacks vname=web'), / panic=FALSE panic_threshold=50 passing=4 eligible=4 serving=4 sorry=OUT /);
    for (const l of listeners.slice(0, 3)) await l.stop();

    await until('entering panic', () => /entering panic mode/.test(logText()));
    assert.match(logText(), /error : PANIC: virtual \[web - 192\.0\.2\.30:80:tcp\]: entering panic mode: 1 of 4 reals pass their tests \(25% < panic 50%\); test verdicts disregarded, every real kept in IPVS at its weight\n/);
    await until('every real at its configured weight in the diff', () => ['r1', 'r2', 'r3', 'r4'].every((n, i) => lastWeight(n) === WEIGHTS[i]));
    assert.deepEqual(ipvssyncWeights(), { '127.0.0.91': 10, '127.0.0.92': 20, '127.0.0.93': 30, '127.0.0.94': 40 }, 'ipvssync: all four at their weight, no sorry server');
    assert.equal(lastWeight('sorry'), undefined, 'panic keeps the reals in, so the sorry server stays out');
    assert.equal((logText().match(/entering panic mode/g) ?? []).length, 1, 'one line on entering');

    assert.match(await ask('fallbacks vname=web'), / panic=TRUE panic_threshold=50 passing=1 eligible=4 serving=4 sorry=OUT /);
    const fj = JSON.parse((await ask('fallbacks vname=web json')).split('\n')[0]!) as { virtuals: Array<{ panic: unknown }> };
    assert.deepEqual(fj.virtuals[0]!.panic, { active: true, threshold: 50, passing: 1, eligible: 4 });
    assert.match(await ask('rlist vname=web'), /^vname=web .*\nr:0 rname=r1 raddr=127\.0\.0\.91 rport=80 currwgt=10 confwgt=10 ronline=FALSE rstate=ONLINE\n/, 'rlist: same format, the IPVS weight');
    const metrics = await ask('metrics');
    assert.ok(metrics.includes(`\nsurealived_virtual_panic{${LABELS}} 1\n`), 'panic gauge');
    assert.ok(metrics.includes(`\nsurealived_virtual_panic_threshold_percent{${LABELS}} 50\n`));
    assert.ok(metrics.includes(`\nsurealived_virtual_reals_passing{${LABELS}} 1\n`));
    assert.ok(metrics.includes(`\nsurealived_virtual_sorry_active{${LABELS},real="sorry",raddr="127.0.0.99",rport="8080"} 0\n`));
    assert.match(metrics, /\nsurealived_real_online\{virtual="web",[^}]*real="r1",[^}]*\} 0\n/, 'the test result is still reported');
    assert.match(metrics, /\nsurealived_real_weight\{virtual="web",[^}]*real="r1",[^}]*\} 10\n/);

    // Operator overrides still apply in panic.
    assert.match(await ask('rset vname=web raddr=127.0.0.92 rport=80 rstate=OFFLINE'), /^Set: rstate=OFFLINE/);
    assert.match(await ask('rset vname=web raddr=127.0.0.93 rport=80 rweight=50%'), /^Set: rstate=ONLINE, weight=50, inpercent=TRUE/);
    await until('overrides in the diff', () => lastWeight('r2') === 0 && lastWeight('r3') === 15);
    assert.equal(d.virtuals[0]!.panic, true, '1 of 3 eligible still under 50 %');
    await ask('rset vname=web raddr=127.0.0.92 rport=80 rstate=ONLINE');
    await ask('rset vname=web raddr=127.0.0.93 rport=80 rweight=100%');
    await until('overrides gone', () => lastWeight('r2') === 20 && lastWeight('r3') === 30);

    // Recovery: 3 of 4 pass again.
    await listeners[0]!.start();
    await listeners[1]!.start();
    await until('leaving panic', () => /leaving panic mode/.test(logText()));
    assert.match(logText(), /warn {2}: PANIC: virtual \[web - 192\.0\.2\.30:80:tcp\]: leaving panic mode: [23] of 4 reals pass their tests \((50|75)% >= panic 50%\); test verdicts apply again\n/);
    await until('r3 drained by its verdict again', () => lastWeight('r3') === 0);
    await until('r1, r2 and r4 in', () => lastWeight('r1') === 10 && lastWeight('r2') === 20 && lastWeight('r4') === 40);
    assert.deepEqual(ipvssyncWeights(), { '127.0.0.91': 10, '127.0.0.92': 20, '127.0.0.93': 0, '127.0.0.94': 40 });
    assert.match(await ask('fallbacks vname=web'), / panic=FALSE panic_threshold=50 passing=3 eligible=4 /);
    assert.ok((await ask('metrics')).includes(`\nsurealived_virtual_panic{${LABELS}} 0\n`));
  });

  it('in panic remove_on_fail removes nothing; every real failing: still all in, and the sorry server stays out', async () => {
    writeFileSync(join(dir, 'services.xml'), xml(' panic="50"', ' remove_on_fail="1"'));
    const d = await start();
    await until('all reals tested', () => d.virtuals[0]!.reals.every((r) => r.tested));
    for (const l of listeners) await l.stop();
    await until('all four failing', () => d.virtuals[0]!.reals.every((r) => !r.online));
    await until('every real back at its weight', () => ['r1', 'r2', 'r3', 'r4'].every((n, i) => lastWeight(n) === WEIGHTS[i]));
    assert.equal(lastWeight('sorry'), undefined);
    assert.deepEqual(ipvssyncWeights(), { '127.0.0.91': 10, '127.0.0.92': 20, '127.0.0.93': 30, '127.0.0.94': 40 });
  });

  it('without panic the same outage drains the reals and brings the sorry server in', async () => {
    writeFileSync(join(dir, 'services.xml'), xml(''));
    const d = await start();
    await until('all reals tested', () => d.virtuals[0]!.reals.every((r) => r.tested));
    for (const l of listeners) await l.stop();
    await until('sorry in', () => lastWeight('sorry') === 1);
    assert.deepEqual(ipvssyncWeights(), { '127.0.0.91': 0, '127.0.0.92': 0, '127.0.0.93': 0, '127.0.0.94': 0, '127.0.0.99': 1 });
    assert.doesNotMatch(logText(), /PANIC/);
  });

  it('a restart in panic (offline.dump) writes every real at its weight in the first full write, and says so', async () => {
    writeFileSync(join(dir, 'offline.dump'), ADDRS.slice(0, 3).map((a) => `192.0.2.30:80:0:0 - ${a}:80\n`).join(''));
    for (const l of listeners.slice(0, 3)) await l.stop();
    await start();
    for (const [i, a] of ADDRS.entries()) assert.match(full(), new RegExp(`real rname=r${i + 1} raddr=${a.replace(/\./g, '\\.')} rport=80 rweight=${WEIGHTS[i]}\\n`));
    assert.doesNotMatch(full(), /rname=sorry/);
    assert.match(logText(), /entering panic mode: 1 of 4 reals pass their tests \(25% < panic 50%\)/);
    assert.match(await ask('fallbacks'), / panic=TRUE /);
  });

  it('a reload that removes the threshold leaves panic at once; one that sets it enters it', async () => {
    const d = await start();
    await until('all reals tested', () => d.virtuals[0]!.reals.every((r) => r.tested));
    for (const l of listeners.slice(0, 3)) await l.stop();
    await until('panic', () => d.virtuals[0]!.panic);
    writeFileSync(join(dir, 'services.xml'), xml(''));
    assert.equal(await d.reload(), true);
    assert.match(logText(), /leaving panic mode: panic threshold removed from the configuration/);
    assert.match(full(), /real rname=r1 raddr=127\.0\.0\.91 rport=80 rweight=0\n/);
    writeFileSync(join(dir, 'services.xml'), xml(' panic="100"'));
    assert.equal(await d.reload(), true);
    assert.equal((logText().match(/entering panic mode/g) ?? []).length, 2);
    assert.match(full(), /real rname=r1 raddr=127\.0\.0\.91 rport=80 rweight=10\n/);
  });

  describe('command line', () => {
    const cfg = (): string => writeMainConfigFile(dir, ['loop_interval_ms 50']);

    it('-t refuses a bad panic value and a sorry server that is one of the reals, with file:line (exit 1)', () => {
      const xmlPath = join(dir, 'services.xml');
      writeFileSync(xmlPath, xml(' panic="150"').replace('addr="127.0.0.99" port="8080"', 'addr="127.0.0.94" port="80"'));
      const r = spawnSync(process.execPath, [cli, '-c', cfg(), '-t', xmlPath], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /services\.xml:2: error: virtual "web": attribute "panic": "150" is out of range \(0\.\.100%\)/);
      assert.match(r.stderr, /services\.xml:8: error: virtual "web": sorry "sorry": attribute "addr": 127\.0\.0\.94:80 is also the real at line 7/);
      assert.match(r.stderr, /XML configuration file \[.*services\.xml\] ERROR/);
      writeFileSync(xmlPath, xml());
      assert.equal(spawnSync(process.execPath, [cli, '-c', cfg(), '-t', xmlPath], { encoding: 'utf8', timeout: 20_000 }).status, 0);
    });

    it('SIGHUP re-reads the XML: a sorry server added while no real serves is in the next full write', async () => {
      for (const l of listeners) await l.stop();
      const xmlPath = join(dir, 'services.xml');
      writeFileSync(xmlPath, xml('').replace(/\s*<sorry [^>]*\/>/, ''));
      const child = spawn(process.execPath, [cli, '-c', cfg(), '-vvv', xmlPath], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      try {
        await until('started', () => existsSync(join(dir, 'ipvsfull.cfg')));
        await until('all reals offline', () => (err.match(/changed its test state to OFFLINE/g) ?? []).length === 4);
        assert.doesNotMatch(full(), /rname=sorry/);
        writeFileSync(xmlPath, xml(''));
        child.kill('SIGHUP');
        await until('sorry in the full file', () => /real rname=sorry raddr=127\.0\.0\.99 rport=8080 rweight=1\n/.test(full()));
        assert.match(err, /Sorry: \[web:sorry - 192\.0\.2\.30:80:tcp 127\.0\.0\.99:8080\] put in IPVS with weight 1/);
        child.kill('SIGTERM');
        assert.equal(await new Promise<number | null>((r) => child.once('exit', (c) => r(c))), 0);
      } finally {
        child.kill('SIGKILL');
      }
    });
  });
});
