// surealived's override.dump read as the replicated table, pure: text in, one OperatorOverride per real
// with canonical VKEY/RKEY text, and a warning naming file:line for every line skipped (never thrown).

import { dumpLines, type DumpWarning } from '../../common/dump-lines.js';
import { parseOverrideLine, type OverrideLine } from '../../common/override-line.js';
import { formatParsedRKey, formatParsedVKey } from '../../common/state-keys.js';
import { entryKey, type OperatorOverride } from '../model.js';

export interface OverrideDumpRead {
  /** By entry key (`VKEY RKEY`); a real named twice keeps its last line, as surealived applies them in order. */
  readonly overrides: ReadonlyMap<string, OperatorOverride>;
  readonly warnings: readonly DumpWarning[];
}

/** The entry of one parsed line; keys re-formatted canonically so both directors spell them alike. */
export function overrideOfLine(l: OverrideLine): OperatorOverride {
  return {
    kind: 'override',
    virtual: formatParsedVKey(l.virtual),
    real: formatParsedRKey(l.real),
    weight: l.weight,
    percent: l.percent,
    rstate: l.rstate,
  };
}

export function readOverrideDump(text: string, file: string): OverrideDumpRead {
  const overrides = new Map<string, OperatorOverride>();
  const warnings: DumpWarning[] = [];
  for (const { no, text: line } of dumpLines(text)) {
    const p = parseOverrideLine(line);
    if (!p.ok) {
      warnings.push({ file, line: no, text: line, reason: p.reason });
      continue;
    }
    const o = overrideOfLine(p.line);
    const key = entryKey(o);
    overrides.delete(key); // the later line wins and takes its place in file order
    overrides.set(key, o);
  }
  return { overrides, warnings };
}
