// The compiled `ipvssync` executable: -t exit codes and messages, usage/version, start-up checks,
// --dry-run output (one line per op), --list, signals, and -d.

import { strict as assert } from 'node:assert';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { appendFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { fullHead, handoffDir, holdLockInChild, real, untilWaitingForLock, WEB_VIRTUAL, webDiff, type HandoffDir } from './helpers.js';

const CLI = fileURLToPath(new URL('../../ipvssync/cli.js', import.meta.url));

function run(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Resolves once `stream` has printed text matching `re`; returns everything printed so far. */
function waitFor(child: ChildProcessWithoutNullStreams, re: RegExp, what: () => string, ms = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got:\n${what()}`)), ms);
    const check = (): void => {
      if (re.test(what())) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(what());
      }
    };
    child.stdout.on('data', check);
    check();
  });
}

describe('ipvssync command line', () => {
  let d: HandoffDir;
  beforeEach(() => {
    d = handoffDir();
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 10)}\n\n`);
    writeFileSync(d.diff(100), '');
  });
  afterEach(() => d.cleanup());

  it('-t on a valid full file: syntax OK, exit 0 (with -c honoured)', () => {
    const r = run(['-c', d.configFile, '-t']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, `ipvssync config file [${d.fullFile}] syntax OK\n`);
  });

  it('-t on an invalid full file: the bad lines, syntax ERROR, exit 1', () => {
    writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', -3)}\n`);
    const r = run([`--config=${d.configFile}`, '--test-config']);
    assert.equal(r.code, 1);
    assert.equal(r.out, `ipvssync config file [${d.fullFile}] syntax ERROR\n`);
    assert.match(r.err, new RegExp(`${d.fullFile}:6: bad rweight '-3'`));
  });

  it('-t when the DIFF file cannot be opened: syntax ERROR, exit 1', () => {
    rmSync(d.diff(100));
    const r = run(['-tc', d.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.out, /syntax ERROR/);
  });

  it('-t reads the full file under the lock, so it never judges a half-written file', async () => {
    const holder = await holdLockInChild(d.lockFile);
    const child = spawn(process.execPath, [CLI, '-c', d.configFile, '-t'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    let code: number | null | undefined;
    const exited = new Promise<void>((resolve) => child.on('exit', (c) => ((code = c), resolve())));
    try {
      // The kernel itself lists -t as blocked on surealived's flock, and it has not answered yet.
      await untilWaitingForLock(d.lockFile, child.pid ?? 0, () => (code === undefined ? undefined : `-t finished (exit ${code}) while surealived held the lock:\n${out}`));
      assert.equal(out, '', '-t answered while surealived held the lock');
      await holder.release();
      await exited;
      assert.equal(code, 0, out);
      assert.equal(out, `ipvssync config file [${d.fullFile}] syntax OK\n`);
    } finally {
      child.kill('SIGKILL');
      holder.close();
    }
  });

  it('-t without a full file: NOT FOUND, exit 1', () => {
    rmSync(d.fullFile);
    const r = run(['-c', d.configFile, '-t']);
    assert.equal(r.code, 1);
    assert.equal(r.err, `ipvssync config file [${d.fullFile}] NOT FOUND!\n`);
  });

  it('a missing main config is an error, exit 1', () => {
    const r = run(['-c', join(d.root, 'nope.cfg'), '-t']);
    assert.equal(r.code, 1);
    assert.equal(r.err, `ERROR loading config [${join(d.root, 'nope.cfg')}]\n`);
  });

  it('-h prints the usage and -V the version, both exit 1', () => {
    const h = run(['-h']);
    assert.equal(h.code, 1);
    assert.match(h.err, /^=== IPVSSync v\.[0-9.]+ ===\nUsage: ipvssync \[options\]\n/);
    assert.match(h.err, /\t--del-umanaged\t-u\t\tDelete unmanaged virtuals from IPVS table\n/);
    const v = run(['--version']);
    assert.equal(v.code, 1);
    assert.match(v.err, /^=== IPVSSync v\.[0-9.]+ ===\n$/);
  });

  it('a missing lock file stops the start-up, exit 1', () => {
    rmSync(d.lockFile);
    const r = run(['-c', d.configFile, '--dry-run', '--once']);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`ipvssync lock file \\[${d.lockFile}\\] NOT FOUND!`));
  });

  it('--dry-run --once prints each op as one line, and --list the table like ipvsadm -Ln', () => {
    appendFileSync(d.diff(100), webDiff('addreal', 'w2', '10.0.1.6', 5));
    const r = run(['-c', d.configFile, '--dry-run', '--once', '--list']);
    assert.equal(r.code, 0, r.err);
    assert.equal(
      r.out,
      'add service tcp 10.0.0.1:80 wrr\n' +
        'add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=10\n' +
        'add dest tcp 10.0.0.1:80 -> 10.0.1.6:80 route w=5\n' +
        'IP Virtual Server version 1.2.1 (size=4096)\n' +
        'Prot LocalAddress:Port Scheduler Flags\n' +
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
        'TCP  10.0.0.1:80 wrr\n' +
        '  -> 10.0.1.5:80                  Route   10     0          0         \n' +
        '  -> 10.0.1.6:80                  Route   5      0          0         \n',
    );
    assert.match(r.err, /info  : Starting ipvssync\n/);
  });

  it('--dry-run --kernel-table starts from an ipvsadm -Sn dump; -u removes what is not managed', () => {
    const rules = join(d.root, 'rules');
    writeFileSync(rules, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.5:80 -g -w 10\n-a -t 10.0.0.1:80 -r 10.0.1.9:80 -m -w 1\n-A -u 192.168.1.1:53 -s rr\n');
    const r = run(['-c', d.configFile, '--dry-run', '--kernel-table', rules, '--once', '-u']);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'delete service udp 192.168.1.1:53\nedit service tcp 10.0.0.1:80 wrr\ndelete dest tcp 10.0.0.1:80 -> 10.0.1.9:80\n');
    const l = run(['-c', d.configFile, '--dry-run', '--kernel-table', rules, '--list']);
    assert.equal(l.code, 0, l.err);
    assert.match(l.out, /^UDP  192\.168\.1\.1:53 rr$/m);
  });

  it('--dry-run --once with ipvs_sync_daemon both prints the daemon starts; --list ends with them as ipvsadm -L --daemon', () => {
    appendFileSync(d.configFile, 'ipvs_sync_daemon both\nipvs_sync_interface eth1\nipvs_sync_id 3\nipvs_sync_group ff02::81\n');
    const r = run(['-c', d.configFile, '--dry-run', '--once', '--list']);
    assert.equal(r.code, 0, r.err);
    const out = r.out.split('\n');
    assert.deepEqual(out.slice(0, 4), [
      'add service tcp 10.0.0.1:80 wrr',
      'add dest tcp 10.0.0.1:80 -> 10.0.1.5:80 route w=10',
      'start master sync daemon (mcast=eth1, syncid=3, maxlen=1452, group=ff02::81, port=8848, ttl=1)',
      'start backup sync daemon (mcast=eth1, syncid=3, maxlen=1452, group=ff02::81, port=8848, ttl=1)',
    ]);
    assert.deepEqual(out.slice(-3), [
      'master sync daemon (mcast=eth1, syncid=3, maxlen=1452, group=ff02::81, port=8848, ttl=1)',
      'backup sync daemon (mcast=eth1, syncid=3, maxlen=1452, group=ff02::81, port=8848, ttl=1)',
      '',
    ]);
  });

  it('a bad ipvs_sync_* key stops the start-up and fails -t, naming file:line', () => {
    appendFileSync(d.configFile, 'ipvs_sync_daemon master\nipvs_sync_id 256\n');
    const r = run(['-c', d.configFile, '--dry-run', '--once']);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`${d.configFile}:9: ipvs_sync_id: "256" is not a whole number from 0 to 255\n`));
    assert.match(r.err, new RegExp(`${d.configFile}:8: ipvs_sync_daemon: master needs ipvs_sync_interface`));
    assert.match(r.err, new RegExp(`ipvssync main config \\[${d.configFile}\\] ERROR`));
    const t = run(['-c', d.configFile, '-t']);
    assert.equal(t.code, 1);
    assert.equal(t.out, `ipvssync main config [${d.configFile}] ERROR\n`);
    assert.match(t.err, /:9: ipvs_sync_id: "256"/);
  });

  it('an invalid full file at start-up: syntax ERROR, exit 1', () => {
    writeFileSync(d.fullFile, 'virtual vname=x\n');
    const r = run(['-c', d.configFile, '--dry-run', '--once']);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`ipvssync config file \\[${d.fullFile}\\] syntax ERROR`));
  });

  it('runs the loop: tails diffs, reloads on SIGHUP, exits 0 on SIGTERM', async () => {
    const child = spawn(process.execPath, [CLI, '-c', d.configFile, '--dry-run', '-vvv'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await waitFor(child, /add dest tcp 10\.0\.0\.1:80 -> 10\.0\.1\.5:80 route w=10\n/, () => out);
      appendFileSync(d.diff(100), webDiff('addreal', 'w1', '10.0.1.5', 0) + webDiff('chgreal', 'w1', '10.0.1.5', 0));
      await waitFor(child, /edit dest tcp 10\.0\.0\.1:80 -> 10\.0\.1\.5:80 route w=0\n/, () => out);
      writeFileSync(d.fullFile, fullHead(d.diff(100)) + `${WEB_VIRTUAL}\n${real('w1', '10.0.1.5', 0)}\n${real('w2', '10.0.1.6', 3)}\n\n`);
      await sleep(50);
      child.kill('SIGHUP');
      await waitFor(child, /add dest tcp 10\.0\.0\.1:80 -> 10\.0\.1\.6:80 route w=3\n/, () => out);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(err, /received SIGTERM - exiting/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('-d runs in the background (log to ipvssync_log) and the foreground process exits 0', async () => {
    const logFile = join(d.root, 'ipvssync.log');
    writeFileSync(d.configFile, readFileSync(d.configFile, 'utf8').replace(/ipvssync_log\t\tstderr/, `ipvssync_log ${logFile}`));
    // daemon(noclose=1): the background copy keeps the stdio it was given, so give it none to wait on.
    const fg = spawn(process.execPath, [CLI, '-c', d.configFile, '--dry-run', '-d'], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => fg.on('exit', (c) => resolve(c)));
    assert.equal(code, 0);
    let pid = 0;
    for (let i = 0; i < 300 && pid === 0; i++) {
      await sleep(50);
      let log = '';
      try {
        log = readFileSync(logFile, 'utf8');
      } catch {
        continue;
      }
      const m = /IPVS add dest .*\n/.test(log) ? /ipvssync pid (\d+)/.exec(log) : null;
      if (m) pid = Number(m[1]);
    }
    assert.ok(pid > 0, `the background ipvssync did not log its start:\n${readFileSync(logFile, { encoding: 'utf8', flag: 'a+' })}`);
    assert.notEqual(pid, process.pid);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 100; i++) {
      await sleep(20);
      // Gone, or a zombie waiting for whichever init adopted it to reap it.
      let status = '';
      try {
        status = readFileSync(`/proc/${pid}/status`, 'utf8');
      } catch {
        return;
      }
      if (/^State:\s+Z/m.test(status)) return;
    }
    assert.fail('the background ipvssync did not exit on SIGTERM');
  });
});
