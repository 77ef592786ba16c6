import { strict as assert } from 'node:assert';
import { LatenessHistogram, LATENESS_BOUNDS_S } from '../../surealived/engine/lateness.js';
import { formatMetrics } from '../../surealived/control/metrics.js';
import { newTestCounters } from '../../surealived/engine/state.js';

describe('probe start lateness histogram', () => {
  it('counts each probe in the first bucket that holds it, cumulatively, with +Inf = count', () => {
    const h = new LatenessHistogram();
    for (const ms of [0, 3, 7, 40, 99, 150, 2000, -5]) h.record(ms);
    const cum = h.cumulative();
    assert.equal(cum.length, LATENESS_BOUNDS_S.length + 1);
    assert.deepEqual(cum, [3, 4, 4, 5, 6, 7, 7, 7, 8]);
    assert.equal(h.count, 8);
    assert.ok(Math.abs(h.sumSeconds - 2.299) < 1e-9);
  });

  it('reports the largest lateness since the previous read, then starts again', () => {
    const h = new LatenessHistogram();
    h.record(12);
    h.record(250);
    assert.equal(h.takeMax(), 0.25);
    assert.equal(h.takeMax(), 0);
  });

  it('is exposed by `metrics` as a Prometheus histogram and a max gauge', () => {
    const h = new LatenessHistogram();
    h.record(20);
    h.record(120);
    const text = formatMetrics([], newTestCounters(), h);
    assert.match(text, /# TYPE surealived_probe_start_lateness_seconds histogram\n/);
    assert.match(text, /\nsurealived_probe_start_lateness_seconds_bucket\{le="0\.025"\} 1\n/);
    assert.match(text, /\nsurealived_probe_start_lateness_seconds_bucket\{le="0\.25"\} 2\n/);
    assert.match(text, /\nsurealived_probe_start_lateness_seconds_bucket\{le="\+Inf"\} 2\nsurealived_probe_start_lateness_seconds_sum 0\.1\d*\nsurealived_probe_start_lateness_seconds_count 2\n/);
    assert.match(text, /\nsurealived_probe_start_lateness_max_seconds 0\.12\n$/);
  });
});
