// The -d watchdog (spec 1.2, README "surealived command line"): its restart policy as a pure state
// machine (surealived/watchdog-policy.ts), then the real `surealived -d` processes: restarts with
// backoff, SIGTERM (forced restart, backoff reset), SIGHUP forwarded to the tester, memlimit.

import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { overMemoryLimit, RestartPolicy } from '../../surealived/watchdog-policy.js';
import { controlCommand } from '../../common/control-client.js';
import { refusedPort as freePort } from '../helpers/servers.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const cli = join(root, 'dist/surealived/cli.js');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('watchdog restart policy (pure)', () => {
  /** Start and end a tester `runMs` after its start, `n` times; the delays asked for. */
  const crashLoop = (p: RestartPolicy, n: number, t0 = 0, runMs = 100): { delays: number[]; t: number } => {
    const delays: number[] = [];
    let t = t0;
    for (let i = 0; i < n; i++) {
      p.started(t);
      t += runMs;
      const d = p.exited(t);
      delays.push(d);
      t += d;
    }
    return { delays, t };
  };

  it('a tester that keeps ending is restarted after 1 s, 2 s, 4 s, ... up to 60 s, then every 60 s', () => {
    const p = new RestartPolicy();
    assert.equal(p.nextDelayMs, 1000);
    assert.deepEqual(crashLoop(p, 10).delays, [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000, 60000]);
  });

  it('a tester that ran 60 s was healthy: its end is followed by a restart after 1 s, and the backoff grows again from there', () => {
    const p = new RestartPolicy();
    const { t } = crashLoop(p, 4); // next would be 16 s
    assert.equal(p.nextDelayMs, 16000);
    p.started(t);
    assert.equal(p.exited(t + 60_000), 1000);
    assert.deepEqual(crashLoop(p, 3, t + 61_000).delays, [2000, 4000, 8000]);
  });

  it('a tester that ran just under 60 s was not healthy: the backoff keeps growing', () => {
    const p = new RestartPolicy();
    const { t } = crashLoop(p, 3);
    p.started(t);
    assert.equal(p.exited(t + 59_999), 8000);
    assert.equal(p.nextDelayMs, 16000);
  });

  it('the delay never goes over 60 s, however long the crash loop', () => {
    const p = new RestartPolicy();
    assert.ok(crashLoop(p, 100).delays.every((d) => d <= 60_000));
    assert.equal(p.nextDelayMs, 60_000);
  });

  it('SIGTERM while a tester runs: stop it, start the next after 1 s, and a crash after that waits 1 s (backoff reset)', () => {
    const p = new RestartPolicy();
    const { t } = crashLoop(p, 5); // next would be 32 s
    p.started(t);
    assert.equal(p.running, true);
    assert.deepEqual(p.forceRestart(), { action: 'stop-child' });
    assert.equal(p.exited(t + 50), 1000, 'the requested restart waits the shortest delay');
    assert.equal(p.running, false);
    assert.deepEqual(crashLoop(p, 3, t + 1050).delays, [1000, 2000, 4000], 'the requested stop was not counted as a failure');
  });

  it('SIGTERM while a restart is pending: start after 1 s instead of the pending delay, backoff reset', () => {
    const p = new RestartPolicy();
    const { delays } = crashLoop(p, 6);
    assert.equal(delays.at(-1), 32000); // a restart is pending for 32 s
    assert.equal(p.running, false);
    assert.deepEqual(p.forceRestart(), { action: 'start', delayMs: 1000 });
    assert.deepEqual(crashLoop(p, 2, 1e6).delays, [1000, 2000]);
  });

  it('a tester that exits on its own after a SIGTERM request already ended counts as requested only once', () => {
    const p = new RestartPolicy();
    p.started(0);
    p.forceRestart();
    assert.equal(p.exited(10), 1000);
    p.started(1010);
    assert.equal(p.exited(1020), 1000, 'first failure after the reset');
    p.started(2020);
    assert.equal(p.exited(2030), 2000, 'second failure: backoff grows again');
  });

  it('the delays and the healthy time are options', () => {
    const p = new RestartPolicy({ minDelayMs: 10, maxDelayMs: 35, healthyAfterMs: 500 });
    assert.deepEqual(crashLoop(p, 4).delays, [10, 20, 35, 35]);
    p.started(0);
    assert.equal(p.exited(500), 10);
  });

  it('memlimit: over means resident size strictly above a non-zero limit; unreadable or no limit is never over', () => {
    assert.equal(overMemoryLimit(1001, 1000), true);
    assert.equal(overMemoryLimit(1000, 1000), false);
    assert.equal(overMemoryLimit(999, 1000), false);
    assert.equal(overMemoryLimit(10_000_000, 0), false);
    assert.equal(overMemoryLimit(null, 1000), false);
  });
});


