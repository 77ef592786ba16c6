// Notifier argv and spawning: real scripts record their argv; failures are warnings; nothing blocks.

import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'mocha';
import { realNotifierArgv, virtualNotifierArgv } from '../../surealived/notify/argv.js';
import { runRealNotifier, runVirtualNotifier } from '../../surealived/notify/run.js';
import { spawnNotifier } from '../../surealived/notify/spawn.js';
import { memLogger, real, state, tempDir } from '../state/fixtures.js';

/** A notifier script that writes its arguments, one per line, to `out`. */
function argvScript(dir: string, name: string, out: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${out}'\n`);
  chmodSync(path, 0o755);
  return path;
}

async function waitForFile(path: string): Promise<string> {
  for (let i = 0; i < 200 && !existsSync(path); i++) await new Promise((r) => setTimeout(r, 10));
  return readFileSync(path, 'utf8');
}

describe('notify: argv and spawning (spec 4.9)', () => {
  let tmp: ReturnType<typeof tempDir>;
  beforeEach(() => {
    tmp = tempDir();
  });
  afterEach(() => tmp.cleanup());

  const sample = () =>
    state(
      { name: 'www', addr: '10.0.0.1', port: 80, reals: [real('r1', '10.0.1.5', 8080, 1)] },
      { name: 'fw', proto: 'fwmark', fwmark: 12, reals: [real('f', '2001:db8::5', 80, 1)] },
    );

  it('builds the original argv for virtual and real notifiers', () => {
    const vs = sample();
    assert.deepEqual(virtualNotifierArgv('/s/up.sh', vs[0]!, 'UP'), ['/s/up.sh', 'notify=UP', 'vname=www', 'vaddr=10.0.0.1', 'vport=80', 'vproto=tcp', 'vfwmark=0']);
    assert.deepEqual(realNotifierArgv('/s/down.sh', vs[1]!.reals[0]!, 'DOWN'), [
      '/s/down.sh',
      'notify=DOWN',
      'vname=fw',
      'vaddr=0.0.0.0',
      'vport=0',
      'vproto=fwmark',
      'vfwmark=12',
      'rname=f',
      'raddr=2001:db8::5',
      'rport=80',
    ]);
  });

  it('runs a real script with exactly those arguments; quotes in names are harmless', async () => {
    const out = join(tmp.dir, 'argv.txt');
    const script = argvScript(tmp.dir, 'notify.sh', out);
    const exit = await spawnNotifier([script, `vname=it's "quoted" $HOME`, 'two words'], memLogger().log);
    assert.deepEqual(exit, { kind: 'exited', code: 0, signal: null });
    assert.equal(readFileSync(out, 'utf8'), `vname=it's "quoted" $HOME\ntwo words\n`);
  });

  it('returns at once without waiting for the script', async () => {
    const script = join(tmp.dir, 'slow.sh');
    writeFileSync(script, '#!/bin/sh\nsleep 2\n');
    chmodSync(script, 0o755);
    const t0 = Date.now();
    const exit = spawnNotifier([script], memLogger().log);
    // Waiting for the script would take its 2 s; starting it (a fork) takes far less even on a busy machine.
    assert.ok(Date.now() - t0 < 1000, `returned after ${Date.now() - t0} ms`);
    const done = await Promise.race([exit.then(() => 'exited'), new Promise((r) => setTimeout(() => r('running'), 100))]);
    assert.equal(done, 'running');
  });

  it('a missing or non-executable script is a warning, never an exception', async () => {
    const { log, lines } = memLogger();
    const missing = await spawnNotifier([join(tmp.dir, 'nope.sh'), 'notify=UP'], log);
    assert.equal(missing.kind, 'failed');
    const noexec = join(tmp.dir, 'noexec.sh');
    writeFileSync(noexec, '#!/bin/sh\n');
    assert.equal((await spawnNotifier([noexec], log)).kind, 'failed');
    assert.equal((await spawnNotifier([join(tmp.dir, 'x'), 'nul\0byte'], log)).kind, 'failed');
    assert.equal(lines.filter((l) => l.includes("Can't exec notify line")).length, 3);
  });

  it('does not search PATH: a bare name is relative to the working directory', async () => {
    const { log } = memLogger();
    assert.equal((await spawnNotifier(['sh', '-c', 'exit 0'], log)).kind, 'failed');
  });

  it('runVirtualNotifier sets the state and runs notify_up with the virtual argv', async () => {
    const out = join(tmp.dir, 'up.txt');
    const up = argvScript(tmp.dir, 'up.sh', out);
    const [v] = state({ name: 'www', addr: '10.0.0.1', port: 80, tester: { notifyUp: up }, reals: [real('r1', '10.0.1.5', 80, 1)] });
    const { log, lines } = memLogger();
    const run = runVirtualNotifier(v!, log);
    assert.equal(v!.notifyState, 'UP');
    assert.equal(run.decision!.fire, 'UP');
    assert.equal((await run.exit!).kind, 'exited');
    assert.equal(readFileSync(out, 'utf8'), 'notify=UP\nvname=www\nvaddr=10.0.0.1\nvport=80\nvproto=tcp\nvfwmark=0\n');
    assert.ok(lines.some((l) => l.includes('NOTIFY UP: [vname=www vaddr=10.0.0.1 vport=80 vproto=tcp vfwmark=0]')));
    assert.equal(runVirtualNotifier(v!, log).exit, null, 'no transition, no script');
  });

  it('a transition to a state without a script still changes the state', () => {
    const [v] = state({ name: 'www', addr: '10.0.0.1', port: 80, tester: { notifyUp: '/nonexistent/up', notifyMinReals: { value: 1, percent: false } }, reals: [real('r1', '10.0.1.5', 80, 1)] });
    v!.reals[0]!.online = false;
    const run = runVirtualNotifier(v!, memLogger().log);
    assert.deepEqual([run.decision!.fire, run.exit, v!.notifyState], ['DOWN', null, 'DOWN']);
  });

  it('runRealNotifier runs real_notify_down with the real argv', async () => {
    const out = join(tmp.dir, 'rdown.txt');
    const down = argvScript(tmp.dir, 'rdown.sh', out);
    const [v] = state({ name: 'www', addr: '10.0.0.1', port: 80, tester: { realNotifyDown: down }, reals: [real('r1', '10.0.1.5', 8080, 1)] });
    const { log } = memLogger();
    assert.equal(runRealNotifier(v!.reals[0]!, 'UP', log), null, 'no real_notify_up defined');
    await runRealNotifier(v!.reals[0]!, 'DOWN', log);
    assert.equal(
      await waitForFile(out),
      'notify=DOWN\nvname=www\nvaddr=10.0.0.1\nvport=80\nvproto=tcp\nvfwmark=0\nrname=r1\nraddr=10.0.1.5\nrport=8080\n',
    );
  });
});
