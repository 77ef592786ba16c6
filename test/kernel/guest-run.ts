// What every real-kernel test file does in its mocha `before`: skip where the lab cannot run, check
// that its guest script is built, boot the lab once with it, and read back the JSON report the
// script wrote into the share dir; plus one `it` per check of such a report.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUnavailable, runInGuest, type GuestRunOptions, type GuestRunResult } from '../../lab/lab.js';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface GuestScriptRun<R> {
  run: GuestRunResult | undefined;
  report: R | undefined;
  /** Exit code, output and console tails when the run failed or wrote no report; '' otherwise. */
  failure: string;
}

/**
 * Boots the lab and runs `command` (which writes `$LAB_SHARE/<reportFile>`); skips the calling
 * suite when the lab is unavailable. `script` is the built guest script the command runs.
 */
export async function runGuestScript<R>(ctx: Mocha.Context, script: string, command: string, reportFile: string, opts: GuestRunOptions): Promise<GuestScriptRun<R>> {
  const why = labUnavailable();
  if (why) {
    console.log(`      (skipped: ${why})`);
    ctx.skip();
  }
  assert.ok(existsSync(join(REPO, script)), `${script} missing: build first (npx tsc -p .)`);
  const run = await runInGuest(command, { cwd: REPO, ...opts });
  const text = await readFile(join(run.shareDir, reportFile), 'utf8').catch(() => '');
  const report = text ? (JSON.parse(text) as R) : undefined;
  const failure =
    !text || run.code !== 0
      ? `guest run: exit ${run.code}${run.timedOut ? ', timed out' : ''}${text ? '' : ', no report'}\n` +
        `--- output ---\n${run.output.slice(-6000)}\n--- console ---\n${run.console.slice(-3000)}`
      : '';
  await rm(run.shareDir, { recursive: true, force: true });
  return { run, report, failure };
}

interface CheckReport {
  checks: { id: string; ok: boolean; detail?: string }[];
}

/** One `it` per check id: it passes when the guest ran that check and it held. */
export function itPerCheck<Id extends string>(checks: Readonly<Record<Id, string>>, state: () => GuestScriptRun<CheckReport>): void {
  for (const [id, title] of Object.entries(checks) as [Id, string][]) {
    it(`${id}: ${title}`, function () {
      const { report, failure } = state();
      assert.ok(report, failure || 'no report from the guest');
      const r = report.checks.find((x) => x.id === id);
      assert.ok(r, `check ${id} did not run in the guest (an earlier failure stopped the script?)\n${failure}`);
      assert.ok(r.ok, r.detail);
    });
  }
}

/** Builds the patched xt_recent for the lab kernel (kmodule/build.sh, cached); the module's path. */
export async function buildKmodule(): Promise<string> {
  const t0 = Date.now();
  const ko = await new Promise<string>((res, rej) => {
    execFile('sh', [join(REPO, 'kmodule', 'build.sh')], { timeout: 20 * 60_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new Error(`kmodule/build.sh failed: ${err.message}\n${stderr.slice(-4000)}`));
      else res(stdout.trim().split('\n').pop() ?? '');
    });
  });
  assert.ok(ko.endsWith('/xt_recent.ko') && existsSync(ko), `no module from kmodule/build.sh: ${ko}`);
  console.log(`      (kmodule/build.sh: ${Date.now() - t0} ms, ${ko})`);
  return ko;
}
