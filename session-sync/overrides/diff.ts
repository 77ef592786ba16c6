// Two versions of the overrides table -> the changes between them, pure. Both sides are keyed by
// entry key (`VKEY RKEY`), so a real is always followed by identity, never by its line number.

import type { Change, OperatorOverride, TableRef } from '../model.js';

/** Whether two overrides put a real in the same state (weight, percent flag, rstate). */
export function sameSetting(a: Pick<OperatorOverride, 'weight' | 'percent' | 'rstate'>, b: Pick<OperatorOverride, 'weight' | 'percent' | 'rstate'>): boolean {
  return a.weight === b.weight && a.percent === b.percent && a.rstate === b.rstate;
}

export function sameOverride(a: OperatorOverride, b: OperatorOverride): boolean {
  return a.virtual === b.virtual && a.real === b.real && sameSetting(a, b);
}

/** Upserts for what is new or different in `after`, deletes for what it lacks. */
export function diffOverrides(table: TableRef, before: ReadonlyMap<string, OperatorOverride>, after: ReadonlyMap<string, OperatorOverride>): Change[] {
  const changes: Change[] = [];
  for (const [key, o] of after) {
    const was = before.get(key);
    if (!was || !sameOverride(was, o)) changes.push({ op: 'upsert', table, entry: o });
  }
  for (const key of before.keys()) if (!after.has(key)) changes.push({ op: 'delete', table, key });
  return changes;
}
