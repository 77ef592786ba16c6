// The retries2ok/retries2fail hysteresis (spec 4.5), as a pure function. Unlike the original, each
// probe is evaluated once (the original evaluated completed tests twice per cycle: bug 11.3).

export interface Hysteresis {
  readonly okCount: number;
  readonly failCount: number;
  readonly online: boolean;
}

/**
 * Counters after one probe verdict. Success resets the failure run and vice versa; the "ok" rule is
 * checked first, as the original, so a real is marked online as soon as it has retries2ok successes.
 */
export function applyVerdict(h: Hysteresis, success: boolean, retries2ok: number, retries2fail: number): Hysteresis {
  let { okCount, failCount, online } = h;
  if (success) {
    if (okCount < retries2ok) okCount++;
    failCount = 0;
  } else {
    if (failCount < retries2fail) failCount++;
    okCount = 0;
  }
  if (okCount === retries2ok) online = true;
  else if (failCount === retries2fail) online = false;
  return { okCount, failCount, online };
}
