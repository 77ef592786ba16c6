// Runs INSIDE the lab guest (bench:ipvssync): full loads of 1,000 x 10 and 5,000 x 20 hand-offs by
// ipvssync and by `ipvsadm -R`, then 1,000 single-real diff-line changes; writes the figures as JSON.
import { execFileSync } from 'node:child_process';
import { appendFileSync, closeSync, fstatSync, mkdirSync, openSync, readSync, writeFileSync } from 'node:fs';
import { release } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { IpvsClient, type ServiceSelector } from '../ipvs-netlink/index.js';
import {
  expectedRows,
  formatDiff,
  generateTable,
  handoffPaths,
  ipvsadm,
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
  maxMs: number;
  verified: boolean;
  problem?: string;
}

export interface BenchReport {
  kernel: string;
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
  },
});
const out = positionals[0];
if (!out) throw new Error('usage: guest-ipvssync.js <result.json> [--sizes 1000x10,5000x20] [--changes 1000] [--rate 100]');

const report: BenchReport = { kernel: release(), loads: [] };
const save = (): void => writeFileSync(out, JSON.stringify(report, null, 2));
const say = (s: string): void => void process.stdout.write(`${s}\n`);
const c = await new IpvsClient().open();

const selectorOf = (v: HandoffVirtual): ServiceSelector =>
  v.fwmark > 0 ? { family: 4, fwmark: v.fwmark } : { family: 4, protocol: v.proto === 'udp' ? 'udp' : 'tcp', address: v.addr, port: v.port };

/** Ops are applied in file order, so the table is complete when the last virtual has all its reals. */
async function complete(vs: readonly HandoffVirtual[]): Promise<boolean> {
  const last = vs[vs.length - 1]!;
  try {
    return (await c.listDestinations(selectorOf(last))).length === last.reals.length;
  } catch {
    return false;
  }
}

