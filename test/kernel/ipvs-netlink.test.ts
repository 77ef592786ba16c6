// Real-kernel tests of ipvs-netlink: boots the lab guest once, runs the guest-side round-trip script
// (dist/test/kernel/guest/ipvs-roundtrip.js) there, and asserts each of its checks as its own test.
import assert from 'node:assert/strict';
import { IPVS_CHECKS, type GuestReport } from './guest/checks.js';
import { itPerCheck, runGuestScript, type GuestScriptRun } from './guest-run.js';

const GUEST_SCRIPT = 'dist/test/kernel/guest/ipvs-roundtrip.js';

describe('ipvs-netlink against a real IPVS kernel (qemu lab)', function () {
  // First run: apt-get + kernel download (~20 s here) + boot; later runs boot only (~30 s in all).
  this.timeout(20 * 60_000);
  let g: GuestScriptRun<GuestReport> = { run: undefined, report: undefined, failure: 'not run' };

  before(async function () {
    g = await runGuestScript<GuestReport>(this, GUEST_SCRIPT, `modprobe ip_vs && node ${GUEST_SCRIPT} "$LAB_SHARE/ipvs-report.json"`, 'ipvs-report.json', { timeoutMs: 6 * 60_000 });
  });

  it('the guest boots, runs the script and exits 0', function () {
    const { run, report, failure } = g;
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms)`);
  });

  itPerCheck(IPVS_CHECKS, () => g);
});
