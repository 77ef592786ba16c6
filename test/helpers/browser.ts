// Headless Chromium for page tests: installed by test/setup/host-tools.sh when missing, run once
// per page load (`--dump-dom` / `--screenshot`) with a virtual time budget so the page's timers and
// fetches run before the DOM is read.

import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../..', import.meta.url));

/** Why browser tests cannot run here, or undefined. */
export function browserUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (apt-get needs root)';
  return undefined;
}

/** Install Debian packages (default: chromium and prometheus) through test/setup/host-tools.sh. */
export function ensureBrowserTools(...packages: string[]): void {
  execFileSync('sh', [join(REPO, 'test', 'setup', 'host-tools.sh'), ...(packages.length ? packages : ['chromium', 'prometheus'])], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, PATH: `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin` },
    timeout: 15 * 60_000,
  });
}

export interface BrowserRun {
  readonly url: string;
  /** Virtual time the page gets before the DOM is read or the screenshot taken (ms). */
  readonly budgetMs?: number;
  readonly windowSize?: readonly [number, number];
}

function chromium(args: readonly string[], run: BrowserRun): Promise<string> {
  const profile = mkdtempSync(join(tmpdir(), 'sd-chromium-'));
  const [w, h] = run.windowSize ?? [1280, 900];
  const argv = [
    '--headless=new',
    // Root (the test container) cannot use Chromium's sandbox.
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--hide-scrollbars',
    `--user-data-dir=${profile}`,
    `--window-size=${w},${h}`,
    `--virtual-time-budget=${run.budgetMs ?? 5000}`,
    ...args,
    run.url,
  ];
  return new Promise((resolve, reject) => {
    execFile('chromium', argv, { maxBuffer: 64 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium ${run.url}: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** The page's DOM (serialized) after the budget. */
export function dumpDom(run: BrowserRun): Promise<string> {
  return chromium(['--dump-dom'], run);
}

/** A PNG screenshot of the page after the budget, written to `path`. */
export async function screenshot(run: BrowserRun, path: string): Promise<void> {
  await chromium([`--screenshot=${path}`], run);
}
