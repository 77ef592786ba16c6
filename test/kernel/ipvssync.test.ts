// Real-kernel tests of ipvssync: boots the lab guest once, runs the guest-side scenarios
// (dist/test/kernel/guest/ipvssync-scenarios.js) there, and asserts each of its checks as its own test.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUnavailable, runInGuest, type GuestRunResult } from '../../lab/lab.js';
import { IPVSSYNC_CHECKS, type IpvssyncCheckId, type IpvssyncReport } from './guest/ipvssync-checks.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GUEST_SCRIPT = 'dist/test/kernel/guest/ipvssync-scenarios.js';

describe('ipvssync against a real IPVS kernel, fed by hand-offs and by surealived (qemu lab)', function () {
  this.timeout(20 * 60_000);
  let run: GuestRunResult | undefined;
  let report: IpvssyncReport | undefined;
  let failure = '';

  before(async function () {
    const why = labUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    assert.ok(existsSync(join(REPO, GUEST_SCRIPT)), `${GUEST_SCRIPT} missing: build first (npx tsc -p .)`);
    run = await runInGuest(`modprobe ip_vs && node ${GUEST_SCRIPT} "$LAB_SHARE/ipvssync-report.json" /tmp/ipvssync-lab`, {
      cwd: REPO,
      timeoutMs: 8 * 60_000,
    });
    const text = await readFile(join(run.shareDir, 'ipvssync-report.json'), 'utf8').catch(() => '');
    if (text) report = JSON.parse(text) as IpvssyncReport;
    if (!text || run.code !== 0) {
      failure =
        `guest run: exit ${run.code}${run.timedOut ? ', timed out' : ''}\n` +
        `--- output ---\n${run.output.slice(-4000)}\n--- console ---\n${run.console.slice(-2000)}`;
    }
    await rm(run.shareDir, { recursive: true, force: true });
  });

  it('the guest boots, runs the scenarios and exits 0', function () {
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    const obs = Object.entries(report.observations).filter(([k]) => !k.includes('log'));
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms; ${obs.map(([k, v]) => `${k}: ${v}`).join('; ')})`);
    console.log(`      (guest ms per check: ${report.checks.map((c) => `${c.id} ${c.ms}`).join(', ')})`);
  });

  for (const [id, title] of Object.entries(IPVSSYNC_CHECKS) as [IpvssyncCheckId, string][]) {
    it(`${id}: ${title}`, function () {
      assert.ok(report, failure || 'no report from the guest');
      const r = report.checks.find((x) => x.id === id);
      assert.ok(r, `check ${id} did not run in the guest (an earlier failure stopped the script?)\n${failure}`);
      assert.ok(r.ok, r.detail);
    });
  }
});
