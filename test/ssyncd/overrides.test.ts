// Operator overrides between two directors: a master and a backup surealived (real daemons, reals on
// loopback, real hand-off files) and a master and a backup ssyncd (real processes on host loopback),
// driven with the real ssyncdctl. `rset` on the master reaches the backup's surealived at `write
// overrides`, or at once in continuous mode; an override of a real the backup lacks is reported.

import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'mocha';
import { controlCommand, controlCommands } from '../../common/control-client.js';
import { createLogger } from '../../common/log.js';
import { Daemon as Surealived } from '../../surealived/daemon.js';
import { testMainConfig } from '../helpers/main-config.js';
import { REPO, sleep } from '../helpers/netns.js';
import { refusedPort } from '../helpers/servers.js';
import { eventually } from '../helpers/ssyncd.js';

const SSYNCD = join(REPO, 'dist', 'ssyncd', 'cli.js');
const SSYNCDCTL = join(REPO, 'dist', 'ssyncdctl', 'cli.js');
async function until(what: string, fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  assert.ok(await eventually(async () => fn(), ms, 50), `timed out waiting for: ${what}`);
}

interface Ran {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A real ssyncd on host loopback with its own config, control socket and log. */
class HostSsyncd {
  private child: ChildProcess | undefined;
  output = '';
  readonly socket: string;
  readonly config: string;

  constructor(readonly dir: string, readonly name: string) {
    this.socket = join(dir, `${name}.sock`);
    this.config = join(dir, `${name}.cfg`);
  }

  async start(args: readonly string[], config: readonly string[]): Promise<void> {
    writeFileSync(this.config, [`node_name ${this.name}`, `control_socket ${this.socket}`, 'journal none', 'key_file none', 'poll_interval_ms 100', ...config].join('\n') + '\n');
    this.output = '';
    const child = spawn(process.execPath, [SSYNCD, ...args, '-c', this.config], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.output += b.toString()));
    await until(`${this.name} answers`, async () => {
      if (child.exitCode !== null) assert.fail(`${this.name} exited ${child.exitCode}:\n${this.output}`);
      return (await this.ctl('show', 'mode')).code === 0;
    });
  }

  async stop(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGTERM');
    await gone;
  }

  ctl(...words: string[]): Promise<Ran> {
    return new Promise((resolve) => {
      execFile(process.execPath, [SSYNCDCTL, '-s', this.socket, ...words], { encoding: 'utf8' }, (err, stdout, stderr) => {
        const code = err ? (err as { code?: unknown }).code : 0;
        resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
      });
    });
  }

  async overrides(): Promise<string[]> {
    const r = await this.ctl('--json', 'show', 'overrides');
    assert.equal(r.code, 0, r.stdout + r.stderr);
    return (JSON.parse(r.stdout) as { overrides: { real: string; weight: number; percent: boolean; rstate: string }[] }).overrides.map(
      (o) => `${o.real} ${o.weight}${o.percent ? '%' : ''} ${o.rstate}`,
    );
  }
}

interface RealJson {
  rname: string;
  rstate: string;
  currwgt: number;
  override: { weight: number; percent: boolean } | null;
}

