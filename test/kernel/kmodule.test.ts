// Real-kernel tests of the patched xt_recent (kmodule/): builds the module for the lab kernel
// (kmodule/build.sh: cached after the first run), boots the lab guest once, loads the module before
// anything can load the stock one, runs the guest-side checks (dist/test/kernel/guest/kmodule-lab.js)
// and asserts each of them as its own test.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUnavailable, runInGuest, type GuestRunResult } from '../../lab/lab.js';
import { KMODULE_CHECKS, type KmoduleCheckId, type KmoduleReport } from './guest/kmodule-checks.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const GUEST_SCRIPT = 'dist/test/kernel/guest/kmodule-lab.js';

/** Runs kmodule/build.sh; resolves to the path of the built module (its last stdout line). */
function buildModule(): Promise<{ ko: string; ms: number; log: string }> {
  const t0 = Date.now();
  return new Promise((res, rej) => {
    execFile('sh', [join(REPO, 'kmodule', 'build.sh')], { timeout: 20 * 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`kmodule/build.sh failed: ${err.message}\n${stderr.slice(-4000)}`));
      else res({ ko: stdout.trim().split('\n').pop() ?? '', ms: Date.now() - t0, log: stderr });
    });
  });
}

describe('kmodule: the patched xt_recent in the real lab kernel (qemu lab)', function () {
  this.timeout(25 * 60_000);
  let run: GuestRunResult | undefined;
  let report: KmoduleReport | undefined;
  let failure = '';

  before(async function () {
    const why = labUnavailable();
    if (why) {
      console.log(`      (skipped: ${why})`);
      this.skip();
    }
    assert.ok(existsSync(join(REPO, GUEST_SCRIPT)), `${GUEST_SCRIPT} missing: build first (npx tsc -p .)`);
    const built = await buildModule();
    assert.ok(built.ko.endsWith('/xt_recent.ko') && existsSync(built.ko), `no module from kmodule/build.sh: ${built.ko}`);
    console.log(`      (kmodule/build.sh: ${built.ms} ms, ${built.ko})`);
    // x_tables first (the module's only dependency), then ours, before any iptables call could
    // autoload the stock xt_recent; the guest script checks it is ours before every check.
    run = await runInGuest(
      `modprobe x_tables && insmod '${built.ko}' && node ${GUEST_SCRIPT} "$LAB_SHARE/kmodule-report.json" '${built.ko}'`,
      // Allocations not zeroed (Debian zeroes them by default, which would hide a read of uninitialised
      // memory), freed and new slab objects poisoned and red-zoned: a module memory bug shows up as a
      // wrong result or a "BUG kmalloc-..." report in dmesg, which malformed.quiet looks for.
      { cwd: REPO, timeoutMs: 12 * 60_000, cpus: 2, kernelArgs: 'init_on_alloc=0 slub_debug=FZP' },
    );
    const text = await readFile(join(run.shareDir, 'kmodule-report.json'), 'utf8').catch(() => '');
    if (text) report = JSON.parse(text) as KmoduleReport;
    for (const [k, v] of Object.entries(report?.observations ?? {})) {
      if (!k.startsWith('upstream.')) console.log(`      (${k}: ${v.length > 300 ? v.slice(0, 300) + '...' : v})`);
    }
    if (!text || run.code !== 0) {
      failure =
        `guest run: exit ${run.code}${run.timedOut ? ', timed out' : ''}\n` +
        `--- output ---\n${run.output.slice(-6000)}\n--- console ---\n${run.console.slice(-3000)}`;
    }
    await rm(run.shareDir, { recursive: true, force: true });
  });

  it('the guest boots with our module loaded, runs the checks and exits 0', function () {
    assert.ok(run, 'no guest run');
    assert.equal(run.code, 0, failure);
    assert.ok(report, failure);
    console.log(`      (kernel ${report.kernel}; userspace after ${run.bootMs} ms)`);
    console.log(`      (guest ms per check: ${report.checks.map((c) => `${c.id} ${c.ms}`).join(', ')})`);
  });

  for (const [id, title] of Object.entries(KMODULE_CHECKS) as [KmoduleCheckId, string][]) {
    it(`${id}: ${title}`, function () {
      assert.ok(report, failure || 'no report from the guest');
      const r = report.checks.find((x) => x.id === id);
      assert.ok(r, `check ${id} did not run in the guest (an earlier failure stopped the script?)\n${failure}`);
      assert.ok(r.ok, r.detail);
    });
  }
});
