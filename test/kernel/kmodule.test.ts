// Real-kernel tests of the patched xt_recent (kmodule/): builds the module for the lab kernel
// (kmodule/build.sh: cached after the first run), boots the lab guest once, loads the module before
// anything can load the stock one, runs the guest-side checks (dist/test/kernel/guest/kmodule-lab.js)
// and asserts each of them as its own test.
import assert from 'node:assert/strict';
import { labUnavailable } from '../../lab/lab.js';
import { KMODULE_CHECKS, type KmoduleReport } from './guest/kmodule-checks.js';
import { buildKmodule, itPerCheck, runGuestScript, type GuestScriptRun } from './guest-run.js';
const GUEST_SCRIPT = 'dist/test/kernel/guest/kmodule-lab.js';

describe('kmodule: the patched xt_recent in the real lab kernel (qemu lab)', function () {
  this.timeout(25 * 60_000);
  let g: GuestScriptRun<KmoduleReport> = { run: undefined, report: undefined, failure: 'not run' };

  before(async function () {
    let ko = '';
    if (!labUnavailable()) {
      ko = await buildKmodule();
    }
    // x_tables first (the module's only dependency), then ours, before any iptables call could
    // autoload the stock xt_recent; the guest script checks it is ours before every check.
    g = await runGuestScript<KmoduleReport>(
      this,
      GUEST_SCRIPT,
      `modprobe x_tables && insmod '${ko}' && node ${GUEST_SCRIPT} "$LAB_SHARE/kmodule-report.json" '${ko}'`,
      'kmodule-report.json',
      // Allocations not zeroed (Debian zeroes them by default, which would hide a read of uninitialised
      // memory), freed and new slab objects poisoned and red-zoned: a module memory bug shows up as a
      // wrong result or a "BUG kmalloc-..." report in dmesg, which malformed.quiet looks for.
      { timeoutMs: 12 * 60_000, cpus: 2, kernelArgs: 'init_on_alloc=0 slub_debug=FZP' },
    );
    for (const [k, v] of Object.entries(g.report?.observations ?? {})) {
      if (!k.startsWith('upstream.')) console.log(`      (${k}: ${v.length > 300 ? v.slice(0, 300) + '...' : v})`);
    }
  });

  it('the guest boots with our module loaded, runs the checks and exits 0', function () {
    const { run, report, failure } = g;
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms)`);
    console.log(`      (guest ms per check: ${report.checks.map((c) => `${c.id} ${c.ms}`).join(', ')})`);
  });

  itPerCheck(KMODULE_CHECKS, () => g);
});
