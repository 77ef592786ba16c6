// The -d watchdog's decisions, without I/O (watchdog.ts does the processes, signals and timers):
// when to start the tester again after it ended, and when it is over its memory limit.
//
// Restart backoff: a tester that ends is started again after 1 s, then 2, 4, ... up to 60 s while it
// keeps ending (the original respawned every second forever, spec 11.25). A tester that ran for 60 s
// was healthy: the next restart is quick again. A restart the operator asked for (SIGTERM to the
// watchdog) is not a failure: it starts the tester after the shortest delay and resets the backoff.

export interface RestartPolicyOptions {
  /** First (and shortest) delay before a restart; default 1000 ms. */
  readonly minDelayMs?: number;
  /** Longest delay; default 60,000 ms. */
  readonly maxDelayMs?: number;
  /** A tester that ran this long was healthy: the backoff starts again from minDelayMs. Default 60,000 ms. */
  readonly healthyAfterMs?: number;
}

/** What a forced restart (SIGTERM) asks of the watchdog. */
export type ForcedRestart =
  /** A tester runs: stop it; its exit is then followed by a start after the shortest delay. */
  | { readonly action: 'stop-child' }
  /** No tester runs (a restart is pending): start one after `delayMs` instead of the pending delay. */
  | { readonly action: 'start'; readonly delayMs: number };

/** The restart backoff as a state machine; times are monotonic milliseconds supplied by the caller. */
export class RestartPolicy {
  readonly minDelayMs: number;
  readonly maxDelayMs: number;
  readonly healthyAfterMs: number;
  /** Delay the next unrequested exit waits. */
  private delayMs: number;
  /** When the running tester started; null when none runs. */
  private startedAt: number | null = null;
  /** The running tester was asked to stop by a forced restart. */
  private stopRequested = false;

  constructor(opts: RestartPolicyOptions = {}) {
    this.minDelayMs = opts.minDelayMs ?? 1000;
    this.maxDelayMs = Math.max(this.minDelayMs, opts.maxDelayMs ?? 60_000);
    this.healthyAfterMs = opts.healthyAfterMs ?? 60_000;
    this.delayMs = this.minDelayMs;
  }

  /** Whether a tester is running (between started() and exited()). */
  get running(): boolean {
    return this.startedAt !== null;
  }

  /** The delay an unrequested exit would wait now (for logs and tests). */
  get nextDelayMs(): number {
    return this.delayMs;
  }

  /** A tester was started at `at`. */
  started(at: number): void {
    this.startedAt = at;
  }

  /** The tester ended at `at`: how long to wait before starting the next one. */
  exited(at: number): number {
    const ran = this.startedAt === null ? 0 : at - this.startedAt;
    this.startedAt = null;
    if (this.stopRequested) {
      this.stopRequested = false;
      this.delayMs = this.minDelayMs;
      return this.minDelayMs;
    }
    if (ran >= this.healthyAfterMs) this.delayMs = this.minDelayMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.maxDelayMs);
    return delay;
  }

  /** SIGTERM to the watchdog: restart the tester with the backoff reset. */
  forceRestart(): ForcedRestart {
    this.delayMs = this.minDelayMs;
    if (this.startedAt !== null) {
      this.stopRequested = true;
      return { action: 'stop-child' };
    }
    return { action: 'start', delayMs: this.minDelayMs };
  }
}

/** memlimit (kB, 0 = none) against the tester's resident size (kB, null when it cannot be read). */
export function overMemoryLimit(residentKb: number | null, memlimitKb: number): boolean {
  return memlimitKb > 0 && residentKb !== null && residentKb > memlimitKb;
}
