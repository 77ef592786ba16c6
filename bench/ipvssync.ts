// `npm run bench:ipvssync`: in one lab guest boot (real IPVS kernel under qemu), full loads of 1,000 x 10
// and 5,000 x 20 hand-offs by ipvssync beside `ipvsadm -R`, and 1,000 diff-line changes (latency p50/p99).
// Each run is in a fresh network namespace of the same boot, one table in the kernel at a time.
// Options: --vcpus 2 (guest vCPUs); passed to the guest script: --sizes 1000x10,5000x20 --changes 1000 --rate 100

import { readFile, rm } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runInGuest } from '../lab/lab.js';
import type { BenchReport } from './guest-ipvssync.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const TARGET_SPEEDUP = 2;
const TARGET_P99_MS = 200;
/**
 * The guest's vCPUs. On one, everything shares it (the diff writer, ipvssync, V8's compiler and GC
 * threads, the kernel's estimator timers): changes measured right after a 100,000-destination load
 * queued behind ipvssync's first, cold passes over diff lines (README, benchmark). TCG runs a host
 * thread per vCPU, so the host needs two free cores.
 */
const DEFAULT_VCPUS = 2;

const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const fmt = (n: number, d = 2): string => (Number.isFinite(n) ? n.toFixed(d) : '-');

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let vcpus = DEFAULT_VCPUS;
  const at = argv.indexOf('--vcpus');
  if (at >= 0) {
    vcpus = Number(argv[at + 1]);
    argv.splice(at, 2);
    if (!Number.isInteger(vcpus) || vcpus < 1) throw new Error('--vcpus wants a whole number >= 1');
  }
  const passThrough = argv.map(shq).join(' ');
  const t0 = Date.now();
  process.stdout.write('booting the lab guest (the whole benchmark takes a few minutes under emulation)...\n');
  const run = await runInGuest(`modprobe ip_vs && node dist/bench/guest-ipvssync.js "$LAB_SHARE/bench.json" ${passThrough}`, {
    cwd: REPO,
    timeoutMs: 30 * 60_000,
    memoryMiB: 2048,
    cpus: vcpus,
  });
  const text = await readFile(`${run.shareDir}/bench.json`, 'utf8').catch(() => '');
  await rm(run.shareDir, { recursive: true, force: true });
  if (run.code !== 0 || !text) {
    process.stderr.write(`guest run failed (exit ${run.code}${run.timedOut ? ', timed out' : ''})\n${run.output.slice(-4000)}\n${run.console.slice(-2000)}\n`);
    process.exit(1);
  }
  const r = JSON.parse(text) as BenchReport;
  const out: string[] = [];
  out.push(
    `ipvssync benchmark — lab guest, kernel ${r.kernel}, qemu TCG, ${r.vcpus} vCPU${r.vcpus === 1 ? '' : 's'}, ` +
      `IPVS rate estimation ${r.estimation} (absolute times are ~10-20x native; compare ratios)`,
  );
  out.push('each run in a fresh network namespace, one table in the kernel at a time (the previous run\'s flushed and its namespace deleted)');
  out.push('');
  out.push('full load into an empty table');
  out.push('  table          ops      ipvsadm -R   ipvssync warm   ipvssync cold   speed-up (warm / cold)   ops/s ipvssync warm   verified');
  for (const l of r.loads) {
    const size = `${l.services} x ${l.reals / l.services}`;
    const warmX = l.ipvsadmRestoreS / l.ipvssyncWarmS;
    const coldX = l.ipvsadmRestoreS / l.ipvssyncColdS;
    out.push(
      `  ${size.padEnd(13)}  ${String(l.ops).padEnd(7)}  ${fmt(l.ipvsadmRestoreS).padStart(8)} s   ${fmt(l.ipvssyncWarmS).padStart(10)} s   ` +
        `${fmt(l.ipvssyncColdS).padStart(10)} s   ${`${fmt(warmX, 1)}x / ${fmt(coldX, 1)}x`.padEnd(23)}  ${fmt(l.ops / l.ipvssyncWarmS, 0).padStart(18)}   ${l.verified ? 'yes' : 'NO'}`,
    );
    if (l.problem) out.push(`    problem: ${l.problem.split('\n').join('\n    ')}`);
  }
  out.push('  (warm: ipvssync already running, given the hand-off by full file + reload flag; cold: includes node start-up)');
  const ch = r.changes;
  if (ch) {
    out.push('');
    out.push(`${ch.changes} single-real changes through diff lines (addreal + chgreal), on the last table`);
    out.push(`  applied ${ch.applied} in ${fmt(ch.seconds)} s = ${fmt(ch.opsPerS, 0)} changes/s`);
    out.push(`  latency diff line written -> kernel updated: p50 ${fmt(ch.p50Ms, 0)} ms, p99 ${fmt(ch.p99Ms, 0)} ms, max ${fmt(ch.maxMs, 0)} ms`);
    out.push(`  (p99 of the changes written after the first second, for information only: ${fmt(ch.p99AfterFirstSecondMs, 0)} ms)`);
    out.push(`  final table verified: ${ch.verified ? 'yes' : `NO\n    ${ch.problem ?? ''}`}`);
  }
  out.push('');
  const worst = Math.min(...r.loads.map((l) => l.ipvsadmRestoreS / l.ipvssyncWarmS));
  out.push(`targets: full loads >= ${TARGET_SPEEDUP}x faster than ipvsadm -R: ${worst >= TARGET_SPEEDUP ? 'met' : 'NOT met'} (worst ${fmt(worst, 1)}x, warm)`);
  if (ch) out.push(`         p99 change latency <= ${TARGET_P99_MS} ms: ${ch.p99Ms <= TARGET_P99_MS ? 'met' : 'NOT met'} (${fmt(ch.p99Ms, 0)} ms)`);
  out.push(`(guest boot ${run.bootMs} ms, whole run ${fmt((Date.now() - t0) / 1000, 0)} s)`);
  process.stdout.write(out.join('\n') + '\n');
}

await main();
