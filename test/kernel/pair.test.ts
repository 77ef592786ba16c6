// The director pair of examples/director-pair/ in the real lab kernel: boots the guest once, runs a
// control run (keepalived, surealived and ipvssync without any sync) and a run with the whole suite
// (ssyncd, the kernel's sync daemons driven by ipvssync, the recipe's notify script), each crashing
// the master; the suite run also fails back. Guest side: dist/test/kernel/guest/pair-scenarios.js.
import assert from 'node:assert/strict';
import type { CrashResult, Kind } from './guest/pair-lab.js';
import type { PairReport } from './guest/pair-scenarios.js';
import { labUnavailable } from '../../lab/lab.js';
import { buildKmodule, runGuestScript, type GuestScriptRun } from './guest-run.js';

const GUEST_SCRIPT = 'dist/test/kernel/guest/pair-scenarios.js';
const KINDS: Kind[] = ['pers', 'recent', 'nftmap'];
const KIND_TEXT: Record<Kind, string> = { pers: 'IPVS persistence', recent: 'xt_recent lists', nftmap: 'the nftables map' };

describe('a director pair fails over with no session lost (examples/director-pair, qemu lab, keepalived)', function () {
  this.timeout(20 * 60_000);
  let g: GuestScriptRun<PairReport> = { run: undefined, report: undefined, failure: 'not run' };

  before(async function () {
    // The project's xt_recent (kmodule/) on both directors, loaded before anything can load the
    // stock one: a replicated list entry keeps the age of its hits, so its remaining life is kept.
    const ko = labUnavailable() ? '' : await buildKmodule();
    g = await runGuestScript<PairReport>(
      this,
      GUEST_SCRIPT,
      `modprobe x_tables && insmod '${ko}' && modprobe ip_vs && modprobe ip_vs_rr && node ${GUEST_SCRIPT} "$LAB_SHARE/pair-report.json" /tmp/pair-lab`,
      'pair-report.json',
      { timeoutMs: 15 * 60_000, memoryMiB: 2048, cpus: 2 },
    );
  });

  const crashOf = (which: 'control' | 'suite' | 'failback'): CrashResult => {
    const { report, failure } = g;
    assert.ok(report, failure);
    const r = which === 'control' ? report.control.crash : which === 'suite' ? report.suite.crash : report.suite.failback;
    assert.ok(r, `no ${which} result\n${(which === 'control' ? report.control : report.suite).notes.join('\n').slice(-6000)}\n${failure}`);
    return r;
  };
  const notes = (): string => (g.report ? g.report.suite.notes.join('\n').slice(-6000) : g.failure);

  it('the guest boots and runs both scenarios', function () {
    const { run, report, failure } = g;
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    const f = (c: CrashResult | undefined): string => (c ? `VIP moved in ${c.vipMs} ms, new connections failed for ${c.outageMs} ms, held connections stalled ${c.held.maxStallMs} ms` : 'none');
    console.log(`      (kernel ${report.kernel}; control: ${f(report.control.crash)}; suite: ${f(report.suite.crash)}; failback: ${f(report.suite.failback)})`);
  });

  it('control run without the suite: stickiness is lost and held connections break (the checks can fail)', function () {
    const c = crashOf('control');
    const moved = KINDS.reduce((n, k) => n + c.sticky[k].of - c.sticky[k].same, 0);
    assert.ok(moved > 0, `no sticky client moved without any sync: the test could not tell (${JSON.stringify(c.sticky)})`);
    assert.ok(c.held.survived < c.held.of, `held connections survived without connection sync: ${JSON.stringify(c.held)}`);
    console.log(`      (without sync: ${KINDS.map((k) => `${k} ${c.sticky[k].same}/${c.sticky[k].of}`).join(', ')} kept their real; held ${c.held.survived}/${c.held.of})`);
  });

  for (const which of ['suite', 'failback'] as const) {
    const when = which === 'suite' ? 'after the master crashes' : 'after failback (the old master rebuilt empty, caught up, then the new master crashes)';
    for (const k of KINDS) {
      it(`${when}: every sticky client of ${KIND_TEXT[k]} reaches the same real`, function () {
        const c = crashOf(which);
        assert.equal(c.sticky[k].same, c.sticky[k].of, `moved: ${c.sticky[k].moved.join('; ')}\n${notes()}`);
      });
    }
    it(`${when}: every held TCP connection survives, no message lost`, function () {
      const c = crashOf(which);
      assert.ok(c.held.of >= 4, 'held connections were opened');
      assert.equal(c.held.survived, c.held.of, `${c.held.problems.join('; ')}\n${notes()}`);
    });
  }

  it('the drained real is still drained on the new master, and its IPVS table equals its checker\'s view', function () {
    const c = crashOf('suite');
    assert.equal(c.drained.weight, 0, c.drained.detail);
    assert.ok(c.drained.kernelMatchesChecker, c.drained.detail);
  });

  for (const which of ['suite', 'failback'] as const) {
    it(`${which === 'suite' ? 'after the crash' : 'after failback'}: replicated nftables map entries keep their remaining life (within a poll interval and nft's whole seconds)`, function () {
      const c = crashOf(which);
      assert.equal(c.lifeDriftMs.nftmap.length, 10, 'every source has an element on both directors');
      for (const d of c.lifeDriftMs.nftmap) assert.ok(Math.abs(d) <= 2500, `drift ${d} ms in ${JSON.stringify(c.lifeDriftMs.nftmap)}`);
      console.log(
        `      (drift of remaining life, ms: nft map ${c.lifeDriftMs.nftmap.join(' ')}; xt_recent ${c.lifeDriftMs.recent.join(' ')}; ` +
          `IPVS templates (kernel sync, whole seconds) ${c.lifeDriftMs.pers.join(' ')})`,
      );
    });
    it(`${which === 'suite' ? 'after the crash' : 'after failback'}: replicated xt_recent entries keep the age of their last hit (patched module; within a poll interval)`, function () {
      const c = crashOf(which);
      assert.equal(c.lifeDriftMs.recent.length, 10, `every source on a list on both directors: ${JSON.stringify(c.lifeDriftMs.recent)}`);
      for (const d of c.lifeDriftMs.recent) assert.ok(Math.abs(d) <= 2500, `drift ${d} ms in ${JSON.stringify(c.lifeDriftMs.recent)}`);
    });
  }
});