describe('surealived -d watchdog (real processes)', function () {
  this.timeout(90000);
  let dir: string;
  let cfg: string;
  let xml: string;
  let logFile: string;
  let port: number;
  /** Every watchdog pid seen in this test: its group (the watchdog is a session leader) is killed at the end. */
  const watchdogs = new Set<number>();

  const services = (weight: number): string =>
    `<surealived><virtual name="v" addr="192.0.2.1" port="80" proto="tcp" sched="wrr" rt="dr"><tester proto="no-test"/>` +
    `<real name="r" addr="127.0.0.73" port="80" weight="${weight}"/></virtual></surealived>`;

  /** Our processes by role (SUREALIVED_ROLE), recognised by this test's XML path in their command line. */
  const byRole = (role: 'watchdog' | 'child'): number[] =>
    readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(xml)) return false;
          if (!readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`SUREALIVED_ROLE=${role}`)) return false;
          // A zombie (exited, not reaped yet) is not running.
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
        } catch {
          return false;
        }
      })
      .map(Number);
  const waitFor = async (what: string, fn: () => boolean, ms = 15_000): Promise<void> => {
    const end = performance.now() + ms;
    while (!fn() && performance.now() < end) await sleep(20);
    assert.ok(fn(), `timed out waiting for: ${what}`);
  };
  const log = (): string => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
  /** The one running tester, once there is exactly one and it is not `not`. */
  const nextChild = async (not: number | undefined, what: string): Promise<number> => {
    await waitFor(what, () => {
      const c = byRole('child');
      return c.length === 1 && c[0] !== not;
    });
    return byRole('child')[0]!;
  };
  /** Until the tester `pid` answers on the control port (it is up, its signal handlers installed). */
  const ready = async (pid: number): Promise<void> => {
    await waitFor(`tester ${pid} up`, () => existsSync(join(dir, 'ipvsfull.cfg')));
    let stats = '';
    for (let i = 0; i < 150 && !stats.includes(`tester_pid     : ${pid}\n`); i++) stats = await controlCommand({ port }, 'stats').catch(() => sleep(100).then(() => ''));
    assert.match(stats, new RegExp(`tester_pid     : ${pid}\\n`));
  };
  const startWatchdog = async (extraCfg = ''): Promise<{ watchdog: number; child: number }> => {
    writeFileSync(cfg, readFileSync(cfg, 'utf8') + extraCfg);
    const r = spawnSync(process.execPath, [cli, '-c', cfg, '-d', xml], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, `the launching process returns at once: ${r.stderr}`);
    await waitFor('the watchdog', () => byRole('watchdog').length === 1);
    const watchdog = byRole('watchdog')[0]!;
    watchdogs.add(watchdog);
    const child = await nextChild(undefined, 'the first tester');
    return { watchdog, child };
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sd-watchdog-'));
    cfg = join(dir, 'surealived.cfg');
    xml = join(dir, 'services.xml');
    logFile = join(dir, 'surealived.log');
    port = await freePort();
    writeFileSync(
      cfg,
      [
        `listen_port ${port}`,
        'startup_delay_ms 100',
        'use_log true',
        `log ${logFile}`,
        ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${dir}/`)),
        '',
      ].join('\n'),
    );
    writeFileSync(xml, services(3));
  });

  afterEach(async () => {
    // The watchdog runs detached, as a session (and group) leader; its tester is in its group.
    for (const w of watchdogs) {
      try {
        process.kill(-w, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    watchdogs.clear();
    for (const p of [...byRole('watchdog'), ...byRole('child')]) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor('no process left', () => byRole('watchdog').length === 0 && byRole('child').length === 0, 5000);
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('restarts a killed tester after >= 1 s, then >= 2 s; SIGTERM restarts it with the backoff reset; SIGINT ends everything', async () => {
    const { watchdog, child: c1 } = await startWatchdog();

    let t = performance.now();
    process.kill(c1, 'SIGKILL');
    const c2 = await nextChild(c1, 'the second tester');
    const first = performance.now() - t;

    t = performance.now();
    process.kill(c2, 'SIGKILL');
    const c3 = await nextChild(c2, 'the third tester');
    const second = performance.now() - t;

    // Lower bounds (the new tester is seen after it started); the upper bounds only say "it came back".
    assert.ok(first >= 950, `first restart after ${first.toFixed(0)} ms, expected >= 1 s`);
    assert.ok(second >= 1900, `second restart after ${second.toFixed(0)} ms, expected >= 2 s`);
    assert.ok(second > first, `the backoff grows: ${first.toFixed(0)} ms then ${second.toFixed(0)} ms`);
    assert.match(log(), /watchdog: surealived exited \(SIGKILL\), restarting in 1s\n(.*\n)*.*watchdog: surealived exited \(SIGKILL\), restarting in 2s\n/);

    // SIGTERM: the tester is stopped (gracefully: exit 0) and started again after 1 s.
    await ready(c3);
    t = performance.now();
    process.kill(watchdog, 'SIGTERM');
    const c4 = await nextChild(c3, 'a tester after SIGTERM');
    const forced = performance.now() - t;
    assert.ok(forced >= 950, `restart after SIGTERM after ${forced.toFixed(0)} ms, expected >= 1 s`);
    assert.match(log(), /watchdog: Received SIGTERM - forcing restart of surealived\n/);
    assert.match(log(), /watchdog: surealived exited \(code 0\), restarting in 1s\n/);

    // The backoff was reset: a crash now waits 1 s again, not the 4 s the crash loop had reached.
    t = performance.now();
    process.kill(c4, 'SIGKILL');
    await nextChild(c4, 'a tester after a crash following the SIGTERM');
    const afterReset = performance.now() - t;
    assert.ok(afterReset >= 950, `restart after ${afterReset.toFixed(0)} ms, expected >= 1 s`);
    assert.ok(afterReset < 3800, `restart after ${afterReset.toFixed(0)} ms: the backoff was not reset (4 s)`);
    const restarts = log().match(/watchdog: surealived exited \(.*\), restarting in \d+s\n/g) ?? [];
    assert.deepEqual(
      restarts.map((l) => /\((.*)\), restarting in (\d+)s/.exec(l)!.slice(1).join(' ')),
      ['SIGKILL 1', 'SIGKILL 2', 'code 0 1', 'SIGKILL 1'],
    );
    assert.deepEqual(byRole('watchdog'), [watchdog], 'one watchdog throughout');

    process.kill(watchdog, 'SIGINT');
    await waitFor('everything stopped', () => byRole('watchdog').length === 0 && byRole('child').length === 0);
    assert.match(log(), /watchdog: Received SIGINT - shutting down!\n/);
  });

  it('forwards SIGHUP to the tester: it reloads its XML in place (same process, new weight in the hand-off)', async () => {
    const { watchdog, child } = await startWatchdog();
    const full = (): string => (existsSync(join(dir, 'ipvsfull.cfg')) ? readFileSync(join(dir, 'ipvsfull.cfg'), 'utf8') : '');
    // A SIGHUP must not reach the tester before it has its handlers (its start-up).
    await ready(child);
    assert.match(full(), /rweight=3\n/);
    writeFileSync(xml, services(9));
    process.kill(watchdog, 'SIGHUP');
    await waitFor('the new weight in the hand-off', () => /real rname=r raddr=127\.0\.0\.73 rport=80 rweight=9\n/.test(full()));
    assert.match(log(), /watchdog: Received SIGHUP - reloading surealived configuration\n/);
    assert.match(log(), /surealived: received signal SIGHUP - reloading configuration\n/);
    await waitFor('the reload logged', () => /surealived: configuration reloaded \(1 virtuals\)\n/.test(log()));
    assert.deepEqual(byRole('child'), [child], 'the same tester, reloaded in place');
    assert.doesNotMatch(log(), /watchdog: surealived exited/);
  });

  it('memlimit: a tester over its limit is stopped and started again', async () => {
    // 1000 kB: any Node process is far over it at once.
    const { watchdog, child } = await startWatchdog('memlimit 1000\n');
    await waitFor('the memory limit enforced', () => /watchdog: Child exceeded memory limit \(\d+ kB > 1000 kB\) - exterminating!\n/.test(log()));
    const next = await nextChild(child, 'a new tester');
    assert.notEqual(next, child);
    assert.match(log(), /watchdog: surealived exited \((code 0|SIGTERM)\), restarting in 1s\n/);
    // Enforced again on the new tester, and the restarts back off.
    await waitFor('the backoff', () => /watchdog: surealived exited \(.*\), restarting in 2s\n/.test(log()));
    assert.deepEqual(byRole('watchdog'), [watchdog]);
  });
});
