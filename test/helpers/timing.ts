// Timing helpers for tests that must hold on a busy machine (issue 14: 2 cores shared with
// memory-, fsync- and CPU-heavy work; test/load/busy.sh makes such a machine). Claims are made on
// order and causality where possible; where a test needs a wall-clock bound it is derived from the
// configured deadline, with these margins.

import assert from 'node:assert/strict';

/**
 * How late past its deadline a probe may end and still count as "judged at the deadline" (issue
 * 14). On a busy 2-core machine a timer or an I/O callback can run seconds late; an upper bound of
 * the deadline plus this still tells "at the deadline" from "never" or "when the slow server
 * finished" (which the tests arrange to be far later, or to show in the verdict).
 */
export const LATE_MS = 3000;

/**
 * How early a timer may fire by the precise clock: Node runs timers on libuv's millisecond loop
 * clock (coarse, truncated), so a 300 ms deadline can be seen to pass at 299.x ms.
 */
export const TIMER_SLACK_MS = 5;

/** Runs `start` and measures from just before it, i.e. from before the deadline it creates. */
export async function timed<T>(start: () => Promise<T>): Promise<{ r: T; ms: number }> {
  const t0 = performance.now();
  const r = await start();
  return { r, ms: performance.now() - t0 };
}

/**
 * A probe that ends at its deadline: not before it (a probe cannot give up early), and not long
 * after it (LATE_MS: what a loaded event loop may add, far less than "never").
 */
export function assertAtDeadline(ms: number, deadlineMs: number, what = 'the probe'): void {
  assert.ok(ms >= deadlineMs - TIMER_SLACK_MS, `${what} ended after ${ms.toFixed(1)} ms, before its ${deadlineMs} ms deadline`);
  assert.ok(ms < deadlineMs + LATE_MS, `${what} ended after ${ms.toFixed(1)} ms, over ${LATE_MS} ms past its ${deadlineMs} ms deadline`);
}

