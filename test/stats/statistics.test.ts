// Behaviour of the rolling statistics: window, sums, problem markers, virtual aggregates, restore seeding.

import assert from 'node:assert/strict';
import { describe, it } from 'mocha';
import { newRealStats } from '../../surealived/stats/statistics.js';
import {
  lifetimeAverages,
  newVirtualStats,
  recordProbe,
  rollingAverages,
  samplesWindow,
  seedRollingWindow,
  toMs,
  toUs,
  updateVirtualStats,
} from '../../surealived/stats/statistics.js';
import { real, state } from '../state/fixtures.js';

describe('stats/statistics (spec 4.8)', () => {
  it('keeps the last stats_samples probes in the rolling window', () => {
    const s = newRealStats();
    for (let i = 1; i <= 5; i++) recordProbe(s, { connMs: i, respMs: 10 * i, totalMs: 11 * i }, 3);
    assert.deepEqual(s.samples, [
      [3, 30, 33],
      [4, 40, 44],
      [5, 50, 55],
    ]);
    assert.deepEqual(rollingAverages(s), { conn: 4, resp: 40, total: 44 });
    assert.equal(s.total, 5);
    assert.deepEqual([s.sumConn, s.sumResp, s.sumTotal], [15, 150, 165]);
    assert.deepEqual(lifetimeAverages(s), { conn: 3, resp: 30, total: 33 });
    assert.deepEqual([s.lastConn, s.lastResp, s.lastTotal], [5, 50, 55]);
  });

  it('stats_samples 0 or above 20 means 20', () => {
    assert.equal(samplesWindow(0), 20);
    assert.equal(samplesWindow(21), 20);
    assert.equal(samplesWindow(1), 1);
  });

  it('a probe that never connected counts its total time as the conn sample, and the problem', () => {
    const s = newRealStats();
    recordProbe(s, { connMs: -1, respMs: 5001, totalMs: 5000, problem: 'conn' }, 20);
    recordProbe(s, { connMs: 0, respMs: 0, totalMs: 12, problem: 'rst' }, 20);
    recordProbe(s, { connMs: 0, respMs: 0, totalMs: 1500, problem: 'arp' }, 20);
    assert.deepEqual(s.samples.map((x) => x[0]), [5000, 12, 1500]);
    assert.equal(s.lastConn, -2, 'the marker is kept as the last conntime');
    assert.deepEqual([s.connProblems, s.arpProblems, s.rstProblems], [1, 1, 1]);
  });

  it('virtual aggregates are the mean of the reals rolling averages, plus problem counts per cycle', () => {
    const [v] = state({ name: 'v', addr: '10.0.0.1', port: 80, reals: [real('a', '10.0.1.1', 80, 1), real('b', '10.0.1.2', 80, 1)] });
    const [a, b] = v!.reals;
    recordProbe(a!.stats, { connMs: 2, respMs: 4, totalMs: 6 }, 20);
    recordProbe(b!.stats, { connMs: -1, respMs: 0, totalMs: 10, problem: 'conn' }, 20);
    const vs = newVirtualStats();
    updateVirtualStats(vs, v!.reals);
    assert.deepEqual(vs, { total: 1, avgConn: 6, avgResp: 2, avgTotal: 8, connProblems: 1, arpProblems: 0, rstProblems: 0 });
    updateVirtualStats(vs, []);
    assert.equal(vs.avgTotal, 0, 'no reals, no average (and no division by zero)');
  });

  it('a restored average fills the window and decays as probes arrive', () => {
    const s = newRealStats();
    seedRollingWindow(s, { conn: 10, resp: 10, total: 20 }, 4);
    assert.deepEqual(rollingAverages(s), { conn: 10, resp: 10, total: 20 });
    recordProbe(s, { connMs: 2, respMs: 2, totalMs: 4 }, 4);
    assert.deepEqual(rollingAverages(s), { conn: 8, resp: 8, total: 16 });
  });

  it('converts to whole ms and µs like the original integer fields', () => {
    assert.equal(toMs(1.9999), 1);
    assert.equal(toUs(1.0005), 1000);
    assert.equal(toUs(1.001), 1001);
    assert.equal(toMs(-1), -1);
    assert.equal(toUs(-3), -3000);
    assert.equal(toMs(0.1 + 0.2 + 2.7), 3, 'float noise does not lose a millisecond');
  });
});
