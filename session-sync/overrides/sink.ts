// The backup's sink: puts overrides into the local surealived through its control port. It first
// asks what the surealived has (vlist/rlist JSON), plans the `rset` lines (plan.ts), sends them
// pipelined on one connection, and reports every real that refused, with surealived's own reason.

import { controlCommands } from '../../common/control-client.js';
import type { Change, OperatorOverride } from '../model.js';
import type { SinkReport } from '../source.js';
import { currentOverrides, virtualsOfVlist } from './current.js';
import { planApply, planWrite, type OverridePlan } from './plan.js';
import { rlistLine, rsetOutcome } from './rset.js';
import type { OverridesLog } from './source.js';

export interface OverridesSinkOptions {
  readonly control: { readonly host: string; readonly port: number };
  readonly log: OverridesLog;
  /** For one batch of commands, plus 10 ms per `rset` (default 10 s). */
  readonly timeoutMs?: number;
}

export class OverridesSink {
  private readonly label: string;

  constructor(private readonly opts: OverridesSinkOptions) {
    const { host, port } = opts.control;
    this.label = `surealived control port ${host.includes(':') ? `[${host}]` : host}:${port}`;
  }

  /** The surealived's overrides now, by entry key, as its override.dump would list them. */
  async current(): Promise<Map<string, OperatorOverride>> {
    const t = this.opts.timeoutMs ?? 10_000;
    const [vlist] = await controlCommands(this.opts.control, ['vlist json'], t);
    const virtuals = virtualsOfVlist(vlist!);
    return currentOverrides(await controlCommands(this.opts.control, virtuals.map(rlistLine), t));
  }

  /** Makes the surealived's overrides equal `list`. */
  write(list: readonly OperatorOverride[]): Promise<SinkReport> {
    return this.run('write', (current) => planWrite(current, list));
  }

  /** Applies replicated changes as they arrive. */
  apply(changes: readonly Change[]): Promise<SinkReport> {
    return this.run('apply', (current) => planApply(current, changes));
  }

  private async run(what: string, make: (current: ReadonlyMap<string, OperatorOverride>) => OverridePlan): Promise<SinkReport> {
    let plan: OverridePlan;
    try {
      plan = make(await this.current());
    } catch (e) {
      return { written: 0, skipped: 0, failed: [{ what: this.label, why: (e as Error).message }] };
    }
    const failed = [...plan.failed];
    let written = 0;
    if (plan.rsets.length > 0) {
      const t = (this.opts.timeoutMs ?? 10_000) + 10 * plan.rsets.length;
      try {
        const replies = await controlCommands(this.opts.control, plan.rsets.map((r) => r.line), t);
        plan.rsets.forEach((r, i) => {
          const o = rsetOutcome(replies[i]!);
          if (o.ok) written += 1;
          else failed.push({ what: r.what, why: o.why });
        });
      } catch (e) {
        failed.push({ what: this.label, why: (e as Error).message });
      }
    }
    this.opts.log(failed.length ? 'warn' : 'info', `overrides ${what}: ${written} set, ${plan.skipped} already so, ${failed.length} failed`);
    return { written, skipped: plan.skipped, failed };
  }
}
