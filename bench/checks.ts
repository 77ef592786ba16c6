// `npm run bench:checks`: surealived against one loopback server process with N = 1,000 / 5,000 / 10,000
// reals (loopdelay 1, timeout 2), for tcp and http. Prints checks/s, CPU µs per check, peak RSS and the
// failure-detection latency when 10 % of the reals start refusing, beside the original C surealived.
// Options: --sizes 1000,5000 --testers tcp --seconds 10 --probes native,js (js: the net.Socket/undici path); BENCH_CPU_PROF=<dir> writes a CPU profile of surealived;
// --seconds is the measured window: peak RSS (VmHWM) and the RSS median/max cover the whole run, so
// `--seconds 300` shows the spikes of a long run.
// The silent scenario (issue 9; root, in a network namespace): N http reals all silent at once (SYNs
// dropped by iptables) and back, at the default descriptor limit and under `prlimit --nofile=4096`:
// time to all-offline, time to all-online, peak descriptors, peak RSS and transitions; from the
// namespace's kernel counters, connects per 100 ms (steady state, peak after recovery) and the accept-queue
// overflows, drops and SYN retransmits between recovery and all-online + 3 s.
// --scenarios checks,silent (default both) --silent-sizes 10000 --silent-limits default,4096.
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
import { Netns, netnsUnavailable } from '../test/helpers/netns.js';

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
  /** RSS median and max (MB) over the measured window, from 200 ms samples. */
  rssP50Mb: number;
  rssMaxMb: number;
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
    const rss = window.map((h) => h.rss / 2 ** 20).sort((a, b) => a - b);
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
      rssP50Mb: rss.length ? rss[Math.floor(rss.length / 2)]! : NaN,
      rssMaxMb: rss.length ? rss[rss.length - 1]! : NaN,
    };
  } finally {
    sd.kill(profDir ? 'SIGINT' : 'SIGKILL');
    server.kill('SIGKILL');
    await sleep(300);
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sizes: { type: 'string' },
      testers: { type: 'string' },
      seconds: { type: 'string' },
      probes: { type: 'string' },
      scenarios: { type: 'string' },
      'silent-sizes': { type: 'string' },
      'silent-limits': { type: 'string' },
    },
  });
  const scenarios = (values.scenarios ?? 'checks,silent').split(',');
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
  if (scenarios.includes('checks')) await checksTable(testers, paths, sizes, seconds);
  if (scenarios.includes('silent')) {
    const why = netnsUnavailable();
    if (why !== undefined) process.stdout.write(`\nsilent scenario skipped: ${why}\n`);
    else await silentTable((values['silent-sizes'] ?? '10000').split(',').map(Number), (values['silent-limits'] ?? 'default,4096').split(','), paths);
  }
}

async function checksTable(testers: string[], paths: string[], sizes: number[], seconds: number): Promise<void> {
  const header = 'tester  probes  reals   checks/s  (orig)   µs/check (orig)  peak RSS MB (orig)  detect p50/p99/max ms   detected   RSS@start  RSS p50/max  heap used MB  GC ms/s';
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
        `${r.rssAtStartMb.toFixed(0).padStart(9)}  ${`${r.rssP50Mb.toFixed(0)}/${r.rssMaxMb.toFixed(0)}`.padStart(11)}  ${`${r.heapMinMb.toFixed(0)}-${r.heapMaxMb.toFixed(0)}`.padStart(12)}  ${r.gcMsPerSec.toFixed(0).padStart(7)}`;
      process.stdout.write(`${line}\n`);
    }
  }
}

interface SilentResult {
  toOfflineMs: number;
  toOnlineMs: number;
  peakFds: number;
  peakRssMb: number;
  offlineTransitions: number;
  onlineTransitions: number;
  localErrorLines: number;
  budgetLine: string;
  /** OFFLINE transitions after the reals came back, by reason: flapping. */
  flaps: Map<string, number>;
  /** The namespace's TCP counters from recovery until all online + 3 s. */
  recovery: RecoveryCounters;
}

/** What the kernel saw while the reals came back: bursts of connects and accept-queue overflows. */
interface RecoveryCounters {
  /** connect()s per 100 ms: the largest, and the mean before the silence (steady state). */
  peakConnectsPer100ms: number;
  steadyConnectsPer100ms: number;
  listenOverflows: number;
  listenDrops: number;
  synRetrans: number;
}

