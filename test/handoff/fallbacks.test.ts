// The fallbacks of a virtual as pure logic (engine/fallback.ts) and how they reach the hand-off, the
// control port and the metrics: panic (Envoy's healthy panic threshold) and the sorry server
// (keepalived's sorry_server, ldirectord's fallback). The daemon end to end: test/surealived/sorry.test.ts
// and panic.test.ts.

import { strict as assert } from 'node:assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SorryConfig, VirtualConfig } from '../../surealived/config/model.js';
import { buildState, newTestCounters, type RealState, type VirtualState } from '../../surealived/engine/state.js';
import {
  applyFallbacks,
  decideFallbacks,
  panicActive,
  panicLogLine,
  planVirtual,
  retiredSorries,
  sorryEntry,
  sorryLogLine,
  type FallbackEffects,
} from '../../surealived/engine/fallback.js';
import { carryOverState } from '../../surealived/engine/carry-over.js';
import { formatDiffLines, formatFullFile } from '../../surealived/handoff/format.js';
import { HandoffWriter } from '../../surealived/handoff/writer.js';
import { sorryNotifierArgv } from '../../surealived/notify/argv.js';
import { runSorryNotifier } from '../../surealived/notify/run.js';
import { executeCommand } from '../../surealived/control/commands.js';
import { parseCommand } from '../../surealived/control/protocol.js';
import { formatMetrics } from '../../surealived/control/metrics.js';
import type { ControlTarget } from '../../surealived/control/target.js';
import { applyDiffLine, parseDiffLine, parseFullFile, toTable, type HandoffConfig } from '../../ipvssync/handoff.js';
import { createLogger, memorySink } from '../../common/log.js';
import { makeVirtual, type VirtualInit } from '../helpers/model.js';

const SORRY: SorryConfig = { name: 'sorry', addr: '10.0.9.9', family: 4, port: 8080, weight: 2, uthresh: 0, lthresh: 0, rt: 'dr', inhibit: false, source: { file: 'test.xml', line: 9 } };
const FOUR = [
  { name: 'a', addr: '10.0.0.1', weight: 10 },
  { name: 'b', addr: '10.0.0.2', weight: 20 },
  { name: 'c', addr: '10.0.0.3', weight: 30 },
  { name: 'd', addr: '10.0.0.4', weight: 40 },
];

/** A virtual config with the extensions set. */
function vconf(init: Partial<VirtualInit> & { panic?: number; sorry?: SorryConfig | null } = {}): VirtualConfig {
  const { panic, sorry, ...rest } = init;
  const base = makeVirtual({ name: 'web', addr: '192.0.2.10', reals: FOUR, ...rest });
  return { ...base, ...(panic ? { panic } : {}), ...(sorry === null ? {} : { sorry: sorry ?? SORRY }) };
}

function state(init: Parameters<typeof vconf>[0] = {}): VirtualState {
  return buildState([vconf(init)])[0]!;
}

/** Fail (online=false) the reals named. */
function fail(v: VirtualState, ...names: string[]): void {
  for (const r of v.reals) if (names.includes(r.config.name)) r.online = false;
}

const real = (v: VirtualState, name: string): RealState => v.reals.find((r) => r.config.name === name)!;

/** Records what applyFallbacks does. */
function recorder(): FallbackEffects & { lines: string[]; queued: string[]; notified: string[] } {
  const sink = memorySink();
  const queued: string[] = [];
  const notified: string[] = [];
  return {
    log: createLogger('dbdet', sink.sink),
    lines: sink.lines,
    queued,
    notified,
    queue: (d) => queued.push('kind' in d ? `sorry:${d.config.name}` : d.config.name),
    notifySorry: (s, dir) => notified.push(`${s.config.name}:${dir}`),
  };
}

