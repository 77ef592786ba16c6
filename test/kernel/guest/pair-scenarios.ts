// Guest side of the director-pair lab test: a control run without the suite, then a run with the
// whole suite including failback; writes the results as JSON for the host (test/kernel/pair.test.ts).
// Usage: node pair-scenarios.js <report.json> <work dir> [--fast]
//        node pair-scenarios.js <report.json> <work dir> --bench <runs>   (bench/failover.ts: <runs>
//        crash runs with the suite and as many without, at the default and the fast VRRP setting)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runPair, type PairRunResult } from './pair-lab.js';

export interface PairBenchReport {
  kernel: string;
  runs: PairRunResult[];
}

export interface PairReport {
  kernel: string;
  control: PairRunResult;
  suite: PairRunResult;
}

async function main(): Promise<void> {
  const [report, work] = process.argv.slice(2);
  if (!report || !work) throw new Error('usage: pair-scenarios.js <report.json> <work dir>');
  const fast = process.argv.includes('--fast');
  const log = (s: string): void => void process.stdout.write(`${s}\n`);
  const b = process.argv.indexOf('--bench');
  if (b > 0) {
    const n = Number(process.argv[b + 1] ?? 3);
    const runs: PairRunResult[] = [];
    let k = 0;
    for (const f of [false, true]) {
      for (let i = 0; i < n; i++) {
        for (const suite of [true, false]) runs.push(await runPair({ work: join(work, `run${k++}`), suite, failback: false, fast: f, log }));
        writeFileSync(report, JSON.stringify({ kernel: (await import('node:os')).release(), runs } satisfies PairBenchReport, null, 1));
      }
    }
    return;
  }
  // --suite-only: for working on the scenario (the test needs both).
  const control = process.argv.includes('--suite-only')
    ? { suite: false, fast, notes: ['skipped (--suite-only)'] }
    : await runPair({ work: join(work, 'control'), suite: false, failback: false, fast, log });
  const suite = await runPair({ work: join(work, 'suite'), suite: true, failback: true, fast, log });
  const r: PairReport = { kernel: (await import('node:os')).release(), control, suite };
  writeFileSync(report, JSON.stringify(r, null, 1));
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
