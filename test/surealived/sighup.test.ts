// SIGHUP to the real daemon (README "surealived command line": re-reads the XML and applies only what
// changed; unchanged reals keep their state and their probe schedule). What a surviving real keeps is
// surealived/engine/carry-over.ts: online state, operator overrides, statistics and the tested flag
// always; its hysteresis counters only while its probe is unchanged; its probe schedule (phase) is the
// engine's (Engine.load): kept for an unchanged probe, a new probe starts at once.

import { strict as assert } from 'node:assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { controlCommand } from '../../common/control-client.js';
import { stopAllSurealived, SurealivedCli } from '../helpers/surealived-cli.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const P1 = 18751;
const P2 = 18752;

/** A TCP server on a loopback address that accepts and closes, recording when each probe arrived. */
class ProbeServer {
  readonly arrivals: number[] = [];
  private server: Server | null = null;
  constructor(
    readonly host: string,
    readonly port: number,
  ) {}
  async start(): Promise<void> {
    const s = createServer((c) => {
      this.arrivals.push(performance.now());
      c.on('error', () => undefined).end();
    });
    this.server = s;
    await new Promise<void>((resolve) => s.listen(this.port, this.host, () => resolve()));
  }
  async stop(): Promise<void> {
    const s = this.server;
    this.server = null;
    if (s) await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}

/** The value of a metric sample of real `real` (labels matched loosely), from the control port. */
async function realMetric(port: number, name: string, real: string, extra = ''): Promise<number> {
  const text = await controlCommand({ port }, 'metrics');
  const re = new RegExp(`^${name}\\{[^}]*real="${real}"[^}]*${extra}\\} (\\S+)$`, 'm');
  const m = re.exec(text);
  if (!m) throw new Error(`no ${name} for ${real}${extra} in:\n${text}`);
  return Number(m[1]);
}

const failedChecks = (port: number, real: string): Promise<number> => realMetric(port, 'surealived_real_checks_total', real, ',result="failed"');
const okChecks = (port: number, real: string): Promise<number> => realMetric(port, 'surealived_real_checks_total', real, ',result="ok"');

describe('SIGHUP reload of the real daemon: what is kept, what is reset', function () {
  this.timeout(60000);
  let dir: string;
  const servers: ProbeServer[] = [];
  const server = async (host: string, port = P1): Promise<ProbeServer> => {
    const s = new ProbeServer(host, port);
    await s.start();
    servers.push(s);
    return s;
  };
  const until = async (what: string, fn: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> => {
    const end = performance.now() + ms;
    while (!(await fn())) {
      if (performance.now() > end) assert.fail(`timed out waiting for: ${what}`);
      await sleep(20);
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sd-sighup-'));
  });
  afterEach(async () => {
    await stopAllSurealived();
    for (const s of servers.splice(0)) await s.stop();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  describe('an OFFLINE real', () => {
    // retries2fail 1: a real whose state were not carried over would start online again (weight 20 in
    // the full hand-off written at the reload) and only go offline again at its next probe.
    const xml = (testport: number, extraReal = ''): string =>
      `<surealived><virtual name="web" addr="192.0.2.30" port="80" proto="tcp" sched="wrr" rt="dr">` +
      `<tester proto="tcp" testport="${testport}" loopdelay="0.3" timeout="0.5" retries2ok="1" retries2fail="1"/>` +
      `<real name="a" addr="127.0.15.1" port="80" weight="10"/><real name="b" addr="127.0.15.2" port="80" weight="20"/>${extraReal}` +
      `</virtual></surealived>`;
    const B_CHANGED = /Real: \[web:b - 192\.0\.2\.30:80:tcp 127\.0\.15\.2:80\] changed its test state/;

    it('stays OFFLINE across a reload (unchanged probe, then a changed testport); its statistics are kept', async () => {
      await server('127.0.15.1', P1);
      await server('127.0.15.1', P2); // a answers on both ports; nobody listens at b's
      await server('127.0.15.3', P1); // c, added by the first reload, answers
      const sd = await SurealivedCli.start({ dir, xml: xml(P1) });
      const port = sd.controlPort;
      await sd.waitLog(/Real: \[web:b - .*\] changed its test state to OFFLINE/);
      await until('b failed a few probes', async () => (await failedChecks(port, 'b')) >= 3);
      const failedBefore = await failedChecks(port, 'b');
      const okABefore = await okChecks(port, 'a');
      const counter = (stats: string, name: string): number => Number(new RegExp(`^${name} +: (\\d+)$`, 'm').exec(stats)![1]);
      const statsBefore = await controlCommand({ port }, 'stats');
      assert.equal(counter(statsBefore, 't_offline_set'), 1);

      // 1. A reload that adds a real: a and b are unchanged.
      let from = await sd.reload(xml(P1, '<real name="c" addr="127.0.15.3" port="80" weight="7"/>'));
      // The full hand-off written by the reload, before any new probe: b at weight 0, the new real in.
      const full = sd.file('ipvsfull.cfg');
      assert.match(full, /real rname=b raddr=127\.0\.15\.2 rport=80 rweight=0\n/);
      assert.match(full, /real rname=a raddr=127\.0\.15\.1 rport=80 rweight=10\n/);
      assert.match(full, /real rname=c raddr=127\.0\.15\.3 rport=80 rweight=7\n/);
      assert.equal(await realMetric(port, 'surealived_real_online', 'b'), 0);
      assert.ok((await failedChecks(port, 'b')) >= failedBefore, 'b failed-check count not reset');
      assert.ok((await okChecks(port, 'a')) >= okABefore, 'a ok-check count not reset');
      await until('b probed again after the reload', async () => (await failedChecks(port, 'b')) >= failedBefore + 2);
      assert.doesNotMatch(sd.stderr.slice(from), B_CHANGED, 'no new transition of b');
      assert.match(sd.file('offline.dump'), /^192\.0\.2\.30:80:0:0 - 127\.0\.15\.2:80\n/m);
      // The control port's counters go on from where they were: b failing, no second transition.
      const statsAfter = await controlCommand({ port }, 'stats');
      assert.equal(counter(statsAfter, 'failed'), 1, 'one real failing its tests (b)');
      assert.equal(counter(statsAfter, 'offline_size'), 1);
      assert.equal(counter(statsAfter, 't_offline_set'), 1, 'b did not go offline a second time');
      assert.ok(counter(statsAfter, 't_failed') > counter(statsBefore, 't_failed'));
      assert.ok(counter(statsAfter, 't_success') > counter(statsBefore, 't_success'));

      // 2. A reload that changes the tester (testport): still offline (online state is always carried),
      // statistics kept.
      const failedBefore2 = await failedChecks(port, 'b');
      from = await sd.reload(xml(P2));
      assert.match(sd.file('ipvsfull.cfg'), /real rname=b raddr=127\.0\.15\.2 rport=80 rweight=0\n/);
      assert.equal(await realMetric(port, 'surealived_real_online', 'b'), 0);
      assert.ok((await failedChecks(port, 'b')) >= failedBefore2, 'b failed-check count not reset by a tester change');
      await until('b probed on the new port', async () => (await failedChecks(port, 'b')) >= failedBefore2 + 2);
      assert.doesNotMatch(sd.stderr.slice(from), B_CHANGED, 'no new transition of b');
      assert.match(sd.stderr.slice(from), /configuration reloaded/);
      const connstats = await controlCommand({ port }, 'connstats');
      const total = /r:0\.1 real-stats .*rname=b .*total=(\d+) /.exec(connstats);
      assert.ok(total && Number(total[1]) >= failedBefore2 + 2, `connstats total of b kept: ${total?.[1]}`);
    });
  });

  describe('the retries counters', () => {
    // retries2fail 3, one probe a second: the failures are counted exactly from the metrics between probes.
    const xml = (testport: number, weight: number): string =>
      `<surealived><virtual name="web" addr="192.0.2.31" port="80" proto="tcp" sched="wrr" rt="dr">` +
      `<tester proto="tcp" testport="${testport}" loopdelay="1" timeout="0.5" retries2ok="1" retries2fail="3"/>` +
      `<real name="a" addr="127.0.15.11" port="80" weight="${weight}"/></virtual></surealived>`;
    const A_OFFLINE = /Real: \[web:a - .*\] changed its test state to OFFLINE/;
    const A_ONLINE = /Real: \[web:a - .*\] changed its test state to ONLINE/;

    /** Let `a` fail twice (2 of its 3), reload with `next`; the failures it then needs to go offline. */
    const failuresAfterReload = async (sd: SurealivedCli, srv: ProbeServer, next: string): Promise<number> => {
      const port = sd.controlPort;
      const base = await failedChecks(port, 'a');
      await srv.stop();
      await until('two failures', async () => (await failedChecks(port, 'a')) >= base + 2, 10_000);
      // A probe a second: the reload is sent well before the old schedule's third probe.
      const atSignal = await failedChecks(port, 'a');
      assert.equal(atSignal, base + 2, 'SIGHUP between the second and the third failure (machine too slow?)');
      const from = await sd.reload(next);
      await sd.waitLog(A_OFFLINE, 15_000, from);
      return (await failedChecks(port, 'a')) - atSignal;
    };

    it('an unchanged probe keeps its failure count: one more failure takes the real offline', async () => {
      const srv = await server('127.0.15.11', P1);
      const sd = await SurealivedCli.start({ dir, xml: xml(P1, 10) });
      await until('a probed', async () => (await okChecks(sd.controlPort, 'a')) >= 1);
      // The weight is no part of the probe.
      assert.equal(await failuresAfterReload(sd, srv, xml(P1, 11)), 1);
    });

    it('a changed probe (testport) starts counting again: retries2fail failures of the new probe; online state and statistics are kept', async () => {
      const srv = await server('127.0.15.11', P1);
      const sd = await SurealivedCli.start({ dir, xml: xml(P1, 10) });
      await until('a probed', async () => (await okChecks(sd.controlPort, 'a')) >= 1);
      const ok = await okChecks(sd.controlPort, 'a');
      // Nobody listens at P2 either.
      assert.equal(await failuresAfterReload(sd, srv, xml(P2, 10)), 3);
      assert.ok((await okChecks(sd.controlPort, 'a')) >= ok, 'ok checks before the reload still counted');
      assert.equal(sd.count(A_OFFLINE), 1, 'online until the third failure of the new probe');
      // And the other way: an offline real whose probe changes keeps its offline state until the new probe succeeds.
      await server('127.0.15.11', P1);
      const from = await sd.reload(xml(P1, 10));
      assert.match(sd.file('ipvsfull.cfg'), /real rname=a raddr=127\.0\.15\.11 rport=80 rweight=0\n/);
      await sd.waitLog(A_ONLINE, 10_000, from);
    });
  });

  describe('the probe schedule', () => {
    // One probe every L; the reload is sent half-way between two probes, so a probe restarted by the
    // reload would come about L/2 off the old grid. Margins: L/4 either way.
    const L = 1200;
    const MARGIN = L / 4;
    const xml = (testport: number, weight: number): string =>
      `<surealived><virtual name="web" addr="192.0.2.32" port="80" proto="tcp" sched="wrr" rt="dr">` +
      `<tester proto="tcp" testport="${testport}" loopdelay="${L / 1000}" timeout="0.5" retries2ok="1" retries2fail="1"/>` +
      `<real name="a" addr="127.0.15.21" port="80" weight="${weight}"/></virtual></surealived>`;
    /** Distance of `t` from the grid `ref + k L`. */
    const offGrid = (t: number, ref: number): number => {
      const r = (((t - ref) % L) + L) % L;
      return Math.min(r, L - r);
    };
    /** Wait for the next arrival after the latest one, then until half a period after it. */
    const midPeriod = async (s: ProbeServer): Promise<number> => {
      const n = s.arrivals.length;
      await until('a probe', () => s.arrivals.length > n, 2 * L + 5000);
      const last = s.arrivals.at(-1)!;
      await sleep(Math.max(0, last + L / 2 - performance.now()));
      return last;
    };

    it('an unchanged probe keeps its phase; a changed one (testport) starts at once on a new phase', async () => {
      const s1 = await server('127.0.15.21', P1);
      const s2 = await server('127.0.15.21', P2);
      const sd = await SurealivedCli.start({ dir, xml: xml(P1, 10) });
      await until('three probes', () => s1.arrivals.length >= 3, 4 * L + 5000);
      for (let i = 1; i < s1.arrivals.length; i++) {
        const gap = s1.arrivals[i]! - s1.arrivals[i - 1]!;
        assert.ok(Math.abs(gap - L) <= MARGIN, `steady schedule before the reload: gap ${gap.toFixed(0)} ms, period ${L} ms`);
      }

      // 1. Weight change: the probe is the same.
      const ref = await midPeriod(s1);
      const sigAt = performance.now();
      const n = s1.arrivals.length;
      await sd.reload(xml(P1, 11));
      await until('three probes after the reload', () => s1.arrivals.length >= n + 3, 3 * L + 5000);
      const after = s1.arrivals.slice(n);
      for (const t of after) assert.ok(offGrid(t, ref) <= MARGIN, `probe ${(t - ref).toFixed(0)} ms after the grid point before the reload: off the old phase by ${offGrid(t, ref).toFixed(0)} ms`);
      assert.ok(after[0]! - sigAt >= L / 2 - MARGIN, `the first probe after the reload came ${(after[0]! - sigAt).toFixed(0)} ms after SIGHUP, on the old grid (${L / 2} ms), not at once`);
      for (let i = 1; i < after.length; i++) assert.ok(Math.abs(after[i]! - after[i - 1]! - L) <= MARGIN, 'one probe per period');

      // 2. Testport change: a new probe, started at once by the reload, then every L from there.
      const ref2 = await midPeriod(s1);
      const sig2 = performance.now();
      await sd.reload(xml(P2, 11));
      await until('three probes on the new port', () => s2.arrivals.length >= 3, 3 * L + 5000);
      const first = s2.arrivals[0]!;
      assert.ok(first >= sig2, 'not before the reload');
      assert.ok(first - sig2 < L / 2 - MARGIN, `the new probe started ${(first - sig2).toFixed(0)} ms after SIGHUP: at once, not on the old grid (${L / 2} ms)`);
      assert.ok(offGrid(first, ref2) >= MARGIN, 'a new phase');
      for (const t of s2.arrivals.slice(1)) assert.ok(offGrid(t, first) <= MARGIN, `then every period from the new start (off by ${offGrid(t, first).toFixed(0)} ms)`);
      assert.ok(s1.arrivals.every((t) => t < sig2 + MARGIN), 'the old probe is gone');
    });
  });
});