describe('fallbacks: panic threshold and sorry server', () => {
  describe('panic decision (Envoy healthy_panic_threshold)', () => {
    it('panic iff passing / eligible < threshold %, strictly; off at 0 and without eligible reals', () => {
      assert.equal(panicActive(50, 4, 2), false, '50 % is not fewer than 50 %');
      assert.equal(panicActive(50, 4, 1), true);
      assert.equal(panicActive(50, 4, 0), true);
      assert.equal(panicActive(100, 4, 3), true, '100: any failure');
      assert.equal(panicActive(100, 4, 4), false);
      assert.equal(panicActive(0, 4, 0), false, 'off');
      assert.equal(panicActive(50, 0, 0), false, 'nothing eligible');
      assert.equal(panicActive(33.4, 3, 1), true, 'decimal threshold');
      assert.equal(panicActive(33.3, 3, 1), false);
    });

    it('counts only the reals the operator left ONLINE (OFFLINE and DOWN are neither eligible nor passing)', () => {
      const v = state({ panic: 50 });
      fail(v, 'a', 'b');
      real(v, 'c').rstate = 'OFFLINE';
      const d = decideFallbacks(v);
      assert.deepEqual([d.eligible, d.passing, d.panic], [3, 1, true]);
      real(v, 'a').rstate = 'DOWN';
      assert.deepEqual(((x) => [x.eligible, x.passing, x.panic])(decideFallbacks(v)), [2, 1, false], '1 of 2 = 50 %');
    });

    it('in panic every real the operator left in is written at its weight, overrides applied; DOWN stays out, OFFLINE at 0', () => {
      const v = state({ panic: 50, tester: { removeOnFail: true } });
      fail(v, 'a', 'b', 'c');
      real(v, 'b').override = { weight: 50, percent: true };
      real(v, 'c').rstate = 'OFFLINE';
      real(v, 'd').rstate = 'DOWN';
      // Eligible a, b: both failing -> panic.
      const p = planVirtual(v);
      assert.equal(p.panic, true);
      assert.deepEqual(p.reals, [
        { present: true, weight: 10 },
        { present: true, weight: 10 }, // 50 % of 20
        { present: true, weight: 0 }, // operator OFFLINE
        { present: false, weight: 0 }, // operator DOWN
      ]);
      assert.deepEqual([p.serving, p.sorry], [2, false], 'panic keeps reals in, so the sorry server stays out');
    });

    it('without panic the verdicts apply as spec 9.4 says (weight 0, or removed with remove_on_fail)', () => {
      const v = state({ panic: 50, tester: { removeOnFail: true } });
      fail(v, 'a');
      const p = planVirtual(v);
      assert.equal(p.panic, false);
      assert.deepEqual(p.reals[0], { present: false, weight: 0 });
      const keep = state({ panic: 50 });
      fail(keep, 'a');
      assert.deepEqual(planVirtual(keep).reals[0], { present: true, weight: 0 });
    });
  });

  describe('sorry decision (keepalived sorry_server, ldirectord fallback)', () => {
    it('in when no real has a non-zero IPVS weight, out as soon as one has', () => {
      const v = state({});
      fail(v, 'a', 'b', 'c');
      assert.deepEqual(((p) => [p.serving, p.sorry, p.sorryEntry])(planVirtual(v)), [1, false, { present: false, weight: 0 }]);
      fail(v, 'd');
      assert.deepEqual(((p) => [p.serving, p.sorry, p.sorryEntry])(planVirtual(v)), [0, true, { present: true, weight: 2 }]);
    });

    it('remove_on_fail changes nothing for it: a failed real removed or at weight 0 serves no one', () => {
      for (const removeOnFail of [false, true]) {
        const v = state({ tester: { removeOnFail } });
        fail(v, 'a', 'b', 'c', 'd');
        assert.equal(decideFallbacks(v).sorry, true, `remove_on_fail ${removeOnFail}`);
      }
    });

    it('every real OFFLINE or DOWN by the operator: no real serves, sorry in (healthy or not)', () => {
      const v = state({ panic: 50 });
      for (const r of v.reals) r.rstate = r.index % 2 === 0 ? 'OFFLINE' : 'DOWN';
      const d = decideFallbacks(v);
      assert.deepEqual([d.eligible, d.panic, d.serving, d.sorry], [0, false, 0, true]);
    });

    it('panic and sorry: panic first; a panic in which nothing has a weight (all ONLINE reals weighted 0) still brings the sorry in', () => {
      const v = state({ panic: 50 });
      fail(v, 'a', 'b', 'c', 'd');
      assert.deepEqual(((d) => [d.panic, d.serving, d.sorry])(decideFallbacks(v)), [true, 4, false]);
      const zero = buildState([vconf({ panic: 50, reals: [{ name: 'z', addr: '10.0.0.5', weight: 0 }] })])[0]!;
      fail(zero, 'z');
      assert.deepEqual(((d) => [d.panic, d.serving, d.sorry])(decideFallbacks(zero)), [true, 0, true]);
    });

    it('a virtual without reals has its sorry server in; without a <sorry> nothing is wanted', () => {
      assert.equal(decideFallbacks(state({ reals: [] })).sorry, true);
      const none = state({ sorry: null });
      fail(none, 'a', 'b', 'c', 'd');
      assert.deepEqual(((p) => [p.sorry, p.sorryEntry])(planVirtual(none)), [false, null]);
    });

    it('out of service: deleted, or with inhibit (sorry_server_inhibit) kept at weight 0', () => {
      assert.deepEqual(sorryEntry(SORRY, false), { present: false, weight: 0 });
      assert.deepEqual(sorryEntry(SORRY, true), { present: true, weight: 2 });
      assert.deepEqual(sorryEntry({ ...SORRY, inhibit: true }, false), { present: true, weight: 0 });
    });
  });

  describe('hand-off lines', () => {
    const WHEN = new Date(2024, 4, 1, 12, 0, 5);
    const DIFF = '/var/lib/surealived/diffs/diff_sync.1714564805';
    const V = 'vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr';

    it('the sorry server in service is one more real line after the reals, then the blank line', () => {
      const v = state({ sorry: { ...SORRY, rt: 'masq', uthresh: 9 } });
      fail(v, 'a', 'b', 'c', 'd');
      const fx = recorder();
      applyFallbacks(v, fx, false);
      assert.equal(
        formatFullFile([v], WHEN, DIFF),
        `meta version=1.0 mdate=2024-05-01 mtime=12:00:05\n\nDIFF file=${DIFF}\n\n` +
          'virtual vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vrt=dr vsched=wrr\n' +
          'real rname=a raddr=10.0.0.1 rport=80 rweight=0\n' +
          'real rname=b raddr=10.0.0.2 rport=80 rweight=0\n' +
          'real rname=c raddr=10.0.0.3 rport=80 rweight=0\n' +
          'real rname=d raddr=10.0.0.4 rport=80 rweight=0\n' +
          'real rname=sorry raddr=10.0.9.9 rport=8080 rweight=2 ru_thresh=9 rrt=masq\n' +
          '\n',
      );
      assert.equal(formatDiffLines(v.sorry!), `cmd=addreal ${V} rname=sorry raddr=10.0.9.9 rport=8080 rweight=2 ru_thresh=9 rrt=masq\ncmd=chgreal ${V} rname=sorry raddr=10.0.9.9 rport=8080 rweight=2 ru_thresh=9 rrt=masq\n`);
    });

    it('out of service it is absent from the full file and a delreal in the diff; with inhibit a weight-0 line', () => {
      const v = state({});
      assert.doesNotMatch(formatFullFile([v], WHEN, DIFF), /sorry/);
      assert.equal(formatDiffLines(v.sorry!), `cmd=delreal ${V} rname=sorry raddr=10.0.9.9 rport=8080 rweight=0\n`);
      const inh = state({ sorry: { ...SORRY, inhibit: true } });
      assert.match(formatFullFile([inh], WHEN, DIFF), /real rname=d raddr=10\.0\.0\.4 rport=80 rweight=40\nreal rname=sorry raddr=10\.0\.9\.9 rport=8080 rweight=0\n\n$/);
      assert.equal(formatDiffLines(inh.sorry!), `cmd=addreal ${V} rname=sorry raddr=10.0.9.9 rport=8080 rweight=0\ncmd=chgreal ${V} rname=sorry raddr=10.0.9.9 rport=8080 rweight=0\n`);
    });

    it('a virtual without reals gets its sorry line and a blank line; configs without fallbacks are written as before', () => {
      const v = state({ reals: [] });
      applyFallbacks(v, recorder(), false);
      assert.match(formatFullFile([v], WHEN, DIFF), /virtual vname=web .*\nreal rname=sorry raddr=10\.0\.9\.9 rport=8080 rweight=2\n\n$/);
      const plain = buildState([makeVirtual({ name: 'fw', proto: 'fwmark', fwmark: 7, reals: [] })]);
      assert.match(formatFullFile(plain, WHEN, DIFF), /vfwmark=7\n$/, 'no blank line after a virtual without reals, as the original');
    });

    it('in panic a failed real is written at its weight (full and diff), even with remove_on_fail', () => {
      const v = state({ panic: 50, tester: { removeOnFail: true } });
      fail(v, 'a', 'b', 'c');
      applyFallbacks(v, recorder(), false);
      assert.equal(v.panic, true);
      const full = formatFullFile([v], WHEN, DIFF);
      for (const [n, w] of [['a', 10], ['b', 20], ['c', 30], ['d', 40]] as const) assert.match(full, new RegExp(`real rname=${n} raddr=\\S+ rport=80 rweight=${w}\\n`));
      assert.doesNotMatch(full, /rname=sorry/);
      assert.equal(formatDiffLines(real(v, 'a')), `cmd=addreal ${V} rname=a raddr=10.0.0.1 rport=80 rweight=10\ncmd=chgreal ${V} rname=a raddr=10.0.0.1 rport=80 rweight=10\n`);
      fail(v, 'd');
      real(v, 'a').online = true;
      real(v, 'b').online = true;
      applyFallbacks(v, recorder(), false);
      assert.equal(v.panic, false);
      assert.equal(formatDiffLines(real(v, 'c')), `cmd=delreal ${V} rname=c raddr=10.0.0.3 rport=80 rweight=0\n`, 'verdicts apply again');
    });

    it('IPv6 sorry servers use the v6 form, as IPv6 reals do', () => {
      const v = buildState([{ ...makeVirtual({ name: 'w6', addr: '2001:db8::1', reals: [] }), sorry: { ...SORRY, addr: '2001:db8::99', family: 6 } }])[0]!;
      applyFallbacks(v, recorder(), false);
      assert.match(formatFullFile([v], WHEN, DIFF), /\nv6virtual vname=w6 .*\nv6real rname=sorry raddr=2001:db8::99 rport=8080 rweight=2\n/);
      assert.match(formatDiffLines(v.sorry!), /^cmd=v6addreal vname=w6 .* rname=sorry raddr=2001:db8::99 rport=8080 rweight=2\ncmd=v6chgreal /);
    });
  });

  describe('ipvssync reads what is written (its own parser, nothing new)', () => {
    const DIR = '/var/lib/surealived/diffs';
    const DIFF = `${DIR}/diff_sync.1714564805`;
    const table = (c: HandoffConfig): Array<[string, number]> => toTable(c)[0]!.dests.map((d) => [`${d.addr}:${d.port}:${d.forward}`, d.weight]);
    const applyAll = (c: HandoffConfig, text: string): HandoffConfig => {
      for (const line of text.split('\n').filter((l) => l !== '')) {
        const p = parseDiffLine(line, DIR);
        assert.ok(p.ok && p.line.kind === 'real', line);
        if (p.ok && p.line.kind === 'real') {
          const r = applyDiffLine(c, p.line, 'diff');
          assert.equal(r.warning, undefined);
          c = r.config;
        }
      }
      return c;
    };

    it('the full file with the sorry server in, then the diff lines taking it out and putting it back', () => {
      const v = state({ sorry: { ...SORRY, rt: 'masq' } });
      fail(v, 'a', 'b', 'c', 'd');
      const fx = recorder();
      applyFallbacks(v, fx, true);
      const parsed = parseFullFile(formatFullFile([v], new Date(2024, 4, 1), DIFF), '/var/lib/surealived/ipvsfull.cfg', DIR);
      assert.ok(parsed.ok, JSON.stringify(parsed));
      let c = parsed.ok ? parsed.config : (undefined as never);
      assert.deepEqual(table(c), [
        ['10.0.0.1:80:route', 0],
        ['10.0.0.2:80:route', 0],
        ['10.0.0.3:80:route', 0],
        ['10.0.0.4:80:route', 0],
        ['10.0.9.9:8080:masq', 2],
      ]);
      // Real b answers again: its lines, then the sorry server's delreal, as the daemon queues them.
      real(v, 'b').online = true;
      fx.queued.length = 0;
      applyFallbacks(v, fx, true);
      assert.deepEqual(fx.queued, ['sorry:sorry']);
      c = applyAll(c, formatDiffLines(real(v, 'b')) + formatDiffLines(v.sorry!));
      assert.deepEqual(table(c), [
        ['10.0.0.1:80:route', 0],
        ['10.0.0.2:80:route', 20],
        ['10.0.0.3:80:route', 0],
        ['10.0.0.4:80:route', 0],
      ]);
      fail(v, 'b');
      applyFallbacks(v, fx, true);
      c = applyAll(c, formatDiffLines(real(v, 'b')) + formatDiffLines(v.sorry!));
      assert.deepEqual(table(c).at(-1), ['10.0.9.9:8080:masq', 2]);
    });

    it('entering panic rewrites every real of the virtual; ipvssync ends with all of them at their weight', () => {
      const v = state({ panic: 50 });
      const parsed = parseFullFile(formatFullFile([v], new Date(2024, 4, 1), DIFF), '/f', DIR);
      let c = parsed.ok ? parsed.config : assert.fail('full file refused');
      const fx = recorder();
      for (const n of ['a', 'b', 'c']) {
        fail(v, n);
        fx.queued.push(n); // the daemon queues the real whose verdict changed
        applyFallbacks(v, fx, true);
      }
      assert.deepEqual(fx.queued, ['a', 'b', 'c', 'a', 'b', 'c', 'd'], 'c pushes the share below 50 %: every real is queued');
      for (const n of new Set(fx.queued)) c = applyAll(c, formatDiffLines(real(v, n)));
      assert.deepEqual(table(c).map(([, w]) => w), [10, 20, 30, 40]);
    });
  });

  describe('applying a plan: logs, notifications, queued lines', () => {
    it('logs entering panic at error level and leaving at warn level, with counts, once each', () => {
      const v = state({ panic: 50 });
      const fx = recorder();
      fail(v, 'a', 'b');
      applyFallbacks(v, fx, true);
      assert.deepEqual(fx.lines, []);
      fail(v, 'c');
      applyFallbacks(v, fx, true);
      applyFallbacks(v, fx, true);
      assert.equal(fx.lines.length, 1);
      assert.match(fx.lines[0]!, /error : PANIC: virtual \[web - 192\.0\.2\.10:80:tcp\]: entering panic mode: 1 of 4 reals pass their tests \(25% < panic 50%\); test verdicts disregarded, every real kept in IPVS at its weight\n$/);
      real(v, 'a').online = true;
      applyFallbacks(v, fx, true);
      assert.match(fx.lines[1]!, /warn {2}: PANIC: virtual \[web - 192\.0\.2\.10:80:tcp\]: leaving panic mode: 2 of 4 reals pass their tests \(50% >= panic 50%\); test verdicts apply again\n$/);
      assert.deepEqual(fx.notified, [], 'the sorry server never went in: panic kept the reals in');
    });

    it('logs and notifies the sorry server in (warn) and out (info), and queues its lines', () => {
      const v = state({});
      const fx = recorder();
      fail(v, 'a', 'b', 'c', 'd');
      applyFallbacks(v, fx, true);
      assert.match(fx.lines[0]!, /warn {2}: Sorry: \[web:sorry - 192\.0\.2\.10:80:tcp 10\.0\.9\.9:8080\] put in IPVS with weight 2: no real of the virtual serves \(0 of 4 reals with a non-zero weight\)\n$/);
      real(v, 'c').online = true;
      applyFallbacks(v, fx, true);
      assert.match(fx.lines[1]!, /info {2}: Sorry: \[web:sorry - 192\.0\.2\.10:80:tcp 10\.0\.9\.9:8080\] taken out of IPVS \(deleted\): 1 of 4 reals serve again\n$/);
      assert.deepEqual(fx.queued, ['sorry:sorry', 'sorry:sorry']);
      assert.deepEqual(fx.notified, ['sorry:UP', 'sorry:DOWN']);
      assert.match(sorryLogLine(v.config, { ...SORRY, inhibit: true }, false, decideFallbacks(v)), /taken out of IPVS \(kept at weight 0, inhibit\)/);
    });

    it('an operator rset that disables the last serving real brings the sorry in (the daemon calls this from commitRset)', () => {
      const v = state({ panic: 50 });
      const fx = recorder();
      for (const r of v.reals) r.rstate = 'OFFLINE';
      applyFallbacks(v, fx, true);
      assert.equal(v.sorry!.active, true);
      assert.equal(v.panic, false, 'operator overrides are no reason for panic');
    });

    it('the panic log line when no real is left ONLINE by the operator', () => {
      const v = state({ panic: 50 });
      fail(v, 'a', 'b', 'c');
      const fx = recorder();
      applyFallbacks(v, fx, true);
      for (const r of v.reals) r.rstate = 'DOWN';
      applyFallbacks(v, fx, true);
      assert.match(fx.lines.join(''), /leaving panic mode: no real is left ONLINE by the operator \(4 reals, panic 50%\); test verdicts apply again/);
      assert.equal(panicLogLine(v.config, decideFallbacks(v), false).includes('no real is left ONLINE'), true);
    });
  });

  describe('reload and restart', () => {
    it('carry-over keeps panic and an in-service sorry server with the same address and port; the plan then decides again', () => {
      const old = state({ panic: 50 });
      fail(old, 'a', 'b', 'c');
      applyFallbacks(old, recorder(), false);
      const next = buildState([vconf({ panic: 50 })]);
      carryOverState([old], next);
      assert.equal(next[0]!.panic, true);
      const fx = recorder();
      applyFallbacks(next[0]!, fx, false);
      assert.deepEqual(fx.lines, [], 'unchanged: nothing to log');

      // Panic removed from the configuration: left, with the reason.
      const off = buildState([vconf({})]);
      carryOverState([old], off);
      applyFallbacks(off[0]!, fx, false);
      assert.match(fx.lines.join(''), /warn {2}: PANIC: virtual \[web - 192\.0\.2\.10:80:tcp\]: leaving panic mode: panic threshold removed from the configuration/);
    });

    it('a sorry server moved or removed while in service is retired (logged, notified DOWN); the new one goes in', () => {
      const old = state({});
      fail(old, 'a', 'b', 'c', 'd');
      applyFallbacks(old, recorder(), false);
      const same = buildState([vconf({ sorry: { ...SORRY, weight: 5 } })]);
      carryOverState([old], same);
      assert.deepEqual(retiredSorries([old], same), []);
      assert.equal(same[0]!.sorry!.active, true, 'same address and port: still in service (new weight via the full write)');
      const moved = buildState([vconf({ sorry: { ...SORRY, port: 8081 } })]);
      carryOverState([old], moved);
      assert.deepEqual(retiredSorries([old], moved).map((s) => s.config.port), [8080]);
      const fx = recorder();
      applyFallbacks(moved[0]!, fx, false);
      assert.deepEqual(fx.notified, ['sorry:UP']);
      assert.deepEqual(retiredSorries([old], buildState([vconf({ sorry: null })])).length, 1);
      assert.deepEqual(retiredSorries([old], []).length, 1, 'virtual gone');
    });

    it('a restart decides from the restored states (offline.dump, override.dump): sorry and panic in the first full write', () => {
      const v = buildState([vconf({ panic: 50 })])[0]!;
      fail(v, 'a', 'b', 'c'); // as offline.dump restores them
      const fx = recorder();
      applyFallbacks(v, fx, false);
      assert.equal(v.panic, true);
      assert.match(fx.lines.join(''), /entering panic mode: 1 of 4/);
      assert.deepEqual(fx.queued, [], 'the forced full write carries it');
    });
  });

  describe('notifier, writer, control port and metrics', () => {
    it('the sorry notifier has the real notifier\'s argv, with the sorry server as the real', async () => {
      const v = state({ sorry: { ...SORRY, notifyUp: '/usr/lib/surealived/scripts/up.sh' } });
      assert.deepEqual(sorryNotifierArgv('/x.sh', v.sorry!, 'UP'), ['/x.sh', 'notify=UP', 'vname=web', 'vaddr=192.0.2.10', 'vport=80', 'vproto=tcp', 'vfwmark=0', 'rname=sorry', 'raddr=10.0.9.9', 'rport=8080']);
      const calls: string[][] = [];
      const sink = memorySink();
      await runSorryNotifier(v.sorry!, 'UP', createLogger('info', sink.sink), (argv) => {
        calls.push([...argv]);
        return Promise.resolve({ kind: 'exited', code: 0, signal: null });
      });
      assert.equal(calls[0]![0], '/usr/lib/surealived/scripts/up.sh');
      assert.match(sink.lines.join(''), /\* trying to execute sorry notify script \[nstate = UP, script = \/usr\/lib\/surealived\/scripts\/up\.sh\]/);
      assert.equal(runSorryNotifier(v.sorry!, 'DOWN', createLogger('info', sink.sink)), null, 'no notify_down: nothing run');
    });

    it('the hand-off writer appends the sorry server\'s diff lines to the current diff file', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sd-fallback-'));
      const w = new HandoffWriter({ lockFile: join(dir, 'l'), fullFile: join(dir, 'f'), reloadFile: join(dir, 'r'), diffDir: join(dir, 'diffs'), log: createLogger('error', memorySink().sink) });
      try {
        const v = state({});
        await w.writeFull([v], true);
        fail(v, 'a', 'b', 'c', 'd');
        applyFallbacks(v, { ...recorder(), queue: (d) => w.queueReal(d) }, true);
        await new Promise((r) => setImmediate(r));
        await w.idle();
        assert.match(readFileSync(w.currentDiffPath, 'utf8'), /^cmd=addreal vname=web .* rname=sorry raddr=10\.0\.9\.9 rport=8080 rweight=2\ncmd=chgreal /);
      } finally {
        await w.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });

    describe('control port', () => {
      const target = (virtuals: VirtualState[]): ControlTarget => ({
        virtuals,
        counters: newTestCounters(),
        commitRset: () => undefined,
        info: () => ({ pid: 1, watchdogPid: -1, offlineSize: 0, overrideSize: 0, gatherStats: true }),
      });
      const ask = async (t: ControlTarget, line: string): Promise<string> => executeCommand(parseCommand(line), { target: t, processStats: () => Promise.reject(new Error('unused')) });
      const virtuals = (): VirtualState[] => {
        const vs = buildState([vconf({ panic: 50 }), { ...makeVirtual({ name: 'plain', addr: '192.0.2.11', reals: [{ name: 'p', addr: '10.0.1.1', weight: 1 }] }) }]);
        fail(vs[0]!, 'a', 'b', 'c');
        for (const v of vs) applyFallbacks(v, recorder(), false);
        return vs;
      };

      it('`fallbacks` lists panic and sorry state per virtual (a new command: existing replies unchanged)', async () => {
        const t = target(virtuals());
        assert.equal(
          await ask(t, 'fallbacks'),
          'v:0 vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr panic=TRUE panic_threshold=50 passing=1 eligible=4 serving=4 sorry=OUT sname=sorry saddr=10.0.9.9 sport=8080 sweight=2 currwgt=0 inipvs=FALSE\n' +
            'v:1 vname=plain vproto=tcp vaddr=192.0.2.11 vport=80 vfwmark=0 vrt=dr vsched=wrr panic=FALSE panic_threshold=0 passing=1 eligible=1 serving=1 sorry=NONE\n' +
            '_SD_CMD_END_\n',
        );
        assert.match(await ask(t, 'fallbacks vname=plain'), /^v:1 vname=plain .*\n_SD_CMD_END_\n$/);
        assert.match(await ask(t, 'fallbacks vproto=tcp vaddr=192.0.2.10 vport=80'), /^v:0 vname=web /);
        assert.equal(await ask(t, 'fallbacks vname=nope'), 'cmd_find_virt: Virt not found\n');
        const j = JSON.parse((await ask(t, 'fallbacks json')).split('\n')[0]!) as { virtuals: Array<Record<string, unknown>> };
        assert.deepEqual(j.virtuals[0], {
          index: 0, vname: 'web', vproto: 'tcp', vaddr: '192.0.2.10', vport: 80, vfwmark: 0, vrt: 'dr', vsched: 'wrr',
          panic: { active: true, threshold: 50, passing: 1, eligible: 4 },
          serving: 4,
          sorry: { name: 'sorry', addr: '10.0.9.9', port: 8080, weight: 2, inhibit: false, active: false, currwgt: 0, inipvs: false },
        });
        assert.equal(j.virtuals[1]!['sorry'], null);
      });

      it('rlist keeps its format; currwgt is the IPVS weight, which in panic is the configured one', async () => {
        const t = target(virtuals());
        assert.equal(
          await ask(t, 'rlist vname=web'),
          'vname=web vproto=tcp vaddr=192.0.2.10 vport=80 vfwmark=0 vrt=dr vsched=wrr\n' +
            'r:0 rname=a raddr=10.0.0.1 rport=80 currwgt=10 confwgt=10 ronline=FALSE rstate=ONLINE\n' +
            'r:1 rname=b raddr=10.0.0.2 rport=80 currwgt=20 confwgt=20 ronline=FALSE rstate=ONLINE\n' +
            'r:2 rname=c raddr=10.0.0.3 rport=80 currwgt=30 confwgt=30 ronline=FALSE rstate=ONLINE\n' +
            'r:3 rname=d raddr=10.0.0.4 rport=80 currwgt=40 confwgt=40 ronline=TRUE rstate=ONLINE\n' +
            '_SD_CMD_END_\n',
        );
        assert.doesNotMatch(await ask(t, 'rlist vname=web'), /sorry/, 'the sorry server is not a real of rlist (rset cannot reach it)');
      });
    });

    it('metrics: panic per virtual, its threshold, the reals counts and the sorry server', () => {
      const vs = buildState([vconf({ panic: 50 }), makeVirtual({ name: 'plain', addr: '192.0.2.11', reals: [{ name: 'p', addr: '10.0.1.1' }] })]);
      fail(vs[0]!, 'a', 'b', 'c', 'd');
      real(vs[0]!, 'a').rstate = 'DOWN';
      real(vs[0]!, 'b').rstate = 'DOWN';
      real(vs[0]!, 'c').rstate = 'DOWN';
      real(vs[0]!, 'd').rstate = 'OFFLINE';
      for (const v of vs) applyFallbacks(v, recorder(), false);
      const text = formatMetrics(vs, newTestCounters());
      const L = 'virtual="web",vproto="tcp",vaddr="192.0.2.10",vport="80",vfwmark="0"';
      const P = 'virtual="plain",vproto="tcp",vaddr="192.0.2.11",vport="80",vfwmark="0"';
      for (const line of [
        '# TYPE surealived_virtual_panic gauge',
        `surealived_virtual_panic{${L}} 0`,
        `surealived_virtual_panic{${P}} 0`,
        `surealived_virtual_panic_threshold_percent{${L}} 50`,
        `surealived_virtual_reals_passing{${L}} 0`,
        `surealived_virtual_reals_eligible{${L}} 0`,
        `surealived_virtual_reals_serving{${L}} 0`,
        `surealived_virtual_sorry_active{${L},real="sorry",raddr="10.0.9.9",rport="8080"} 1`,
      ]) assert.ok(text.includes(`\n${line}\n`), line);
      assert.doesNotMatch(text, /surealived_virtual_panic_threshold_percent\{virtual="plain"/, 'only where a threshold is set');
      assert.doesNotMatch(text, /surealived_virtual_sorry_active\{virtual="plain"/, 'only where a sorry server is configured');
      for (const r of vs[0]!.reals) r.rstate = 'ONLINE';
      applyFallbacks(vs[0]!, recorder(), false);
      const panic = formatMetrics(vs, newTestCounters());
      assert.ok(panic.includes(`\nsurealived_virtual_panic{${L}} 1\n`));
      assert.ok(panic.includes(`\nsurealived_virtual_sorry_active{${L},real="sorry",raddr="10.0.9.9",rport="8080"} 0\n`));
      assert.match(panic, /\nsurealived_real_weight\{virtual="web",[^}]*real="d"[^}]*\} 40\n/, 'real weight: the IPVS weight, kept in panic');
      assert.match(panic, /\nsurealived_real_in_ipvs\{virtual="web",[^}]*real="d"[^}]*\} 1\n/);
    });
  });
});
