// `npm run bench:checks`: surealived against one loopback server process with N = 1,000 / 5,000 / 10,000
// reals (loopdelay 1, timeout 2), for tcp and http. Prints checks/s, CPU µs per check, peak RSS and the
// failure-detection latency when 10 % of the reals start refusing, beside the original C surealived.
// Options: --sizes 1000,5000 --testers tcp --seconds 10 --probes native,js (js: the net.Socket/undici path); BENCH_CPU_PROF=<dir> writes a CPU profile of surealived;
// BENCH_NODE_FLAGS="--max-semi-space-size=8 ..." adds V8/Node flags to the surealived process.
// Heap figures (heap used min/max in the measured window, GC ms per second) come from heap-probe.ts.

import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createConnection, createServer } from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { realAddr } from './addresses.js';
import { shebangFlags } from './daemon-flags.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = join(here, '../surealived/cli.js');
const serverScript = join(here, 'server.js');
const heapProbe = join(here, 'heap-probe.js');
const CLK_TCK = 100;
const SERVER_PORT = 18900;
const LOOPDELAY = 1;
const TIMEOUT = 2;
const RETRIES2FAIL = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The reference: the original C surealived measured on a machine of this kind (issue 2). */
const REFERENCE = { checksPerSec: 2400, usPerCheck: { tcp: 37, http: 49 } as Record<string, number>, rssMb: 31 };

interface RunResult {
  tester: string;
  reals: number;
  checksPerSec: number;
  usPerCheck: number;
  peakRssMb: number;
  detectP50: number;
  detectP99: number;
  detectMax: number;
  detected: number;
  failing: number;
  /** heapUsed min..max (MB) and GC time (ms per s) over the measured window. */
  heapMinMb: number;
  heapMaxMb: number;
  gcMsPerSec: number;
  /** RSS (MB) when the first round of probes was done (config loaded, nothing under load yet). */
  rssAtStartMb: number;
}

interface HeapSample {
  t: number;
  rss: number;
  heapUsed: number;
  gcMs: number;
}

function heapSamples(file: string): HeapSample[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split(' ').map(Number);
      return { t: f[0]!, rss: f[1]!, heapUsed: f[2]!, gcMs: f[5]! };
    });
}

function currentRssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / CLK_TCK;
}

function peakRssMb(pid: number): number {
  const m = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** One control-port command; resolves with the reply up to the end marker. */
function control(port: number, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = createConnection({ port, host: '127.0.0.1' });
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      if (buf.includes('_SD_CMD_END_')) {
        c.end();
        resolve(buf);
      }
    });
    c.on('error', reject);
    c.write(`${cmd}\n`);
  });
}

