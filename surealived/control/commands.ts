// Execute one parsed control command against the daemon's state and return the reply text.
// Pure except for `rset`, which updates the real in memory (rules: state/override-dump.ts applyRset)
// and hands it to ControlTarget.commitRset.

import { streamMetrics } from './metrics.js';
import type { Command } from './protocol.js';
import {
  END_MARKER,
  GATHER_STATS_OFF,
  connstatsJson,
  connstatsReply,
  errorReply,
  fallbacksJson,
  fallbacksReply,
  invalidRequestReply,
  rlistJson,
  rlistReply,
  rsetJson,
  rsetReply,
  statsJson,
  statsReply,
  vlistJson,
  vlistReply,
  type ProcessStats,
} from './replies.js';
import { applyRset } from '../state/override-dump.js';
import { selectReal, selectVirtual } from './select.js';
import type { ControlTarget } from './target.js';

export interface CommandContext {
  readonly target: ControlTarget;
  /** Resource usage for `stats` (injected so tests get fixed numbers). */
  readonly processStats: () => Promise<ProcessStats>;
}

/** The reply to one command: synchronous except `stats`, which reads /proc asynchronously. */
export function executeCommand(cmd: Command, ctx: CommandContext): string | Promise<string> {
  const t = ctx.target;
  switch (cmd.kind) {
    case 'vlist':
      return cmd.json ? vlistJson(t.virtuals) : vlistReply(t.virtuals);
    case 'rlist': {
      const v = selectVirtual(t.virtuals, cmd.virtual);
      if (!v.ok) return errorReply(v.error);
      return cmd.json ? rlistJson(v.value) : rlistReply(v.value);
    }
    case 'stats':
      return ctx.processStats().then((proc) => {
        const input = { virtuals: t.virtuals, counters: t.counters, info: t.info(), proc, ...(t.lateness ? { lateness: t.lateness } : {}) };
        return cmd.json ? statsJson(input) : statsReply(input);
      });
    case 'rset':
      return rset(cmd, t);
    case 'connstats':
      if (!t.info().gatherStats) return GATHER_STATS_OFF;
      return cmd.json ? connstatsJson(t.virtuals) : connstatsReply(t.virtuals);
    case 'metrics': {
      const chunks: string[] = [];
      return streamMetrics(t.virtuals, t.counters, t.lateness, (c) => chunks.push(c), t.probeLoad).then(() => `${chunks.join('')}${END_MARKER}\n`);
    }
    case 'fallbacks': {
      let list = t.virtuals;
      if (cmd.virtual !== null) {
        const v = selectVirtual(t.virtuals, cmd.virtual);
        if (!v.ok) return errorReply(v.error);
        list = [v.value];
      }
      return cmd.json ? fallbacksJson(list) : fallbacksReply(list);
    }
    case 'invalid':
      return invalidRequestReply(cmd.line);
  }
}

function rset(cmd: Extract<Command, { kind: 'rset' }>, t: ControlTarget): string | Promise<string> {
  // Error precedence as the original: virtual, real, then the rstate/rweight arguments.
  const v = selectVirtual(t.virtuals, cmd.virtual);
  if (!v.ok) return errorReply(v.error);
  const r = selectReal(v.value, cmd.real);
  if (!r.ok) return errorReply(r.error);
  const real = r.value;
  const outcome = applyRset(real, cmd.change);
  if (!outcome.ok) return errorReply(outcome.error);
  const previous = { rstate: real.rstate, override: real.override };
  real.rstate = outcome.rstate;
  real.override = outcome.override;
  // Not persisted: undo (unless a later command changed the real again), so memory, override.dump
  // and IPVS keep agreeing; the operator sees why.
  const failed = (e: unknown): string => {
    if (real.rstate === outcome.rstate && real.override === outcome.override) {
      real.rstate = previous.rstate;
      real.override = previous.override;
    }
    const why = (e instanceof Error ? e.message : String(e)).replace(/[\r\n]+/g, ' ');
    return errorReply(`cmd_rset: not applied, saving failed: ${why}`);
  };
  const reply = cmd.json ? rsetJson(outcome) : rsetReply(outcome);
  let committed: void | Promise<void>;
  try {
    committed = t.commitRset(real, { deleteEntry: outcome.deleteEntry, previous });
  } catch (e) {
    return failed(e);
  }
  // The reply waits until override.dump is on disk: several rsets share one write (group commit).
  return committed ? committed.then(() => reply, failed) : reply;
}
