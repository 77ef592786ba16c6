// `npm run bench:failover`: the director pair of examples/director-pair/ in the qemu lab (one boot),
// crashed again and again: per run, the time until the VIP is on the backup, how long new connections
// failed, the longest stall of a held connection, and the share of sticky clients (per persistence
// kind) and held connections that survived; with the whole suite and with keepalived alone (no
// sync), at the default VRRP setting (v2, 1 s adverts) and the fast one (v3, 0.25 s, unicast).
// Options: --runs 3 (crash runs per setting and mode)
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { labUnavailable, runInGuest } from '../lab/lab.js';
import { buildKmodule } from '../test/kernel/guest-run.js';
import type { CrashResult, Kind, PairRunResult } from '../test/kernel/guest/pair-lab.js';
import type { PairBenchReport } from '../test/kernel/guest/pair-scenarios.js';

const KINDS: Kind[] = ['pers', 'recent', 'nftmap'];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
}
const range = (xs: number[]): string => (xs.length ? `${Math.min(...xs)}-${Math.max(...xs)} (median ${median(xs)})` : '-');
const share = (n: number, of: number): string => (of ? `${((100 * n) / of).toFixed(0)} % (${n}/${of})` : '-');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
  const why = labUnavailable();
  if (why) throw new Error(`the lab cannot run here: ${why}`);
  const runs = Number(values.runs);
  const t0 = Date.now();
  process.stderr.write(`booting the lab for ${runs * 4} crash runs (about ${runs * 4 * 1.5} min under TCG)\n`);
  // As the lab test: the project's xt_recent on both directors.
  const ko = await buildKmodule();
  const run = await runInGuest(`modprobe x_tables && insmod '${ko}' && modprobe ip_vs && modprobe ip_vs_rr && node dist/test/kernel/guest/pair-scenarios.js "$LAB_SHARE/failover.json" /tmp/pair-bench --bench ${runs}`, {
    cwd: process.cwd(),
    timeoutMs: (10 + runs * 8) * 60_000,
    memoryMiB: 2048,
    cpus: 2,
  });
  const text = await readFile(join(run.shareDir, 'failover.json'), 'utf8').catch(() => '');
  await rm(run.shareDir, { recursive: true, force: true });
  if (!text) throw new Error(`no report from the guest (exit ${run.code})\n${run.output.slice(-4000)}`);
  const report = JSON.parse(text) as PairBenchReport;
  const rows: [string, string, string, string][] = [];
  const failed: string[] = [];
  for (const fast of [false, true]) {
    const setting = fast ? 'VRRP v3, 0.25 s' : 'VRRP v2, 1 s';
    const of = (suite: boolean): CrashResult[] =>
      report.runs.filter((r: PairRunResult) => r.fast === fast && r.suite === suite).flatMap((r) => {
        if (!r.crash) failed.push(`${setting} ${suite ? 'suite' : 'alone'}: ${r.notes.join('\n').slice(0, 1500)}`);
        return r.crash ? [r.crash] : [];
      });
    const suite = of(true);
    const alone = of(false);
    const sum = (cs: CrashResult[], f: (c: CrashResult) => [number, number]): [number, number] => cs.map(f).reduce((a, b) => [a[0] + b[0], a[1] + b[1]], [0, 0]);
    const vipS = suite.map((c) => c.vipMs);
    const vipA = alone.map((c) => c.vipMs);
    rows.push([`${setting}: VIP on the backup after (ms)`, range(vipS), range(vipA), fast ? 'suite adds <= 300 ms' : '']);
    rows.push([`${setting}: new connections failing (ms)`, range(suite.map((c) => c.outageMs)), range(alone.map((c) => c.outageMs)), fast ? '<= 1,500 ms' : '']);
    rows.push([`${setting}: longest stall of a held connection (ms)`, range(suite.map((c) => c.held.maxStallMs)), range(alone.map((c) => c.held.maxStallMs)), '']);
    for (const k of KINDS) {
      const [ns, os] = sum(suite, (c) => [c.sticky[k].same, c.sticky[k].of]);
      const [na, oa] = sum(alone, (c) => [c.sticky[k].same, c.sticky[k].of]);
      rows.push([`${setting}: sticky clients kept, ${k}`, share(ns, os), share(na, oa), '100 %']);
    }
    const [hs, ho] = sum(suite, (c) => [c.held.survived, c.held.of]);
    const [ha, hao] = sum(alone, (c) => [c.held.survived, c.held.of]);
    rows.push([`${setting}: held connections survived`, share(hs, ho), share(ha, hao), '100 %']);
    rows.push([`${setting}: suite's VIP time minus keepalived alone (median, ms)`, String(median(vipS) - median(vipA)), '', '<= 300 ms']);
  }
  const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => r[i].length), ['figure', 'with the suite', 'keepalived alone', 'target'][i]!.length));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i]!)).join('  ');
  console.log(`director-pair failover in the qemu lab (kernel ${report.kernel}, TCG, 2 vCPUs), ${runs} crash runs per cell`);
  console.log(line(['figure', 'with the suite', 'keepalived alone', 'target']));
  for (const r of rows) console.log(line(r));
  for (const f of failed) console.log(`run without a result: ${f}`);
  console.log(`total ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}

main().catch((e: unknown) => {
  console.error((e as Error).stack ?? String(e));
  process.exit(1);
});
