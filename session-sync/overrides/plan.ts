// What to send a backup's surealived, pure: its current overrides and what the master has (a whole
// list for `write overrides`, or the changes as they arrive in continuous mode) -> `rset` lines.
// Like the IPVS reconciler: what is already so is skipped, so a replay writes no diff files.

import type { Change, OperatorOverride } from '../model.js';
import { sameSetting } from './diff.js';
import { parseTarget, resetLine, rsetLine, type TargetParse } from './rset.js';

export interface PlannedRset {
  /** `VKEY - RKEY`: how the outcome is reported. */
  readonly what: string;
  readonly line: string;
}

export interface OverridePlan {
  readonly rsets: readonly PlannedRset[];
  /** Already as wanted. */
  readonly skipped: number;
  /** Entries whose keys do not parse: nothing is sent for them. */
  readonly failed: readonly { readonly what: string; readonly why: string }[];
}

/** The wanted state per entry key: an override, or null for "no override". */
type Wanted = Map<string, { readonly target: TargetParse; readonly label: string; readonly override: OperatorOverride | null }>;

function want(wanted: Wanted, virtual: string, real: string, override: OperatorOverride | null): void {
  const target = parseTarget(virtual, real);
  wanted.set(target.ok ? target.target.key : `${virtual} ${real}`, { target, label: `${virtual} - ${real}`, override });
}

function plan(current: ReadonlyMap<string, OperatorOverride>, wanted: Wanted): OverridePlan {
  const rsets: PlannedRset[] = [];
  const failed: { what: string; why: string }[] = [];
  let skipped = 0;
  for (const w of wanted.values()) {
    if (!w.target.ok) {
      failed.push({ what: w.label, why: w.target.why });
      continue;
    }
    const t = w.target.target;
    const has = current.get(t.key);
    if (w.override === null) {
      if (has) rsets.push({ what: t.what, line: resetLine(t) });
      else skipped++;
    } else if (has && sameSetting(has, w.override)) skipped++;
    else rsets.push({ what: t.what, line: rsetLine(t, w.override) });
  }
  return { rsets, skipped, failed };
}

/** Makes the backup's overrides equal `list`: each one set, and every other one it has reset. */
export function planWrite(current: ReadonlyMap<string, OperatorOverride>, list: readonly OperatorOverride[]): OverridePlan {
  const wanted: Wanted = new Map();
  for (const o of current.values()) want(wanted, o.virtual, o.real, null);
  for (const o of list) want(wanted, o.virtual, o.real, o);
  return plan(current, wanted);
}

/**
 * Applies changes in arrival order (the last word on a real wins): an upsert sets, a delete resets.
 * A dropped table (the master stopped replicating) takes nothing away: the backup keeps what it has.
 */
export function planApply(current: ReadonlyMap<string, OperatorOverride>, changes: readonly Change[]): OverridePlan {
  const wanted: Wanted = new Map();
  for (const c of changes) {
    if (c.table.kind !== 'overrides') continue;
    if (c.op === 'upsert' && c.entry.kind === 'override') want(wanted, c.entry.virtual, c.entry.real, c.entry);
    else if (c.op === 'delete') {
      const [virtual = '', real = ''] = c.key.split(' ');
      want(wanted, virtual, real, null);
    }
  }
  return plan(current, wanted);
}
