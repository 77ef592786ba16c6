import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createServer, type Server } from 'node:net';
import { controlCommand } from '../../common/control-client.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'dist/surealived/cli.js');
const compat = join(root, 'test/fixtures/compat');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function run(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

describe('surealived command line (spec 1.1, 1.2)', function () {
  this.timeout(30000);
  let dir: string;
  let cfg: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-cli-'));
    cfg = join(dir, 'surealived.cfg');
    writeFileSync(
      cfg,
      [
        'listen_port 0',
        'startup_delay_ms 100',
        ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${dir}/`)),
        '',
      ].join('\n'),
    );
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 }));

  it('-t accepts every shipped example that uses provided testers (exit 0, "OK")', () => {
    for (const f of readdirSync(compat).filter((f) => f.endsWith('.xml') && !['rtsp.xml', 'sunsite-lua.xml'].includes(f))) {
      const r = run(['-c', cfg, '-t', join(compat, f)]);
      assert.equal(r.code, 0, `${f}: ${r.stderr}`);
      assert.match(r.stderr, new RegExp(`XML configuration file \\[${join(compat, f).replace(/[.[\]/]/g, '\\$&')}\\] OK`));
    }
  });

  it('-t refuses the lua examples with the reason and the line (exit 1, "ERROR")', () => {
    const r = run(['-c', cfg, '-t', join(compat, 'rtsp.xml')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /rtsp\.xml:\d+: error: .*Tester lua not registered/);
    assert.match(r.stderr, /XML configuration file \[.*rtsp\.xml\] ERROR/);
  });

  it('-t lists every error of a broken file with file:line and the attribute', () => {
    const xml = join(dir, 'bad.xml');
    writeFileSync(
      xml,
      '<surealived>\n<virtual name="a" addr="10.0.0.1" port="80" proto="tcp" sched="wrr" rt="dr">\n' +
        '  <tester proto="tcp" testport="99999" loopdelay="1" timeout="1" retries2ok="1" retries2fail="1"/>\n' +
        '  <real name="r1" addr="10.0.0.300" port="80" weight="1"/>\n</virtual>\n</surealived>\n',
    );
    const r = run(['-c', cfg, '-t', xml]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.xml:3: error: .*"testport"/);
    assert.match(r.stderr, /bad\.xml:4: error: .*"addr"/);
  });

  it('-h and -V print and exit 1, a missing XML path prints the usage, a missing main config uses defaults', () => {
    assert.equal(run(['-h']).code, 1);
    assert.match(run(['-h']).stderr, /Usage: surealived \[options\] <xml_config_file>/);
    assert.match(run(['-V']).stderr, /=== SureAliveD v\.1\.0\.6 ===/);
    assert.equal(run([]).code, 1);
    const r = run(['-c', join(dir, 'none.cfg'), '-t', join(compat, 'onetwp.xml')]);
    assert.equal(r.code, 0);
    assert.match(r.stderr, /No surealived\.cfg, setting defaults/);
  });

  it('runs in the foreground: -vvv logs at info, SIGHUP reloads the XML, SIGTERM stops with exit 0', async () => {
    const server: Server = createServer((c) => c.on('error', () => undefined).end());
    await new Promise<void>((r) => server.listen(18712, '127.0.0.71', () => r()));
    const xml = join(dir, 'services.xml');
    const body = (w: number): string =>
      `<surealived><virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr">` +
      `<tester proto="tcp" testport="18712" loopdelay="0.2" timeout="0.5" retries2ok="1" retries2fail="1"/>` +
      `<real name="r" addr="127.0.0.71" port="80" weight="${w}"/></virtual></surealived>`;
    writeFileSync(xml, body(3));
    const child = spawn(process.execPath, [cli, '-c', cfg, '-vvv', xml], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    try {
      for (let i = 0; i < 100 && !existsSync(join(dir, 'ipvsfull.cfg')); i++) await sleep(50);
      assert.match(readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8'), /rweight=3\n/);
      writeFileSync(xml, body(9));
      child.kill('SIGHUP');
      for (let i = 0; i < 100 && !/rweight=9/.test(readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8')); i++) await sleep(50);
      assert.match(readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8'), /real rname=r raddr=127\.0\.0\.71 rport=80 rweight=9\n/);
      child.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      assert.equal(code, 0);
      assert.match(err, /info  : Starting surealived/);
      assert.match(err, /configuration reloaded/);
    } finally {
      child.kill('SIGKILL');
      server.close();
    }
  });

  it('the logging key of the main config sets the level (an unknown name means error); -v counting replaces it', async () => {
    const xml = join(dir, 'services.xml');
    writeFileSync(xml, '<surealived><virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr"><tester proto="no-test"/><real name="r" addr="127.0.0.74" port="80" weight="1"/></virtual></surealived>');
    const base = readFileSync(cfg, 'utf8');
    const levelOf = async (cfgLines: string, args: string[]): Promise<string> => {
      writeFileSync(cfg, base + cfgLines);
      const child = spawn(process.execPath, [cli, '-c', cfg, ...args, xml], { stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
      try {
        for (let i = 0; i < 200 && !/logging level: \w+\n/.test(err); i++) await sleep(25);
        const m = /logging level: (\w+)\n/.exec(err);
        assert.ok(m, `no level in the log: ${err}`);
        return m[1]!;
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
    };
    assert.equal(await levelOf('logging warn\n', []), 'warn');
    assert.equal(await levelOf('logging Debug\n', []), 'error');
    assert.equal(await levelOf('logging warn\n', ['-vvvv']), 'debug');
    assert.equal(await levelOf('logging dbdet\n', ['-v']), 'error');
    assert.equal(await levelOf('logging error\n', ['-vvvvvvv']), 'dbdet');
  });

  it('a broken XML at SIGHUP is refused: the daemon keeps running with the configuration it had', async () => {
    const xml = join(dir, 'services.xml');
    const good = '<surealived><virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr"><tester proto="no-test"/><real name="r" addr="127.0.0.75" port="80" weight="4"/></virtual></surealived>';
    writeFileSync(xml, good);
    const child = spawn(process.execPath, [cli, '-c', cfg, '-vvv', xml], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    try {
      for (let i = 0; i < 200 && !/control port listening on .*:(\d+)\n/.test(err); i++) await sleep(25);
      const port = Number(/control port listening on .*:(\d+)\n/.exec(err)![1]);
      writeFileSync(xml, '<surealived><virtual name="v"></surealived>');
      child.kill('SIGHUP');
      for (let i = 0; i < 200 && !/reload refused/.test(err); i++) await sleep(25);
      assert.match(err, /reload refused, keeping the running configuration/);
      assert.doesNotMatch(err, /configuration reloaded/);
      assert.match(await controlCommand({ port }, 'rlist vname=v'), /\nr:0 rname=r raddr=127\.0\.0\.75 rport=80 currwgt=4 confwgt=4 /);
      // Fixed, the next SIGHUP takes it.
      writeFileSync(xml, good.replace('weight="4"', 'weight="6"'));
      child.kill('SIGHUP');
      for (let i = 0; i < 200 && !/configuration reloaded/.test(err); i++) await sleep(25);
      assert.match(await controlCommand({ port }, 'rlist vname=v'), /\nr:0 rname=r raddr=127\.0\.0\.75 rport=80 currwgt=6 confwgt=6 /);
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('-d runs the tester under a watchdog that reports its pid, respawns a killed tester and shuts down on SIGINT', async function () {
    this.timeout(150_000);
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        s.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    writeFileSync(cfg, readFileSync(cfg, 'utf8').replace('listen_port 0', `listen_port ${port}`) + `use_log true\nlog ${dir}/surealived.log\n`);
    const xml = join(dir, 'services.xml');
    writeFileSync(xml, '<surealived><virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr"><tester proto="no-test"/><real name="r" addr="127.0.0.72" port="80" weight="1"/></virtual></surealived>');
    const byRole = (role: string): number[] =>
      readdirSync('/proc')
        .filter((p) => /^\d+$/.test(p))
        .filter((p) => {
          try {
            return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(xml) && readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`SUREALIVED_ROLE=${role}`);
          } catch {
            return false;
          }
        })
        .map(Number);
    const logTail = (): string => {
      try {
        return readFileSync(join(dir, 'surealived.log'), 'utf8').slice(-3000);
      } catch {
        return '(no log)';
      }
    };
    // Process starts are slow on a busy machine: wait generously, and say what the daemons logged.
    const waitFor = async (what: string, fn: () => boolean): Promise<void> => {
      const end = Date.now() + 30_000;
      while (!fn() && Date.now() < end) await sleep(50);
      assert.ok(fn(), `${what}; watchdog ${JSON.stringify(byRole('watchdog'))}, testers ${JSON.stringify(byRole('child'))}; log:\n${logTail()}`);
    };
    assert.equal(run(['-c', cfg, '-d', xml]).code, 0, 'the launching process returns at once');
    await waitFor('watchdog and tester running', () => byRole('watchdog').length === 1 && byRole('child').length === 1);
    const [watchdog] = byRole('watchdog');
    const [first] = byRole('child');
    try {
      let stats = '';
      await waitFor('control port up', () => existsSync(join(dir, 'ipvsfull.cfg')));
      for (let i = 0; i < 50 && !stats; i++) stats = await controlCommand({ port }, 'stats').catch(() => sleep(100).then(() => ''));
      assert.match(stats, new RegExp(`watchdog_pid   : ${watchdog}\\n`));
      assert.match(stats, new RegExp(`tester_pid     : ${first}\\n`));
      process.kill(first!, 'SIGKILL');
      await waitFor('a new tester', () => byRole('child').length === 1 && byRole('child')[0] !== first);
      assert.match(readFileSync(join(dir, 'surealived.log'), 'utf8'), /watchdog: surealived exited \(SIGKILL\), restarting in 1s/);
      process.kill(watchdog!, 'SIGINT');
      await waitFor('everything stopped', () => byRole('watchdog').length === 0 && byRole('child').length === 0);
    } finally {
      for (const p of [...byRole('watchdog'), ...byRole('child')]) process.kill(p, 'SIGKILL');
    }
  });
});

