// Real-kernel tests of ipvs-netlink: boots the lab guest once, runs the guest-side round-trip script
// (dist/test/kernel/guest/ipvs-roundtrip.js) there, and asserts each of its checks as its own test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUnavailable, runInGuest, type GuestRunResult } from '../../lab/lab.js';
import { IPVS_CHECKS, type GuestReport, type IpvsCheckId } from './guest/checks.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GUEST_SCRIPT = 'dist/test/kernel/guest/ipvs-roundtrip.js';

describe('ipvs-netlink against a real IPVS kernel (qemu lab)', function () {
  // First run: apt-get + kernel download (~20 s here) + boot; later runs boot only (~30 s in all).
  this.timeout(20 * 60_000);
  let run: GuestRunResult | undefined;
  let report: GuestReport | undefined;
  let failure = '';

  before(async function () {
    const why = labUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    assert.ok(existsSync(join(REPO, GUEST_SCRIPT)), `${GUEST_SCRIPT} missing: build first (npx tsc -p .)`);
    run = await runInGuest(`modprobe ip_vs && node ${GUEST_SCRIPT} "$LAB_SHARE/ipvs-report.json"`, {
      cwd: REPO,
      timeoutMs: 6 * 60_000,
    });
    const text = await readFile(join(run.shareDir, 'ipvs-report.json'), 'utf8').catch(() => '');
    if (text) report = JSON.parse(text) as GuestReport;
    else {
      failure =
        `guest produced no report (exit ${run.code}${run.timedOut ? ', timed out' : ''})\n` +
        `--- output ---\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-4000)}`;
    }
    await rm(run.shareDir, { recursive: true, force: true });
  });

  it('the guest boots, runs the script and exits 0', function () {
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure || run.output.slice(-4000));
    assert.ok(report, failure);
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms)`);
  });

  for (const [id, title] of Object.entries(IPVS_CHECKS) as [IpvsCheckId, string][]) {
    it(`${id}: ${title}`, function () {
      assert.ok(report, failure || 'no report from the guest');
      const r = report.checks.find((x) => x.id === id);
      assert.ok(r, `check ${id} did not run in the guest (an earlier failure stopped the script?)`);
      assert.ok(r.ok, r.detail);
    });
  }
});