/** Tcp/TcpExt counters of the network namespace `pid` lives in. */
function tcpCounters(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const file of ['snmp', 'netstat']) {
    const lines = readFileSync(`/proc/${pid}/net/${file}`, 'utf8').split('\n');
    for (let i = 0; i + 1 < lines.length; i += 2) {
      const names = lines[i]!.split(/\s+/);
      const values = lines[i + 1]!.split(/\s+/);
      for (let k = 1; k < names.length; k++) out.set(`${names[0]}${names[k]}`, Number(values[k]));
    }
  }
  return out;
}

const SILENT_PORT = 18961;
const SILENT_SERVER = `
const net = require('node:net');
const res = Buffer.from('HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n');
const s = net.createServer((c) => { c.on('error', () => {}); c.once('data', () => c.end(res)); });
s.listen({ port: Number(process.argv[1]), host: '0.0.0.0', backlog: 8192 }, () => process.stdout.write('ready\\n'));
`;

/** N http reals in a namespace go silent at once (SYNs dropped) and come back. */
async function runSilent(n: number, limit: string, probes: string): Promise<SilentResult> {
  const ns = await Netns.create('sdbench');
  const work = mkdtempSync(join(tmpdir(), 'sd-silent-'));
  const children: ChildProcess[] = [];
  const drop = ['INPUT', '-p', 'tcp', '--dport', String(SILENT_PORT), '--syn', '-j', 'DROP'];
  try {
    writeFileSync(join(work, 'config.xml'), xmlFor('http', n).replaceAll(`testport="${SERVER_PORT}"`, `testport="${SILENT_PORT}"`));
    writeFileSync(
      join(work, 'surealived.cfg'),
      ['listen_port 0', 'startup_delay_ms 1000', ...['lock_sync_file ipvsfull.lock', 'full_sync_file ipvsfull.cfg', 'full_reload_file ipvsfull.reload', 'diff_sync_dir diffs', 'offline_dump offline.dump', 'override_dump override.dump', 'stats_dump stats.dump', 'notify_dump notify.dump', 'stats_dir stats'].map((l) => l.replace(' ', ` ${work}/`)), ''].join('\n'),
    );
    const server = ns.spawn(process.execPath, ['-e', SILENT_SERVER, String(SILENT_PORT)]);
    children.push(server);
    await new Promise<void>((resolve) => server.stdout!.once('data', () => resolve()));
    const node = [process.execPath, ...shebangFlags(cli), cli, '-c', join(work, 'surealived.cfg'), '-vvv', join(work, 'config.xml')];
    const sd = limit === 'default' ? ns.spawn(node[0]!, node.slice(1), { env: { SUREALIVED_PROBES: probes } }) : ns.spawn('prlimit', [`--nofile=${limit}:${limit}`, ...node], { env: { SUREALIVED_PROBES: probes } });
    children.push(sd);
    // Only counts are kept from the log: 2 x N transition lines.
    let offline = 0;
    let online = 0;
    let localLines = 0;
    let budgetLine = '';
    let tail = '';
    let recovering = false;
    const flaps = new Map<string, number>();
    sd.stderr!.on('data', (d: Buffer) => {
      const text = tail + d.toString();
      const cut = text.lastIndexOf('\n') + 1;
      tail = text.slice(cut);
      for (const line of text.slice(0, cut).split('\n')) {
        if (line.includes('changed its test state to OFFLINE')) {
          offline++;
          if (recovering) {
            const why = (/\[([^\]]*)\]$/.exec(line)?.[1] ?? '?').replace(/\d+/g, 'N');
            flaps.set(why, (flaps.get(why) ?? 0) + 1);
          }
        }
        else if (line.includes('changed its test state to ONLINE')) online++;
        else if (line.includes('probes cannot run') || line.includes('local probe errors')) localLines++;
        else if (line.includes('descriptor limit')) budgetLine = line.replace(/^.*descriptor limit/, 'descriptor limit');
      }
    });
    const pid = sd.pid!;
    let peakFds = 0;
    const sampler = setInterval(() => {
      try {
        peakFds = Math.max(peakFds, readdirSync(`/proc/${pid}/fd`).length);
      } catch {
        /* not yet started */
      }
    }, 50);
    // connect()s per 100 ms in the namespace (Tcp ActiveOpens): a burst at recovery shows here.
    const opens: number[] = [];
    const counter = (name: string): number => tcpCounters(pid).get(name) ?? NaN;
    let lastOpens = NaN;
    const openSampler = setInterval(() => {
      try {
        const now = counter('Tcp:ActiveOpens');
        if (!Number.isNaN(lastOpens)) opens.push(now - lastOpens);
        lastOpens = now;
      } catch {
        /* the daemon has exited */
      }
    }, 100);
    const offlineLines = (): number => {
      try {
        return readFileSync(join(work, 'offline.dump'), 'utf8').split('\n').filter((l) => l !== '').length;
      } catch {
        return 0;
      }
    };
    const until = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (!ok()) {
        if (performance.now() > end) throw new Error(`silent scenario: timed out waiting for ${what}`);
        await sleep(20);
      }
    };
    try {
      await until('start-up', () => budgetLine !== '', 60_000);
      await sleep(4000);
      const steady = opens.slice(-20);
      await ns.must('iptables', ['-I', ...drop]);
      const t0 = performance.now();
      await until('all offline', () => offlineLines() === n, 300_000);
      const toOfflineMs = performance.now() - t0;
      const before = tcpCounters(pid);
      const fromSample = opens.length;
      await ns.must('iptables', ['-D', ...drop]);
      recovering = true;
      const t1 = performance.now();
      await until('all online', () => offlineLines() === 0, 300_000);
      const toOnlineMs = performance.now() - t1;
      await sleep(3000);
      const after = tcpCounters(pid);
      const delta = (k: string): number => (after.get(k) ?? NaN) - (before.get(k) ?? NaN);
      const recovery: RecoveryCounters = {
        peakConnectsPer100ms: Math.max(...opens.slice(fromSample)),
        steadyConnectsPer100ms: steady.reduce((a, b) => a + b, 0) / Math.max(1, steady.length),
        listenOverflows: delta('TcpExt:ListenOverflows'),
        listenDrops: delta('TcpExt:ListenDrops'),
        synRetrans: delta('TcpExt:TCPSynRetrans'),
      };
      return { toOfflineMs, toOnlineMs, peakFds, peakRssMb: peakRssMb(pid), offlineTransitions: offline, onlineTransitions: online, localErrorLines: localLines, budgetLine, flaps, recovery };
    } finally {
      clearInterval(sampler);
      clearInterval(openSampler);
    }
  } finally {
    for (const c of children) c.kill('SIGKILL');
    await ns.destroy();
    rmSync(work, { recursive: true, force: true });
  }
}

