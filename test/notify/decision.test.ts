// The virtual notifier decision table, including the fixed absolute min_weight and zero-weight cases.

import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import type { Threshold } from '../../surealived/config/model.js';
import type { NotifyState, VirtualState } from '../../surealived/engine/state.js';
import { decideVirtualNotify } from '../../surealived/notify/decision.js';
import { real, state } from '../state/fixtures.js';

const abs = (value: number): Threshold => ({ value, percent: false });
const pct = (value: number): Threshold => ({ value, percent: true });

/** A virtual with reals of the given weights; `online` lists which reals pass their tests. */
function v(weights: number[], online: boolean[], minReals: Threshold, minWeight: Threshold, notify: NotifyState = 'UNKNOWN'): VirtualState {
  const [vs] = state({
    name: 'v',
    addr: '10.0.0.1',
    port: 80,
    tester: { notifyUp: '/up', notifyDown: '/down', notifyMinReals: minReals, notifyMinWeight: minWeight },
    reals: weights.map((w, i) => real(`r${i}`, `10.0.1.${i + 1}`, 80, w)),
  });
  vs!.reals.forEach((r, i) => {
    r.online = online[i]!;
  });
  vs!.notifyState = notify;
  return vs!;
}

describe('notify/decision (spec 4.9)', () => {
  it('a virtual without reals is never evaluated', () => {
    assert.equal(decideVirtualNotify(v([], [], abs(0), abs(0))), null);
  });

  it('the first evaluation always fires, UP or DOWN', () => {
    assert.equal(decideVirtualNotify(v([1, 1], [true, true], abs(1), abs(0)))!.fire, 'UP');
    assert.equal(decideVirtualNotify(v([1, 1], [false, false], abs(1), abs(0)))!.fire, 'DOWN');
  });

  it('afterwards only DOWN <-> UP transitions fire', () => {
    const table: Array<[NotifyState, boolean, 'UP' | 'DOWN' | null, NotifyState]> = [
      ['UP', true, null, 'UP'],
      ['UP', false, 'DOWN', 'DOWN'],
      ['DOWN', false, null, 'DOWN'],
      ['DOWN', true, 'UP', 'UP'],
    ];
    for (const [from, healthy, fire, next] of table) {
      const d = decideVirtualNotify(v([1, 1], [healthy, healthy], abs(1), abs(0), from))!;
      assert.deepEqual([d.fire, d.next], [fire, next], `${from} healthy=${healthy}`);
    }
  });

  it('min_reals absolute counts reals that are online and rstate ONLINE', () => {
    const x = v([1, 1, 1], [true, true, false], abs(2), abs(0));
    assert.equal(decideVirtualNotify(x)!.realsCheck.enough, true);
    x.reals[0]!.rstate = 'OFFLINE';
    const d = decideVirtualNotify(x)!;
    assert.equal(d.onlineReals, 1);
    assert.equal(d.realsCheck.enough, false);
  });

  it('min_reals percent uses integer percent of all reals', () => {
    assert.equal(decideVirtualNotify(v([1, 1, 1], [true, false, false], pct(33), abs(0)))!.realsCheck.enough, true);
    assert.equal(decideVirtualNotify(v([1, 1, 1], [true, false, false], pct(34), abs(0)))!.realsCheck.enough, false);
  });

  it('min_weight percent compares online weight with all weight as if online, rstate ignored', () => {
    const x = v([10, 30], [true, true], abs(0), pct(50));
    x.reals[1]!.rstate = 'DOWN';
    const d = decideVirtualNotify(x)!;
    assert.deepEqual([d.weightAll, d.weightOnline, d.weightCheck.current, d.weightCheck.enough], [40, 10, 25, false]);
  });

  it('weights include overrides', () => {
    const x = v([10, 10], [true, false], abs(0), pct(75));
    x.reals[0]!.override = { weight: 300, percent: true };
    const d = decideVirtualNotify(x)!;
    assert.deepEqual([d.weightAll, d.weightOnline, d.weightCheck.enough], [40, 30, true]);
  });

  it('FIX: the absolute min_weight is applied (the original always found enough weight)', () => {
    const x = v([10, 20], [true, false], abs(0), abs(15));
    const d = decideVirtualNotify(x)!;
    assert.deepEqual([d.weightOnline, d.weightCheck.enough, d.fire], [10, false, 'DOWN']);
    x.reals[1]!.online = true;
    assert.equal(decideVirtualNotify(x)!.weightCheck.enough, true);
  });

  it('FIX: all weights 0 with a percent min_weight is not enough instead of a division by zero', () => {
    const d = decideVirtualNotify(v([0, 0], [true, true], abs(0), pct(50)))!;
    assert.deepEqual([d.weightAll, d.weightCheck.enough, d.fire], [0, false, 'DOWN']);
    assert.equal(decideVirtualNotify(v([0, 0], [true, true], abs(0), pct(0)))!.fire, 'UP', 'min_weight 0 is always enough');
  });

  it('both checks must pass', () => {
    assert.equal(decideVirtualNotify(v([1, 1], [true, false], abs(1), abs(2)))!.fire, 'DOWN');
    assert.equal(decideVirtualNotify(v([1, 1], [true, true], abs(1), abs(2)))!.fire, 'UP');
  });
});