describe('ssyncd: operator overrides between two surealived directors', function () {
  this.timeout(120_000);
  let dir: string;
  let testPort: number;
  const servers: Server[] = [];
  const dirs = { master: '', backup: '' };
  const controlPort = { master: 0, backup: 0 };
  const surealived: { master?: Surealived; backup?: Surealived } = {};
  let syncPort: number;
  let ssyncM: HostSsyncd;
  let ssyncB: HostSsyncd;

  /** The master has r3; the backup's configuration lacks it. */
  const xml = (withR3: boolean): string => `<surealived>
  <virtual name="web" addr="192.0.2.10" port="80" proto="tcp" sched="wrr" rt="dr">
    <tester proto="tcp" testport="${testPort}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="2"/>
    <real name="r1" addr="127.0.2.1" port="80" weight="10"/>
    <real name="r2" addr="127.0.2.2" port="80" weight="10"/>
    ${withR3 ? '<real name="r3" addr="127.0.2.3" port="80" weight="10"/>' : ''}
    <real name="r4" addr="127.0.2.4" port="80" weight="10"/>
  </virtual>
  <virtual name="fw" fwmark="7" proto="fwmark" sched="wrr" rt="dr">
    <tester proto="tcp" testport="${testPort}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="2"/>
    <real name="f1" addr="127.0.2.1" port="80" weight="20"/>
  </virtual>
  <virtual name="six" addr="2001:db8::10" port="443" proto="tcp" sched="wrr" rt="dr">
    <tester proto="tcp" testport="${testPort}" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="2"/>
    <real name="s1" addr="::1" port="443" weight="8"/>
  </virtual>
</surealived>
`;

  const startSurealived = async (side: 'master' | 'backup'): Promise<Surealived> => {
    const d = dirs[side];
    const daemon = await Surealived.start({
      xmlPath: join(d, 'services.xml'),
      main: testMainConfig(d, { listen_port: String(controlPort[side]) }),
      log: createLogger('error', () => undefined),
    });
    surealived[side] = daemon;
    await until(`${side} reals online`, () => daemon.virtuals.every((v) => v.reals.every((r) => r.online)));
    return daemon;
  };
  const ctl = (side: 'master' | 'backup', line: string): Promise<string> => controlCommand({ port: controlPort[side] }, line);
  const rset = async (side: 'master' | 'backup', sel: string, change: string): Promise<void> => {
    assert.match(await ctl(side, `rset ${sel} ${change}`), /^Set: /);
  };
  const reals = async (side: 'master' | 'backup', vname: string): Promise<Record<string, RealJson>> => {
    const reply = await ctl(side, `rlist vname=${vname} json`);
    const j = JSON.parse(reply.split('\n')[0]!) as { reals: RealJson[] };
    return Object.fromEntries(j.reals.map((r) => [r.rname, r]));
  };
  const dump = (side: 'master' | 'backup'): string => {
    try {
      return readFileSync(join(dirs[side], 'override.dump'), 'utf8');
    } catch {
      return '';
    }
  };
  const sortedLines = (text: string): string[] => text.split('\n').filter(Boolean).sort();
  const diffs = (side: 'master' | 'backup'): string =>
    readdirSync(join(dirs[side], 'diffs'))
      .sort()
      .map((f) => readFileSync(join(dirs[side], 'diffs', f), 'utf8'))
      .join('');
  const diffCount = (side: 'master' | 'backup'): number => diffs(side).split('\n').filter(Boolean).length;

  const R1 = 'vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.2.1 rport=80';
  const R2 = 'vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.2.2 rport=80';
  const R3 = 'vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.2.3 rport=80';
  const R4 = 'vproto=tcp vaddr=192.0.2.10 vport=80 raddr=127.0.2.4 rport=80';
  const F1 = 'vproto=fwmark vfwmark=7 raddr=127.0.2.1 rport=80';
  const S1 = 'vproto=tcp vaddr=2001:db8::10 vport=443 raddr=::1 rport=443';

  const startBackupSsyncd = (apply: 'on-write' | 'continuous'): Promise<void> =>
    ssyncB.start(
      ['-B', '-a', '127.0.0.1', '-p', String(syncPort), '-b', '127.0.0.1'],
      [`surealived_override_dump ${join(dirs.backup, 'override.dump')}`, `surealived_control 127.0.0.1:${controlPort.backup}`, 'sync_overrides yes', `overrides_apply ${apply}`],
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ssyncd-overrides-'));
    // One port for every real server, on its own loopback address (IPv6 too).
    const first = createServer((c) => c.on('error', () => undefined).end());
    await new Promise<void>((r) => first.listen(0, '127.0.2.1', () => r()));
    servers.push(first);
    testPort = (first.address() as { port: number }).port;
    for (const host of ['127.0.2.2', '127.0.2.3', '127.0.2.4', '::1']) {
      const s = createServer((c) => c.on('error', () => undefined).end());
      await new Promise<void>((r, j) => s.once('error', j).listen(testPort, host, () => r()));
      servers.push(s);
    }
    for (const side of ['master', 'backup'] as const) {
      dirs[side] = join(dir, side);
      mkdirSync(dirs[side]);
      writeFileSync(join(dirs[side], 'services.xml'), xml(side === 'master'));
      controlPort[side] = await refusedPort();
    }
    await startSurealived('master');
    await startSurealived('backup');
    syncPort = await refusedPort();
    ssyncM = new HostSsyncd(dir, 'lb1');
    ssyncB = new HostSsyncd(dir, 'lb2');
    await ssyncM.start(
      ['-M', '-p', String(syncPort), '-b', '127.0.0.1'],
      [`surealived_override_dump ${join(dirs.master, 'override.dump')}`, `surealived_control 127.0.0.1:${controlPort.master}`, 'sync_overrides yes'],
    );
    await startBackupSsyncd('on-write');
  });

  after(async () => {
    await ssyncB?.stop();
    await ssyncM?.stop();
    await surealived.backup?.stop();
    await surealived.master?.stop();
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('pipelines control commands on one connection, replies in order, error lines included', async () => {
    const replies = await controlCommands({ port: controlPort.backup }, ['vlist', 'rset vproto=tcp vaddr=192.0.2.99 vport=80 raddr=127.0.2.1 rport=80 rstate=DOWN', 'rlist vname=fw']);
    assert.equal(replies.length, 3);
    assert.match(replies[0]!, /^v:0 vname=web .*\nv:1 vname=fw .*\nv:2 vname=six .*\n_SD_CMD_END_\n$/);
    assert.equal(replies[1], 'cmd_find_virt: Virt not found\n');
    assert.match(replies[2]!, /^vname=fw .*\nr:0 rname=f1 .*\n_SD_CMD_END_\n$/);
  });

  it('rset OFFLINE, DOWN, absolute and percent weights on the master reach the backup surealived at `write overrides`', async () => {
    await rset('master', R1, 'rstate=OFFLINE');
    await rset('master', R2, 'rstate=DOWN');
    await rset('master', R4, 'rweight=50%');
    await rset('master', F1, 'rweight=5');
    await rset('master', S1, 'rstate=OFFLINE rweight=200%');
    const want = ['127.0.2.1:80 10 OFFLINE', '127.0.2.2:80 10 DOWN', '127.0.2.4:80 50% ONLINE', '127.0.2.1:80 5 ONLINE', '[::1]:443 200% OFFLINE'].sort();
    await until('the backup ssyncd holds the master overrides', async () => JSON.stringify((await ssyncB.overrides()).sort()) === JSON.stringify(want));
    assert.deepEqual((await ssyncM.overrides()).sort(), want);
    // On-write mode: nothing has touched the backup's surealived yet.
    assert.equal(dump('backup'), '');
    const before = diffs('backup');

    const w = await ssyncB.ctl('write', 'overrides');
    assert.deepEqual(w, { code: 0, stdout: 'overrides written correctly\n', stderr: '' });

    const web = await reals('backup', 'web');
    assert.equal(web['r1']!.rstate, 'OFFLINE');
    assert.equal(web['r1']!.currwgt, 0);
    assert.equal(web['r2']!.rstate, 'DOWN');
    assert.deepEqual(web['r4']!.override, { weight: 50, percent: true });
    assert.equal(web['r4']!.currwgt, 5);
    const fw = await reals('backup', 'fw');
    assert.deepEqual(fw['f1']!.override, { weight: 5, percent: false });
    assert.equal(fw['f1']!.currwgt, 5);
    const six = await reals('backup', 'six');
    assert.equal(six['s1']!.rstate, 'OFFLINE');
    assert.deepEqual(six['s1']!.override, { weight: 200, percent: true });
    assert.deepEqual(sortedLines(dump('backup')), sortedLines(dump('master')));

    // The hand-off follows: the diff lines ipvssync acts on.
    await until('diff lines on the backup', () => diffs('backup').length > before.length);
    await until('every diff line on the backup', () => /rname=s1 /.test(diffs('backup').slice(before.length)));
    const added = diffs('backup').slice(before.length);
    assert.match(added, /^cmd=delreal vname=web .* rname=r2 raddr=127\.0\.2\.2 rport=80 rweight=0$/m);
    assert.match(added, /^cmd=chgreal vname=web .* rname=r1 raddr=127\.0\.2\.1 rport=80 rweight=0$/m);
    assert.match(added, /^cmd=chgreal vname=web .* rname=r4 raddr=127\.0\.2\.4 rport=80 rweight=5$/m);
    assert.match(added, /^cmd=chgreal vname=fw vproto=fwmark .* vfwmark=7 .* rname=f1 raddr=127\.0\.2\.1 rport=80 rweight=5$/m);
    assert.match(added, /^cmd=v6chgreal vname=six .* rname=s1 raddr=::1 rport=443 rweight=0$/m);
  });

  it('a second `write overrides` finds everything already so and writes no diff', async () => {
    const n = diffCount('backup');
    assert.equal((await ssyncB.ctl('write', 'overrides')).code, 0);
    await sleep(200);
    assert.equal(diffCount('backup'), n);
  });

  it('an override of a real the backup lacks is reported (exit 1, with the reason), not applied to another real', async () => {
    const before = { dump: dump('backup'), web: await reals('backup', 'web') };
    await rset('master', R3, 'rstate=OFFLINE');
    await until('the backup ssyncd holds the r3 override', async () => (await ssyncB.overrides()).includes('127.0.2.3:80 10 OFFLINE'));
    const w = await ssyncB.ctl('write', 'overrides');
    assert.equal(w.code, 1);
    assert.equal(
      w.stdout,
      "error writing overrides: 192.0.2.10:80:0:0 - 127.0.2.3:80: no such real in the local surealived's configuration (cmd_find_real: Real not found)\n",
    );
    assert.equal(dump('backup'), before.dump);
    assert.deepEqual(await reals('backup', 'web'), before.web);
    await rset('master', R3, 'rstate=ONLINE');
    await until('r3 gone from the backup copy', async () => !(await ssyncB.overrides()).some((o) => o.startsWith('127.0.2.3:')));
  });

  it('removing an override on the master removes it on the backup at the next write', async () => {
    await rset('master', R4, 'rweight=100%');
    await until('r4 gone from the backup copy', async () => !(await ssyncB.overrides()).some((o) => o.startsWith('127.0.2.4:')));
    assert.equal((await ssyncB.ctl('write', 'overrides')).code, 0);
    const web = await reals('backup', 'web');
    assert.equal(web['r4']!.rstate, 'ONLINE');
    assert.equal(web['r4']!.currwgt, 10);
    assert.ok(!dump('backup').includes('127.0.2.4:80'));
    assert.deepEqual(sortedLines(dump('backup')), sortedLines(dump('master')));
  });

  it('a restart of the backup surealived keeps them, in its override.dump and its ipvsfull.cfg', async () => {
    await surealived.backup!.stop();
    await startSurealived('backup');
    const web = await reals('backup', 'web');
    assert.equal(web['r1']!.rstate, 'OFFLINE');
    assert.equal(web['r2']!.rstate, 'DOWN');
    assert.deepEqual((await reals('backup', 'fw'))['f1']!.override, { weight: 5, percent: false });
    assert.deepEqual(sortedLines(dump('backup')), sortedLines(dump('master')));
    const full = readFileSync(join(dirs.backup, 'ipvsfull.cfg'), 'utf8');
    assert.match(full, /^real rname=r1 raddr=127\.0\.2\.1 rport=80 rweight=0$/m);
    assert.doesNotMatch(full, /rname=r2 /, 'a DOWN real is not in the hand-off');
    assert.match(full, /^real rname=r4 raddr=127\.0\.2\.4 rport=80 rweight=10$/m);
    assert.match(full, /^virtual vname=fw vproto=fwmark .*vfwmark=7\nreal rname=f1 raddr=127\.0\.2\.1 rport=80 rweight=5$/m);
    assert.match(full, /^v6real rname=s1 raddr=::1 rport=443 rweight=0$/m);
    const n = diffCount('backup');
    assert.deepEqual(await ssyncB.ctl('write', 'overrides'), { code: 0, stdout: 'overrides written correctly\n', stderr: '' });
    await sleep(200);
    assert.equal(diffCount('backup'), n, 'nothing to do after the restart');
  });

  it('with `overrides_apply continuous` the backup surealived follows the master at once, removals included', async () => {
    await ssyncB.stop();
    await startBackupSsyncd('continuous');
    await rset('master', R2, 'rstate=ONLINE rweight=30');
    await until('r2 at weight 30 on the backup surealived', async () => {
      const r2 = (await reals('backup', 'web'))['r2']!;
      return r2.rstate === 'ONLINE' && r2.currwgt === 30;
    });
    await rset('master', R1, 'rstate=ONLINE');
    await rset('master', F1, 'rweight=-1');
    await until('r1 and f1 back to neutral on the backup surealived', async () => {
      const r1 = (await reals('backup', 'web'))['r1']!;
      const f1 = (await reals('backup', 'fw'))['f1']!;
      return r1.rstate === 'ONLINE' && f1.currwgt === 20;
    });
    await until('the dumps agree', () => JSON.stringify(sortedLines(dump('backup'))) === JSON.stringify(sortedLines(dump('master'))));
    assert.ok(!dump('backup').includes('127.0.2.1:80'), dump('backup'));
    assert.ok(dump('backup').includes('127.0.2.2:80 - weight=30  rstate=ONLINE'));
  });
});