async function silentTable(sizes: number[], limits: string[], paths: string[]): Promise<void> {
  process.stdout.write(`\nsilent scenario: every http real silent at once (SYNs dropped), then back; loopdelay ${LOOPDELAY}, timeout ${TIMEOUT}, retries2fail ${RETRIES2FAIL}\n`);
  const header =
    'probes  reals  limit    all offline s  all online s  peak fds  peak RSS MB  transitions off/on  local-error lines  flaps after recovery  connects/100ms steady/peak  overflows/drops/SYN retrans  budget';
  process.stdout.write(`${header}\n${'-'.repeat(header.length)}\n`);
  for (const probes of paths)
    for (const n of sizes)
      for (const limit of limits) {
        const r = await runSilent(n, limit, probes);
        process.stdout.write(
          `${probes.padEnd(6)}  ${String(n).padStart(5)}  ${limit.padEnd(7)}  ${(r.toOfflineMs / 1000).toFixed(1).padStart(13)}  ${(r.toOnlineMs / 1000).toFixed(1).padStart(12)}  ${String(r.peakFds).padStart(8)}  ${r.peakRssMb.toFixed(0).padStart(11)}  ${`${r.offlineTransitions}/${r.onlineTransitions}`.padStart(19)}  ${String(r.localErrorLines).padStart(17)}  ${([...r.flaps].map(([w, c]) => `${c} ${w}`).join('; ') || '0').padStart(20)}  ${`${r.recovery.steadyConnectsPer100ms.toFixed(0)}/${r.recovery.peakConnectsPer100ms}`.padStart(26)}  ${`${r.recovery.listenOverflows}/${r.recovery.listenDrops}/${r.recovery.synRetrans}`.padStart(27)}  ${r.budgetLine}\n`,
        );
      }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
