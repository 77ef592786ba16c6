// Runs INSIDE the lab guest (bench:ipvssync): full loads of 1,000 x 10 and 5,000 x 20 hand-offs by
// ipvssync and by `ipvsadm -R`, then 1,000 single-real diff-line changes; writes the figures as JSON.
import { execFileSync } from 'node:child_process';
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { IpvsClient, type ServiceSelector } from '../ipvs-netlink/index.js';
import {
  expectedRows,
  formatDiff,
  generateTable,
  handoffPaths,
  kernelRows,
  rowDiff,
  sameRows,
  startIpvssync,
  waitFor,
  writeHandoff,
  writeMainConfig,
  type HandoffVirtual,
  type Proc,
} from '../test/kernel/guest/ipvssync-lab.js';

export interface LoadFigures {
  services: number;
  reals: number;
  ops: number;
  /** ipvssync started on the hand-off, until the kernel table is complete (includes node start-up). */
  ipvssyncColdS: number;
  /** A running ipvssync given the hand-off (full file + reload flag), until the table is complete. */
  ipvssyncWarmS: number;
  ipvsadmRestoreS: number;
  /** Every row checked after each load. */
  verified: boolean;
  problem?: string;
}

export interface ChangeFigures {
  changes: number;
  applied: number;
  seconds: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  /** Of the changes written after the first second: ipvssync's first passes over diff lines run cold code. */
  p99AfterFirstSecondMs: number;
  maxMs: number;
  verified: boolean;
  problem?: string;
}

export interface BenchReport {
  kernel: string;
  /** vCPUs the guest saw. */
  vcpus: number;
  /** net.ipv4.vs.run_estimation in the namespaces of the runs (the kernel's default is on). */
  estimation: 'on' | 'off' | 'mixed';
  loads: LoadFigures[];
  changes?: ChangeFigures;
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    sizes: { type: 'string', default: '1000x10,5000x20' },
    changes: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '100' },
    work: { type: 'string', default: '/tmp/ipvssync-bench' },
    // Internal: one measurement, run by the orchestrator inside its own network namespace.
    step: { type: 'string' },
    size: { type: 'string' },
    changes_too: { type: 'boolean', default: false },
  },
});
const out = positionals[0];
if (!out) throw new Error('usage: guest-ipvssync.js <result.json> [--sizes 1000x10,5000x20] [--changes 1000] [--rate 100]');

const report: BenchReport = { kernel: release(), vcpus: cpus().length, estimation: 'on', loads: [] };
const save = (): void => writeFileSync(out, JSON.stringify(report, null, 2));
const say = (s: string): void => void process.stdout.write(`${s}\n`);

const selectorOf = (v: HandoffVirtual): ServiceSelector =>
  v.fwmark > 0 ? { family: 4, fwmark: v.fwmark } : { family: 4, protocol: v.proto === 'udp' ? 'udp' : 'tcp', address: v.addr, port: v.port };

let c: IpvsClient;

/** Ops are applied in file order, so the table is complete when the last virtual has all its reals. */
async function complete(vs: readonly HandoffVirtual[]): Promise<boolean> {
  const last = vs[vs.length - 1]!;
  try {
    return (await c.listDestinations(selectorOf(last))).length === last.reals.length;
  } catch {
    return false;
  }
}

/** The time of a log line (`[YYYY-MM-DD HH:MM:SS.uuuuuu] ...`), in ms since the epoch. */
function logLineTime(line: string): number | undefined {
  const m = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\]/.exec(line);
  return m ? new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime() + Number(m[7]) / 1000 : undefined;
}

/**
 * Seconds from `start` until the table is complete: ipvssync logs `full sync: N of N ops applied`
 * once the kernel has acknowledged the last op, and its timestamp is the end (as for the change
 * latencies). Reading the log costs the single vCPU little, where polling the kernel table every
 * 25 ms took CPU from the load being measured. Every row is checked afterwards (verify()).
 */
async function timeUntilComplete(vs: readonly HandoffVirtual[], log: LogTail, start: number, ms: number): Promise<number> {
  const ops = vs.length + vs.reduce((n, v) => n + v.reals.length, 0);
  const done = `info  : full sync: ${ops} of ${ops} ops applied`;
  let end: number | undefined;
  await waitFor(() => {
    for (const line of log.lines()) if (end === undefined && line.includes(done)) end = logLineTime(line);
    return end !== undefined;
  }, ms, 50);
  if (end === undefined) {
    // No complete full sync logged: fall back to watching the table itself.
    if (!(await waitFor(() => complete(vs), 10_000, 100))) throw new Error(`the table was not complete within ${ms} ms`);
    return (Date.now() - start) / 1000;
  }
  return (end - start) / 1000;
}

async function verify(vs: readonly HandoffVirtual[]): Promise<string | undefined> {
  const want = expectedRows(vs);
  const have = await kernelRows(c);
  return sameRows(want, have) ? undefined : rowDiff(want, have);
}

