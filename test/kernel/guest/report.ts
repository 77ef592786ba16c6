// What every guest-side check script keeps: its report (the kernel, one result per check, facts
// observed on the way), written to the share dir after every check and observation so that a
// crash of the guest keeps what ran. The host side reads it back (test/kernel/guest-run.ts).
import { writeFileSync } from 'node:fs';
import { release } from 'node:os';

export interface GuestCheckResult<Id extends string> {
  id: Id;
  ok: boolean;
  ms: number;
  detail?: string;
}

export interface GuestCheckReport<Id extends string> {
  kernel: string;
  checks: GuestCheckResult<Id>[];
  /** Facts worth knowing but not asserted (timings, counts, tool output). */
  observations: Record<string, string>;
}

export class GuestReportWriter<Id extends string> {
  readonly report: GuestCheckReport<Id> = { kernel: release(), checks: [], observations: {} };

  constructor(private readonly out: string) {}

  save(): void {
    writeFileSync(this.out, JSON.stringify(this.report, null, 2));
  }

  observe(k: string, v: string | number): void {
    this.report.observations[k] = String(v);
    this.save();
  }

  /** Runs one check: it holds when `body` returns without throwing. */
  async check(id: Id, body: () => Promise<void> | void): Promise<boolean> {
    const t0 = Date.now();
    const r: GuestCheckResult<Id> = { id, ok: true, ms: 0 };
    try {
      await body();
    } catch (e) {
      r.ok = false;
      r.detail = e instanceof Error ? `${e.message}\n${e.stack ?? ''}` : String(e);
    }
    r.ms = Date.now() - t0;
    this.report.checks.push(r);
    process.stdout.write(`check ${id}: ${r.ok ? 'ok' : 'FAILED'} (${r.ms} ms)\n`);
    this.save();
    return r.ok;
  }
}