async function timeUntilComplete(vs: readonly HandoffVirtual[], start: number, ms: number): Promise<number> {
  const ok = await waitFor(() => complete(vs), ms, 25);
  if (!ok) throw new Error(`the table was not complete within ${ms} ms`);
  return (Date.now() - start) / 1000;
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

const flush = (): void => void ipvsadm('-C');

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
let running: Proc | undefined;
let runningTable: HandoffVirtual[] | undefined;
let runningDiff = '';

for (const size of args.sizes.split(',')) {
  const [n, r] = size.split('x').map(Number) as [number, number];
  const vs = generateTable(n, r);
  const ops = n + n * r;
  const dir = join(args.work, size);
  mkdirSync(dir, { recursive: true });
  const P = handoffPaths(dir);
  writeMainConfig(P, ['ipvssync_logging info']);
  const fig: LoadFigures = { services: n, reals: n * r, ops, ipvssyncColdS: 0, ipvssyncWarmS: 0, ipvsadmRestoreS: 0, verified: true };
  report.loads.push(fig);
  const problems: string[] = [];
  const check = async (what: string): Promise<void> => {
    const p = await verify(vs);
    if (p) {
      fig.verified = false;
      problems.push(`${what}: ${p}`);
    }
  };
  await running?.stop('SIGTERM');

  // ipvsadm -R
  flush();
  const text = rules(vs);
  let t0 = Date.now();
  execFileSync('ipvsadm', ['-R'], { input: text, maxBuffer: 64 << 20 });
  fig.ipvsadmRestoreS = (Date.now() - t0) / 1000;
  await check('ipvsadm -R');
  say(`${size}: ipvsadm -R ${fig.ipvsadmRestoreS.toFixed(2)} s`);

  // ipvssync, cold: the process starts on the hand-off.
  flush();
  const diff = writeHandoff(P, vs, 1000);
  t0 = Date.now();
  let p = startIpvssync(P, join(dir, 'ipvssync-cold.log'), ['-k']);
  fig.ipvssyncColdS = await timeUntilComplete(vs, t0, 600_000);
  await check('ipvssync cold');
  await p.stop('SIGTERM');
  say(`${size}: ipvssync cold ${fig.ipvssyncColdS.toFixed(2)} s`);

  // ipvssync, warm: running on an empty hand-off, then given the table with the reload flag.
  flush();
  writeHandoff(P, [], 1000);
  p = startIpvssync(P, join(dir, 'ipvssync-warm.log'), ['-k']);
  await waitFor(() => /\bloaded .*ipvsfull\.cfg: 0 virtuals/.test(p.log()), 60_000, 50);
  await sleep(300);
  writeHandoff(P, vs, 1000);
  t0 = Date.now();
  writeFileSync(P.reload, '');
  fig.ipvssyncWarmS = await timeUntilComplete(vs, t0, 600_000);
  await check('ipvssync warm');
  say(`${size}: ipvssync warm ${fig.ipvssyncWarmS.toFixed(2)} s`);
  if (problems.length) fig.problem = problems.join('\n');
  running = p;
  runningTable = vs;
  runningDiff = diff;
  save();
}

// 1,000 single-real changes through diff lines, against the last (largest) table, with ipvssync running.
if (running && runningTable) {
  const vs = runningTable;
  const n = Number(args.changes);
  const gapMs = 1000 / Number(args.rate);
  const log = new LogTail(running.logFile);
  const written: { at: number; key: string }[] = [];
  const start = Date.now();
  for (let i = 0; i < n; i++) {
    // Spread over the table; each change sets a new weight on one real (addreal + chgreal, as surealived writes).
    const v = vs[(i * 7919) % vs.length]!;
    const r = v.reals[(i * 31) % v.reals.length]!;
    r.weight = r.weight === 0 ? 1 + (i % 50) : 0;
    const key = `${v.fwmark > 0 ? `fwmark ${v.fwmark}` : `${v.proto} ${v.addr}:${v.port}`} -> ${r.addr}:${r.port}`;
    const due = start + i * gapMs;
    const wait = due - Date.now();
    if (wait > 0) await sleep(wait);
    written.push({ at: Date.now(), key: `${key} w=${r.weight}` });
    appendFileSync(runningDiff, formatDiff('addreal', v, r) + formatDiff('chgreal', v, r));
  }
  // Each change is done when ipvssync logs its `edit dest` (logged after the kernel's ACK).
  const done = new Map<string, number>();
  const editRe = /^\[(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6})\] info  : IPVS edit dest (.+) (?:route|masq|tunnel) (w=\d+)/;
  const collect = (): void => {
    for (const line of log.lines()) {
      const m = editRe.exec(line);
      if (!m) continue;
      const at = new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime() + Number(m[7]) / 1000;
      done.set(`${m[8]} ${m[9]}`, at);
    }
  };
  await waitFor(() => {
    collect();
    return written.every((w) => done.has(w.key));
  }, 60_000, 250);
  // A real changed twice maps to its later edit: fine, both keys carry the weight that was written.
  const lat = written.flatMap((w) => {
    const at = done.get(w.key);
    return at === undefined ? [] : [at - w.at];
  });
  lat.sort((a, b) => a - b);
  const pct = (q: number): number => lat[Math.min(lat.length - 1, Math.floor(q * lat.length))] ?? NaN;
  const last = Math.max(...[...done.values()]);
  const problem = await verify(vs);
  report.changes = {
    changes: n,
    applied: lat.length,
    seconds: (last - start) / 1000,
    opsPerS: lat.length / ((last - start) / 1000),
    p50Ms: pct(0.5),
    p99Ms: pct(0.99),
    maxMs: lat[lat.length - 1] ?? NaN,
    verified: problem === undefined,
    ...(problem ? { problem } : {}),
  };
  say(`changes: ${JSON.stringify(report.changes)}`);
  await running.stop('SIGTERM');
}
save();
c.close();
process.exit(0);
