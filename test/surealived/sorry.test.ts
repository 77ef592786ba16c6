// The sorry server end to end: the real daemon, real tcp testers against real loopback servers, the
// real hand-off files (read back with ipvssync's own parser), the control port and the notifier.

import { strict as assert } from 'node:assert';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCommand } from '../../common/control-client.js';
import type { Daemon } from '../../surealived/daemon.js';
import { TestDaemon, until as waitUntil } from '../helpers/daemon.js';
import { Listener } from '../helpers/servers.js';
import { ipvssyncView, readDiffs, readStateFile } from '../helpers/state-files.js';
import { toTable } from '../../ipvssync/handoff.js';

/** Poll until `fn` holds; fails naming `what` after 8000 ms. */
const until = (what: string, fn: () => boolean, ms = 8000): Promise<void> => waitUntil(fn, what, ms);

describe('surealived daemon: the sorry server end to end (real TCP servers, real hand-off files)', function () {
  this.timeout(30000);
  const PORT = 18631;
  let dir: string;
  let td: TestDaemon | null = null;
  const listeners = [new Listener('127.0.0.81', PORT), new Listener('127.0.0.82', PORT)];
  const V = 'vname=web vproto=tcp vaddr=192.0.2.20 vport=80 vfwmark=0 vrt=dr vsched=wrr';
  const SORRY_LINE = 'rname=sorry raddr=127.0.0.89 rport=8080 rweight=3 rrt=masq';

  const xml = (sorry = '<sorry name="sorry" addr="127.0.0.89" port="8080" weight="3" rt="masq" notify_up="NOTIFY" notify_down="NOTIFY"/>'): string => `<surealived>
  <virtual name="web" addr="192.0.2.20" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="tcp" testport="${PORT}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1"/>
    <real name="a" addr="127.0.0.81" port="80" weight="10"/>
    <real name="b" addr="127.0.0.82" port="80" weight="20"/>
    ${sorry.replace(/NOTIFY/g, join(dir, 'notify.sh'))}
  </virtual>
</surealived>
`;
  const diffs = (): string => readDiffs(dir);
  const full = (): string => readStateFile(dir, 'ipvsfull.cfg');
  const notes = (): string => readStateFile(dir, 'notify.log');
  const logText = (): string => td!.log;
  const lastLineOf = (rname: string): string | undefined => diffs().split('\n').filter((l) => l.includes(` rname=${rname} `)).at(-1);
  /** A daemon on this test's directory and its services.xml as it stands. */
  const start = async (): Promise<Daemon> => (td = await TestDaemon.startIn(dir)).daemon;
  const ask = (line: string): Promise<string> => controlCommand({ port: td!.port }, line);
  const allTested = (): Promise<void> => until('all reals tested', () => td!.allTested());

  const dests = (): string[] => toTable(ipvssyncView(dir))[0]!.dests.map((d) => `${d.addr}:${d.port}/${d.forward}=${d.weight}`);

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-sorry-'));
    const script = join(dir, 'notify.sh');
    writeFileSync(script, `#!/bin/sh\necho "$@" >> ${dir}/notify.log\n`);
    chmodSync(script, 0o755);
    writeFileSync(join(dir, 'services.xml'), xml());
    for (const l of listeners) await l.start();
  });
  afterEach(async () => {
    await td?.stop(true);
    td = null;
    for (const l of listeners) await l.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('all reals down: the sorry line appears (diff, then full), is logged and notified; one real back: it is deleted', async () => {
    const d = await start();
    assert.doesNotMatch(full(), /rname=sorry/, 'reals up: no sorry server at start');
    assert.match(await ask('fallbacks vname=web'), / sorry=OUT sname=sorry saddr=127\.0\.0\.89 sport=8080 sweight=3 currwgt=0 inipvs=FALSE\n_SD_CMD_END_\n$/);
    await allTested();
    for (const l of listeners) await l.stop();
    await until('sorry addreal+chgreal in the diff', () => diffs().includes(`cmd=addreal ${V} ${SORRY_LINE}\ncmd=chgreal ${V} ${SORRY_LINE}\n`));
    assert.match(logText(), /warn {2}: Sorry: \[web:sorry - 192\.0\.2\.20:80:tcp 127\.0\.0\.89:8080\] put in IPVS with weight 3: no real of the virtual serves \(0 of 2 reals with a non-zero weight\)/);
    await until('UP notification', () => notes().includes('notify=UP vname=web vaddr=192.0.2.20 vport=80 vproto=tcp vfwmark=0 rname=sorry raddr=127.0.0.89 rport=8080'));
    assert.match(await ask('fallbacks'), / serving=0 sorry=IN sname=sorry saddr=127\.0\.0\.89 sport=8080 sweight=3 currwgt=3 inipvs=TRUE\n/);
    assert.match(await ask('metrics'), /\nsurealived_virtual_sorry_active\{virtual="web",vproto="tcp",vaddr="192\.0\.2\.20",vport="80",vfwmark="0",real="sorry",raddr="127\.0\.0\.89",rport="8080"\} 1\n/);
    assert.deepEqual(dests(), ['127.0.0.81:80/route=0', '127.0.0.82:80/route=0', '127.0.0.89:8080/masq=3'], 'ipvssync, from full file + diffs');
    assert.equal(await d.reload(), true, 'a forced full write');
    assert.match(full(), new RegExp(`real rname=b raddr=127\\.0\\.0\\.82 rport=80 rweight=0\\nreal ${SORRY_LINE.replace(/\./g, '\\.')}\\n\\n`));

    await listeners[1]!.start();
    await until('sorry delreal', () => lastLineOf('sorry') === `cmd=delreal ${V} rname=sorry raddr=127.0.0.89 rport=8080 rweight=0 rrt=masq`);
    assert.equal(lastLineOf('b'), `cmd=chgreal ${V} rname=b raddr=127.0.0.82 rport=80 rweight=20`);
    const text = diffs();
    assert.ok(text.lastIndexOf('rname=b raddr=127.0.0.82 rport=80 rweight=20') < text.lastIndexOf('cmd=delreal'), 'the real goes in before the sorry server goes out');
    assert.match(logText(), /info {2}: Sorry: \[web:sorry - 192\.0\.2\.20:80:tcp 127\.0\.0\.89:8080\] taken out of IPVS \(deleted\): 1 of 2 reals serve again/);
    await until('DOWN notification', () => notes().includes('notify=DOWN vname=web vaddr=192.0.2.20 vport=80 vproto=tcp vfwmark=0 rname=sorry raddr=127.0.0.89 rport=8080'));
    assert.deepEqual(dests(), ['127.0.0.81:80/route=0', '127.0.0.82:80/route=20']);
    await d.reload();
    assert.doesNotMatch(full(), /rname=sorry/);
  });

  it('every real OFFLINE by the operator: sorry in at once (rset), out again when one is back ONLINE', async () => {
    const d = await start();
    await allTested();
    for (const a of ['127.0.0.81', '127.0.0.82']) assert.match(await ask(`rset vname=web raddr=${a} rport=80 rstate=OFFLINE`), /^Set: rstate=OFFLINE/);
    await until('sorry in', () => lastLineOf('sorry') === `cmd=chgreal ${V} ${SORRY_LINE}`);
    assert.match(await ask('fallbacks vname=web'), / panic=FALSE panic_threshold=0 passing=0 eligible=0 serving=0 sorry=IN /);
    await ask('rset vname=web raddr=127.0.0.81 rport=80 rstate=ONLINE');
    await until('sorry out', () => lastLineOf('sorry')?.startsWith('cmd=delreal') === true);
    assert.deepEqual(dests(), ['127.0.0.81:80/route=10', '127.0.0.82:80/route=0']);
  });

  it('a restart with every real in offline.dump (or OFFLINE in override.dump) writes the sorry line in the first full write', async () => {
    writeFileSync(join(dir, 'offline.dump'), '192.0.2.20:80:0:0 - 127.0.0.81:80\n192.0.2.20:80:0:0 - 127.0.0.82:80\n');
    for (const l of listeners) await l.stop();
    await start();
    assert.match(full(), new RegExp(`real ${SORRY_LINE.replace(/\./g, '\\.')}\\n`));
    assert.match(logText(), /Sorry: \[web:sorry .*\] put in IPVS with weight 3/);
    await until('UP notification at start', () => notes().includes('notify=UP vname=web'));
    await td!.stop(true);
    td = null;

    rmSync(join(dir, 'offline.dump'));
    for (const l of listeners) await l.start();
    writeFileSync(join(dir, 'override.dump'), '192.0.2.20:80:0:0 - 127.0.0.81:80 - weight=10  rstate=OFFLINE\n192.0.2.20:80:0:0 - 127.0.0.82:80 - weight=20  rstate=DOWN\n');
    await start();
    assert.match(full(), /real rname=a raddr=127\.0\.0\.81 rport=80 rweight=0\nreal rname=sorry raddr=127\.0\.0\.89 rport=8080 rweight=3 rrt=masq\n\n/);
  });

  it('reload (what SIGHUP runs): a sorry server added, moved and removed by the configuration', async () => {
    writeFileSync(join(dir, 'services.xml'), xml(''));
    const d = await start();
    await allTested();
    for (const l of listeners) await l.stop();
    await until('both reals offline', () => d.virtuals[0]!.reals.every((r) => !r.online));
    assert.doesNotMatch(diffs(), /rname=sorry/);

    writeFileSync(join(dir, 'services.xml'), xml());
    assert.equal(await d.reload(), true);
    assert.match(full(), new RegExp(`real ${SORRY_LINE.replace(/\./g, '\\.')}\\n`), 'added: in at once (no real serves)');
    assert.ok(existsSync(join(dir, 'ipvsfull.reload')));
    await until('UP notification', () => notes().includes('notify=UP vname=web'));

    writeFileSync(join(dir, 'services.xml'), xml('<sorry name="sorry2" addr="127.0.0.88" port="8080" weight="4" notify_up="NOTIFY" notify_down="NOTIFY"/>'));
    assert.equal(await d.reload(), true);
    assert.doesNotMatch(full(), /rname=sorry raddr/);
    assert.match(full(), /real rname=sorry2 raddr=127\.0\.0\.88 rport=8080 rweight=4\n/, 'moved: the new one in');
    assert.match(logText(), /Sorry: \[web:sorry - 192\.0\.2\.20:80:tcp 127\.0\.0\.89:8080\] taken out of IPVS \(deleted\): no longer in the configuration/);
    await until('DOWN for the old, UP for the new', () => notes().includes('notify=DOWN vname=web vaddr=192.0.2.20 vport=80 vproto=tcp vfwmark=0 rname=sorry raddr=127.0.0.89') && notes().includes('rname=sorry2 raddr=127.0.0.88'));
    assert.deepEqual(dests(), ['127.0.0.81:80/route=0', '127.0.0.82:80/route=0', '127.0.0.88:8080/route=4']);

    writeFileSync(join(dir, 'services.xml'), xml(''));
    assert.equal(await d.reload(), true);
    assert.doesNotMatch(full(), /rname=sorry/, 'removed');
    assert.deepEqual(dests(), ['127.0.0.81:80/route=0', '127.0.0.82:80/route=0']);

    writeFileSync(join(dir, 'services.xml'), xml('<sorry name="sorry" addr="127.0.0.81" port="80" weight="1"/>'));
    assert.equal(await d.reload(), false, 'a sorry server that is one of the reals is refused');
    assert.match(logText(), /reload refused, keeping the running configuration: [^]*services\.xml:6: error: virtual "web": sorry "sorry": attribute "addr": 127\.0\.0\.81:80 is also the real at line 4/);
  });
});
