import { strict as assert } from 'node:assert';
import { LatenessHistogram } from '../../surealived/engine/lateness.js';
import { formatMetrics } from '../../surealived/control/metrics.js';
import { newTestCounters } from '../../surealived/engine/state.js';

describe('probe start lateness histogram', () => {
  it('counts each probe in the first bucket that holds it, cumulatively, with +Inf = count', () => {
    const h = new LatenessHistogram();
    for (const ms of [0, 3, 7, 40, 99, 150, 2000, -5]) h.record(ms);
    const cum = h.cumulative();
    assert.equal(cum.length, 9, 'buckets 5, 10, 25, 50, 100, 250, 500, 1000 ms and +Inf');
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

  it('exposes exactly these lines for 0, 5, 250, 500 and 1500 ms: a bucket holds its bound (le), 1.5 s only +Inf', () => {
    const h = new LatenessHistogram();
    for (const ms of [0, 5, 250, 500, 1500]) h.record(ms);
    const lines = formatMetrics([], newTestCounters(), h)
      .split('\n')
      .filter((l) => l.includes('surealived_probe_start_lateness'));
    // Written out by hand: 0 and 5 ms are <= 0.005 s; 250 ms joins at 0.25, 500 ms at 0.5; the sum
    // is 0.005 + 0.25 + 0.5 + 1.5 = 2.255 s and the largest 1.5 s.
    assert.deepEqual(lines, [
      '# HELP surealived_probe_start_lateness_seconds How late probes started against their schedule.',
      '# TYPE surealived_probe_start_lateness_seconds histogram',
      'surealived_probe_start_lateness_seconds_bucket{le="0.005"} 2',
      'surealived_probe_start_lateness_seconds_bucket{le="0.01"} 2',
      'surealived_probe_start_lateness_seconds_bucket{le="0.025"} 2',
      'surealived_probe_start_lateness_seconds_bucket{le="0.05"} 2',
      'surealived_probe_start_lateness_seconds_bucket{le="0.1"} 2',
      'surealived_probe_start_lateness_seconds_bucket{le="0.25"} 3',
      'surealived_probe_start_lateness_seconds_bucket{le="0.5"} 4',
      'surealived_probe_start_lateness_seconds_bucket{le="1"} 4',
      'surealived_probe_start_lateness_seconds_bucket{le="+Inf"} 5',
      'surealived_probe_start_lateness_seconds_sum 2.255',
      'surealived_probe_start_lateness_seconds_count 5',
      '# HELP surealived_probe_start_lateness_max_seconds Largest probe start lateness since the previous scrape.',
      '# TYPE surealived_probe_start_lateness_max_seconds gauge',
      'surealived_probe_start_lateness_max_seconds 1.5',
    ]);
  });
});
