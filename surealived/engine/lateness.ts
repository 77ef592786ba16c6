// How late probes start against their schedule: a cumulative histogram (Prometheus style) plus the
// largest lateness since it was last read. Shows whether anything (control port, file I/O, GC) delays
// the probes.

/** Upper bounds of the buckets, in seconds. */
export const LATENESS_BOUNDS_S: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

export class LatenessHistogram {
  /** counts[i]: probes with lateness <= LATENESS_BOUNDS_S[i]; the last slot is +Inf. Cumulative on read. */
  private readonly counts = new Float64Array(LATENESS_BOUNDS_S.length + 1);
  count = 0;
  sumSeconds = 0;
  private maxSinceRead = 0;

  record(latenessMs: number): void {
    const s = Math.max(0, latenessMs) / 1000;
    let i = 0;
    while (i < LATENESS_BOUNDS_S.length && s > LATENESS_BOUNDS_S[i]!) i++;
    this.counts[i]!++;
    this.count++;
    this.sumSeconds += s;
    if (s > this.maxSinceRead) this.maxSinceRead = s;
  }

  /** Cumulative bucket counts, the last one being +Inf (= count). */
  cumulative(): number[] {
    const out: number[] = [];
    let acc = 0;
    for (const c of this.counts) out.push((acc += c));
    return out;
  }

  /** The largest lateness (s) since the previous call. */
  takeMax(): number {
    const m = this.maxSinceRead;
    this.maxSinceRead = 0;
    return m;
  }
}
