import { strict as assert } from 'node:assert';
import { applyVerdict, type Hysteresis } from '../../surealived/engine/verdict.js';

function run(seq: boolean[], r2ok: number, r2fail: number, start: Hysteresis = { okCount: 0, failCount: 0, online: true }): boolean[] {
  const out: boolean[] = [];
  let h = start;
  for (const ok of seq) {
    h = applyVerdict(h, ok, r2ok, r2fail);
    out.push(h.online);
  }
  return out;
}

describe('retries hysteresis (spec 4.5)', () => {
  it('a real that fails retries2fail times in a row goes offline, not before', () => {
    assert.deepEqual(run([false, false, false], 1, 3), [true, true, false]);
  });
  it('a success in between resets the failure run', () => {
    assert.deepEqual(run([false, false, true, false, false, false], 1, 3), [true, true, true, true, true, false]);
  });
  it('an offline real needs retries2ok successes in a row to come back', () => {
    const offline = { okCount: 0, failCount: 2, online: false };
    assert.deepEqual(run([true, true, false, true, true], 2, 2, offline), [false, true, true, true, true]);
    assert.deepEqual(run([true, false, true, true], 2, 2, offline), [false, false, false, true]);
  });
  it('counters saturate at the thresholds', () => {
    const h = [true, true, true, true].reduce((acc, ok) => applyVerdict(acc, ok, 2, 2), { okCount: 0, failCount: 0, online: false } as Hysteresis);
    assert.equal(h.okCount, 2);
    const f = [false, false, false].reduce((acc, ok) => applyVerdict(acc, ok, 2, 2), h);
    assert.equal(f.failCount, 2);
    assert.equal(f.online, false);
  });
});
