// Problems found in a service config: where (file:line, attribute), how bad, and what.

export interface ConfigIssue {
  readonly file: string;
  /** 1-based; 0 when the problem concerns the whole file (e.g. it cannot be read). */
  readonly line: number;
  readonly severity: 'error' | 'warning';
  /** With its context: `virtual "wp": real "sg": attribute "port": "70000" is not a port (0..65535)`. */
  readonly message: string;
  readonly attr?: string;
}

/** `conf.xml:12: error: virtual "wp": ...` (no line part when the issue is about the whole file). */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}${i.line > 0 ? `:${i.line}` : ''}: ${i.severity}: ${i.message}`;
}

/** Collects issues of one file, dropping exact repeats (one bad tester value seen by every real). */
export class IssueList {
  private readonly list: ConfigIssue[] = [];
  private readonly seen = new Set<string>();

  constructor(readonly file: string) {}

  error(line: number, message: string, attr?: string): void {
    this.push({ file: this.file, line, severity: 'error', message, ...(attr === undefined ? {} : { attr }) });
  }

  warning(line: number, message: string, attr?: string): void {
    this.push({ file: this.file, line, severity: 'warning', message, ...(attr === undefined ? {} : { attr }) });
  }

  get hasErrors(): boolean {
    return this.list.some((i) => i.severity === 'error');
  }

  /** In line order (stable: same-line issues keep the order they were found in). */
  sorted(): ConfigIssue[] {
    return this.list.map((issue, n) => ({ issue, n })).sort((a, b) => a.issue.line - b.issue.line || a.n - b.n).map((x) => x.issue);
  }

  private push(i: ConfigIssue): void {
    const key = `${i.line}\u0000${i.severity}\u0000${i.message}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    this.list.push(i);
  }
}
