// Boots the real-kernel lab (Debian kernel with IPVS, under qemu TCG) and runs one shell command in it.
// The guest sees the host root read-only (plus a tmpfs overlay) and a writable share dir for results.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface LabPaths {
  kernelVersion: string;
  kernel: string;
  initrd: string;
  modules: string;
}

export interface GuestRunOptions {
  /** Working directory inside the guest (the host path: the guest sees the same tree). */
  cwd?: string;
  /** Extra environment for the command (NO_COLOR=1, a full PATH and LAB_SHARE=<share dir> are always set). */
  env?: Record<string, string>;
  /** Hard limit for boot + command + power-off; qemu is killed after it. */
  timeoutMs?: number;
  /** Host dir shared read-write with the guest, at the same path; created when absent. */
  shareDir?: string;
  /** Guest memory in MiB (default 1024). */
  memoryMiB?: number;
  /** Guest vCPUs (default 1). qemu's TCG runs one host thread per vCPU. */
  cpus?: number;
  /** Extra kernel command line words (e.g. `init_on_alloc=0 slub_debug=FZP` to expose memory bugs). */
  kernelArgs?: string;
}

export interface GuestRunResult {
  /** Exit code of the command; -1 when the guest never reported one (crash or timeout). */
  code: number;
  /** The command's stdout + stderr, as written in the guest. */
  output: string;
  /** The serial console (boot messages, markers): for diagnostics. */
  console: string;
  shareDir: string;
  timedOut: boolean;
  bootMs: number;
}

export class LabError extends Error {
  override readonly name = 'LabError';
}

const HERE = dirname(fileURLToPath(import.meta.url));

/** Finds lab/setup.sh both from the sources (lab/) and from the build (dist/lab/). */
export function setupScriptPath(): string {
  const fromDist = resolve(HERE, '..', '..', 'lab', 'setup.sh');
  const fromSrc = resolve(HERE, 'setup.sh');
  return HERE.split('/').includes('dist') ? fromDist : fromSrc;
}

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    execFile(cmd, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) rej(new LabError(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else res({ stdout, stderr });
    });
  });
}

/** Runs lab/setup.sh (installs packages, fetches + caches the kernel, builds the initramfs). */
export async function ensureLab(timeoutMs = 15 * 60_000): Promise<LabPaths> {
  const { stdout } = await run('sh', [setupScriptPath()], timeoutMs);
  const envFile = stdout.trim().split('\n').pop() ?? '';
  const text = await readFile(envFile, 'utf8');
  const vars = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars.set(line.slice(0, eq), line.slice(eq + 1));
  }
  const get = (k: string): string => {
    const v = vars.get(k);
    if (!v) throw new LabError(`${envFile}: missing ${k}`);
    return v;
  };
  return { kernelVersion: get('KVER'), kernel: get('KERNEL'), initrd: get('INITRD'), modules: get('MODULES') };
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Boots the guest once, runs `command` with /bin/sh in it, powers off, and collects the results. */
export async function runInGuest(command: string, opts: GuestRunOptions = {}): Promise<GuestRunResult> {
  const lab = await ensureLab();
  const shareDir = opts.shareDir ?? (await mkdtemp(join(tmpdir(), 'surealived-lab-')));
  if (/\s/.test(shareDir)) throw new LabError(`share dir must not contain spaces: ${shareDir}`);
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: '/root',
    NO_COLOR: '1',
    LAB_SHARE: shareDir,
    ...opts.env,
  };
  const script = [
    '#!/bin/sh',
    ...Object.entries(env).map(([k, v]) => `export ${k}=${shQuote(v)}`),
    `cd ${shQuote(opts.cwd ?? process.cwd())} || exit 97`,
    `{ ${command}\n} > ${shQuote(join(shareDir, 'output.log'))} 2>&1`,
    '',
  ].join('\n');
  await writeFile(join(shareDir, 'cmd.sh'), script, { mode: 0o755 });

  const args = [
    '-accel', 'tcg', '-m', String(opts.memoryMiB ?? 1024), '-smp', String(opts.cpus ?? 1),
    '-nographic', '-no-reboot', '-nic', 'none',
    '-kernel', lab.kernel, '-initrd', lab.initrd,
    '-append', `console=ttyS0 quiet panic=-1 lab.share=${shareDir}${opts.kernelArgs ? ` ${opts.kernelArgs}` : ''}`,
    '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${lab.modules},mount_tag=modules,security_model=none,readonly=on,multidevs=remap`,
    '-virtfs', `local,path=${shareDir},mount_tag=labshare,security_model=none,multidevs=remap`,
  ];
  const timeoutMs = opts.timeoutMs ?? 10 * 60_000;
  const started = Date.now();
  let bootMs = -1;
  let consoleText = '';
  let timedOut = false;
  await new Promise<void>((res, rej) => {
    const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const onData = (b: Buffer): void => {
      consoleText += b.toString('utf8');
      if (bootMs < 0 && consoleText.includes('@@LAB-START')) bootMs = Date.now() - started;
    };
    qemu.stdout.on('data', onData);
    qemu.stderr.on('data', onData);
    const timer = setTimeout(() => {
      timedOut = true;
      qemu.kill('SIGKILL');
    }, timeoutMs);
    qemu.on('error', (e) => {
      clearTimeout(timer);
      rej(new LabError(`cannot start qemu-system-x86_64: ${e.message}`));
    });
    qemu.on('close', () => {
      clearTimeout(timer);
      res();
    });
  });

  let code = -1;
  const rcText = await readFile(join(shareDir, 'rc'), 'utf8').catch(() => '');
  if (/^\d+\s*$/.test(rcText)) code = Number(rcText.trim());
  else {
    // Fallback: the end marker on the console (should the share write have failed).
    const m = /@@LAB-END rc=(\d+)@@/.exec(consoleText);
    if (m) code = Number(m[1]);
  }
  const output = await readFile(join(shareDir, 'output.log'), 'utf8').catch(() => '');
  return { code, output, console: consoleText, shareDir, timedOut, bootMs };
}

/** Why the lab cannot run here (it needs root on Linux: apt-get, qemu's 9p of /), or undefined.
 * SUREALIVED_NO_LAB=1 opts out explicitly. */
export function labUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root (the lab installs Debian packages)';
  if (process.env['SUREALIVED_NO_LAB'] === '1') return 'SUREALIVED_NO_LAB=1';
  return undefined;
}
