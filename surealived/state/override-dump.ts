// override.dump (spec 7.2) and the `rset` override rules (spec 9.3): operator weight overrides and
// rstate, persisted as `VKEY - RKEY - weight=<W><%| >rstate=<RSTATE>` lines.

import type { RState, RealState, VirtualState, WeightOverride } from '../engine/state.js';
import type { Logger } from '../../common/log.js';
import { formatOverrideText, isNeutralOverride as isNeutral, parseOverrideLine, parseRState } from '../../common/override-line.js';
import { type DumpWarning, dumpLines, formatWarning, readDumpAtStart, saveDump, saveDumpSync } from './dump-file.js';
import { findReals, rkey, vkey } from './keys.js';

/** The weight override in force for the dump: the override, else the configured weight as absolute. */
function overrideOrConfigured(r: RealState): WeightOverride {
  return r.override ?? { weight: r.config.weight, percent: false };
}

/**
 * Whether the real has an override.dump entry. The original kept a separate hash; its content always
 * equals "not neutral" except for neutral lines loaded from the file, which change nothing and are
 * dropped at the next rewrite here.
 */
export function hasOverrideEntry(r: RealState): boolean {
  return !isNeutral(r.rstate, r.override, r.config.weight);
}

/**
 * `VKEY - RKEY - weight=<W><T>rstate=<RSTATE>` with T `%` (percent) or a space (absolute), then the
 * separator space: so absolute lines have two spaces before `rstate`. W is printed unsigned (%u).
 * When only rstate was overridden the configured weight is written as absolute, pinning today's XML
 * weight into the file (spec 11.14); kept for byte compatibility.
 */
export function formatOverrideLine(r: RealState): string {
  const o = overrideOrConfigured(r);
  return formatOverrideText(vkey(r.virtual.config), rkey(r.config), o.weight, o.percent, r.rstate);
}

/** The whole file: every real with an entry, in XML order (the original's hash order was unspecified). */
export function formatOverrideDump(virtuals: readonly VirtualState[]): string {
  let out = '';
  for (const v of virtuals) for (const r of v.reals) if (hasOverrideEntry(r)) out += formatOverrideLine(r);
  return out;
}

export interface OverrideEntry {
  readonly real: RealState;
  readonly override: WeightOverride;
  readonly rstate: RState;
}

export interface OverrideDumpParse {
  readonly entries: OverrideEntry[];
  readonly warnings: DumpWarning[];
}

/** Matches each line to the config (spec 7 rule). Bad or unmatched lines become warnings, never errors. */
export function parseOverrideDump(text: string, virtuals: readonly VirtualState[], file: string): OverrideDumpParse {
  const entries: OverrideEntry[] = [];
  const warnings: DumpWarning[] = [];
  for (const { no, text: line } of dumpLines(text)) {
    const warn = (reason: string): void => {
      warnings.push({ file, line: no, text: line, reason });
    };
    const p = parseOverrideLine(line);
    if (!p.ok) {
      warn(p.reason);
      continue;
    }
    const found = findReals(virtuals, p.line.virtual, p.line.real);
    if (found.length === 0) warn('no such real in the configuration (removing from override.dump)');
    // The file holds the weight as %u; reading it back as a C int restores negative XML weights.
    const override: WeightOverride = { weight: p.line.weight | 0, percent: p.line.percent };
    for (const real of found) entries.push({ real, override, rstate: p.line.rstate });
  }
  return { entries, warnings };
}

export function applyOverrides(entries: readonly OverrideEntry[]): void {
  for (const e of entries) {
    e.real.override = e.override;
    e.real.rstate = e.rstate;
  }
}

/**
 * Reads, matches and applies override.dump at start-up (always; there is no switch), then rewrites
 * it from memory so unmatched lines are dropped. Never throws: problems are logged.
 */
export async function loadOverrideDump(path: string, virtuals: readonly VirtualState[], log: Logger): Promise<OverrideEntry[]> {
  const text = await readDumpAtStart(path, 'override file', log);
  if (text === null) return [];
  const { entries, warnings } = parseOverrideDump(text, virtuals, path);
  for (const w of warnings) log.warn(formatWarning(w));
  applyOverrides(entries);
  for (const e of entries) {
    const r = e.real;
    log.debug(
      `\tOverride real: ${r.virtual.config.name}:${r.config.name} (${vkey(r.virtual.config)} - ${rkey(r.config)}) ` +
        `weight=${e.override.weight}${e.override.percent ? '%' : ' '}, rstate=${e.rstate}`,
    );
  }
  await saveOverrideDump(path, virtuals, log);
  return entries;
}

export function saveOverrideDump(path: string, virtuals: readonly VirtualState[], log: Logger): Promise<boolean> {
  return saveDump(path, formatOverrideDump(virtuals), log);
}

export function saveOverrideDumpSync(path: string, virtuals: readonly VirtualState[], log: Logger): boolean {
  return saveDumpSync(path, formatOverrideDump(virtuals), log);
}

/** The `rstate=` / `rweight=` values of an `rset` command, as typed by the operator. */
export interface RsetRequest {
  readonly rstate?: string;
  readonly rweight?: string;
}

export type RsetResult =
  | {
      readonly ok: true;
      readonly rstate: RState;
      readonly override: WeightOverride;
      /** True when the result is neutral (ONLINE + configured weight or 100 %): no override.dump entry. */
      readonly deleteEntry: boolean;
    }
  | { readonly ok: false; readonly error: string };

/** C atoi: optional whitespace and sign, leading digits, garbage -> 0, wrapped to a 32-bit int. */
export function atoi(text: string): number {
  const m = /^\s*([+-]?[0-9]+)/.exec(text);
  return m ? Number(m[1]) | 0 : 0;
}

/**
 * The rset rules of spec 9.3, without side effects: the caller assigns rstate and override to the
 * real, then rewrites override.dump and writes a diff. Errors carry the original's exact reply text
 * (without the newline).
 */
export function applyRset(real: RealState, req: RsetRequest): RsetResult {
  if (req.rstate === undefined && req.rweight === undefined) {
    return { ok: false, error: "cmd_rset: you need to set at least 'rstate' or 'rweight'" };
  }
  let rstate = real.rstate;
  if (req.rstate !== undefined) {
    const parsed = parseRState(req.rstate);
    if (!parsed) return { ok: false, error: `cmd_rset: rstate unknown [${req.rstate}]` };
    rstate = parsed;
  }
  const configured = real.config.weight;
  let override: WeightOverride = real.override ?? { weight: configured, percent: false };
  if (req.rweight !== undefined) {
    const pct = req.rweight.indexOf('%');
    const weight = atoi(pct >= 0 ? req.rweight.slice(0, pct) : req.rweight);
    // -1 was the original's "no override" sentinel, so `rweight=-1` resets to the configured weight.
    // Unlike the original, `-1%` also resets to the configured absolute weight (it gave conf %).
    override = weight === -1 ? { weight: configured, percent: false } : { weight, percent: pct >= 0 };
  }
  return { ok: true, rstate, override, deleteEntry: isNeutral(rstate, override, configured) };
}

/** The success reply line of `rset` (without the `_SD_CMD_END_` marker). */
export function formatRsetReply(r: { readonly rstate: RState; readonly override: WeightOverride }): string {
  return `Set: rstate=${r.rstate}, weight=${r.override.weight}, inpercent=${r.override.percent ? 'TRUE' : 'FALSE'}\n`;
}
