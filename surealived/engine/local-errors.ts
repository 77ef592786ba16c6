// Log lines for probes that could not run for a local reason (EMFILE, ENOBUFS, ...). Thousands of
// such probes a second must not become thousands of lines: one line when a burst starts, one with
// the counts when it has been quiet for a while, and a running count while it lasts. Pure: the
// engine feeds it errors and the time, and logs what it returns.

import type { LocalErrno } from '../../testers/contract.js';

export interface LocalErrorLogOptions {
  /** A burst ends after this long without a local error (ms). */
  readonly quietMs?: number;
  /** While a burst lasts, a line with the counts so far this often (ms). */
  readonly repeatMs?: number;
}

interface Burst {
  readonly start: number;
  last: number;
  lastReport: number;
  total: number;
  readonly byErrno: Map<LocalErrno, number>;
}

function countsText(b: Burst): string {
  return [...b.byErrno].map(([e, n]) => `${e} ${n}`).join(', ');
}

export class LocalErrorLog {
  private burst: Burst | null = null;
  private readonly quietMs: number;
  private readonly repeatMs: number;

  constructor(opts: LocalErrorLogOptions = {}) {
    this.quietMs = opts.quietMs ?? 2000;
    this.repeatMs = opts.repeatMs ?? 60_000;
  }

  /** A probe could not run at `now` (ms); returns the line to log when this starts a burst. */
  record(errno: LocalErrno, now: number, where: string): string | undefined {
    let b = this.burst;
    const first = b === null;
    if (b === null) b = this.burst = { start: now, last: now, lastReport: now, total: 0, byErrno: new Map() };
    b.last = now;
    b.total++;
    b.byErrno.set(errno, (b.byErrno.get(errno) ?? 0) + 1);
    if (!first) return undefined;
    return `probes cannot run: ${errno} on the director (first: ${where}); such probes are not judged, reals keep their state and are probed again at their next slot`;
  }

  /** Called periodically: the burst's closing (or running) count, when due. */
  poll(now: number): string | undefined {
    const b = this.burst;
    if (b === null) return undefined;
    const secs = ((b.last - b.start) / 1000).toFixed(1);
    if (now - b.last >= this.quietMs) {
      this.burst = null;
      return `local probe errors ended: ${b.total} probe(s) not judged over ${secs} s (${countsText(b)})`;
    }
    if (now - b.lastReport >= this.repeatMs) {
      b.lastReport = now;
      return `local probe errors continue: ${b.total} probe(s) not judged over ${secs} s so far (${countsText(b)})`;
    }
    return undefined;
  }

  /** Whether a burst is open. */
  get active(): boolean {
    return this.burst !== null;
  }
}
