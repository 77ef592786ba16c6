// Real-kernel tests of ipvssync: boots the lab guest once, runs the guest-side scenarios
// (dist/test/kernel/guest/ipvssync-scenarios.js) there, and asserts each of its checks as its own test.
import assert from 'node:assert/strict';
import { IPVSSYNC_CHECKS, type IpvssyncReport } from './guest/ipvssync-checks.js';
import { itPerCheck, runGuestScript, type GuestScriptRun } from './guest-run.js';

const GUEST_SCRIPT = 'dist/test/kernel/guest/ipvssync-scenarios.js';

describe('ipvssync against a real IPVS kernel, fed by hand-offs and by surealived (qemu lab)', function () {
  this.timeout(20 * 60_000);
  let g: GuestScriptRun<IpvssyncReport> = { run: undefined, report: undefined, failure: 'not run' };

  before(async function () {
    g = await runGuestScript<IpvssyncReport>(this, GUEST_SCRIPT, `modprobe ip_vs && node ${GUEST_SCRIPT} "$LAB_SHARE/ipvssync-report.json" /tmp/ipvssync-lab`, 'ipvssync-report.json', { timeoutMs: 8 * 60_000 });
  });

  it('the guest boots, runs the scenarios and exits 0', function () {
    const { run, report, failure } = g;
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    const obs = Object.entries(report.observations).filter(([k]) => !k.includes('log'));
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms; ${obs.map(([k, v]) => `${k}: ${v}`).join('; ')})`);
    console.log(`      (guest ms per check: ${report.checks.map((c) => `${c.id} ${c.ms}`).join(', ')})`);
  });

  itPerCheck(IPVSSYNC_CHECKS, () => g);
});
