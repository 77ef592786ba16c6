// The line layer of surealived's state dump files, pure: numbered non-empty lines, and the warning
// that names file:line when one is skipped. Shared by surealived and session sync's overrides.

/** A dump line that was skipped: garbage, or naming nothing in the current config. Never fatal. */
export interface DumpWarning {
  readonly file: string;
  readonly line: number; // 1-based
  readonly text: string;
  readonly reason: string;
}

export function formatWarning(w: DumpWarning): string {
  return `${w.file}:${w.line}: ${w.reason} [${w.text}]`;
}

/** Non-empty lines with their 1-based numbers; a trailing `\r` is tolerated (hand-edited files). */
export function dumpLines(text: string): Array<{ readonly no: number; readonly text: string }> {
  const out: Array<{ no: number; text: string }> = [];
  text.split('\n').forEach((raw, i) => {
    const t = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (t.trim() !== '') out.push({ no: i + 1, text: t });
  });
  return out;
}