async function checksDone(port: number): Promise<number> {
  const s = await control(port, 'stats');
  const num = (k: string): number => Number(new RegExp(`^${k}\\s*: (\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return num('t_success') + num('t_failed');
}

function xmlFor(tester: string, n: number): string {
  const per = 100;
  const out = ['<surealived>'];
  for (let v = 0; v * per < n; v++) {
    const attrs = tester === 'http' ? ' url="/" host="bench.test"' : '';
    out.push(`<virtual name="v${v}" addr="198.18.${Math.floor(v / 250)}.${(v % 250) + 1}" port="80" proto="tcp" sched="wrr" rt="dr">`);
    out.push(`<tester proto="${tester}" testport="${SERVER_PORT}" loopdelay="${LOOPDELAY}" timeout="${TIMEOUT}" retries2ok="1" retries2fail="${RETRIES2FAIL}"${attrs}/>`);
    for (let i = v * per; i < Math.min(n, (v + 1) * per); i++) out.push(`<real name="r${i}" addr="${realAddr(i)}" port="80" weight="1"/>`);
    out.push('</virtual>');
  }
  out.push('</surealived>\n');
  return out.join('\n');
}

function waitMessage<T>(child: ChildProcess, pick: (m: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const on = (m: T): void => {
      if (pick(m)) {
        child.off('message', on);
        resolve(m);
      }
    };
    child.on('message', on);
  });
}

async function runOne(tester: string, n: number, seconds: number, probes: string): Promise<RunResult> {
  const work = mkdtempSync(join(tmpdir(), 'sd-bench-'));
  const ctlPort = await freePort();
  const diffDir = join(work, 'diffs');
  writeFileSync(join(work, 'config.xml'), xmlFor(tester, n));
  writeFileSync(
    join(work, 'surealived.cfg'),
    [
      'log stderr',
      'logging warn',
      `listen_port ${ctlPort}`,
      'startup_delay_ms 1000',
      `lock_sync_file ${work}/ipvsfull.lock`,
      `full_sync_file ${work}/ipvsfull.cfg`,
      `full_reload_file ${work}/ipvsfull.reload`,
      `diff_sync_dir ${diffDir}`,
      `offline_dump ${work}/offline.dump`,
      `override_dump ${work}/override.dump`,
      `stats_dump ${work}/stats.dump`,
      `notify_dump ${work}/notify.dump`,
      `stats_dir ${work}/stats`,
      '',
    ].join('\n'),
  );
  const server = fork(serverScript, [String(SERVER_PORT), String(n)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await waitMessage<{ ready?: number }>(server, (m) => m.ready !== undefined);
  const profDir = process.env['BENCH_CPU_PROF'];
  const extra = (process.env['BENCH_NODE_FLAGS'] ?? '').split(' ').filter((f) => f !== '');
  const heapFile = join(work, 'heap.txt');
  const sd = spawn(
    process.execPath,
    [...shebangFlags(cli), ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), ...extra, '--import', heapProbe, cli, '-c', join(work, 'surealived.cfg'), join(work, 'config.xml')],
    { stdio: ['ignore', extra.length > 0 ? 'inherit' : 'ignore', 'inherit'], env: { ...process.env, BENCH_HEAP_FILE: heapFile, SUREALIVED_PROBES: probes } },
  );
  const pid = sd.pid!;
  try {
    // Warm-up: start-up spreading (1 s) plus a few rounds.
    let ready = false;
    for (let i = 0; i < 100 && !ready; i++) {
      await sleep(200);
      ready = await checksDone(ctlPort).then((c) => c >= n, () => false);
    }
    if (!ready) throw new Error('surealived did not come up');
    const rssAtStartMb = currentRssMb(pid);
    await sleep(2000);
    const c0 = await checksDone(ctlPort);
    const cpu0 = cpuSeconds(pid);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const c1 = await checksDone(ctlPort);
    const cpu1 = cpuSeconds(pid);
    const elapsed = (performance.now() - t0) / 1000;
    const checks = c1 - c0;
    const window = heapSamples(heapFile).slice(-Math.round((elapsed * 1000) / 200));
    const used = window.map((h) => h.heapUsed / 2 ** 20);
    const gcMsPerSec = window.length > 1 ? (window[window.length - 1]!.gcMs - window[0]!.gcMs) / ((window[window.length - 1]!.t - window[0]!.t) / 1000) : NaN;

    // Failure detection: 10 % of the reals start refusing; watch the diff files for their removal.
    const failing = new Set<string>();
    for (let i = 0; i < n; i += 10) failing.add(realAddr(i));
    const seen = new Map<string, number>();
    const offsets = new Map<string, number>();
    const scan = (): void => {
      for (const f of readdirSync(diffDir)) {
        const path = join(diffDir, f);
        const text = readFileSync(path, 'utf8');
        const from = offsets.get(path) ?? 0;
        // A line being appended right now is read again, whole, at the next scan.
        const upTo = text.lastIndexOf('\n') + 1;
        if (upTo <= from) continue;
        offsets.set(path, upTo);
        for (const m of text.slice(from, upTo).matchAll(/^cmd=chgreal .* raddr=(\S+) rport=\d+ rweight=0/gm)) {
          if (failing.has(m[1]!) && !seen.has(m[1]!)) seen.set(m[1]!, performance.now());
        }
      }
    };
    scan();
    const tFail = performance.now();
    server.send({ fail: [...failing] });
    const bound = (LOOPDELAY * RETRIES2FAIL + TIMEOUT) * 1000;
    while (seen.size < failing.size && performance.now() - tFail < bound * 3) {
      await sleep(20);
      scan();
    }
    const lat = [...seen.values()].map((t) => t - tFail).sort((a, b) => a - b);
    const q = (p: number): number => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]! : NaN);
    return {
      tester,
      reals: n,
      checksPerSec: checks / elapsed,
      usPerCheck: ((cpu1 - cpu0) * 1e6) / checks,
      peakRssMb: peakRssMb(pid),
      detectP50: q(0.5),
      detectP99: q(0.99),
      detectMax: lat.length ? lat[lat.length - 1]! : NaN,
      detected: seen.size,
      failing: failing.size,
      heapMinMb: used.length ? Math.min(...used) : NaN,
      heapMaxMb: used.length ? Math.max(...used) : NaN,
      gcMsPerSec,
      rssAtStartMb,
    };
  } finally {
    sd.kill(profDir ? 'SIGINT' : 'SIGKILL');
    server.kill('SIGKILL');
    await sleep(300);
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { sizes: { type: 'string' }, testers: { type: 'string' }, seconds: { type: 'string' }, probes: { type: 'string' } } });
  const paths = (values.probes ?? 'native').split(',');
  const sizes = (values.sizes ?? '1000,5000,10000').split(',').map(Number);
  const testers = (values.testers ?? 'tcp,http').split(',');
  const seconds = Number(values.seconds ?? 10);
  const bound = (LOOPDELAY * RETRIES2FAIL + TIMEOUT) * 1000;
  process.stdout.write(`surealived checks benchmark: loopdelay ${LOOPDELAY}, timeout ${TIMEOUT}, retries2fail ${RETRIES2FAIL}, ${seconds} s per run\n`);
  process.stdout.write(`target at 10,000 reals: >= 9,500 checks/s, <= 60 µs CPU/check, <= 150 MB RSS, detection <= ${bound} ms\n`);
  process.stdout.write(
    `reference (original C surealived, 10,000 reals): ~${REFERENCE.checksPerSec} checks/s, ${REFERENCE.usPerCheck.tcp} µs/check tcp, ${REFERENCE.usPerCheck.http} µs/check http, ${REFERENCE.rssMb} MB RSS\n\n`,
  );
  process.stdout.write(`node ${process.version}, daemon flags: ${shebangFlags(cli).join(' ') || '(none)'}; probes: native = the C prober (default), js = net.Socket/undici\n\n`);
  const header = 'tester  probes  reals   checks/s  (orig)   µs/check (orig)  peak RSS MB (orig)  detect p50/p99/max ms   detected   RSS@start  heap used MB  GC ms/s';
  process.stdout.write(`${header}\n${'-'.repeat(header.length)}\n`);
  for (const tester of testers) {
    for (const probes of paths) for (const n of sizes) {
      const r = await runOne(tester, n, seconds, probes);
      const line =
        `${r.tester.padEnd(7)} ${probes.padEnd(6)}  ${String(r.reals).padStart(5)}  ${r.checksPerSec.toFixed(0).padStart(8)}  ${n === 10000 ? String(REFERENCE.checksPerSec).padStart(6) : '     -'}` +
        `   ${r.usPerCheck.toFixed(1).padStart(8)} ${n === 10000 ? String(REFERENCE.usPerCheck[tester] ?? '-').padStart(6) : '     -'}` +
        `   ${r.peakRssMb.toFixed(0).padStart(11)} ${n === 10000 ? String(REFERENCE.rssMb).padStart(6) : '     -'}` +
        `   ${r.detectP50.toFixed(0).padStart(6)}/${r.detectP99.toFixed(0)}/${r.detectMax.toFixed(0)}`.padEnd(27) +
        `${r.detected}/${r.failing}`.padEnd(11) +
        `${r.rssAtStartMb.toFixed(0).padStart(9)}  ${`${r.heapMinMb.toFixed(0)}-${r.heapMaxMb.toFixed(0)}`.padStart(12)}  ${r.gcMsPerSec.toFixed(0).padStart(7)}`;
      process.stdout.write(`${line}\n`);
    }
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