/** The same table as `ipvsadm -R` rules. */
function rules(vs: readonly HandoffVirtual[]): string {
  const fwd = { dr: '-g', masq: '-m', tun: '-i' } as const;
  const lines: string[] = [];
  for (const v of vs) {
    const svc = v.fwmark > 0 ? `-f ${v.fwmark}` : `${v.proto === 'udp' ? '-u' : '-t'} ${v.addr}:${v.port}`;
    lines.push(`-A ${svc} -s ${v.sched}${v.pers ? ` -p ${v.pers}` : ''}${v.ops && v.proto === 'udp' ? ' -o' : ''}`);
    for (const r of v.reals) {
      const th = r.uthresh ? ` -x ${r.uthresh} -y ${r.lthresh ?? 0}` : '';
      lines.push(`-a ${svc} -r ${r.addr}:${r.port} ${fwd[r.rt ?? v.rt]} -w ${r.weight}${th}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** New complete lines of a growing log file (a 100k-line load log is not re-read on every poll). */
class LogTail {
  private offset = 0;
  private rest = '';
  constructor(private readonly path: string) {
    const fd = openSync(path, 'r');
    this.offset = fstatSync(fd).size;
    closeSync(fd);
  }
  lines(): string[] {
    const fd = openSync(this.path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return [];
      const buf = Buffer.alloc(size - this.offset);
      readSync(fd, buf, 0, buf.length, this.offset);
      this.offset = size;
      const text = this.rest + buf.toString('utf8');
      const parts = text.split('\n');
      this.rest = parts.pop() ?? '';
      return parts;
    } finally {
      closeSync(fd);
    }
  }
}


type Step = 'ipvsadm' | 'cold' | 'warm';

interface StepResult {
  seconds: number;
  /** IPVS rate estimation on in this run's namespace. */
  estimation: boolean;
  problem?: string;
  changes?: ChangeFigures;
}

/** One measurement on an empty IPVS table (this process runs in a fresh network namespace). */
async function runStep(step: Step, size: string, withChanges: boolean): Promise<StepResult> {
  const [n, r] = size.split('x').map(Number) as [number, number];
  const vs = generateTable(n, r);
  const estimation = readFileSync('/proc/sys/net/ipv4/vs/run_estimation', 'utf8').trim() !== '0';
  const dir = join(args.work, `${size}-${step}`);
  mkdirSync(dir, { recursive: true });
  const P = handoffPaths(dir);
  writeMainConfig(P, ['ipvssync_logging info']);
  let t0: number;
  if (step === 'ipvsadm') {
    const text = rules(vs);
    t0 = Date.now();
    execFileSync('ipvsadm', ['-R'], { input: text, maxBuffer: 64 << 20 });
    const seconds = (Date.now() - t0) / 1000;
    const problem = await verify(vs);
    return problem ? { seconds, estimation, problem } : { seconds, estimation };
  }
  let p: Proc;
  let seconds: number;
  const logFile = join(dir, 'ipvssync.log');
  if (step === 'cold') {
    writeHandoff(P, vs, 1000);
    writeFileSync(logFile, '');
    const log = new LogTail(logFile);
    t0 = Date.now();
    p = startIpvssync(P, logFile, ['-k']);
    seconds = await timeUntilComplete(vs, log, t0, 900_000);
  } else {
    writeHandoff(P, [], 1000);
    p = startIpvssync(P, logFile, ['-k']);
    await waitFor(() => /\bloaded .*ipvsfull\.cfg: 0 virtuals/.test(p.log()), 60_000, 50);
    await sleep(300);
    writeHandoff(P, vs, 1000);
    const log = new LogTail(logFile);
    t0 = Date.now();
    writeFileSync(P.reload, '');
    seconds = await timeUntilComplete(vs, log, t0, 900_000);
  }
  const problem = await verify(vs);
  const res: StepResult = problem ? { seconds, estimation, problem } : { seconds, estimation };
  if (withChanges) res.changes = await changes(p, vs, join(P.diffDir, 'diff_sync.1000'));
  await p.stop('SIGTERM');
  return res;
}

/** `args.changes` single-real changes through diff lines, with ipvssync running on the loaded table `vs`. */
async function changes(running: Proc, vs: HandoffVirtual[], diffFile: string): Promise<ChangeFigures> {
  const n = Number(args.changes);
  const gapMs = 1000 / Number(args.rate);
  const log = new LogTail(running.logFile);
  const written: { at: number; key: string }[] = [];
  // One descriptor for all the writes: an open + close per change cost the writer a quarter of a vCPU.
  const fd = openSync(diffFile, 'a');
  await sleep(2000); // let the load's garbage be collected first
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    // Spread over the table (7919 is prime: distinct virtuals); each change sets a new weight on one
    // real, as addreal + chgreal, the way surealived writes it.
    const v = vs[(i * 7919) % vs.length]!;
    const r = v.reals[(i * 31) % v.reals.length]!;
    r.weight = r.weight === 0 ? 1 + (i % 50) : 0;
    const key = `${v.fwmark > 0 ? `fwmark ${v.fwmark}` : `${v.proto} ${v.addr}:${v.port}`} -> ${r.addr}:${r.port} w=${r.weight}`;
    const lines = formatDiff('addreal', v, r) + formatDiff('chgreal', v, r);
    const due = start + i * gapMs;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    // Timestamp right before the write: nothing allocated in between.
    const at = Date.now();
    writeSync(fd, lines);
    written.push({ at, key });
  }
  closeSync(fd);
  // Each change is done when ipvssync logs its `edit dest` (logged after the kernel's ACK).
  const done = new Map<string, number>();
  const editRe = / info  : IPVS edit dest (.+) (?:route|masq|tunnel) (w=\d+)/;
  const collect = (): void => {
    for (const line of log.lines()) {
      const m = editRe.exec(line);
      const at = m ? logLineTime(line) : undefined;
      if (m && at !== undefined) done.set(`${m[1]} ${m[2]}`, at);
    }
  };
  await waitFor(() => {
    collect();
    return written.every((w) => done.has(w.key));
  }, 60_000, 250);
  const latencies = (ws: readonly { at: number; key: string }[]): number[] =>
    ws
      .flatMap((w) => {
        const at = done.get(w.key);
        return at === undefined ? [] : [at - w.at];
      })
      .sort((a, b) => a - b);
  const pct = (l: readonly number[], q: number): number => l[Math.min(l.length - 1, Math.floor(q * l.length))] ?? NaN;
  const lat = latencies(written);
  const later = latencies(written.filter((w) => w.at >= start + 1000));
  const last = Math.max(...[...done.values()]);
  const problem = await verify(vs);
  return {
    changes: n,
    applied: lat.length,
    seconds: (last - start) / 1000,
    opsPerS: lat.length / ((last - start) / 1000),
    p50Ms: pct(lat, 0.5),
    p99Ms: pct(lat, 0.99),
    p99AfterFirstSecondMs: pct(later, 0.99),
    maxMs: lat[lat.length - 1] ?? NaN,
    verified: problem === undefined,
    ...(problem ? { problem } : {}),
  };
}

if (args.step) {
  c = await new IpvsClient().open();
  const r = await runStep(args.step as Step, args.size ?? '', args.changes_too);
  writeFileSync(out, JSON.stringify(r));
  c.close();
  process.exit(0);
}

// Orchestrator: every measurement in a fresh network namespace (IPVS state is per namespace), and
// one table in the kernel at a time, as on an operator's director: after each run its table is
// flushed and its namespace deleted. Deleting the namespace alone would tear the table down in the
// background of the next run; flushing alone would leave the destinations in the kernel's dest trash
// (per namespace, for minutes), which every later add walks (~7x slower 5,000 x 20 loads in the lab).
// Tables left in place cost the later runs too: each namespace's IPVS rate estimator walks all its
// destinations every 2 s (in a timer on 6.1), ~35 ms of the lab's CPU per 100,000 destinations.
const sizes = args.sizes.split(',');
let ns = 0;
for (const size of sizes) {
  const [n, r] = size.split('x').map(Number) as [number, number];
  const fig: LoadFigures = { services: n, reals: n * r, ops: n + n * r, ipvssyncColdS: 0, ipvssyncWarmS: 0, ipvsadmRestoreS: 0, verified: true };
  report.loads.push(fig);
  const problems: string[] = [];
  for (const step of ['ipvsadm', 'cold', 'warm'] as const) {
    const name = `bench${ns++}`;
    const stepOut = join(args.work, `${name}.json`);
    mkdirSync(args.work, { recursive: true });
    execFileSync('ip', ['netns', 'add', name]);
    const withChanges = step === 'warm' && size === sizes[sizes.length - 1];
    const cmd = [
      'ip link set lo up &&',
      `exec ${process.execPath} ${process.argv[1]} ${stepOut} --step ${step} --size ${size} --work ${args.work}`,
      `--changes ${args.changes} --rate ${args.rate}${withChanges ? ' --changes_too' : ''}`,
    ].join(' ');
    execFileSync('ip', ['netns', 'exec', name, 'sh', '-c', cmd], { stdio: 'inherit' });
    const res = JSON.parse(readFileSync(stepOut, 'utf8')) as StepResult;
    if (step === 'ipvsadm') fig.ipvsadmRestoreS = res.seconds;
    else if (step === 'cold') fig.ipvssyncColdS = res.seconds;
    else fig.ipvssyncWarmS = res.seconds;
    if (res.problem) problems.push(`${step}: ${res.problem}`);
    const est = res.estimation ? 'on' : 'off';
    report.estimation = ns === 1 || report.estimation === est ? est : 'mixed';
    if (res.changes) report.changes = res.changes;
    say(`${size}: ${step} ${res.seconds.toFixed(2)} s${res.changes ? ` changes ${JSON.stringify(res.changes)}` : ''}`);
    execFileSync('ip', ['netns', 'exec', name, 'ipvsadm', '-C']);
    execFileSync('ip', ['netns', 'del', name]);
    await sleep(2000); // what is left of the teardown (freeing the dest trash) runs in the background
  }
  fig.verified = problems.length === 0;
  if (problems.length) fig.problem = problems.join('\n');
  save();
}
save();
process.exit(0);
